"""The team shell: live events (server-sent), team switching, and the health check."""

from __future__ import annotations

import time
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection, connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import streams
from .forms import TeamSettingsForm
from .http import require_membership
from .ids import parse_id, safe_next
from .models import Membership
from .ratelimit import SIGN_IN_PAUSED, LimiterUnavailable, login_allowance
from .selectors import SESSION_TEAM_KEY, current_membership
from .tasks import HEARTBEAT_KEY


@require_GET
async def events(request: HttpRequest) -> HttpResponse:
    """Stream the team's live events as server-sent events (htmx's SSE extension listens).

    Under uvicorn, `studio.asgi` serves `/events/` with `studio.streams.asgi_events` before
    Django's middleware; this view is the same stream for any other server. Each message
    names a job (its card) or an output under review (see `review.live`), rendered from the
    database, so the stream never carries anything the user could not load as a page.
    """
    user_id, team_id = await sync_to_async(_who, thread_sensitive=False)(request)
    if team_id is None:
        return HttpResponse(status=403)
    response = StreamingHttpResponse(
        streams.stream(user_id, team_id, request.headers.get("Last-Event-ID", "")),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


def _who(request: HttpRequest) -> tuple[int, int | None]:
    try:
        membership = current_membership(request)
        return request.user.pk, membership.team_id if membership else None
    finally:
        connections.close_all()


@require_POST
def switch_team(request: HttpRequest) -> HttpResponse:
    team_id = parse_id(request.POST.get("team"))
    mine = Membership.objects.filter(user=request.user, team_id=team_id)
    if team_id is None or not mine.exists():
        raise Http404("No such team of yours.")
    request.session[SESSION_TEAM_KEY] = team_id
    return redirect(safe_next(request, "/"))


@sensitive_post_parameters("imagepipeline_api_key", "imaginepro_api_key")
@require_http_methods(["GET", "POST"])
def team_settings(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)  # type: ignore[arg-type]
    can_edit = membership.can_manage
    if request.method == "POST" and not can_edit:
        raise PermissionDenied("Only the team's owners change its settings.")
    form = TeamSettingsForm(request.POST or None, instance=membership.team)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Team settings saved.")
        return redirect("team_settings")
    members = membership.team.memberships.select_related("user").order_by("user__username")
    return render(
        request,
        "studio/team.html",
        {"form": form, "can_edit": can_edit, "members": members},
        status=422 if form.errors else 200,
    )


def _worker_health() -> str:
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except redis.RedisError:
        return "unknown: Redis is down"
    if beat is None:
        return "error: no heartbeat yet (are the worker and beat running?)"
    age = time.time() - float(beat)
    if age > settings.WORKER_HEARTBEAT_MAX_AGE:
        return f"error: last heartbeat {age:.0f} s ago"
    return "ok"


class RateLimitedLoginView(LoginView):
    """Django's login, refusing more than LOGIN_RATE attempts per address and per username."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            allowed, retry_in = login_allowance(request)
        except LimiterUnavailable as exc:
            form = self.get_form()
            form.add_error(None, SIGN_IN_PAUSED)
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 503
            response["Retry-After"] = str(exc.retry_in)
            return response
        if not allowed:
            form = self.get_form()
            form.add_error(None, f"Too many sign-in attempts. Try again in {retry_in} s.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(retry_in)
            return response
        return super().post(request, *args, **kwargs)


@login_not_required
@require_GET
def livez(request: HttpRequest) -> HttpResponse:
    """Liveness of this web process alone: it answers. A container orchestrator restarts the web
    process when this fails; a worker, Redis or database outage is /healthz's business (restarting
    the web process would not fix it)."""
    return HttpResponse("ok", content_type="text/plain")


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report whether the database and Redis answer; 503 if either does not."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    checks["worker"] = _worker_health()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
