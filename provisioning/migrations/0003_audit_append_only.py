"""Make the audit table append-only in the database itself (as django-pghistory does):
a trigger rejects UPDATE and DELETE, so a stray SQL statement cannot rewrite history."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION provisioning_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on provisioning_auditevent is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS provisioning_auditevent_append_only ON provisioning_auditevent;
CREATE TRIGGER provisioning_auditevent_append_only
    BEFORE UPDATE OR DELETE ON provisioning_auditevent
    FOR EACH ROW EXECUTE FUNCTION provisioning_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS provisioning_auditevent_append_only ON provisioning_auditevent;
DROP FUNCTION IF EXISTS provisioning_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0002_support_groups")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
