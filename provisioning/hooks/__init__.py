"""Sign-up time: the webhook that provisions each new sign-up (and, to come, the watchdog
and the metrics). The HTTP endpoint is web/views/hooks.py."""

import hmac


def bearer_matches(headers, secret: str) -> bool:
    """`Authorization: Bearer <secret>`, compared in constant time; False without a secret."""
    given = str(headers.get("Authorization", ""))
    return bool(secret) and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), secret.encode())
