"""Job pages: the new-job forms, the job page, and the files of outputs. (The gallery is
`review.views.gallery`: its filters, search and bulk actions belong to the review app.)"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from consent.services import ConsentUnconfirmed
from review import selectors as review_selectors
from studio import files
from studio.http import StudioRequest, require_membership
from studio.ids import parse_id
from usage import services as usage_services

from . import assets, catalog, selectors, services
from .forms import ASSET_SUFFIX, form_class
from .models import Asset, Job


@require_GET
def job_card(request: StudioRequest, pk: int) -> HttpResponse:
    # The card shows review state and the user's star: the review app reads it as a card.
    job = review_selectors.gallery_card(request.user, pk)
    if job is None:
        raise Http404
    return TemplateResponse(request, "jobs/gallery.html#card", {"job": job})


@require_http_methods(["GET", "POST"])
def job_new(request: StudioRequest, key: str) -> HttpResponse:
    """The form of one endpoint; `?from=<job id>` prefills it from an earlier job."""
    membership = require_membership(request)
    endpoint = catalog.find(key)
    if endpoint is None:
        raise Http404
    if not membership.can_submit:
        raise PermissionDenied("Only owners and editors can start jobs.")
    parent = _parent_job(request, endpoint)
    cls = form_class(endpoint)
    team = membership.team
    initial = cls.initial_from_params(parent.params) if parent else brand_initial(team, endpoint)
    if parent is not None and request.GET.get("seed") == "same" and parent.seed is not None:
        initial["seed"] = parent.seed
    source = _source_asset(request, endpoint, initial)
    hosts = (request.get_host(), urlsplit(settings.PUBLIC_BASE_URL).netloc)
    if request.method == "POST":
        form = cls(request.POST, request.FILES, team=team, studio_hosts=hosts)
    else:
        form = cls(initial=initial, team=team, studio_hosts=hosts)
    limited = False
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_create(
                team=team,
                user=request.user,
                endpoint=endpoint,
                params=form.wire_values(),
                parent=parent,
                consent_confirmed=request.POST.get("consent_confirm") == "1",
            )
        except services.JobStateError as exc:
            # Over the budget or the rate limit, the profile was edited or archived between
            # the form check and the save, or the team's consent policy refused it
            # (confirmable under "warn"): the form comes back intact.
            form.consent_missing = getattr(exc, "missing", [])
            form.consent_confirmable = getattr(exc, "confirmable", False)
            limited = isinstance(exc, services.RateLimited)
            form.add_error(None, str(exc))
        except ValidationError as exc:  # an input the provider could not get (job_create)
            form.add_error(None, exc)
        else:
            messages.success(request, f"{endpoint.label} job queued.")
            return _to_gallery(request, job)
    if request.method == "POST":
        # Sent back (errors, rate limit): keep every upload that passed, as a picked asset.
        form.keep_uploads(user=request.user)
    status = 429 if limited else (422 if form.errors else 200)
    context = {
        "form": form,
        "endpoint": endpoint,
        "parent": parent,
        "source": source,
        "alternatives": [
            e for e in catalog.alternatives(endpoint.operation_key) if e is not endpoint
        ],
        "estimate": usage_services.cost_per_job(team, [endpoint.key]).get(endpoint.key),
        "budget": usage_services.budget_state(team),
    }
    return render(request, "jobs/new.html", context, status=status)


def brand_initial(team: Any, endpoint: catalog.Endpoint) -> dict[str, Any]:
    """Return the team's brand defaults for the fields this endpoint has."""
    defaults = {
        "palette": team.brand_palette or None,
        "output_format": team.brand_output_format or None,
        "width": team.brand_width,
        "height": team.brand_height,
    }
    spec = endpoint.field_map
    initial: dict[str, Any] = {}
    for name, value in defaults.items():
        field = spec.get(name)
        if field is None or value is None:
            continue
        if field.choices and value not in field.choices:
            continue
        if not field.errors_for(value):
            initial[name] = value
    return initial


def _source_asset(
    request: StudioRequest, endpoint: catalog.Endpoint, initial: dict[str, Any]
) -> Asset | None:
    """Prefill a media field with a team asset ("Use as input →"): `?asset=<id>&field=<name>`
    or `?output=<id>&field=<name>`. A file the field cannot take is a 404."""
    asset_id, output_id = parse_id(request.GET.get("asset")), parse_id(request.GET.get("output"))
    if asset_id is None and output_id is None:
        return None
    spec = endpoint.field_map.get(request.GET.get("field", ""))
    if spec is None or not spec.is_media:
        raise Http404
    team = request.membership.team
    if output_id is not None:
        asset = selectors.output_asset(team, pk=output_id)
    else:
        asset = Asset.objects.filter(team=team, pk=asset_id).first()
    if asset is None or not selectors.asset_fits(asset, spec):
        raise Http404
    initial[f"{spec.name}{ASSET_SUFFIX}"] = [asset.pk] if spec.many else asset.pk
    initial.pop(spec.name, None)
    return asset


@require_GET
def asset_picker(request: StudioRequest, key: str, field: str) -> HttpResponse:
    """The choices of one media field's picker, filtered by `q`; picked ones stay listed."""
    membership = require_membership(request)
    if not membership.can_submit:
        raise PermissionDenied("Only owners and editors start jobs.")
    endpoint = catalog.find(key)
    spec = endpoint.field_map.get(field) if endpoint else None
    if spec is None or not spec.is_media:
        raise Http404
    name = f"{spec.name}{ASSET_SUFFIX}"
    picked = [pk for pk in (parse_id(v) for v in request.GET.getlist(name)) if pk]
    listed = selectors.picker_assets(
        membership.team, spec, query=request.GET.get("q", "")[:200], selected=picked
    )
    context = {
        "spec": spec,
        "assets": listed,
        "picker_name": name,
        "selected": {str(pk) for pk in picked},
    }
    return render(request, "jobs/_media_field.html#choices", context)


def _parent_job(request: StudioRequest, endpoint: catalog.Endpoint) -> Job | None:
    source = parse_id(request.POST.get("from") or request.GET.get("from"))
    if source is None:
        return None
    job = selectors.job_for_user(request.user, source)
    if job is None or job.endpoint != endpoint.key or job.team_id != request.membership.team_id:
        raise Http404
    return job


def _to_gallery(request: StudioRequest, job: Job) -> HttpResponse:
    target = f"{reverse('jobs:gallery')}#job-{job.pk}"
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


@require_POST
def job_rerun(request: StudioRequest, pk: int) -> HttpResponse:
    membership = require_membership(request)
    job = selectors.job_for_user(request.user, pk)
    if job is None or job.team_id != membership.team_id:
        raise Http404
    same_seed = request.POST.get("seed") == "same"
    try:
        new = services.job_rerun(
            job=job,
            user=request.user,
            same_seed=same_seed,
            consent_confirmed=request.POST.get("consent_confirm") == "1",
        )
    except services.JobStateError as exc:
        if isinstance(exc, ConsentUnconfirmed):
            # Under the "warn" consent policy: ask, as the job form does, and come back here.
            confirm = {"consent_missing": exc.missing, "consent_confirmable": True}
            context = {"job": job, "same_seed": same_seed, "error": str(exc), "confirm": confirm}
            return render(request, "jobs/rerun_confirm.html", context, status=422)
        messages.error(request, f"Job {job.pk} was not run again: {exc}")
        return redirect(job)
    messages.success(request, f"Job {job.pk} is running again as job {new.pk}.")
    return _to_gallery(request, new)


@require_POST
def job_cancel(request: StudioRequest, pk: int) -> HttpResponse:
    membership = require_membership(request)
    job = selectors.job_for_user(request.user, pk)
    if job is None or job.team_id != membership.team_id:
        raise Http404
    if not membership.can_submit:
        raise PermissionDenied("Only owners and editors can cancel jobs.")
    try:
        services.job_cancel(job_id=job.pk, user=request.user)
    except services.JobStateError as exc:
        messages.error(request, f"Job {job.pk} was not cancelled: {exc}")
    else:
        messages.success(request, f"Job {job.pk} is cancelled.")
    return redirect(job)


@require_GET
def job_detail(request: StudioRequest, pk: int) -> HttpResponse:
    job = selectors.job_for_user(request.user, pk)
    if job is None:
        raise Http404
    context = {
        "job": job,
        "events": job.events.all(),
        "endpoint": job.spec,
        "inputs": selectors.job_inputs(job),
        "children": job.children.order_by("-created_at")[:20],
        "fed": selectors.jobs_fed_by(job),
    }
    if request.htmx and request.GET.get("part") == "status":
        return render(request, "jobs/detail.html#status", context)
    return render(request, "jobs/detail.html", context)


@require_GET
def output_file(request: StudioRequest, pk: int, variant: str) -> HttpResponse:
    output = selectors.output_for_user(request.user, pk)
    if output is None:
        raise Http404
    if variant not in ("file", "preview", "download"):
        raise Http404
    field = output.preview if variant == "preview" else output.file
    if not field:
        raise Http404
    return files.serve(
        request,
        field,
        content_type="image/webp" if variant == "preview" else output.mime_type,
        as_attachment=variant == "download",
        filename=output.human_name if variant == "download" else field.name.rsplit("/", 1)[-1],
    )


@require_GET
def asset_file(request: StudioRequest, pk: int, variant: str) -> HttpResponse:
    asset = selectors.asset_for_user(request.user, pk)
    if asset is None or variant not in ("file", "preview"):
        raise Http404
    field = asset.preview if variant == "preview" else asset.file
    if not field:
        raise Http404
    return files.serve(
        request, field, content_type="image/webp" if variant == "preview" else asset.mime_type
    )


@login_not_required
@require_GET
def asset_public(request: HttpRequest, token: str, name: str) -> HttpResponse:
    """Serve an input file to a provider: anyone with the signed, unexpired URL may fetch it."""
    asset = assets.asset_from_token(token)
    if asset is None or asset.file.name.rsplit("/", 1)[-1] != name:
        return HttpResponse("Not found or expired.", status=404, content_type="text/plain")
    response = files.serve(
        request, asset.file, content_type=asset.mime_type, cache_control="private, max-age=3600"
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_GET
def catalog_page(request: StudioRequest) -> HttpResponse:
    return render(request, "jobs/catalog.html", {"groups": catalog.grouped()})


@require_GET
def catalog_json(request: StudioRequest) -> JsonResponse:
    return JsonResponse({"endpoints": catalog.as_json()})
