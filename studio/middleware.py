"""Attach the signed-in user's current team membership to each request, lazily."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.utils.functional import SimpleLazyObject
from kombu.exceptions import OperationalError as BrokerUnavailable

from .ratelimit import UNAVAILABLE_RETRY_SECONDS
from .selectors import current_membership

log = logging.getLogger(__name__)


class NullCharacterMiddleware:
    """Answer 400 to a query string holding a NUL character. No page takes one, and PostgreSQL
    refuses it in any text it is given (a 500 from whatever view passed a raw `request.GET`
    value to a query); forms already refuse it in bodies (Django's
    ProhibitNullCharactersValidator)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or any("\x00" in v for v in values)
               for key, values in request.GET.lists()):  # fmt: skip
            return HttpResponseBadRequest("Query strings cannot hold NUL characters.")
        return self.get_response(request)


class ServiceUnavailableMiddleware:
    """Answer 503 ("back in a moment", with Retry-After) instead of a 500 when a request needs
    Redis (cache, broker, locks) and Redis is down. Pages that need only the database keep
    working; what cannot work says so plainly, and nothing is half-saved (the database is the
    truth; the sweep re-sends queued jobs once Redis is back)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, redis.RedisError | BrokerUnavailable):
            return None
        log.warning(
            "%s %s: 503, Redis unavailable (%s)",
            request.method,
            request.path,
            exception.__class__.__name__,
        )
        if "text/html" in request.headers.get("Accept", ""):
            body = render_to_string("503.html", request=request)
            response = HttpResponse(body, status=503)
        else:
            response = HttpResponse(
                "The studio is briefly unavailable (Redis is down); try again in a moment.\n",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
        return response


class SecurityHeadersMiddleware:
    """Set the Content-Security-Policy (and a Permissions-Policy) on every response that has
    none of its own (files served to providers set a stricter one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        return response


class TeamMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = SimpleLazyObject(lambda: current_membership(request))  # type: ignore[attr-defined]
        return self.get_response(request)
