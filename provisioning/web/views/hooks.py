"""Machine endpoints. `POST /hooks/signup/`: a machine endpoint for Supabase Database Webhooks (and Standard
Webhooks senders). No session, no CSRF token: the secret authenticates. Every answer is
JSON; anything but a good delivery changes nothing (provisioning/hooks/signup.py).
`GET /metrics`: Prometheus text for the team's monitoring (provisioning/hooks/metrics.py)."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from provisioning.actors import client_address
from provisioning.hooks import bearer_matches, deliveries, signup


def _answer(status: int, body: dict) -> JsonResponse:
    return JsonResponse(body, status=status)


@csrf_exempt
@never_cache
def signup_hook(request):
    if not signup.enabled():
        return _answer(404, {"error": "not found"})
    if request.method != "POST":
        return _answer(405, {"error": "only POST"})
    try:
        # The declared length first, so an oversized body is never read; a chunked body
        # is read up to the limit.
        body = signup.read_body(request)
    except signup.Refused as refused:
        return _answer(refused.status, {"error": refused.message})
    if body is None:
        return _answer(400, {"error": f"the body is over {signup.MAX_BODY_BYTES // 1024} KB"})
    address = client_address(request)
    try:
        method = signup.authenticate(request.headers, body)
        user_id = signup.parse(body)
    except signup.Refused as refused:
        if refused.status == 401:
            signup.record_refusal(address=address, reason=refused.message)
        return _answer(refused.status, {"error": refused.message})
    message_id = request.headers.get("webhook-id", "") if method == "standard" else ""
    if message_id and not deliveries.remember_delivery(message_id):
        # Same id, timestamp and signature within the tolerance: already handled.
        return _answer(200, {"status": "already delivered", "webhook_id": message_id, "user_id": str(user_id)})
    status, answer = signup.provision_or_fail(user_id, address=address)
    if message_id and status != 200:
        deliveries.forget_delivery(message_id)  # the sender's retry is handled again
    return _answer(status, json.loads(json.dumps(answer, default=str)))


urlpatterns = [path("hooks/signup/", signup_hook, name="signup_hook")]


@never_cache
def metrics_view(request):
    """`GET /metrics`: bearer METRICS_TOKEN or an address in METRICS_ALLOWED_IPS; off (404)
    without either."""
    from django.http import HttpResponse

    from provisioning.hooks import metrics

    if not metrics.enabled():
        return HttpResponse("not found\n", status=404, content_type="text/plain")
    if not (
        bearer_matches(request.headers, settings.METRICS_TOKEN)
        or client_address(request) in settings.METRICS_ALLOWED_IPS
    ):
        return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(metrics.exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")


urlpatterns.append(path("metrics", metrics_view, name="metrics"))
