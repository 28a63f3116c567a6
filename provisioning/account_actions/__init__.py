"""Fixing an account through Supabase Auth's admin API (issue 26): confirm, resend, reset the
password, ban, unban, sign out everywhere, remove MFA, delete (docs/fixing-accounts.md).

`client.py` talks to Auth (the settings, the one error class, the key kept out of every
message), `services.py` holds the actions (keyword-only, one audit event each),
`statements.py` the SQL (the app rows of a deleted user, the one write to `auth`)."""
