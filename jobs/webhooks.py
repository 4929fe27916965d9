"""The webhook receiver: verify the per-job token, record the call once, hand off, answer fast.

Providers do not sign webhooks (../shared/api/README.md), so the unguessable token in the path
is the only credential, and the body is never trusted: the worker confirms the outcome with
the provider's status route.
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from studio.ids import parse_int
from studio.jsonbody import loads_object

from . import catalog, services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@csrf_exempt
@login_not_required
@require_POST
def receive(request: HttpRequest, provider: str, token: str) -> JsonResponse:
    if provider not in {p.value for p in catalog.Provider}:
        return JsonResponse({"error": "unknown provider"}, status=404)
    declared = parse_int(request.META.get("CONTENT_LENGTH") or "0")
    if declared is None or declared > MAX_BODY_BYTES:
        return JsonResponse({"error": "body too large"}, status=413)
    # Read at most one byte past the cap: a chunked body declares no length at all.
    raw = request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        return JsonResponse({"error": "body too large"}, status=413)
    # Any parse failure (syntax, encoding, nesting) is the sender's error, answered before
    # the token is even looked at.
    body = loads_object(raw or b"{}")
    if body is None:
        return JsonResponse({"error": "body is not a JSON object"}, status=400)
    try:
        created = services.webhook_receive(provider=provider, token=token, body=body, raw=raw)
    except services.UnknownWebhook:
        log.info("webhook for an unknown %s job refused", provider)  # the token is not logged
        return JsonResponse({"error": "unknown job"}, status=404)
    return JsonResponse({"ok": True, "duplicate": not created})
