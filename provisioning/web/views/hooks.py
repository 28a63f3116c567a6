"""`POST /hooks/signup/`: a machine endpoint for Supabase Database Webhooks (and Standard
Webhooks senders). No session, no CSRF token: the secret authenticates. Every answer is
JSON; anything but a good delivery changes nothing (provisioning/hooks/signup.py)."""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from provisioning.actors import client_address
from provisioning.hooks import signup


def _answer(status: int, body: dict) -> JsonResponse:
    return JsonResponse(body, status=status)


@csrf_exempt
@never_cache
def signup_hook(request):
    if not signup.enabled():
        return _answer(404, {"error": "not found"})
    if request.method != "POST":
        return _answer(405, {"error": "only POST"})
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > signup.MAX_BODY_BYTES:
        return _answer(400, {"error": f"the body is over {signup.MAX_BODY_BYTES // 1024} KB"})
    body = request.body
    if len(body) > signup.MAX_BODY_BYTES:
        return _answer(400, {"error": f"the body is over {signup.MAX_BODY_BYTES // 1024} KB"})
    address = client_address(request)
    try:
        signup.authenticate(request.headers, body)
    except signup.Refused as refused:
        signup.record_refusal(address=address, reason=refused.message)
        return _answer(refused.status, {"error": refused.message})
    try:
        user_id = signup.parse(body)
    except signup.Refused as refused:
        return _answer(refused.status, {"error": refused.message})
    status, answer = signup.provision(user_id, address=address)
    return _answer(status, json.loads(json.dumps(answer, default=str)))


urlpatterns = [path("hooks/signup/", signup_hook, name="signup_hook")]
