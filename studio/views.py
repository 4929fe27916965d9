"""The team shell: live events (server-sent), team switching, and the health check."""

from __future__ import annotations

import time
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connection, connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import services, streams
from .forms import AuditFilterForm, InviteForm, JoinForm, RoleForm, TeamSettingsForm
from .http import StudioRequest, require_membership
from .ids import parse_id, safe_next
from .models import AuditEntry, Invite, Membership, Role
from .permissions import OWNERS, require_role
from .ratelimit import SIGN_IN_PAUSED, LimiterUnavailable, login_allowance
from .selectors import SESSION_TEAM_KEY, current_membership
from .tasks import HEARTBEAT_KEY


@require_GET
async def events(request: HttpRequest) -> HttpResponse:
    """Stream the team's live events as server-sent events (htmx's SSE extension listens).

    Under uvicorn, `studio.asgi` serves `/events/` with `studio.streams.asgi_events` before
    Django's middleware; this view is the same stream for any other server. Each message
    names a job (its card), an output under review (see `review.live`) or the team's budget,
    rendered from the database, so the stream never carries anything the user could not load
    as a page.
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
def team_settings(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    can_edit = membership.can_manage
    form = TeamSettingsForm(request.POST or None, team=membership.team)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only the team's owners change its settings.")
        if form.is_valid():
            try:
                form.save(actor=request.user)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Team settings saved.")
                return redirect("team_settings")
    return render(
        request,
        "studio/team.html",
        {"form": form, "can_edit": can_edit},
        status=422 if form.errors else 200,
    )


SESSION_NEW_INVITE = "studio_new_invite"


@require_http_methods(["GET", "POST"])
def team_members(request: StudioRequest) -> HttpResponse:
    """Members and their roles, and (for owners) invites: the link of a new one is shown once."""
    membership = require_membership(request)
    team = membership.team
    form = InviteForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            made = services.invite_create(
                team=team,
                actor=request.user,
                role=form.cleaned_data["role"],
                email=form.cleaned_data["email"],
            )
            # Shown on the next page only (then forgotten): the studio keeps only its hash.
            request.session[SESSION_NEW_INVITE] = {"id": made.invite.pk, "url": made.url}
            return redirect("team_members")
        # An owner-only action whose form has an error: say so instead of a 403 for others.
        require_role(request.user, team, OWNERS, "invite people")
    new_invite = request.session.pop(SESSION_NEW_INVITE, None)
    members = team.memberships.select_related("user").order_by("user__username")
    invites = (
        team.invites.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("created_by")
        .order_by("-created_at")
        if membership.can_manage
        else []
    )
    context = {
        "members": members,
        "invites": invites,
        "invite_form": form,
        "new_invite": new_invite,
        "roles": Role.choices,
        "can_manage": membership.can_manage,
        "now": timezone.now(),
    }
    return render(request, "studio/members.html", context, status=422 if form.errors else 200)


def _team_membership(request: StudioRequest, pk: int) -> Membership:
    membership = require_membership(request)
    target = Membership.objects.filter(pk=pk, team_id=membership.team_id).first()
    if target is None:
        raise Http404
    return target


@require_POST
def member_role(request: StudioRequest, pk: int) -> HttpResponse:
    target = _team_membership(request, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("team_members")
    try:
        changed = services.member_set_role(
            membership=target, actor=request.user, role=form.cleaned_data["role"]
        )
    except services.TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{changed.user.get_username()} is now {changed.get_role_display().lower()}.",
        )
    return redirect("team_members")


@require_POST
def member_remove(request: StudioRequest, pk: int) -> HttpResponse:
    target = _team_membership(request, pk)
    name = target.user.get_username()
    try:
        services.member_remove(membership=target, actor=request.user)
    except services.TeamError as exc:
        messages.error(request, str(exc))
        return redirect("team_members")
    messages.success(request, f"{name} is no longer in the team.")
    if target.user_id == request.user.pk:
        return redirect("jobs:gallery")
    return redirect("team_members")


@require_POST
def invite_revoke(request: StudioRequest, pk: int) -> HttpResponse:
    membership = require_membership(request)
    invite = Invite.objects.filter(pk=pk, team_id=membership.team_id).first()
    if invite is None:
        raise Http404
    try:
        services.invite_revoke(invite=invite, actor=request.user)
    except services.TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Invite revoked: its link no longer works.")
    return redirect("team_members")


@login_not_required
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Join a team through an invite link: signed in, with one click; otherwise by making an
    account (name and password) here, or by signing in first and coming back."""
    invite = services.invite_for_token(token)
    if invite is None or invite.state != "open":
        reason = {
            None: "This invite link is not valid.",
            "accepted": "This invite link has already been used.",
            "revoked": "This invite was withdrawn.",
            "expired": "This invite link has expired.",
        }[invite.state if invite else None]
        return render(
            request,
            "studio/invite.html",
            {"refused": f"{reason} Ask the team's owner for a new one."},
            status=404 if invite is None else 410,
        )
    form = JoinForm(request.POST or None) if not request.user.is_authenticated else None
    if request.method == "POST":
        try:
            if form is None:
                joined = services.invite_accept(token=token, user=request.user)
            elif form.is_valid():
                joined = services.invite_accept_new_account(
                    token=token,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                )
                login(request, joined.user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                joined = None
        except ValidationError as exc:
            if form is None:
                raise
            _add_errors(form, exc)
            joined = None
        except services.TeamError as exc:
            return render(request, "studio/invite.html", {"refused": str(exc)}, status=410)
        if joined is not None:
            request.session[SESSION_TEAM_KEY] = joined.team_id
            messages.success(
                request,
                f"Welcome to {joined.team.name}: you are {joined.get_role_display().lower()}.",
            )
            return redirect("jobs:gallery")
    return render(
        request,
        "studio/invite.html",
        {"invite": invite, "form": form, "token": token},
        status=422 if form is not None and form.errors else 200,
    )


def _add_errors(form: JoinForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:  # password validators raise a plain list
        form.add_error("password1", exc)


AUDIT_PAGE = 100


@require_GET
def audit_log(request: StudioRequest) -> HttpResponse:
    """The team's audit log, newest first, filtered by who, what, when and address."""
    membership = require_membership(request)
    if not membership.can_manage:
        raise PermissionDenied("Only the team's owners read its audit log.")
    form = AuditFilterForm(request.GET or None)
    entries = AuditEntry.objects.filter(team_id=membership.team_id).select_related("actor")
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["actor"]:
            entries = entries.filter(actor__username__icontains=data["actor"])
        if data["action"]:
            entries = entries.filter(action=data["action"])
        if data["since"]:
            entries = entries.filter(created_at__date__gte=data["since"])
        if data["until"]:
            entries = entries.filter(created_at__date__lte=data["until"])
        if data["address"]:
            entries = entries.filter(address__startswith=data["address"])
    page = Paginator(entries, AUDIT_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "studio/audit.html",
        {"form": form, "page": page, "query": query.urlencode()},
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
