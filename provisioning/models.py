"""Models over Supabase's `auth.users`, the Eloity app tables, and the audit log.

The first four are unmanaged: Django never creates, alters or writes them. `AuthUser`
declares only the columns the dashboard reads (the secret columns of `auth.users`, password
hash and tokens, are not even known to the ORM); the app tables' models declare only their
key, and pages read their other columns from the live catalog (`engine/rows.py`).
Provisioning writes through SQL in `engine/statements.py`, driven by the live catalog.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models


def _table(schema: str, name: str) -> str:
    # Django quotes db_table as one identifier; this yields "schema"."name".
    return f'{schema}"."{name}'


class AuthUser(models.Model):
    """A Supabase sign-up in `auth.users`. Read-only everywhere."""

    id = models.UUIDField(primary_key=True)
    email = models.CharField(max_length=255, null=True)
    phone = models.TextField(null=True)
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    last_sign_in_at = models.DateTimeField(null=True)
    email_confirmed_at = models.DateTimeField(null=True)
    phone_confirmed_at = models.DateTimeField(null=True)
    banned_until = models.DateTimeField(null=True)
    deleted_at = models.DateTimeField(null=True)
    is_anonymous = models.BooleanField(default=False)
    is_sso_user = models.BooleanField(default=False)
    raw_user_meta_data = models.JSONField(null=True)

    class Meta:
        managed = False
        db_table = _table("auth", "users")
        verbose_name = "auth user"
        verbose_name_plural = "auth users"
        default_permissions = ("view",)
        permissions = [
            ("provision_users", "Can provision missing app rows"),
            # In no group by default: removing rows is rarer and harder to undo than adding them.
            ("remove_orphans", "Can remove orphaned app rows"),
            # Fixing the account through Supabase Auth (docs/fixing-accounts.md): one
            # permission per action, held by "Support account admins" only.
            ("account_confirm", "Can confirm a user's email"),
            ("account_resend", "Can resend a user's confirmation email"),
            ("account_reset_password", "Can send a user a password-reset email"),
            ("account_ban", "Can ban and unban a user"),
            ("account_signout", "Can sign a user out everywhere"),
            ("account_remove_mfa", "Can remove a user's MFA factors"),
            ("account_delete", "Can delete a user with their app rows"),
        ]

    def __str__(self) -> str:
        return self.email or self.phone or f"anonymous {self.id}"

    @property
    def kind(self) -> str:
        if self.is_anonymous:
            return "anonymous"
        if not self.email and self.phone:
            return "phone-only"
        return "email"


class AppUser(models.Model):
    """A row of `public.users`, keyed by the auth user id in `id`.

    The app tables' models declare their key and nothing else: their columns differ from
    one project to the next (the Eloity migration's `public.users` has six, the richer
    shape thirty), so every page reads them from the live catalog (`engine/rows.py`). The
    models serve `Exists()`-free admin lists keyed by the auth user id, nothing more.
    """

    id = models.UUIDField(primary_key=True)

    class Meta:
        managed = False
        db_table = _table("public", "users")
        verbose_name = "app user"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return str(self.id)


class Profile(models.Model):
    """A row of `public.profiles`, keyed by `user_id` (see AppUser: the key only).

    `user_id` is declared as the primary key for Django's sake: shape B has no `id` column,
    and the dashboard never writes through this model.
    """

    user_id = models.UUIDField(primary_key=True)

    class Meta:
        managed = False
        db_table = _table("public", "profiles")
        default_permissions = ("view",)

    def __str__(self) -> str:
        return str(self.user_id)


class Wallet(models.Model):
    """A row of `public.wallets`, keyed by `user_id` (see Profile on the primary key)."""

    user_id = models.UUIDField(primary_key=True)

    class Meta:
        managed = False
        db_table = _table("public", "wallets")
        default_permissions = ("view",)

    def __str__(self) -> str:
        return str(self.user_id)


class AuditEvent(models.Model):
    """One action taken through the dashboard or its CLI. Append-only.

    Written in the same transaction as the rows it describes. `rows_created` maps an app
    table to the auth user ids that got a row there; `not_provisioned` lists
    `{"user_id", "table", "reason"}` for users that could not be provisioned.
    """

    class Action(models.TextChoices):
        PROVISION_USER = "provision_user", "Provision one user"
        PROVISION_SELECTED = "provision_selected", "Provision selected users"
        PROVISION_ALL_MISSING = "provision_all_missing", "Provision all missing"
        JOB_STARTED = "job_started", "Background job started"
        JOB_CANCELLED = "job_cancelled", "Background job cancelled"
        SIMULATE_SIGNUP = "simulate_signup", "Simulated sign-up"
        RELOAD_SCHEMA_CACHE = "reload_schema_cache", "Reload PostgREST schema cache"
        EXPORT_AUDIT = "export_audit", "Export audit log"
        LOGIN = "login", "Signed in"
        LOGIN_FAILED = "login_failed", "Failed sign-in"
        LOGOUT = "logout", "Signed out"
        SIGNUP_WEBHOOK = "signup_webhook", "Sign-up webhook"
        WATCHDOG_ALERT = "watchdog_alert", "Watchdog: sign-ups left without rows"
        WATCHDOG_RESOLVED = "watchdog_resolved", "Watchdog: resolved"
        SYNC_VALUES = "sync_values", "Sync values from auth"
        REMOVE_ORPHANS = "remove_orphans", "Remove orphaned rows"
        # Staff accounts and their rights, changed in the admin (audit/staff.py).
        STAFF_ACCOUNT_ADDED = "staff_account_added", "Staff account added"
        STAFF_ACCOUNT_CHANGED = "staff_account_changed", "Staff account changed"
        STAFF_ACCOUNT_DELETED = "staff_account_deleted", "Staff account deleted"
        STAFF_PASSWORD_CHANGED = "staff_password_changed", "Staff password changed"
        STAFF_GROUP_ADDED = "staff_group_added", "Staff group added"
        STAFF_GROUP_CHANGED = "staff_group_changed", "Staff group changed"
        STAFF_GROUP_DELETED = "staff_group_deleted", "Staff group deleted"
        # Fixing the account through Supabase Auth (provisioning/account_actions/).
        ACCOUNT_CONFIRM = "account_confirm", "Confirm email"
        ACCOUNT_RESEND = "account_resend", "Resend confirmation email"
        ACCOUNT_RESET_PASSWORD = "account_reset_password", "Send password-reset email"
        ACCOUNT_BAN = "account_ban", "Ban user"
        ACCOUNT_UNBAN = "account_unban", "Unban user"
        ACCOUNT_SIGNOUT = "account_signout", "Sign out everywhere"
        ACCOUNT_REMOVE_MFA = "account_remove_mfa", "Remove MFA factors"
        ACCOUNT_DELETE = "account_delete", "Delete user"
        # The two-person rule (approvals/): each step of an ApprovalRequest.
        APPROVAL_REQUESTED = "approval_requested", "Approval asked"
        APPROVAL_APPROVED = "approval_approved", "Approval given"
        APPROVAL_REFUSED = "approval_refused", "Approval refused"
        APPROVAL_RAN = "approval_ran", "Approved request ran"
        APPROVAL_EXPIRED = "approval_expired", "Approval request expired"

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partly succeeded"
        FAILED = "failed", "Failed"
        DENIED = "denied", "Denied"
        DRY_RUN = "dry_run", "Dry run"

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        CLI = "cli", "Command line"
        TASK = "task", "Background task"
        WEBHOOK = "webhook", "Webhook"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # The audit table rejects UPDATE: deleting a staff user must not touch its events.
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, db_index=True)
    target_user_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    tables = ArrayField(models.CharField(max_length=63), default=list, blank=True)
    rows_created = models.JSONField(default=dict, blank=True)
    not_provisioned = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    run_id = models.UUIDField(null=True, blank=True, db_index=True, default=None)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["actor_username", "created_at"]),
            # "this user's history": target_user_ids @> ARRAY[id]
            GinIndex(fields=["target_user_ids"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor_username} ({self.get_outcome_display()})"

    @property
    def rows_created_count(self) -> int:
        """Rows written; for a dry run, the rows it counted it would write (its
        `rows_created` holds a sample of them, a preview's none)."""
        would = (self.detail or {}).get("would_create") if self.outcome == self.Outcome.DRY_RUN else None
        if isinstance(would, dict):
            return sum(n for n in would.values() if isinstance(n, int))
        return sum(len(ids) for ids in (self.rows_created or {}).values())


class ProvisioningJob(models.Model):
    """A "Provision all missing" run in the background. Its state lives here, not in a worker.

    The worker updates the row after each committed batch; every batch is audited with the
    job's `run_id`. A worker killed mid-run leaves complete batches only: the job resumes
    after `last_user_id` (keyset on auth.users.id) and its counters are rebuilt from the
    audit events of `run_id`, so they never count a batch twice or miss one.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        CANCELLED = "cancelled", "Cancelled"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    UNFINISHED = (State.QUEUED, State.RUNNING, State.CANCELLING)

    id = models.BigAutoField(primary_key=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_username = models.CharField(max_length=150)
    tables = ArrayField(models.CharField(max_length=63), default=list, blank=True)
    batch_size = models.PositiveIntegerField()
    total_users = models.PositiveIntegerField(null=True, blank=True)
    total_batches = models.PositiveIntegerField(null=True, blank=True)
    batches_done = models.PositiveIntegerField(default=0)
    users_done = models.PositiveIntegerField(default=0)
    rows_created = models.JSONField(default=dict, blank=True)
    not_provisioned_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    run_id = models.UUIDField(unique=True)
    last_user_id = models.UUIDField(null=True, blank=True)
    #: How many times a worker picked the job up (more than 1: it was resumed).
    attempts = models.PositiveIntegerField(default=0)
    #: Start of the current attempt and users done before it: the rate shown is this
    #: attempt's, not diluted by the time the job waited for a worker.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    attempt_users_start = models.PositiveIntegerField(default=0)
    #: The queued task (django-tasks result id) that will run or is running the job.
    task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"Job {self.pk}: provision all missing ({self.state_label})"

    @property
    def finished(self) -> bool:
        return self.state not in self.UNFINISHED

    @property
    def total_created(self) -> int:
        return sum((self.rows_created or {}).values())

    @property
    def outcome(self) -> str | None:
        """A finished run's outcome in the audit log's words (`AuditEvent.Outcome`): a job
        that ended with users it could not provision partly succeeded, as its batches' audit
        events say. None while it runs, and for a cancelled job (its state says it)."""
        if self.state == self.State.SUCCEEDED:
            return AuditEvent.Outcome.PARTIAL if self.not_provisioned_count else AuditEvent.Outcome.SUCCEEDED
        if self.state == self.State.FAILED:
            return AuditEvent.Outcome.FAILED
        return None

    @property
    def state_label(self) -> str:
        """What every page and the JSON status call the job: its outcome's label once it
        ended ("Partly succeeded"), else its state ("Running", "Cancelled")."""
        outcome = self.outcome
        return AuditEvent.Outcome(outcome).label if outcome else self.get_state_display()


class WatchdogState(models.Model):
    """The watchdog's last run, one row, for the home and health pages and /metrics (the
    incident itself lives in the audit log)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_run_at = models.DateTimeField(null=True, blank=True)
    late = models.PositiveIntegerField(default=0)
    grace_seconds = models.PositiveIntegerField(default=60)
    #: How far back the last run looked (its --window): older sign-ups are not its concern.
    window_seconds = models.PositiveIntegerField(default=86_400)

    class Meta:
        verbose_name = "watchdog state"
        default_permissions = ()

    def __str__(self) -> str:
        return f"watchdog: {self.late} late at {self.last_run_at}"


class DriftScan(models.Model):
    """The last comparison of every live user's copied values with auth (one row): when it
    ran, over which columns, and how many users differed. Those users are the DriftedUser
    rows; the list's "Values differ from auth" filter reads them and checks each user it
    shows again, live (docs/drift.md)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    scanned_at = models.DateTimeField()
    columns = models.JSONField(default=list)  # ["public.users.email"]: what was compared
    users = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "drift scan"
        default_permissions = ()

    def __str__(self) -> str:
        return f"drift scan: {self.users} user(s) at {self.scanned_at}"


class DriftedUser(models.Model):
    """An auth user whose copied values differed from auth at the last DriftScan."""

    user_id = models.UUIDField(primary_key=True)

    class Meta:
        verbose_name = "drifted user"
        default_permissions = ()

    def __str__(self) -> str:
        return str(self.user_id)


class WebhookRefusals(models.Model):
    """Refused sign-up webhook deliveries, counted per source address and minute by every
    server process (one upsert per refusal: hooks/deliveries.py). The audit log gets one
    "denied" event per row, at its first refusal; the total is this row's."""

    source = models.CharField(max_length=45, blank=True)  # "" when the address is unknown
    minute = models.DateTimeField()
    refusals = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "webhook refusals"
        verbose_name_plural = "webhook refusals"
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["source", "minute"], name="webhook_refusals_source_minute")]

    def __str__(self) -> str:
        return f"{self.refusals} refusal(s) from {self.source or 'an unknown address'} at {self.minute}"


class WebhookDelivery(models.Model):
    """A Standard Webhooks message id the endpoint accepted, kept while its signature could
    still be replayed (hooks/deliveries.py): a second delivery of it provisions nothing."""

    message_id = models.CharField(max_length=255, primary_key=True)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        default_permissions = ()

    def __str__(self) -> str:
        return self.message_id


class LedgerEntry(models.Model):
    """A live auth user who lacks a row in at least one spec table, as of the last ledger
    rebuild or catch-up (LedgerState): which tables, and, for each it cannot get, why.
    Users who lack nothing have no entry, so the ledger stays the size of the problem.
    Kept by provisioning/engine/ledger.py (docs/performance.md, "The provisioning ledger")."""

    user_id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(null=True)
    tables = ArrayField(models.CharField(max_length=63), default=list)  # tables lacking a row
    reasons = models.JSONField(default=dict)  # {table: reason}: rows provisioning cannot write

    class Meta:
        # "Cannot be provisioned" reads only the entries with a reason: few of them.
        indexes = [models.Index(fields=["user_id"], name="ledger_blocked_idx", condition=~models.Q(reasons={}))]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.user_id}: {', '.join(self.tables)}"


class LedgerState(models.Model):
    """The ledger's one-row state: when it was rebuilt and last caught up, the newest
    sign-up it has seen (the watermark), and the fingerprint of the SQL that built it (the
    spec and the live schema): when that changes, the ledger is rebuilt."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    fingerprint = models.CharField(max_length=64)
    rebuilt_at = models.DateTimeField()
    caught_up_at = models.DateTimeField()
    watermark_created_at = models.DateTimeField(null=True)
    watermark_id = models.UUIDField(null=True)
    #: Live, non-anonymous sign-ups, counted at the last rebuild or catch-up.
    live_users = models.PositiveIntegerField(default=0)
    #: pg_stat_user_tables' deleted and updated row counters per spec table at the last
    #: check: when they grow, someone deleted or re-keyed app rows, and the ledger is rebuilt.
    table_changes = models.JSONField(default=dict)

    class Meta:
        verbose_name = "ledger state"
        default_permissions = ()

    def __str__(self) -> str:
        return f"ledger as of {self.caught_up_at}"


class AuthEventIndex(models.Model):
    """Who each entry of auth.audit_log_entries is about: one row per (entry, user), so a
    user's timeline is read from this index (a range of its key) and only the page's
    entries are then fetched from `auth` by id. Supabase Auth's table has no index on the
    user, and projects may not add one. Kept by provisioning/account/event_index.py
    (docs/account.md, "The index of auth events")."""

    pk = models.CompositePrimaryKey("user_id", "created_at", "entry_id")
    user_id = models.UUIDField()
    #: The entry's created_at; '-infinity' when it has none (Auth always sets it).
    created_at = models.DateTimeField()
    entry_id = models.UUIDField()
    #: payload.action when it is a plain name, else null (shown as stored).
    action = models.CharField(max_length=64, null=True)
    #: True: the user is the actor; False: the entry names the user in its traits (an
    #: admin-API action, staff); null: the payload is not a JSON object.
    by_user = models.BooleanField(null=True)

    class Meta:
        verbose_name = "auth event index entry"
        verbose_name_plural = "auth event index entries"
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.entry_id} about {self.user_id}"


class AuthEventIndexState(models.Model):
    """The index's one-row state: when it was built and last caught up, and its cursor, the
    newest entry read in (created_at, id) order. No row: never built (pages read the log
    directly)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    built_at = models.DateTimeField()
    #: The database time of the last catch-up (or build): entries committed before it are in.
    caught_up_at = models.DateTimeField()
    watermark_created_at = models.DateTimeField(null=True)
    watermark_id = models.UUIDField(null=True)
    #: Index rows written by the last build and every catch-up since.
    rows = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "auth event index state"
        default_permissions = ()

    def __str__(self) -> str:
        return f"auth event index as of {self.caught_up_at}"


class ApprovalRequest(models.Model):
    """An action that waits for a second staff member's approval (provisioning/approvals/).

    `kind` names a registered action (`approvals.registry`), `params` what it runs with,
    `snapshot` what the data looked like when it was asked (to tell "changed since"). The
    state moves once from waiting, in SQL under a row lock: approved (running) then ran or
    failed, or refused, or expired. Every step is also an AuditEvent.
    """

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for approval"
        APPROVED = "approved", "Approved, running"
        RAN = "ran", "Approved and ran"
        REFUSED = "refused", "Refused"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Approved, failed"

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=60, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    target_user_id = models.UUIDField(null=True, blank=True, db_index=True)
    summary = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_username = models.CharField(max_length=150)
    reason = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_username = models.CharField(max_length=150, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    ran_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    snapshot = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="approval_request_reason_required"),
        ]

    def __str__(self) -> str:
        return f"Request {self.pk}: {self.summary} ({self.get_state_display()})"

    @property
    def waiting(self) -> bool:
        return self.state == self.State.WAITING
