"""The webhook receiver: verify the per-job token, record the call once, hand off, answer fast.

Providers do not sign webhooks (../shared/api/README.md), so the unguessable token in the path
is the only credential, and the body is never trusted: the worker confirms the outcome with
the provider's status route.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import redis
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError as BrokerUnavailable

from studio.ids import parse_int
from studio.jsonbody import loads_object
from studio.ratelimit import UNAVAILABLE_RETRY_SECONDS
from studio.streams import host_allowed, in_thread

from . import catalog, services

log = logging.getLogger(__name__)
request_log = logging.getLogger("django.request")

MAX_BODY_BYTES = 64 * 1024


PROVIDERS = frozenset(p.value for p in catalog.Provider)
PATH = re.compile(r"^/webhooks/(?P<provider>[-a-zA-Z0-9_]+)/(?P<token>[^/]+)/$")


def refusal(provider: str, declared: str) -> tuple[int, dict[str, Any]] | None:
    """The answer given before the body is read: an unknown provider, or a body declared
    over the cap."""
    if provider not in PROVIDERS:
        return 404, {"error": "unknown provider"}
    length = parse_int(declared or "0")
    if length is None or length > MAX_BODY_BYTES:
        return 413, {"error": "body too large"}
    return None


def answer(provider: str, token: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """Record one webhook call (a body already read, at most one byte past the cap)."""
    if len(raw) > MAX_BODY_BYTES:
        return 413, {"error": "body too large"}
    # Any parse failure (syntax, encoding, nesting) is the sender's error, answered before
    # the token is even looked at.
    body = loads_object(raw or b"{}")
    if body is None:
        return 400, {"error": "body is not a JSON object"}
    try:
        created = services.webhook_receive(provider=provider, token=token, body=body, raw=raw)
    except services.UnknownWebhook:
        log.info("webhook for an unknown %s job refused", provider)  # the token is not logged
        return 404, {"error": "unknown job"}
    return 200, {"ok": True, "duplicate": not created}


@csrf_exempt
@login_not_required
@require_POST
def receive(request: HttpRequest, provider: str, token: str) -> JsonResponse:
    """The webhook route as a Django view (WSGI, and the test client); under uvicorn,
    `asgi_receive` answers it first."""
    if refused := refusal(provider, request.META.get("CONTENT_LENGTH") or ""):
        return JsonResponse(refused[1], status=refused[0])
    # Read at most one byte past the cap: a chunked body declares no length at all.
    status, body = answer(provider, token, request.read(MAX_BODY_BYTES + 1))
    return JsonResponse(body, status=status)


async def asgi_receive(scope: dict[str, Any], receive: Any, send: Any, match: re.Match) -> None:
    """Serve a webhook call without Django's middleware chain (`studio.asgi`).

    Under ASGI, Django starts a thread for each request and hops between it and the event
    loop at each end of its synchronous middleware: several times the cost of recording the
    call itself, paid by every job of a batch. A webhook needs none of that chain: no
    session, no sign-in, no CSRF token (the unguessable token in the path is its only
    credential). The answers are the view's, from the same functions; the database work
    runs in one thread of the default pool.
    """
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    provider, token = match["provider"], match["token"]
    if scope["method"] != "POST":
        await _json(send, scope, 405, {"error": "method not allowed"}, [(b"allow", b"POST")])
        return
    if not host_allowed(headers.get("host", "")):
        await _json(send, scope, 400, {"error": "bad request"})
        return
    if refused := refusal(provider, headers.get("content-length", "")):
        await _json(send, scope, *refused)
        return
    raw = bytearray()
    while True:  # at most one byte past the cap: a chunked body declares no length at all
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        raw += message.get("body", b"")
        if len(raw) > MAX_BODY_BYTES or not message.get("more_body"):
            break
    try:
        status, body = await in_thread(answer, provider, token, bytes(raw))
    except (BrokerUnavailable, redis.RedisError):
        log.warning("webhook: 503, Redis unavailable")
        retry = [(b"retry-after", str(UNAVAILABLE_RETRY_SECONDS).encode())]
        await _json(send, scope, 503, {"error": "briefly unavailable"}, retry)
        return
    except Exception:
        log.exception("webhook for a %s job failed", provider)
        await _json(send, scope, 500, {"error": "server error"})
        return
    await _json(send, scope, status, body)


async def _json(
    send: Any,
    scope: dict[str, Any],
    status: int,
    body: dict[str, Any],
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    if status >= 400:
        # As Django logs a refused request ("Not Found: /webhooks/…"), the token redacted
        # like in every log record (`studio.logging`).
        level = logging.ERROR if status >= 500 else logging.WARNING
        request_log.log(level, "%s: %s", HTTPStatus(status).phrase, scope["path"])
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-content-type-options", b"nosniff"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
