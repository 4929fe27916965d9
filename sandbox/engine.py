"""How a sandbox job lives: accepted, queued, processing, then completed or failed.

A job's state is a function of the time since it was accepted (its own queue and processing
durations are fixed at submit), so every process serving the sandbox answers the same, and no
background loop is needed. Only the webhook is pushed (`sandbox.delivery`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from jobs import catalog
from profiles import schema
from profiles.merge import SUFFIX, merge_prompt
from studio import httpclients
from studio.ids import parse_int

from . import delivery, render
from .models import Knobs, SandboxJob, SandboxProfile

log = logging.getLogger(__name__)

# Which failure codes the provider marks retryable (../shared/api/README.md).
RETRYABLE = {
    "RATE_LIMIT_EXCEEDED": True,
    "CONCURRENT_JOBS_EXCEEDED": True,
    "INSUFFICIENT_CREDITS": False,
    "CREDIT_CHARGE_FAILED": False,
    "INPUT_INVALID": False,
    "MODEL_ERROR": True,
    "MODEL_UNAVAILABLE": True,
    "STORAGE_ERROR": True,
    "TIMEOUT": True,
    "INTERNAL_ERROR": True,
    "CANCELLED": False,
}
FAILURE_MESSAGES = {
    "MODEL_ERROR": "The model failed while generating this output.",
    "MODEL_UNAVAILABLE": "The model is temporarily unavailable.",
    "INPUT_INVALID": "An input could not be used (no face found in the source image).",
    "TIMEOUT": "Generation timed out.",
    "INSUFFICIENT_CREDITS": "Not enough credits for this job.",
}
COST_USD = {
    catalog.Output.IMAGE: Decimal("0.0200"),
    catalog.Output.VIDEO: Decimal("0.2500"),
    catalog.Output.AUDIO: Decimal("0.0100"),
    catalog.Output.MODEL: Decimal("0.1500"),
}
# Plausible per-endpoint prices (no provider publishes a price list in the pages), so that the
# usage page of a `make run` shows endpoints costing different amounts.
COST_USD_BY_ENDPOINT = {
    "image-edit": Decimal("0.0300"),
    "face-swap": Decimal("0.0150"),
    "identity-lock": Decimal("0.0400"),
    "identity-replace": Decimal("0.0400"),
    "instamodel": Decimal("0.0500"),
    "virtual-try-on": Decimal("0.0600"),
    "voice-clone": Decimal("0.0300"),
    "imaginepro-face-swap": Decimal("0.0120"),
}


def cost_for(endpoint: catalog.Endpoint) -> Decimal:
    """Return what the sandbox charges for one job of `endpoint`."""
    return COST_USD_BY_ENDPOINT.get(endpoint.key, COST_USD[endpoint.output])


RESULT_TTL = timedelta(hours=24)


class InsufficientBalance(Exception):
    pass


@dataclass(frozen=True)
class State:
    status: str  # queued, processing, completed, failed
    progress: int
    queue_position: int | None = None


def state_of(job: SandboxJob, now: datetime | None = None) -> State:
    elapsed = ((now or timezone.now()) - job.created_at).total_seconds()
    if elapsed < job.queue_seconds:
        return State(job.waits_as, 0, queue_position=1)
    if elapsed < job.queue_seconds + job.processing_seconds:
        done = (elapsed - job.queue_seconds) / max(job.processing_seconds, 0.001)
        return State("processing", max(1, min(99, int(done * 100))))
    return State(job.outcome, 100)


def finished_at(job: SandboxJob) -> datetime:
    return job.created_at + timedelta(seconds=job.queue_seconds + job.processing_seconds)


# --- what the official client sends beyond the pages -------------------------------------------
# The real API takes these, since its own client (imagepipeline 0.4.0) sends them
# (../shared/api/README.md); the sandbox takes them too. The pages stay the authority for what the
# studio's forms offer, so they live here and not in the catalog.


def _int_between(low: int, high: int) -> Any:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"Expected an integer from {low} to {high}."

    return check


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "Expected a string."


CLIENT_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    # identity.replace() always sends width, height and seed (-1: random).
    "identity-replace": {
        "width": _int_between(64, 2048),
        "height": _int_between(64, 2048),
        "seed": _int_between(-1, 2**32 - 1),
    },
    # edit.image() documents negative_prompt and mask_segment.
    "image-edit": {"negative_prompt": _text, "mask_segment": _text},
}
# Choices the client uses beyond the page's, and what the sandbox renders them as.
CLIENT_EXTRA_CHOICES: dict[str, dict[str, dict[str, str]]] = {
    "image-to-3d": {"mode": {"generate_and_paint": "paint"}},
}
# Fields the page marks required that the client cannot send (tryon() has no clothing_type),
# and what the sandbox assumes in their absence.
CLIENT_OPTIONAL: dict[str, dict[str, str]] = {"virtual-try-on": {"clothing_type": "clothing"}}


def client_compatible(
    endpoint: catalog.Endpoint, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Split a request into the part the catalog validates and the errors of the client-only
    part: returns (body to validate, errors in the extra fields)."""
    checked = dict(body)
    errors: dict[str, list[str]] = {}
    for name, check in CLIENT_EXTRA_FIELDS.get(endpoint.key, {}).items():
        if (
            name in checked
            and name not in endpoint.field_map
            and (message := check(checked.pop(name)))
        ):
            errors[name] = [message]
    for name, aliases in CLIENT_EXTRA_CHOICES.get(endpoint.key, {}).items():
        if checked.get(name) in aliases:
            checked[name] = aliases[checked[name]]
    for name, assumed in CLIENT_OPTIONAL.get(endpoint.key, {}).items():
        if checked.get(name) in (None, ""):
            checked[name] = assumed
    return checked, errors


# --- submission ------------------------------------------------------------------------------


def create_job(
    *,
    endpoint: catalog.Endpoint,
    body: dict[str, Any],
    base_url: str,
    profile: dict[str, Any] | None = None,
) -> SandboxJob:
    """Accept a validated request: charge it, decide its fate, schedule its webhook.

    `profile` is the identity profile the request named (`profile_for_job`), kept with the
    job so that the result shows the profile as it was when the job was accepted.
    """
    cost = cost_for(endpoint)
    knobs = Knobs.load()
    # The account row is changed by single conditional UPDATEs, each committed at once, rather
    # than locked for the whole submit: a lock held across the job's insert made every submit
    # wait for the previous one (the sandbox must not be the bottleneck it measures).
    balance_after = _charge(knobs.pk, cost)
    if balance_after is None:
        raise InsufficientBalance
    outcome, code = "completed", ""
    waits_as = "pending" if _take(knobs, "pending_next") else "queued"
    if _take(knobs, "cancel_next"):
        outcome, code = "cancelled", "CANCELLED"
    elif _take(knobs, "fail_next") or (
        bool(knobs.failure_rate) and random.random() < knobs.failure_rate  # noqa: S311
    ):
        outcome, code = "failed", knobs.failure_reason_code
    seed = body.get("seed")
    if profile and profile.get("seed_strategy") == schema.SEED_FIXED:
        seed = profile.get("fixed_seed")
    if not isinstance(seed, int) or seed < 0:
        seed = secrets.randbelow(2**31)
    if endpoint.provider is catalog.Provider.IMAGINEPRO:
        job_id = str(uuid.uuid4())
    else:
        job_id = f"job_{secrets.token_hex(8)}"
    job = SandboxJob.objects.create(
        id=job_id,
        provider=endpoint.provider.value,
        endpoint=endpoint.key,
        body=body,
        base_url=base_url.rstrip("/"),
        created_at=timezone.now(),
        queue_seconds=knobs.queue_seconds
        if knobs.queue_seconds is not None
        else settings.SANDBOX_QUEUE_SECONDS,
        processing_seconds=knobs.processing_seconds
        if knobs.processing_seconds is not None
        else settings.SANDBOX_PROCESSING_SECONDS,
        outcome=outcome,
        waits_as=waits_as,
        failure_reason_code=code,
        seed=seed,
        cost_usd=cost,
        balance_after=balance_after,
        callback_url=str(body.get(endpoint.callback_field) or ""),
        profile=profile or {},
    )
    if job.callback_url:
        delay = job.queue_seconds + job.processing_seconds + settings.SANDBOX_WEBHOOK_DELAY_SECONDS
        transaction.on_commit(lambda: delivery.schedule(job.id, delay))
    return job


def count_status_call(job_id: str, endpoint_key: str) -> SandboxJob | None:
    """Return the job a status request names (None when unknown), its status call counted
    in the same statement (the benchmark's provider-calls figure reads the count)."""
    table = connection.ops.quote_name(SandboxJob._meta.db_table)
    counted = SandboxJob.objects.raw(
        f"UPDATE {table} SET status_calls = status_calls + 1 "  # noqa: S608 - our table name
        "WHERE id = %s AND endpoint = %s RETURNING *",
        [job_id, endpoint_key],
    )
    return next(iter(counted), None)


def _charge(knobs_id: int, cost: Decimal) -> Decimal | None:
    """Take `cost` from the account if it holds that much; return the balance after, or None.

    One conditional UPDATE that returns what it wrote (the ORM's update cannot return it,
    and reading it back would be a second query per submit)."""
    table = connection.ops.quote_name(Knobs._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET balance_usd = balance_usd - %s "  # noqa: S608 - our table name
            "WHERE id = %s AND balance_usd >= %s RETURNING balance_usd",
            [cost, knobs_id, cost],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # SQLite hands back a float or a string for the decimal column: keep it to the cent.
    return Decimal(str(row[0])).quantize(Decimal("0.0001"))


def _take(knobs: Knobs, counter: str) -> bool:
    """Consume one of a knob's armed count (`fail_next`…), atomically; say whether there was."""
    if getattr(knobs, counter) <= 0:
        return False
    return bool(
        Knobs.objects.filter(pk=knobs.pk, **{f"{counter}__gt": 0}).update(
            **{counter: F(counter) - 1}
        )
    )


def take_forced_error(scope: str) -> Knobs | None:
    """Consume one forced HTTP error for this route kind, if any is armed.

    One read when none is armed (every request asks); the conditional UPDATE that consumes
    one is atomic on its own, so two requests never take the same forced error."""
    knobs = Knobs.load()
    armed = knobs.force_status or knobs.force_mode != Knobs.Mode.STATUS
    if not armed or knobs.force_count <= 0:
        return None
    if knobs.force_scope not in (Knobs.Scope.ANY, scope):
        return None
    updated = Knobs.objects.filter(pk=knobs.pk, force_count__gt=0).update(
        force_count=F("force_count") - 1
    )
    return knobs if updated else None


# --- what the status route and the webhook say ------------------------------------------------


def result_name(job: SandboxJob) -> str:
    endpoint = catalog.get(job.endpoint)
    if endpoint.output is catalog.Output.IMAGE:
        ext = str(effective_body(job).get("output_format") or "webp")
        if endpoint.provider is catalog.Provider.IMAGINEPRO:
            ext = "png"
    else:
        ext = {"video": "mp4", "audio": "wav", "model": "glb"}[endpoint.output.value]
    return f"{job.id}.{ext}"


def sign(name: str, expires: int) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"sandbox:{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def signature_ok(name: str, expires: str, signature: str) -> bool:
    moment = parse_int(expires, max_digits=12)
    if moment is None or moment < time.time():
        return False
    return hmac.compare_digest(sign(name, moment), signature)


def result_url(job: SandboxJob) -> str:
    """A pre-signed URL that expires 24 h after the job finished, like the real CDN's."""
    name = result_name(job)
    expires = int((finished_at(job) + RESULT_TTL).timestamp())
    return f"{job.base_url}/files/{name}?expires={expires}&signature={sign(name, expires)}"


def mime_of(name: str) -> str:
    ext = name.rsplit(".", 1)[-1]
    return {
        "webp": "image/webp",
        "jpeg": "image/jpeg",
        "png": "image/png",
        "mp4": "video/mp4",
        "wav": "audio/wav",
        "glb": "model/gltf-binary",
        "gif": "image/gif",
    }[ext]


def status_body(job: SandboxJob, now: datetime | None = None) -> dict[str, Any]:
    """The ImagePipeline status body (README: status values and fields)."""
    endpoint = catalog.get(job.endpoint)
    state = state_of(job, now)
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": state.status,
        "endpoint": endpoint.path,
        "progress": state.progress,
        "queued_at": job.created_at.isoformat(),
        "estimated_time_seconds": round(job.queue_seconds + job.processing_seconds, 2),
        "warnings": ["sandbox: outputs are placeholders made locally"],
    }
    if state.queue_position is not None:
        body["queue_position"] = state.queue_position
    if state.status in ("completed", "failed", "cancelled"):
        body.update(
            queue_wait_seconds=round(job.queue_seconds, 3),
            inference_time_seconds=round(job.processing_seconds, 3),
            processing_time_seconds=round(job.processing_seconds, 3),
            total_elapsed_seconds=round(job.queue_seconds + job.processing_seconds, 3),
        )
    if state.status == "completed":
        name = result_name(job)
        body.update(
            result_url=result_url(job),
            result_mime_type=mime_of(name),
            credits_charged=True,
            credits_amount=float(job.cost_usd * 100),
            cost_usd=float(job.cost_usd),
            balance_remaining_usd=float(job.balance_after),
        )
    elif state.status == "cancelled":
        body.update(
            error="The job was cancelled.",
            failure_reason_code="CANCELLED",
            retryable=False,
            credits_charged=False,
        )
    elif state.status == "failed":
        code = job.failure_reason_code
        body.update(
            error=FAILURE_MESSAGES.get(code, f"The job failed ({code})."),
            failure_reason_code=code,
            retryable=RETRYABLE.get(code, True),
            credits_charged=False,
        )
    return body


def webhook_body(job: SandboxJob) -> dict[str, Any]:
    """The documented ImagePipeline webhook body for a terminal job."""
    status = status_body(job, finished_at(job) + timedelta(seconds=1))
    body: dict[str, Any] = {
        "job_id": job.id,
        "user_id": "usr_sandbox",
        "status": status["status"],
        "result_url": status.get("result_url"),
        "result_mime_type": status.get("result_mime_type"),
        "result_size_bytes": result_size(job) if status["status"] == "completed" else None,
        "timestamp": finished_at(job).isoformat(),
    }
    if status["status"] in ("failed", "cancelled"):
        body.update(
            error=status["error"],
            failure_reason_code=status["failure_reason_code"],
            retryable=status["retryable"],
        )
    return body


IMAGINEPRO_STATUS = {
    "queued": "QUEUED",
    "pending": "QUEUED",  # ImaginePro has no pending state
    "processing": "PROCESSING",
    "completed": "DONE",
    "failed": "FAIL",
    "cancelled": "FAIL",  # nor a cancelled one: a cancelled job is a failed one there
}


def message_body(job: SandboxJob, now: datetime | None = None) -> dict[str, Any]:
    """The ImaginePro progress body (`/api/v1/message/fetch/{messageId}`)."""
    state = state_of(job, now)
    body: dict[str, Any] = {
        "messageId": job.id,
        "status": IMAGINEPRO_STATUS[state.status],
        "progress": state.progress,
        "createdAt": job.created_at.isoformat(),
        "updatedAt": (now or timezone.now()).isoformat(),
        "ref": job.body.get("ref"),
    }
    if state.status == "completed":
        body["uri"] = result_url(job)
        body["originalUrl"] = body["uri"]
    elif state.status == "failed":
        body["error"] = FAILURE_MESSAGES.get(job.failure_reason_code, "Face swap failed.")
    elif state.status == "cancelled":
        body["error"] = "The job was cancelled."
    return body


def deliver_webhook(job_id: str) -> None:
    """POST the webhook once the job is over (twice, or never, as the knobs say)."""
    close_old_connections()
    try:
        job = SandboxJob.objects.filter(pk=job_id).first()
        knobs = Knobs.load()
        if job is None or not job.callback_url or knobs.webhooks == Knobs.Webhooks.OFF:
            return
        if not job.callback_url.startswith(f"{settings.PUBLIC_BASE_URL}/webhooks/"):
            # The sandbox only ever calls this studio back: it must not become a way to make
            # the server POST to arbitrary addresses.
            log.info("sandbox webhook for %s not sent: callback outside the studio", job.id)
            return
        if job.provider == catalog.Provider.IMAGINEPRO:
            body = message_body(job, finished_at(job) + timedelta(seconds=1))
        else:
            body = webhook_body(job)
        times = 2 if knobs.webhooks == Knobs.Webhooks.DUPLICATE else 1
        for _ in range(times):
            try:
                response = httpclients.shared("sandbox-webhooks").post(
                    job.callback_url, json=body, timeout=10
                )
                status = response.status_code
            except httpx.HTTPError:
                log.info("sandbox webhook for %s could not be delivered", job.id)
                status = None
            SandboxJob.objects.filter(pk=job.pk).update(
                webhook_attempts=F("webhook_attempts") + 1, webhook_last_status=status
            )
    finally:
        connection.close()


# --- identity profiles -----------------------------------------------------------------------


def profile_body(profile: SandboxProfile) -> dict[str, Any]:
    """The provider's answer for one profile: `{profile_id, name, adapter_snapshot}`, where the
    snapshot echoes the generation settings with their documented defaults filled in."""
    fields = profile.fields
    snapshot = {name: fields[name] for name in schema.GENERATION_FIELDS if name in fields}
    snapshot.setdefault("prompt_template_mode", schema.PROMPT_TEMPLATE_MODE.default)
    snapshot.setdefault("seed_strategy", schema.SEED_STRATEGY.default)
    body: dict[str, Any] = {
        "profile_id": profile.id,
        "name": profile.name,
        "adapter_snapshot": snapshot,
    }
    for name in ("description", "tags"):
        if name in fields:
            body[name] = fields[name]
    return body


def create_profile(body: dict[str, Any]) -> SandboxProfile:
    """Store a validated create body under a new `prof_<16 hex>` id."""
    fields = {k: v for k, v in body.items() if k != "name" and v is not None}
    return SandboxProfile.objects.create(
        id=f"prof_{secrets.token_hex(8)}", name=body["name"], fields=fields
    )


def update_profile(profile: SandboxProfile, changes: dict[str, Any]) -> dict[str, list[str]]:
    """Apply a validated PATCH body (null clears a field); return errors of the result."""
    merged = {"name": profile.name, **profile.fields}
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    if errors := schema.cross_field_errors(merged):
        return errors
    profile.name = merged.pop("name")
    profile.fields = merged
    profile.save()
    return {}


def profile_for_job(profile_id: str) -> dict[str, Any] | None:
    """The settings a job naming `profile_id` runs with, or None for an unknown profile."""
    profile = SandboxProfile.objects.filter(pk=profile_id).first()
    if profile is None:
        return None
    return {"profile_id": profile.id, "name": profile.name, **profile.fields}


# --- the files -------------------------------------------------------------------------------


RESULTS_FOLDER = "sandbox"


def result_size(job: SandboxJob) -> int:
    """The size in bytes of a completed job's result file (made now if need be)."""
    return default_storage.size(render_result(job))


def render_result(job: SandboxJob) -> str:
    """Make (once) the result file of a completed job in the studio's storage (local disk or
    object storage, like every file the studio writes); return its storage name."""
    name = f"{RESULTS_FOLDER}/{result_name(job)}"
    if default_storage.exists(name):
        return name
    saved = default_storage.save(name, ContentFile(_render(job)))
    if saved != name:
        # Another process rendered the same file meanwhile (the storage never overwrites, so
        # ours got another name): keep theirs. Renders are deterministic, so they are equal.
        default_storage.delete(saved)
    return name


UPLOAD_TTL = timedelta(hours=24)


def is_image(data: bytes, extension: str) -> bool:
    """Whether `data` decodes as an image of the format its content type claimed."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return (image.format or "").lower() == extension
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False


def store_upload(data: bytes, extension: str) -> str:
    """Keep an uploaded input (in the studio's storage); return its name."""
    name = f"{uuid.uuid4().hex}.{extension}"
    default_storage.save(f"{RESULTS_FOLDER}/uploads/{name}", ContentFile(data))
    return name


def upload_url(base_url: str, name: str) -> str:
    expires = int((timezone.now() + UPLOAD_TTL).timestamp())
    signature = sign(f"uploads/{name}", expires)
    return f"{base_url}/uploads/{name}?expires={expires}&signature={signature}"


# Profile settings and the request fields they fill when the request leaves them unset.
PROFILE_DEFAULTS = (
    ("width", "width"),
    ("height", "height"),
    ("output_format", "output_format"),
    ("steps", "num_inference_steps"),
    ("cfg_scale", "guidance_scale"),
    ("negative_prompt", "negative_prompt"),
    ("palette", "palette"),
)


def effective_body(job: SandboxJob) -> dict[str, Any]:
    """The request as the model sees it (a profile merged in, where one was given).

    The template joins the prompt per prompt_template_mode; a fixed seed_strategy pins the
    seed; the profile's other settings apply where the endpoint takes them and the request
    did not set them (our reading of "the profile's snapshot is applied": the caller's own
    values win, **assumed**).
    """
    body = dict(job.body)
    profile = job.profile
    if not profile:
        return body
    fields = catalog.get(job.endpoint).field_map
    if "prompt" in fields:
        body["prompt"] = merge_prompt(
            profile.get("prompt_template"),
            profile.get("prompt_template_mode") or SUFFIX,
            body.get("prompt"),
        )
    for source, target in PROFILE_DEFAULTS:
        unset = body.get(target) in (None, "", [])
        if target in fields and unset and profile.get(source) not in (None, "", []):
            body[target] = profile[source]
    if "seed" in fields and profile.get("seed_strategy") == schema.SEED_FIXED:
        body["seed"] = job.seed
    return body


def _render(job: SandboxJob) -> bytes:
    endpoint = catalog.get(job.endpoint)
    body = effective_body(job)
    text = str(body.get("prompt") or body.get("text") or body.get("clothing_type") or "")
    if endpoint.output is catalog.Output.IMAGE:
        width, height = _image_size(endpoint, body)
        inputs = [
            f"{f.name}: {_short(body[f.name])}"
            for f in endpoint.fields
            if f.is_media and body.get(f.name)
        ]
        picture = render.still(
            width=width,
            height=height,
            seed=job.seed,
            title=_plain_label(endpoint),
            text=" · ".join(filter(None, [text, *inputs])) or endpoint.summary,
            palette=body.get("palette"),
        )
        data, _ = render.image_bytes(picture, result_name(job).rsplit(".", 1)[-1])
        return data
    if endpoint.output is catalog.Output.VIDEO:
        return render.video_bytes(
            width=int(body.get("width") or 896),
            height=int(body.get("height") or 512),
            seconds=float(body.get("duration_seconds") or 2.0),
            seed=job.seed,
            title=_plain_label(endpoint),
            text=text or "cinematic motion",
        )
    if endpoint.output is catalog.Output.AUDIO:
        return render.wav_bytes(
            text=text, seed=job.seed, exaggeration=float(body.get("exaggeration") or 0.5)
        )
    return render.glb_bytes(seed=job.seed, painted=body.get("mode") == "paint")


def _image_size(endpoint: catalog.Endpoint, body: dict[str, Any]) -> tuple[int, int]:
    fields = endpoint.field_map
    if "width" not in fields:
        return (768, 768)
    default_w = fields["width"].default or 768
    default_h = fields["height"].default or 1024
    return int(body.get("width") or default_w), int(body.get("height") or default_h)


def _plain_label(endpoint: catalog.Endpoint) -> str:
    # Pillow's bundled font has no arrows.
    return endpoint.label.replace("→", "to")


def _short(value: Any) -> str:
    values = value if isinstance(value, list) else [value]
    return ", ".join(str(v).rsplit("/", 1)[-1][:40] for v in values)
