"""The sandbox's HTTP routes: ImagePipeline's and ImaginePro's contracts, served locally.

Routes are made from the catalog (`sandbox.urls`); validation is the catalog's own, answered in
each provider's documented error shape.
"""

from __future__ import annotations

import hmac
import io
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs import catalog
from profiles import schema as profile_schema
from studio import files
from studio.jsonbody import loads_object

from . import engine
from .models import Knobs, SandboxJob, SandboxProfile

View = Callable[..., HttpResponse]


def _error(status: int, message: str, code: str, **extra: Any) -> JsonResponse:
    return JsonResponse(
        {"error": message, "error_code": code, "message": message, **extra}, status=status
    )


def _forced(knobs: Knobs, provider: str) -> JsonResponse:
    status = knobs.force_status or 500
    code = {429: "RATE_LIMIT_EXCEEDED", 401: "UNAUTHORIZED", 402: "INSUFFICIENT_BALANCE"}.get(
        status, "INTERNAL_ERROR"
    )
    message = f"Sandbox: forced HTTP {status}."
    if provider == catalog.Provider.IMAGINEPRO:
        response = JsonResponse(
            {"error": message, "message": message, "statusCode": status}, status=status
        )
    else:
        response = _error(status, message, code)
    if status == 429:
        response["Retry-After"] = str(knobs.retry_after)
    return response


def sandbox_route(provider: str, scope: str) -> Callable[[View], View]:
    """Wrap a sandbox route: no studio login or CSRF, the provider's own auth, forced errors."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @login_not_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if scope != Knobs.Scope.DOWNLOAD and not _authorised(request, provider):
                if provider == catalog.Provider.IMAGINEPRO:
                    return JsonResponse(
                        {"error": "Unauthorized", "message": "Invalid token", "statusCode": 401},
                        status=401,
                    )
                return JsonResponse({"detail": "Invalid or missing API key"}, status=401)
            with Knobs.for_request():
                forced = engine.take_forced_error(scope)
                if forced is None:
                    return view(request, *args, **kwargs)
                if forced.force_mode == Knobs.Mode.SLOW:
                    response = view(request, *args, **kwargs)
                    time.sleep(forced.slow_seconds)  # the caller times out; the work is done
                    return response
                if forced.force_mode == Knobs.Mode.MALFORMED:
                    view(request, *args, **kwargs)
                    return HttpResponse(
                        "<html>upstream hiccup", status=200, content_type="application/json"
                    )
                return _forced(forced, provider)

        return wrapped

    return decorate


def _authorised(request: HttpRequest, provider: str) -> bool:
    expected = settings.SANDBOX_API_KEY
    if provider == catalog.Provider.IMAGINEPRO:
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
    else:
        given = request.headers.get("X-API-Key", "")
    return bool(given) and hmac.compare_digest(given, expected)


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    return loads_object(request.body or b"")


def _unprocessable(problems: dict[str, list[str]]) -> JsonResponse:
    """Answer 422 in FastAPI's shape, one `detail` item per message, `loc` naming the field."""
    detail = [
        {"loc": ["body", name], "msg": message, "type": "value_error"}
        for name, messages in problems.items()
        for message in messages
    ]
    return JsonResponse({"detail": detail}, status=422)


def _not_json() -> JsonResponse:
    return JsonResponse(
        {"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]},
        status=422,
    )


def _base_url(request: HttpRequest, provider: str) -> str:
    return request.build_absolute_uri(f"/sandbox/{provider}")


# --- ImagePipeline ---------------------------------------------------------------------------


@require_POST
@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.SUBMIT)
def submit(request: HttpRequest, key: str) -> JsonResponse:
    endpoint = catalog.get(key)
    body = _json_body(request)
    if body is None:
        return _not_json()
    checked, problems = engine.client_compatible(endpoint, body)
    problems = {**endpoint.validate(checked), **problems}
    if problems:
        return _unprocessable(problems)
    profile = None
    if body.get("profile_id"):
        profile = engine.profile_for_job(body["profile_id"])
        if profile is None:
            return _error(404, f"Profile {body['profile_id']} not found.", "NOT_FOUND")
    try:
        job = engine.create_job(
            endpoint=endpoint,
            body=body,
            base_url=_base_url(request, "imagepipeline"),
            profile=profile,
        )
    except engine.InsufficientBalance:
        return _error(402, "Insufficient balance for this job.", "INSUFFICIENT_BALANCE")
    return JsonResponse(
        {
            "job_id": job.id,
            "status": "queued",
            "endpoint": endpoint.path,
            "estimated_time_seconds": round(job.queue_seconds + job.processing_seconds, 2),
            "queued_at": job.created_at.isoformat(),
        },
        status=200,
    )


@require_GET
@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.STATUS)
def status(request: HttpRequest, key: str, job_id: str) -> JsonResponse:
    job = engine.count_status_call(job_id, key)
    if job is None:
        return _error(404, f"Job {job_id} not found.", "NOT_FOUND")
    return JsonResponse(engine.status_body(job))


# --- ImagePipeline identity profiles (/profiles/v1) -------------------------------------------
# Writes count as submit routes and reads as status routes for the forced-error knobs.


@csrf_exempt
@login_not_required
def profiles_collection(request: HttpRequest) -> HttpResponse:
    """`POST /profiles/v1` creates a profile; `GET /profiles/v1` lists them."""
    if request.method == "POST":
        return _profile_create(request)
    if request.method == "GET":
        return _profile_list(request)
    return HttpResponseNotAllowed(["GET", "POST"])


@csrf_exempt
@login_not_required
def profile_item(request: HttpRequest, profile_id: str) -> HttpResponse:
    """`GET`, `PATCH` and `DELETE /profiles/v1/{profile_id}`."""
    handlers = {"GET": _profile_get, "PATCH": _profile_update, "DELETE": _profile_delete}
    handler = handlers.get(request.method or "")
    if handler is None:
        return HttpResponseNotAllowed(list(handlers))
    return handler(request, profile_id)


@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.SUBMIT)
def _profile_create(request: HttpRequest) -> JsonResponse:
    body = _json_body(request)
    if body is None:
        return _not_json()
    if problems := profile_schema.validate(body):
        return _unprocessable(problems)
    return JsonResponse(engine.profile_body(engine.create_profile(body)), status=200)


@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.STATUS)
def _profile_list(request: HttpRequest) -> JsonResponse:
    profiles = [engine.profile_body(p) for p in SandboxProfile.objects.all()]
    return JsonResponse({"profiles": profiles, "total": len(profiles)})


def _profile_not_found(profile_id: str) -> JsonResponse:
    return _error(404, f"Profile {profile_id} not found.", "NOT_FOUND")


@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.STATUS)
def _profile_get(request: HttpRequest, profile_id: str) -> JsonResponse:
    profile = SandboxProfile.objects.filter(pk=profile_id).first()
    if profile is None:
        return _profile_not_found(profile_id)
    return JsonResponse(engine.profile_body(profile))


@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.SUBMIT)
def _profile_update(request: HttpRequest, profile_id: str) -> JsonResponse:
    body = _json_body(request)
    if body is None:
        return _not_json()
    if problems := profile_schema.validate(body, partial=True):
        return _unprocessable(problems)
    with transaction.atomic():
        profile = SandboxProfile.objects.select_for_update().filter(pk=profile_id).first()
        if profile is None:
            return _profile_not_found(profile_id)
        if problems := engine.update_profile(profile, body):
            return _unprocessable(problems)
    return JsonResponse(engine.profile_body(profile))


@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.SUBMIT)
def _profile_delete(request: HttpRequest, profile_id: str) -> HttpResponse:
    deleted, _ = SandboxProfile.objects.filter(pk=profile_id).delete()
    if not deleted:
        return _profile_not_found(profile_id)
    return HttpResponse(status=204)


# --- ImaginePro ------------------------------------------------------------------------------


@require_POST
@sandbox_route(catalog.Provider.IMAGINEPRO, Knobs.Scope.SUBMIT)
def imaginepro_submit(request: HttpRequest, key: str) -> JsonResponse:
    endpoint = catalog.get(key)
    body = _json_body(request)
    problems = endpoint.validate(body) if body is not None else {"body": ["Invalid JSON."]}
    if problems:
        message = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in problems.items())
        return JsonResponse(
            {"success": False, "error": message, "message": message, "statusCode": 400}, status=400
        )
    try:
        job = engine.create_job(
            endpoint=endpoint, body=body or {}, base_url=_base_url(request, "imaginepro")
        )
    except engine.InsufficientBalance:
        return JsonResponse(
            {
                "success": False,
                "error": "Not enough credits.",
                "message": "Not enough credits.",
                "statusCode": 402,
            },
            status=402,
        )
    return JsonResponse(
        {"success": True, "messageId": job.id, "createdAt": job.created_at.isoformat()}
    )


@require_GET
@sandbox_route(catalog.Provider.IMAGINEPRO, Knobs.Scope.STATUS)
def imaginepro_fetch(request: HttpRequest, message_id: str) -> JsonResponse:
    job = SandboxJob.objects.filter(pk=message_id, provider=catalog.Provider.IMAGINEPRO).first()
    if job is not None:
        SandboxJob.objects.filter(pk=job.pk).update(status_calls=F("status_calls") + 1)
    if job is None:
        return JsonResponse(
            {"error": "Message not found", "message": "Message not found", "statusCode": 404},
            status=404,
        )
    return JsonResponse(engine.message_body(job))


# --- result files (pre-signed, no API key, like a CDN) -----------------------------------------


@require_GET
@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.DOWNLOAD)
def result_file(request: HttpRequest, name: str) -> HttpResponse:
    if not engine.signature_ok(
        name, request.GET.get("expires", ""), request.GET.get("signature", "")
    ):
        return HttpResponse(
            "Request has expired or the signature is invalid.",
            status=403,
            content_type="text/plain",
        )
    job = SandboxJob.objects.filter(pk=name.rsplit(".", 1)[0]).first()
    if job is None or engine.result_name(job) != name or engine.state_of(job).status != "completed":
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    stored = engine.render_result(job)
    # Streamed by the sandbox itself (a CDN stand-in), never a redirect: the studio's downloader
    # only trusts the sandbox's own address.
    return files.ranged(
        request,
        default_storage.open(stored, "rb"),
        size=default_storage.size(stored),
        content_type=engine.mime_of(name),
    )


# --- uploads: the provider's own copy of a local input file --------------------------------------

UPLOAD_TYPES = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}


@require_POST
@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.SUBMIT)
def upload_image(request: HttpRequest) -> JsonResponse:
    """`POST /upload/image/v1`: multipart field `file`, a PNG, JPEG, WebP or GIF with a real
    content type → `{url, filename, size_bytes}`; the URL is pre-signed like a result's."""
    upload = _uploaded_file(request)
    if upload is None:
        return _unprocessable({"file": ["Field required"]})
    extension = UPLOAD_TYPES.get((upload.content_type or "").split(";")[0].strip().lower())
    if extension is None:
        return _unprocessable({"file": ["Upload a PNG, JPEG, WebP or GIF image."]})
    data = upload.read()
    if not engine.is_image(data, extension):
        return _unprocessable({"file": [f"The file is not a readable {extension.upper()} image."]})
    name = engine.store_upload(data, extension)
    return JsonResponse(
        {
            "url": engine.upload_url(_base_url(request, "imagepipeline"), name),
            "filename": upload.name,
            "content_type": upload.content_type,
            "size_bytes": len(data),
        }
    )


def _uploaded_file(request: HttpRequest) -> Any:
    if request.content_type.startswith("multipart/"):
        return request.FILES.get("file")
    # The official client (0.4.0) sends its multipart body under its session's
    # "Content-Type: application/json"; the real API reads it regardless, and so does the sandbox.
    body = request.body
    if not body.startswith(b"--"):
        return None
    boundary = body.split(b"\r\n", 1)[0][2:].decode("latin-1")
    meta = {
        **request.META,
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
    }
    try:
        _, parsed = MultiPartParser(
            meta, io.BytesIO(body), request.upload_handlers, request.encoding
        ).parse()
    except MultiPartParserError:
        return None
    return parsed.get("file")


@require_GET
@sandbox_route(catalog.Provider.IMAGEPIPELINE, Knobs.Scope.DOWNLOAD)
def uploaded_file(request: HttpRequest, name: str) -> HttpResponse:
    if not engine.signature_ok(
        f"uploads/{name}", request.GET.get("expires", ""), request.GET.get("signature", "")
    ):
        return HttpResponse(
            "Request has expired or the signature is invalid.",
            status=403,
            content_type="text/plain",
        )
    stored = f"{engine.RESULTS_FOLDER}/uploads/{name}"
    if "/" in name or not default_storage.exists(stored):
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    return files.ranged(
        request,
        default_storage.open(stored, "rb"),
        size=default_storage.size(stored),
        content_type=engine.mime_of(name),
    )


# --- control: the failure knobs over HTTP --------------------------------------------------------

KNOB_FIELDS = (
    "queue_seconds", "processing_seconds", "failure_rate", "fail_next", "pending_next",
    "cancel_next", "failure_reason_code",
    "force_status", "force_count", "force_scope", "force_mode", "slow_seconds", "retry_after",
    "webhooks", "balance_usd",
)  # fmt: skip


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "PUT", "POST"])
def control(request: HttpRequest) -> JsonResponse:
    """GET the knobs; PUT/POST a JSON object to change some. Needs the sandbox API key."""
    if not _authorised(request, catalog.Provider.IMAGEPIPELINE):
        return JsonResponse({"detail": "Invalid or missing API key"}, status=401)
    knobs = Knobs.load()
    if request.method != "GET":
        changes = _json_body(request)
        if changes is None:
            return JsonResponse({"detail": "Expected a JSON object."}, status=400)
        unknown = set(changes) - set(KNOB_FIELDS) - {"reset"}
        if unknown:
            return JsonResponse(
                {"detail": f"Unknown knobs: {', '.join(sorted(unknown))}"}, status=400
            )
        if changes.pop("reset", False):
            knobs.delete()
            knobs = Knobs.load()
        for name, value in changes.items():
            setattr(knobs, name, value)
        try:
            knobs.full_clean()
        except Exception as exc:  # noqa: BLE001 - ValidationError and type errors alike
            return JsonResponse({"detail": str(exc)}, status=400)
        knobs.save()
    return JsonResponse({name: _plain(getattr(knobs, name)) for name in KNOB_FIELDS})


def _plain(value: Any) -> Any:
    return str(value) if hasattr(value, "as_tuple") else value


# --- errors in the provider's shape: JSON for unknown routes and wrong methods -----------------


@csrf_exempt
@login_not_required
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    return _error(404, f"No route {request.method} {request.path}.", "NOT_FOUND")


def json_errors(view: View) -> View:
    """Turn Django's bare 405 (require_GET/POST) into the provider's JSON error, Allow kept."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            allowed = response.get("Allow", "")
            converted = _error(
                405, f"Method {request.method} not allowed; use {allowed}.", "METHOD_NOT_ALLOWED"
            )
            converted["Allow"] = allowed
            return converted
        return response

    return wrapped
