"""`manage.py account ...`: every action from the command line against the Auth stand-in,
one line out, exit codes as for `provision` (0 done, 1 Auth refused or failed, 2 bad input,
missing settings)."""

from __future__ import annotations

from provisioning.models import AuditEvent
from tests.account_rows import add_factor, add_session
from tests.auth_standin import ANON_KEY, SERVICE_KEY, auth_standin  # noqa: F401
from tests.factories import count, make_auth_user, run_command
from tests.test_account_actions import auth_row, factors, sessions

Action = AuditEvent.Action


def test_every_action_from_the_command_line(auth_standin, settings):  # noqa: F811
    settings.APPROVALS = False  # the action itself; with approvals on it is a request (test_approvals_account.py)
    user = make_auth_user("cli@example.com")
    add_session(user)
    factor = add_factor(user)
    add_factor(user, name="second")

    steps = [
        ("resend", []),
        ("reset-password", []),
        ("confirm", []),
        ("ban", ["--duration", "24h"]),
        ("unban", []),
        ("signout", []),
        ("remove-mfa", ["--factor", str(factor)]),
        ("remove-mfa", ["--all"]),
    ]
    for action, extra in steps:
        code, out = run_command("account", action, "--user", "CLI@example.com", "--reason", f"ticket {action}", *extra)
        assert code == 0, (action, out)
        assert "audit event" in out and "\n" not in out.strip()

    row = auth_row(user)
    assert row["email_confirmed_at"] and row["banned_until"] is None
    assert sessions(user) == 0 and factors(user) == 0
    assert auth_standin.emails == [("signup", "cli@example.com"), ("recovery", "cli@example.com")]
    events = AuditEvent.objects.filter(target_user_ids__contains=[user]).order_by("id")
    assert [e.action for e in events] == [
        Action.ACCOUNT_RESEND,
        Action.ACCOUNT_RESET_PASSWORD,
        Action.ACCOUNT_CONFIRM,
        Action.ACCOUNT_BAN,
        Action.ACCOUNT_UNBAN,
        Action.ACCOUNT_SIGNOUT,
        Action.ACCOUNT_REMOVE_MFA,
        Action.ACCOUNT_REMOVE_MFA,
    ]
    assert all(e.channel == "cli" and e.detail["reason"].startswith("ticket") for e in events)

    code, out = run_command("account", "delete", "--user", str(user), "--reason", "erasure", "--soft")
    assert code == 0 and "soft-deleted" in out
    assert auth_row(user)["deleted_at"] is not None and count("users", [user]) == 0


def test_bad_input_exits_2_and_sends_nothing(auth_standin):  # noqa: F811
    user = make_auth_user()
    for args in (
        ["ban", "--user", str(user), "--reason", "r"],  # no duration
        ["ban", "--user", str(user), "--reason", "r", "--duration", "soon"],
        ["remove-mfa", "--user", str(user), "--reason", "r"],
        ["confirm", "--user", "nobody@example.com", "--reason", "r"],
        ["confirm", "--user", str(user), "--reason", "   "],
    ):
        code, out = run_command("account", *args)
        assert code == 2, (args, out)
    assert auth_standin.requests == []


def test_auth_refusing_exits_1_with_one_line(auth_standin):  # noqa: F811
    user = make_auth_user()
    auth_standin.rate_limit()
    code, out = run_command("account", "resend", "--user", str(user), "--reason", "r")
    assert code == 1 and "rate limit" in out and "\n" not in out


def test_missing_settings_exit_2_naming_them(auth_standin, settings):  # noqa: F811
    settings.SUPABASE_URL = ""
    user = make_auth_user()
    code, out = run_command("account", "confirm", "--user", str(user), "--reason", "r")
    assert code == 2 and "SUPABASE_URL" in out


def test_a_key_echoed_by_auth_never_reaches_the_output(auth_standin):  # noqa: F811
    user = make_auth_user()
    auth_standin.echo_headers()
    code, out = run_command("account", "unban", "--user", str(user), "--reason", "r")
    assert code == 1 and "SUPABASE_SERVICE_ROLE_KEY" in out
    assert SERVICE_KEY not in out and ANON_KEY not in out


def test_delete_refused_keeps_the_rows_and_exits_1(auth_standin, settings):  # noqa: F811
    settings.APPROVALS = False  # the action itself; with approvals on it is a request (test_approvals_account.py)
    user = make_auth_user()
    auth_standin.refuse(500, "Database error deleting user")
    code, out = run_command("account", "delete", "--user", str(user), "--reason", "erasure")
    assert code == 1 and "put back" in out
    assert count("users", [user]) == 1 and count("profiles", [user]) == 1 and count("wallets", [user]) == 1
