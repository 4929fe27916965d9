"""Job pages: the gallery, the new-job forms, the job page, and the files of outputs."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from studio.http import StudioRequest, require_membership

from . import catalog, selectors, services
from .forms import form_class


@require_GET
def gallery(request: StudioRequest) -> HttpResponse:
    membership = require_membership(request)
    jobs = selectors.gallery_jobs(team_id=membership.team_id)
    return render(request, "jobs/gallery.html", {"jobs": jobs})


@require_GET
def job_card(request: StudioRequest, pk: int) -> HttpResponse:
    job = selectors.job_for_user(request.user, pk)
    if job is None:
        raise Http404
    return TemplateResponse(request, "jobs/gallery.html#card", {"job": job})


@require_http_methods(["GET", "POST"])
def job_new(request: StudioRequest, key: str) -> HttpResponse:
    membership = require_membership(request)
    endpoint = catalog.find(key)
    if endpoint is None:
        raise Http404
    if not membership.can_submit:
        raise PermissionDenied("Only owners and editors can start jobs.")
    form = form_class(endpoint)(request.POST or None)
    if request.method == "POST" and form.is_valid():
        job = services.job_create(
            team=membership.team,
            user=request.user,
            endpoint=endpoint,
            params=form.wire_values(),
        )
        messages.success(request, f"{endpoint.label} job queued.")
        target = f"{reverse('jobs:gallery')}#job-{job.pk}"
        if request.htmx:
            return HttpResponseClientRedirect(target)
        return redirect(target)
    status = 422 if form.errors else 200
    return render(request, "jobs/new.html", {"form": form, "endpoint": endpoint}, status=status)


@require_GET
def job_detail(request: StudioRequest, pk: int) -> HttpResponse:
    job = selectors.job_for_user(request.user, pk)
    if job is None:
        raise Http404
    context = {"job": job, "events": job.events.all(), "endpoint": job.spec}
    if request.htmx and request.GET.get("part") == "status":
        return render(request, "jobs/detail.html#status", context)
    return render(request, "jobs/detail.html", context)


@require_GET
def output_file(request: StudioRequest, pk: int, variant: str) -> FileResponse:
    output = selectors.output_for_user(request.user, pk)
    if output is None:
        raise Http404
    if variant not in ("file", "preview", "download"):
        raise Http404
    field = output.preview if variant == "preview" else output.file
    if not field:
        raise Http404
    response = FileResponse(
        field.open("rb"),
        content_type="image/webp" if variant == "preview" else output.mime_type,
        as_attachment=variant == "download",
        filename=field.name.rsplit("/", 1)[-1],
    )
    response["Cache-Control"] = "private, max-age=86400, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def catalog_page(request: StudioRequest) -> HttpResponse:
    return render(request, "jobs/catalog.html", {"groups": catalog.grouped()})


@require_GET
def catalog_json(request: StudioRequest) -> JsonResponse:
    return JsonResponse({"endpoints": catalog.as_json()})
