"""Every change to consent happens here: recording and revoking consents, the team's policy,
and the check every job goes through (`consent_check_for_job`, called by
`jobs.services.job_create`, so no entry point can skip it). Each writes a ConsentEvent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from jobs.assets import asset_store, is_asset_ref
from jobs.catalog import Endpoint
from jobs.models import Asset, Job, JobEvent
from jobs.services import JobStateError
from jobs.uploads import PreparedUpload
from profiles.models import Profile
from studio.live import publish_on_commit
from studio.models import Membership, Role, Team

from .models import (
    Consent,
    ConsentEvent,
    ConsentPolicy,
    ConsentUse,
    Operation,
    PolicyMode,
    Usage,
)

Action = ConsentEvent.Action

DOCUMENT_MAX_BYTES = 15 * 1024 * 1024
# What a release may be: a PDF, or a photo or scan of the signed page.
DOCUMENT_IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Who records and revokes consents, and may open the signed releases.
MANAGERS = (Role.OWNER, Role.EDITOR)


class ConsentMissing(JobStateError):
    """A job would use a likeness without a valid consent covering it. A JobStateError, so
    every entry point that reports a refused job reports this one the same way."""

    confirmable = False

    def __init__(self, message: str, missing: Sequence[Need]) -> None:
        super().__init__(message)
        self.missing = list(missing)


class ConsentUnconfirmed(ConsentMissing):
    """Under the "warn" policy: the job may run once the user confirms."""

    confirmable = True


def _role(team: Team, user: Any) -> str | None:
    membership = Membership.objects.filter(team=team, user=user).only("role").first()
    return membership.role if membership else None


def can_manage_consents(team: Team, user: Any) -> bool:
    return _role(team, user) in MANAGERS


def _require_manager(team: Team, user: Any, doing: str) -> None:
    if not can_manage_consents(team, user):
        raise PermissionDenied(f"Only owners and editors can {doing}.")


def _event(
    team: Team,
    action: str,
    actor: Any,
    message: str,
    *,
    consent: Consent | None = None,
    job: Job | None = None,
) -> None:
    ConsentEvent.objects.create(
        team=team,
        consent=consent,
        job=job,
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        message=message[:2000],
    )


# --- the signed release ------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    content: bytes
    mime_type: str
    extension: str
    name: str


def document_prepare(upload: UploadedFile) -> Document:
    """Return a checked release document (a PDF, or an image re-encoded so only its pixels
    are kept); raise ValidationError with a message for the form."""
    name = (upload.name or "release").rsplit("/", 1)[-1][:200]
    if upload.size is not None and upload.size > DOCUMENT_MAX_BYTES:
        raise ValidationError(f"{name} is larger than 15 MB; scan it at a lower resolution.")
    data = upload.read(DOCUMENT_MAX_BYTES + 1)
    if len(data) > DOCUMENT_MAX_BYTES:
        raise ValidationError(f"{name} is larger than 15 MB; scan it at a lower resolution.")
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise ValidationError(f"{name} is not a complete PDF file.")
        return Document(data, "application/pdf", "pdf", name)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in DOCUMENT_IMAGE_FORMATS:
                raise UnidentifiedImageError
            if image.width * image.height > 60_000_000:
                raise ValidationError(f"{name} has too many pixels (at most 60 megapixels).")
            image.load()
            fmt = image.format
            out = io.BytesIO()
            image.convert("RGB" if fmt == "JPEG" else image.mode).save(out, fmt)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError(
            f"{name} is not a PDF or a PNG, JPEG or WebP image of the signed release."
        ) from None
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[fmt]
    return Document(out.getvalue(), DOCUMENT_IMAGE_FORMATS[fmt], extension, name)


# --- territories ---------------------------------------------------------------------------------

TERRITORIES_MAX_LENGTH = 300
TERRITORY_MAX_LENGTH = 60
WORLDWIDE = "worldwide"
# A territory is a name as a release writes it: "EU", "United Kingdom", "Côte d'Ivoire".
_TERRITORY = re.compile(r"^[^\W_](?:[\w .'’()&/-]*[\w.)])?$")
_SEPARATORS = re.compile(r"[,;\n]")


def territory_key(name: str) -> str:
    """Return what two spellings of one territory have in common: "U.K." and "uk" are "uk"."""
    return " ".join(name.replace(".", "").split()).casefold()


def territories_parse(text: str, *, strict: bool = True) -> list[str]:
    """Return the territories a text names, in its order ("EU, UK" → ["EU", "UK"]); an empty
    list means worldwide (an empty text, or "worldwide" alone).

    Names are separated by commas (or semicolons). `strict` is for what a person types: a
    name that is not one raises ValidationError with a message for the form. Stored text
    (consents recorded before territories were checked) is read leniently.
    """
    names: list[str] = []
    seen: set[str] = set()
    for piece in _SEPARATORS.split(text or ""):
        name = " ".join(piece.split())
        if not name:
            continue
        if strict and (len(name) > TERRITORY_MAX_LENGTH or not _TERRITORY.match(name)):
            raise ValidationError(
                f"“{name[:TERRITORY_MAX_LENGTH]}” is not a territory name. Separate "
                "territories with commas, e.g. “EU, UK”."
            )
        if territory_key(name) not in seen:
            seen.add(territory_key(name))
            names.append(name)
    if any(territory_key(n) == WORLDWIDE for n in names):
        if strict and len(names) > 1:
            raise ValidationError(
                "Worldwide already covers every territory: leave the field empty for "
                "worldwide, or name the territories."
            )
        return []
    if strict and len(territories_format(names)) > TERRITORIES_MAX_LENGTH:
        raise ValidationError(f"Name at most {TERRITORIES_MAX_LENGTH} characters of territories.")
    return names


def territories_format(names: Sequence[str]) -> str:
    """Return territories as they are stored ("EU, UK"); "" is worldwide."""
    return ", ".join(names)


def covers(consent: Consent, *, usage: str, territories: Sequence[str]) -> str:
    """Return why `consent` does not cover using its likeness for `usage` in `territories`
    (an empty list: worldwide), or "" when it does. Every export asks this of every consent
    its outputs were made under (`consent.exporting.withholding`).

    A revoked or expired consent covers nothing. An internal-only consent does not cover
    commercial use; a commercial one covers both. A consent naming territories covers only
    those (compared by name: "EU" does not cover "France" unless the release names it too),
    so not worldwide use; one naming none covers everywhere.
    """
    if usage not in Usage.values:
        raise ValueError(f"unknown usage {usage!r}")
    if reason := consent.lapsed_reason:
        return reason
    problems = []
    if usage == Usage.COMMERCIAL and consent.usage != Usage.COMMERCIAL:
        problems.append("it allows internal use only, not commercial use")
    allowed = territories_parse(consent.territories, strict=False)
    if allowed:
        keys = {territory_key(name) for name in allowed}
        outside = [name for name in territories if territory_key(name) not in keys]
        where = territories_format(allowed)
        if not territories:
            problems.append(f"it covers {where} only, not worldwide use")
        elif outside:
            problems.append(f"it covers {where} only, not {territories_format(outside)}")
    return "; ".join(problems)


# --- consents ------------------------------------------------------------------------------------


@transaction.atomic
def consent_create(
    *,
    team: Team,
    user: Any,
    subject: str,
    document: Document,
    operations: Iterable[str],
    usage: str,
    territories: str = "",
    expires_on: dt.date | None = None,
    profile: Profile | None = None,
    asset: Asset | None = None,
    likeness: PreparedUpload | None = None,
) -> Consent:
    """Record a person's consent on one of the team's profiles or input assets; `likeness`, an
    upload of their face or voice, is stored as the team's asset first (once per content)."""
    _require_manager(team, user, "record consent")
    if likeness is not None and asset is None and profile is None:
        asset = asset_store(team=team, user=user, upload=likeness)
    errors: dict[str, list[str]] = {}
    subject = " ".join(subject.split())
    if not subject:
        errors["subject"] = ["Name the person who signed the release."]
    asked = set(operations)
    ops = [op for op in Operation.values if op in asked]
    if not ops or len(ops) != len(asked):
        errors["operations"] = ["Choose at least one operation the release allows."]
    if (profile is None) == (asset is None):
        errors["__all__"] = ["Record the consent on one profile or on one input file."]
    elif profile is not None and profile.team_id != team.pk:
        errors["__all__"] = ["That profile is not in this team's library."]
    elif asset is not None and asset.team_id != team.pk:
        errors["__all__"] = ["That file is not one of this team's inputs."]
    if expires_on is not None and expires_on < timezone.localdate():
        errors["expires_on"] = ["That date has passed; a consent must still be valid."]
    try:
        territories = territories_format(territories_parse(territories))
    except ValidationError as exc:
        errors["territories"] = exc.messages
    if errors:
        raise ValidationError(errors)
    consent = Consent(
        team=team,
        subject=subject,
        profile=profile,
        asset=asset,
        operations=ops,
        usage=usage,
        territories=territories,
        expires_on=expires_on,
        recorded_by=user,
        document_name=document.name,
        document_mime=document.mime_type,
        document_sha256=hashlib.sha256(document.content).hexdigest(),
    )
    consent.document.save(f"release.{document.extension}", ContentFile(document.content), False)
    consent.save()
    _event(
        team,
        Action.RECORDED,
        user,
        f"Consent of {subject} on {consent.on_label}: {', '.join(consent.operation_labels)}; "
        f"{consent.get_usage_display().lower()}; {territories or 'worldwide'}"
        + (f"; until {expires_on:%Y-%m-%d}" if expires_on else "")
        + ".",
        consent=consent,
    )
    return consent


@transaction.atomic
def consent_revoke(*, consent: Consent, user: Any, reason: str = "") -> Consent:
    """Revoke a consent: every output made under it is flagged and withheld from exports.
    Nothing is deleted. Revoking twice is a no-op."""
    consent = Consent.objects.select_for_update().select_related("team").get(pk=consent.pk)
    _require_manager(consent.team, user, "revoke consent")
    if consent.revoked_at is not None:
        return consent
    consent.revoked_at = timezone.now()
    consent.revoked_by = user
    consent.revoke_reason = reason.strip()[:2000]
    consent.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    job_ids = list(consent.uses.values_list("job_id", flat=True).distinct())
    _event(
        consent.team,
        Action.REVOKED,
        user,
        f"Revoked{': ' + consent.revoke_reason if consent.revoke_reason else ''}. "
        f"{len(job_ids)} job(s) made under it are flagged.",
        consent=consent,
    )
    for job_id in job_ids:  # their cards show the flag at once
        publish_on_commit(consent.team_id, "job", job_id=job_id)
    return consent


def consents_record_expired(*, today: dt.date | None = None) -> int:
    """Write one audit row for each consent that has expired since the last sweep; return how
    many. (The flag itself needs no sweep: it is computed from `expires_on`.)"""
    today = today or timezone.localdate()
    count = 0
    for pk in Consent.objects.filter(
        expires_on__lt=today, expiry_recorded_at__isnull=True, revoked_at__isnull=True
    ).values_list("pk", flat=True):
        with transaction.atomic():
            consent = Consent.objects.select_for_update().filter(pk=pk).first()
            if consent is None or consent.expiry_recorded_at is not None:
                continue
            consent.expiry_recorded_at = timezone.now()
            consent.save(update_fields=["expiry_recorded_at"])
            uses = consent.uses.values("job_id").distinct().count()
            _event(
                consent.team,
                Action.EXPIRED,
                None,
                f"Expired after {consent.expires_on:%Y-%m-%d}. {uses} job(s) made under it "
                "are flagged.",
                consent=consent,
            )
            count += 1
    return count


@transaction.atomic
def policy_set(*, team: Team, user: Any, mode: str) -> ConsentPolicy:
    if _role(team, user) != Role.OWNER:
        raise PermissionDenied("Only team owners change the consent policy.")
    if mode not in PolicyMode.values:
        raise ValidationError({"mode": ["Choose require, warn or off."]})
    policy, _ = ConsentPolicy.objects.select_for_update().get_or_create(team=team)
    if policy.mode != mode:
        old = policy.get_mode_display()
        policy.mode = mode
        policy.updated_by = user
        policy.save()
        _event(team, Action.POLICY, user, f"Policy: {old} → {policy.get_mode_display()}.")
    return policy


def policy_mode(team: Team) -> str:
    policy = ConsentPolicy.objects.filter(team=team).only("mode").first()
    return policy.mode if policy else PolicyMode.OFF


# --- the check every job goes through ---------------------------------------------------------


@dataclass
class Need:
    """One likeness a job uses: a profile, or one value of a likeness input."""

    field: str
    label: str
    consent: Consent | None = None
    problem: str = ""


def _valid_covering(consents: Iterable[Consent], operation: str) -> Consent | None:
    today = timezone.localdate()
    for consent in consents:
        valid = consent.revoked_at is None and not consent.is_expired(today)
        if valid and operation in consent.operations:
            return consent
    return None


def _problem(consents: Sequence[Consent], operation: str) -> str:
    label = dict(Operation.choices).get(operation, operation).lower()
    if not consents:
        return "no consent on record"
    if all(c.revoked_at is not None for c in consents):
        return "its consent was revoked"
    if all(c.revoked_at is not None or c.is_expired() for c in consents):
        return "its consent has expired"
    return f"no valid consent allows {label}"


def _asset_consents(asset: Asset) -> list[Consent]:
    """Return the consents recorded on an input file, and, for a file that is an output of
    an earlier job ("Use as input"), the consents that job was made under: the person in it
    is the same person."""
    consents = list(asset.consents.all())
    if asset.job_id is not None:
        uses = ConsentUse.objects.filter(job_id=asset.job_id).select_related("consent")
        consents += [use.consent for use in uses if use.consent not in consents]
    return consents


def consent_needs(
    *, team: Team, endpoint: Endpoint, params: dict[str, Any], profile: Profile | None
) -> list[Need]:
    """Return the likenesses a job with these (stored) params uses, each with the valid consent
    covering the endpoint's operation, or why there is none."""
    operation = endpoint.consent_operation
    if not operation:
        return []
    needs: list[Need] = []
    if profile is not None:
        consents = list(profile.consents.all())
        needs.append(Need("profile_id", f"profile “{profile.name}”"))
        needs[-1].consent = _valid_covering(consents, operation)
        needs[-1].problem = "" if needs[-1].consent else _problem(consents, operation)
    for spec in endpoint.likeness_fields:
        value = params.get(spec.name)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item in (None, ""):
                continue
            label = spec.label.lower()
            if not is_asset_ref(item):
                needs.append(
                    Need(
                        spec.name,
                        f"{label} (a URL)",
                        problem="a URL carries no consent: upload the file or pick it from "
                        "the team's files, and record the person's consent on it",
                    )
                )
                continue
            asset = Asset.objects.filter(team=team, pk=item["asset"]).first()
            consents = _asset_consents(asset) if asset else []
            need = Need(spec.name, f"{label} “{asset}”" if asset else label)
            need.consent = _valid_covering(consents, operation)
            need.problem = "" if need.consent else _problem(consents, operation)
            needs.append(need)
    return needs


def consent_check_for_job(*, job: Job, user: Any, confirmed: bool = False) -> list[Need]:
    """Apply the team's policy to a job being created (inside `job_create`'s transaction).

    "require": a likeness without a valid consent covering the endpoint's operation refuses
    the job (ConsentMissing names what is missing; the transaction rolls back). "warn": the
    same, unless the user confirmed, which is recorded on the job. Every consent used is
    recorded (ConsentUse, and a "used" audit row) whatever the policy, so a person's page
    lists every output made with their likeness.
    """
    needs = consent_needs(team=job.team, endpoint=job.spec, params=job.params, profile=job.profile)
    if not needs:
        return needs
    operation = dict(Operation.choices).get(job.spec.consent_operation, "")
    missing = [n for n in needs if n.consent is None]
    mode = policy_mode(job.team)
    if missing and mode != PolicyMode.OFF:
        listed = "; ".join(f"{n.label}: {n.problem}" for n in missing)
        if mode == PolicyMode.REQUIRE:
            raise ConsentMissing(
                f"The team requires consent for {operation.lower()}. Missing — {listed}.",
                missing,
            )
        if not confirmed:
            raise ConsentUnconfirmed(
                f"No valid consent for {operation.lower()} — {listed}. Confirm that the "
                "people shown agreed to start it anyway; your confirmation is recorded.",
                missing,
            )
        who = user.get_username() if getattr(user, "is_authenticated", False) else "someone"
        message = f"Started without consent ({listed}); {who} confirmed under the warn policy."
        JobEvent.objects.create(
            job=job, source=JobEvent.Source.STUDIO, status="", message=message[:2000]
        )
        _event(job.team, Action.CONFIRMED_WITHOUT, user, message, job=job)
    for need in needs:
        if need.consent is not None:
            ConsentUse.objects.get_or_create(consent=need.consent, job=job, field=need.field)
            _event(
                job.team,
                Action.USED,
                user,
                f"Job {job.pk} ({job.spec.label}) used {need.label}.",
                consent=need.consent,
                job=job,
            )
    return needs


class CastingConsentError(ValidationError):
    """A casting run's profiles lack the consent the policy asks for (on `profiles`)."""

    def __init__(self, message: str, *, confirmable: bool) -> None:
        super().__init__({"profiles": [message]})
        self.confirmable = confirmable


def consent_check_for_casting(
    *, team: Team, endpoint: Endpoint, profiles: Sequence[Profile], confirmed: bool = False
) -> None:
    """Refuse a casting run up front, as a form error naming every profile without consent.

    Each of its jobs is checked again by `job_create` (and the confirmation recorded on each);
    this only turns the first refusal into one message about the whole run.
    """
    mode = policy_mode(team)
    if mode == PolicyMode.OFF or (mode == PolicyMode.WARN and confirmed):
        return
    missing = [
        need
        for profile in profiles
        for need in consent_needs(team=team, endpoint=endpoint, params={}, profile=profile)
        if need.consent is None
    ]
    if not missing:
        return
    operation = dict(Operation.choices).get(endpoint.consent_operation, "").lower()
    listed = "; ".join(f"{n.label}: {n.problem}" for n in missing)
    if mode == PolicyMode.REQUIRE:
        raise CastingConsentError(
            f"The team requires consent for {operation}. Missing — {listed}.", confirmable=False
        )
    raise CastingConsentError(
        f"No valid consent for {operation} — {listed}. Confirm that these people agreed to "
        "start the run anyway; your confirmation is recorded on each job.",
        confirmable=True,
    )


def consent_document_open(*, consent: Consent, user: Any) -> Any:
    """Return the release document's file, for an owner or editor of its team; each opening
    is written to the audit trail."""
    _require_manager(consent.team, user, "open signed releases")
    _event(consent.team, Action.DOCUMENT_VIEWED, user, "Release opened.", consent=consent)
    return consent.document.open("rb")


def consent_export_record(*, team: Team, user: Any, export_id: int, ledger: Any) -> None:
    """Write an export's audit rows from its `consent.exporting.Ledger`: one per consent its
    outputs were made under, saying how many went into the archive for which use and where,
    and one per consent that did not cover the export, saying how many were withheld and why.
    """
    purpose = ledger.purpose.label
    for pk, count in sorted(ledger.included.items()):
        _event(
            team,
            Action.EXPORTED,
            user,
            f"Export {export_id} for {purpose}: {count} output(s) made under it included.",
            consent=ledger.consents[pk],
        )
    for pk, (problem, count) in sorted(ledger.refused.items()):
        _event(
            team,
            Action.WITHHELD,
            user,
            f"Export {export_id} for {purpose}: {count} output(s) made under it withheld "
            f"({problem}). Nothing was deleted.",
            consent=ledger.consents[pk],
        )
