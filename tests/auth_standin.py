"""A stand-in for Supabase Auth (GoTrue), for tests only: a small threaded HTTP server that
answers the endpoints the account actions use, checks each request against the shape Auth
documents, and applies the documented effect to the test database's `auth` schema.

Shapes, restated from `supabase/auth` (not copied): `openapi.yaml` at commit
045e97255dbdca939f60b69ed11e25dc81d9fd5f (paths `/resend`, `/recover`,
`/admin/users/{userId}`, `/admin/users/{userId}/factors/{factorId}`) and, where openapi.yaml
gives no body (the admin PUT's `AdminUserParams`, the admin DELETE's
`adminUserDeleteParams`), `internal/api/admin.go` at commit
0444dd258077db175bf857322a7c65432ceb20ab.

| endpoint (under /auth/v1)   | key   | body: fields (* required)   | effect here   |
|-------|-------|-------|-------|
| PUT /admin/users/{uuid}   | service | aud role email phone password: str;   | banned_until, email_   |
|   |   | email_confirm phone_confirm: bool;   | confirmed_at (see below)   |
|   |   | user_metadata app_metadata: object;   |   |
|   |   | ban_duration: Go duration or "none"   |   |
| DELETE /admin/users/{uuid}   | service | should_soft_delete: bool (body optional)   | hard or soft delete   |
| DELETE /admin/users/{uuid}/factors/{uuid} | service | none   | the factor row goes   |
| POST /resend   | anon   | type* (signup, email_change, sms,   | confirmation_sent_at   |
|   |   | phone_change), email, phone: str;   |   |
|   |   | gotrue_meta_security: object   |   |
| POST /recover   | anon   | email*: str; gotrue_meta_security: object  | recovery_sent_at   |

Effects, as admin.go and models/user.go describe them: a ban sets banned_until = now() + the
duration ("none" clears it); email_confirm sets email_confirmed_at (kept if set); a hard
delete removes the auth.users row (identities, sessions, factors cascade); a soft delete sets
deleted_at, obfuscates email and phone, clears the password and tokens, empties the metadata
and identity_data, and deletes factors and sessions. 404 "User not found" / "Factor not found".

Anything else (a path, a method, a field, a type) is malformed: answered 400/404/405 AND
noted in `malformed`, which the fixture checks is empty at the end of each test.
It can be told to refuse (any status and body), to be slow (time out the client, applying
the effect or not), to answer 429, or to echo the request's headers in an error.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SERVICE_KEY = "service-role-key-" + "s3cr3t" * 8
ANON_KEY = "anon-key-" + "publ1c" * 8
UUID = r"[0-9a-fA-F-]{36}"

ADMIN_USER_FIELDS = {
    "aud": str,
    "role": str,
    "email": str,
    "phone": str,
    "password": str,
    "email_confirm": bool,
    "phone_confirm": bool,
    "user_metadata": dict,
    "app_metadata": dict,
    "ban_duration": str,
}
ROUTES = [
    # (method, pattern, key, allowed fields, required fields, handler name)
    ("PUT", rf"^/auth/v1/admin/users/({UUID})$", "service", ADMIN_USER_FIELDS, set(), "update_user"),
    ("DELETE", rf"^/auth/v1/admin/users/({UUID})$", "service", {"should_soft_delete": bool}, set(), "delete_user"),
    ("DELETE", rf"^/auth/v1/admin/users/({UUID})/factors/({UUID})$", "service", {}, set(), "delete_factor"),
    (
        "POST",
        r"^/auth/v1/resend$",
        "anon",
        {"type": str, "email": str, "phone": str, "gotrue_meta_security": dict},
        {"type"},
        "resend",
    ),
    ("POST", r"^/auth/v1/recover$", "anon", {"email": str, "gotrue_meta_security": dict}, {"email"}, "recover"),
]
RESEND_TYPES = {"signup", "email_change", "sms", "phone_change"}
_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?(?:h|m|s|ms))+$")


@dataclass
class Behaviour:
    """What the stand-in does with the next request(s)."""

    status: int | None = None  # refuse with this status and `body`
    body: dict | None = None
    delay: float = 0.0  # answer this late (past the client's timeout: a timeout)
    apply: bool = False  # with a delay: apply the effect before answering late
    echo_headers: bool = False  # refuse with the request's headers in the message


class AuthStandIn:
    def __init__(self):
        self.requests: list[dict] = []
        self.malformed: list[str] = []
        self.emails: list[tuple[str, str]] = []  # (kind, address)
        self.queue: list[Behaviour] = []
        self._stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- test controls ----------------------------------------------------------------------
    def refuse(self, status: int, message: str = "refused", code: str | None = None, times: int = 1):
        body = {"code": status, "msg": message, **({"error_code": code} if code else {})}
        self.queue.extend(Behaviour(status=status, body=body) for _ in range(times))

    def rate_limit(self):
        self.refuse(429, "email rate limit exceeded", code="over_email_send_rate_limit")

    def time_out(self, seconds: float = 3.0, *, apply: bool = False, times: int = 1):
        self.queue.extend(Behaviour(delay=seconds, apply=apply) for _ in range(times))

    def echo_headers(self):
        self.queue.append(Behaviour(echo_headers=True))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    # --- the server ---------------------------------------------------------------------------
    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_PUT(self):
                standin.handle(self, "PUT")

            def do_DELETE(self):
                standin.handle(self, "DELETE")

            def do_POST(self):
                standin.handle(self, "POST")

            def do_GET(self):
                standin.handle(self, "GET")

            def do_PATCH(self):
                standin.handle(self, "PATCH")

        return Handler

    def handle(self, request, method: str):
        from django.db import connections

        try:
            status, body = self._answer(request, method)
        except Exception as exc:  # the stand-in's own bug: a 500, and the test sees it
            self.malformed.append(f"stand-in error: {exc!r}")
            status, body = 500, {"msg": f"stand-in error: {exc}"}
        finally:
            connections.close_all()
        if status is None:
            return  # the client gave up; nothing to send
        data = json.dumps(body).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except OSError:
            pass

    def _answer(self, request, method: str):
        path = request.path.split("?", 1)[0]
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        headers = {k: v for k, v in request.headers.items()}
        self.requests.append({"method": method, "path": path, "body": raw.decode(errors="replace")})
        route = next((r for r in ROUTES if re.match(r[1], path)), None)
        if route is None:
            self.malformed.append(f"{method} {path}: no such endpoint")
            return 404, {"code": 404, "msg": "Not found"}
        same_path = [r for r in ROUTES if re.match(r[1], path)]
        route_for_method = next((r for r in same_path if r[0] == method), None)
        if route_for_method is None:
            self.malformed.append(f"{method} {path}: method not allowed")
            return 405, {"code": 405, "msg": "Method not allowed"}
        _, _, key, allowed, required, name = route_for_method
        match = re.match(route_for_method[1], path)
        problem = self._check_body(raw, allowed, required, body_allowed=bool(allowed))
        if problem:
            self.malformed.append(f"{method} {path}: {problem}")
            return 400, {"code": 400, "msg": problem}
        if not self._key_ok(headers, key):
            return 401, {"code": 401, "msg": "Invalid API key", "error_code": "no_authorization"}
        behaviour = self.queue.pop(0) if self.queue else Behaviour()
        if behaviour.echo_headers:
            return 401, {"code": 401, "msg": f"bad request headers: {json.dumps(headers)}"}
        if behaviour.status:
            return behaviour.status, behaviour.body
        body = json.loads(raw) if raw else {}
        if behaviour.delay:
            if behaviour.apply:
                getattr(self, name)(*match.groups(), body)
            self._stop.wait(behaviour.delay)
            return None, None
        return getattr(self, name)(*match.groups(), body)

    def _check_body(self, raw: bytes, allowed: dict, required: set, *, body_allowed: bool) -> str:
        if not raw:
            return f"missing field(s) {sorted(required)}" if required else ""
        if not body_allowed:
            return "this endpoint takes no body" if raw.strip() not in (b"", b"{}", b"null") else ""
        try:
            body = json.loads(raw)
        except ValueError:
            return "body is not JSON"
        if not isinstance(body, dict):
            return "body is not a JSON object"
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            return f"unknown field(s) {unknown}"
        missing = sorted(f for f in required if body.get(f) in (None, ""))
        if missing:
            return f"missing field(s) {missing}"
        for name, value in body.items():
            kind = allowed[name]
            # null is accepted where the client sends an optional field empty
            if value is not None and not (
                isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            ):
                return f"field {name} must be {kind.__name__}"
        if "ban_duration" in body and body["ban_duration"] != "none" and not _GO_DURATION.match(body["ban_duration"]):
            return f"invalid format for ban duration: {body['ban_duration']!r}"
        if "type" in body and body["type"] not in RESEND_TYPES:
            return f"type must be one of {sorted(RESEND_TYPES)}"
        return ""

    def _key_ok(self, headers: dict, key: str) -> bool:
        lower = {k.lower(): v for k, v in headers.items()}
        expected = SERVICE_KEY if key == "service" else ANON_KEY
        if key == "service":
            return lower.get("apikey") == expected and lower.get("authorization") == f"Bearer {expected}"
        return lower.get("apikey") in (ANON_KEY, SERVICE_KEY)

    # --- the effects, on the test database ----------------------------------------------------------
    def _sql(self, statement: str, params=()):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a lock held by the caller shows, not hangs
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else cursor.rowcount

    def _user_json(self, user_id: str):
        found = self._sql(
            "SELECT id, aud, email, phone, created_at, updated_at, email_confirmed_at, banned_until, deleted_at,"
            " confirmation_sent_at, recovery_sent_at FROM auth.users WHERE id = %s",
            [user_id],
        )
        if not found:
            return None
        (uid, aud, email, phone, created, updated, confirmed, banned, deleted, sent, recovery) = found[0]
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {
            "id": str(uid),
            "aud": aud or "authenticated",
            "role": "authenticated",
            "email": email or "",
            "phone": phone or "",
            "app_metadata": {},
            "user_metadata": {},
            "created_at": iso(created),
            "updated_at": iso(updated),
            "email_confirmed_at": iso(confirmed),
            "confirmation_sent_at": iso(sent),
            "recovery_sent_at": iso(recovery),
            "banned_until": iso(banned),
            "deleted_at": iso(deleted),
            "is_anonymous": False,
        }

    def update_user(self, user_id, body):
        if self._user_json(user_id) is None:
            return 404, {"code": 404, "msg": "User not found", "error_code": "user_not_found"}
        if "ban_duration" in body:
            if body["ban_duration"] == "none":
                self._sql("UPDATE auth.users SET banned_until = NULL WHERE id = %s", [user_id])
            else:
                seconds = _seconds(body["ban_duration"])
                self._sql(
                    "UPDATE auth.users SET banned_until = now() + make_interval(secs => %s) WHERE id = %s",
                    [seconds, user_id],
                )
        if body.get("email_confirm"):
            self._sql(
                "UPDATE auth.users SET email_confirmed_at = coalesce(email_confirmed_at, now()) WHERE id = %s",
                [user_id],
            )
        return 200, self._user_json(user_id)

    def delete_user(self, user_id, body):
        if self._user_json(user_id) is None:
            return 404, {"code": 404, "msg": "User not found", "error_code": "user_not_found"}
        if body.get("should_soft_delete"):
            self._sql(
                "UPDATE auth.users SET deleted_at = coalesce(deleted_at, now()),"
                " email = CASE WHEN email IS NULL THEN NULL ELSE md5(email) || '@deleted.invalid' END,"
                " phone = CASE WHEN phone IS NULL THEN NULL ELSE md5(phone) END, encrypted_password = '',"
                " confirmation_token = '', recovery_token = '', raw_user_meta_data = '{}', raw_app_meta_data = '{}'"
                " WHERE id = %s",
                [user_id],
            )
            self._sql("UPDATE auth.identities SET identity_data = '{}' WHERE user_id = %s", [user_id])
            self._sql("DELETE FROM auth.mfa_factors WHERE user_id = %s", [user_id])
            self._sql("DELETE FROM auth.sessions WHERE user_id = %s", [user_id])
        else:
            try:
                self._sql("DELETE FROM auth.users WHERE id = %s", [user_id])
            except Exception as exc:  # as GoTrue says it
                return 500, {"code": 500, "msg": "Database error deleting user", "detail": str(exc).splitlines()[0]}
        return 200, {}

    def delete_factor(self, user_id, factor_id, body):
        if self._user_json(user_id) is None:
            return 404, {"code": 404, "msg": "User not found", "error_code": "user_not_found"}
        found = self._sql(
            "SELECT id, factor_type::text, status::text, friendly_name, created_at, updated_at FROM auth.mfa_factors"
            " WHERE id = %s AND user_id = %s",
            [factor_id, user_id],
        )
        if not found:
            return 404, {"code": 404, "msg": "Factor not found", "error_code": "mfa_factor_not_found"}
        self._sql("DELETE FROM auth.mfa_factors WHERE id = %s", [factor_id])
        fid, kind, status, name, created, updated = found[0]
        return 200, {
            "id": str(fid),
            "factor_type": kind,
            "status": status,
            "friendly_name": name,
            "created_at": created.isoformat(),
            "updated_at": updated.isoformat(),
        }

    def resend(self, body):
        if body.get("email"):
            self._sql(
                "UPDATE auth.users SET confirmation_sent_at = now() WHERE lower(email) = lower(%s)", [body["email"]]
            )
            self.emails.append((body["type"], body["email"]))
        return 200, {}

    def recover(self, body):
        self._sql("UPDATE auth.users SET recovery_sent_at = now() WHERE lower(email) = lower(%s)", [body["email"]])
        self.emails.append(("recovery", body["email"]))
        return 200, {}


def _seconds(go_duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", go_duration))


@pytest.fixture
def auth_standin(transactional_db, settings):
    """The stand-in, running, with SUPABASE_* pointed at it (a short timeout). Committed
    data (the stand-in answers from its own connection): auth and app tables are emptied
    afterwards. Fails the test if the client sent a request Auth would not take."""
    from tests.factories import truncate_app_tables

    standin = AuthStandIn().start()
    settings.SUPABASE_URL = standin.url
    settings.SUPABASE_SERVICE_ROLE_KEY = SERVICE_KEY
    settings.SUPABASE_ANON_KEY = ANON_KEY
    settings.SUPABASE_TIMEOUT_SECONDS = 1
    try:
        yield standin
    finally:
        standin.stop()
        truncate_app_tables()
    assert standin.malformed == [], standin.malformed


def new_id() -> str:
    return str(uuid.uuid4())


def wait_until(predicate, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False
