"""Profile pages: the library, a profile, the create/edit form with its live prompt preview,
and the duplicate, archive and re-sync actions. Thin: reads go through the selectors, every
change through the services."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio.http import StudioRequest, require_membership
from studio.ids import parse_id

from . import selectors, services
from .forms import SAMPLE_PROMPT, PreviewForm, ProfileForm
from .merge import MODES, merge_prompt
from .models import Profile

READ_ONLY = "Only owners and editors can change profiles."


@dataclass(frozen=True)
class MergedPrompt:
    mode: str
    text: str
    selected: bool


def merged_prompts(template: str, mode: str, prompt: str) -> list[MergedPrompt]:
    """Return what a job's prompt becomes under each mode, marking the profile's own."""
    prompt = prompt or SAMPLE_PROMPT
    return [MergedPrompt(m, merge_prompt(template, m, prompt), m == mode) for m in MODES]


def _visible(request: StudioRequest, pk: int) -> Profile:
    profile = selectors.profile_for_user(request.user, pk)
    if profile is None:
        raise Http404
    return profile


def _editable(request: StudioRequest, pk: int) -> Profile:
    profile = _visible(request, pk)
    if not selectors.user_can_edit(request.user, profile):
        raise PermissionDenied(READ_ONLY)
    return profile


@require_GET
def profile_list(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    query = request.GET.get("q", "")[:200]
    tag = request.GET.get("tag", "")[:60]
    archived = request.GET.get("archived") == "1"
    profiles = selectors.profiles_for_team(
        membership.team, query=query, tag=tag, archived=archived
    )[: selectors.LIST_LIMIT]
    context = {
        "profiles": profiles,
        "query": query,
        "tag": tag,
        "archived": archived,
        "tags": selectors.team_tags(membership.team),
    }
    if request.htmx and request.htmx.target == "profile-results":
        return render(request, "profiles/list.html#results", context)
    return render(request, "profiles/list.html", context)


@require_GET
def profile_detail(request: StudioRequest, pk: int) -> HttpResponse:
    profile = _visible(request, pk)
    context = {
        "profile": profile,
        "can_edit": selectors.user_can_edit(request.user, profile),
    }
    if request.htmx and request.GET.get("part") == "sync":
        return render(request, "profiles/detail.html#sync", context)
    context.update(
        history=selectors.profile_history(profile),
        outputs=selectors.profile_outputs(profile),
        events=selectors.profile_events(profile),
        merged=merged_prompts(profile.prompt_template, profile.prompt_template_mode, ""),
    )
    return render(request, "profiles/detail.html", context)


def _form_page(request: StudioRequest, form: ProfileForm, profile: Profile | None) -> HttpResponse:
    data = form.data if form.is_bound else {}
    template = data.get("prompt_template", profile.prompt_template if profile else "")
    mode = data.get("prompt_template_mode", profile.prompt_template_mode if profile else "suffix")
    context = {
        "form": form,
        "profile": profile,
        "merged": merged_prompts(template, mode, data.get("sample_prompt", "")),
    }
    return render(request, "profiles/form.html", context, status=422 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def profile_new(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    if not membership.can_submit:
        raise PermissionDenied(READ_ONLY)
    form = ProfileForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            profile = services.profile_create(
                team=membership.team, user=request.user, fields=form.profile_fields()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Profile “{profile.name}” created; syncing it.")
            return redirect(profile)
    return _form_page(request, form, None)


@require_http_methods(["GET", "POST"])
def profile_edit(request: StudioRequest, pk: int) -> HttpResponse:
    profile = _editable(request, pk)
    if profile.is_archived:
        messages.error(request, "An archived profile cannot be edited; duplicate it instead.")
        return redirect(profile)
    # The form writes what was typed onto its instance while validating; a copy keeps the
    # page's breadcrumbs on the saved name when it is refused.
    form = ProfileForm(request.POST or None, instance=copy.copy(profile))
    if request.method == "POST" and form.is_valid():
        try:
            updated = services.profile_update(
                profile=profile, user=request.user, fields=form.profile_fields()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except services.ProfileStateError as exc:
            messages.error(request, str(exc))
            return redirect(profile)
        else:
            messages.success(request, f"Saved as version {updated.version}.")
            return redirect(updated)
    return _form_page(request, form, profile)


@require_POST
def profile_preview(request: StudioRequest) -> HttpResponse:
    """Return the merged prompt in each mode for what is typed in the form (htmx partial)."""
    require_membership(request)
    form = PreviewForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    merged = merged_prompts(
        data.get("prompt_template", ""),
        data.get("prompt_template_mode") or "suffix",
        data.get("sample_prompt", ""),
    )
    return render(request, "profiles/form.html#preview", {"merged": merged})


@require_POST
def job_prompt_preview(request: StudioRequest) -> HttpResponse:
    """Return, for a job form, the prompt the provider will run once the chosen profile's
    template is merged in (htmx partial). Reads only what the user may see."""
    require_membership(request)
    profile_id = parse_id(request.POST.get("profile_id"))
    profile = selectors.profile_for_user(request.user, profile_id) if profile_id else None
    context: dict[str, Any] = {"profile": None}
    if profile is not None and profile.archived_at is None:
        prompt = str(request.POST.get("prompt", ""))[:4000]
        context = {
            "profile": profile,
            "prompt": prompt,
            "merged": merge_prompt(profile.prompt_template, profile.prompt_template_mode, prompt),
        }
    return render(request, "profiles/_job_preview.html", context)


@require_POST
def profile_duplicate(request: StudioRequest, pk: int) -> HttpResponse:
    profile = _editable(request, pk)
    duplicate = services.profile_duplicate(profile=profile, user=request.user)
    messages.success(request, f"Duplicated as “{duplicate.name}”.")
    return redirect(duplicate)


@require_POST
def profile_archive(request: StudioRequest, pk: int) -> HttpResponse:
    profile = _editable(request, pk)
    services.profile_archive(profile=profile, user=request.user)
    messages.success(request, f"“{profile.name}” archived; removing it at the provider.")
    return redirect(profile)


@require_POST
def profile_resync(request: StudioRequest, pk: int) -> HttpResponse:
    profile = _editable(request, pk)
    services.profile_resync(profile=profile, user=request.user)
    messages.success(request, "Re-sync queued.")
    return redirect(profile)
