"""The consent app's step in building an export (`review.exporting.iter_zip` calls
`export_member` for every approved output): outputs whose consent does not cover what the
export is for (`Purpose`: its intended use and territories; a revoked or expired consent covers
nothing) are withheld, and every file the C2PA library can sign is signed with Content
Credentials saying it is AI-generated, what made it, the consent it was made under and who
approved it when.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import c2pa
from django.db.models import QuerySet

from jobs.models import Output

from . import credentials
from .models import Consent, ConsentUse, Usage
from .services import covers, territories_format, territories_parse

log = logging.getLogger(__name__)

# Columns the manifest gains: what the export was for (the same on every row), the consent(s)
# an output was made under, why it was withheld, and where its Content Credentials are (the
# embedded manifest's label and the sidecar copy).
MANIFEST_FIELDS = (
    "export_use",
    "export_territories",
    "consent",
    "withheld",
    "content_credentials",
    "c2pa_manifest",
)
SPOOL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Purpose:
    """What an export is for: its intended use, and the territories (none: worldwide)."""

    usage: str = Usage.INTERNAL
    territories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.usage not in Usage.values:
            raise ValueError(f"unknown usage {self.usage!r}")

    @classmethod
    def of(cls, export: Any) -> Purpose:
        """Return the purpose an export was recorded with."""
        return cls(export.usage, tuple(territories_parse(export.territories, strict=False)))

    @property
    def where(self) -> str:
        return territories_format(self.territories) or "worldwide"

    @property
    def label(self) -> str:
        """E.g. "commercial use in EU, UK" or "internal use, worldwide"."""
        if self.territories:
            return f"{self.usage} use in {self.where}"
        return f"{self.usage} use, worldwide"


def withholding(consents: Sequence[Consent], purpose: Purpose) -> list[tuple[Consent, str]]:
    """Return each consent (of one output) that does not cover `purpose`, with why: the
    output is withheld when any does."""
    problems = []
    for consent in consents:
        if problem := covers(consent, usage=purpose.usage, territories=purpose.territories):
            problems.append((consent, problem))
    return problems


def withheld_reason(problems: Sequence[tuple[Consent, str]]) -> str:
    return "; ".join(f"{c.subject} (consent {c.pk}): {problem}" for c, problem in problems)


@dataclass
class Ledger:
    """What one export did with the consents of its outputs: the export's record (`withheld`)
    and its audit rows (`consent.services.consent_export_record`) are written from it."""

    purpose: Purpose
    withheld: list[dict[str, Any]] = field(default_factory=list)  # output, job, file, reason
    consents: dict[int, Consent] = field(default_factory=dict)
    included: Counter[int] = field(default_factory=Counter)  # consent → outputs in the archive
    refused: dict[int, tuple[str, int]] = field(default_factory=dict)  # consent → (why, outputs)

    def note(
        self,
        output: Output,
        name: str,
        consents: Sequence[Consent],
        problems: Sequence[tuple[Consent, str]],
    ) -> None:
        for consent in consents:
            self.consents[consent.pk] = consent
        if not problems:
            self.included.update(c.pk for c in consents)
            return
        self.withheld.append(
            {
                "output_id": output.pk,
                "job_id": output.job_id,
                "file": name,
                "reason": withheld_reason(problems),
            }
        )
        for consent, problem in problems:
            _, count = self.refused.get(consent.pk, (problem, 0))
            self.refused[consent.pk] = (problem, count + 1)


def plan(outputs: Sequence[Output], purpose: Purpose) -> Ledger:
    """Return what an export of `outputs` for `purpose` withholds, without building it (one
    query): for an export streamed at once, whose record is written before it is sent."""
    by_job: dict[int, list[Consent]] = {}
    for use in ConsentUse.objects.filter(job_id__in=[o.job_id for o in outputs]).select_related(
        "consent", "consent__recorded_by"
    ):
        by_job.setdefault(use.job_id, []).append(use.consent)
    ledger = Ledger(purpose)
    for output in outputs:
        consents = by_job.get(output.job_id, [])
        ledger.note(output, output.human_name, consents, withholding(consents, purpose))
    return ledger


@dataclass
class Member:
    """What goes into the archive for one output: its (signed) file, or nothing when withheld,
    plus extra archive members (the .c2pa sidecar)."""

    source: IO[bytes] | None
    extra: list[tuple[str, bytes]] = field(default_factory=list)


def _consents(output: Output) -> list[Any]:
    uses = output.job.consent_uses.select_related("consent", "consent__recorded_by")
    return [use.consent for use in uses]


def generation_record(output: Output, consents: list[Any]) -> dict[str, Any]:
    """Return the studio's assertion: provider, endpoint, profile version, consent, review."""
    job = output.job
    review = getattr(output, "review", None)
    version = job.profile_version
    return {
        "provider": job.provider,
        "endpoint": job.endpoint,
        "endpoint_label": job.spec.label,
        "provider_job_id": job.provider_job_id,
        "studio_job_id": job.pk,
        "profile": job.profile.name if job.profile_id and job.profile else None,
        "profile_version": version.number if version else None,
        "consent": [
            {
                "id": c.pk,
                "subject": c.subject,
                "operations": c.operations,
                "usage": c.usage,
                "territories": c.territories or "worldwide",
                "expires_on": c.expires_on.isoformat() if c.expires_on else None,
                "recorded_by": c.recorded_by.get_username() if c.recorded_by else None,
                "document_sha256": c.document_sha256,
            }
            for c in consents
        ],
        "approved_by": review.decided_by.get_username() if review and review.decided_by else None,
        "approved_at": review.decided_at.isoformat() if review and review.decided_at else None,
        "generated_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def export_member(output: Output, row: dict[str, Any], ledger: Ledger) -> Member:
    """Return the archive member of one approved output, filling the manifest row's consent
    and credentials columns (and its size and digest, when signing changed the file); an
    output whose consent does not cover the export's purpose is withheld (noted in `ledger`).

    Raises FileNotFoundError when the stored file is missing, as opening it would.
    """
    consents = _consents(output)
    row["export_use"] = ledger.purpose.usage
    row["export_territories"] = ledger.purpose.where
    row["consent"] = "; ".join(f"{c.subject} (consent {c.pk})" for c in consents)
    row["withheld"] = ""
    row["content_credentials"] = ""
    row["c2pa_manifest"] = ""
    if problems := withholding(consents, ledger.purpose):
        ledger.note(output, row["file"], consents, problems)
        row["withheld"] = withheld_reason(problems)
        return Member(None)
    source = output.file.open("rb")
    ledger.note(output, row["file"], consents, ())
    if not credentials.can_sign(output.mime_type):
        row["content_credentials"] = f"not supported for {output.mime_type}"
        return Member(source)
    signed_file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    try:
        with source:
            signed = credentials.sign(
                team=output.team,
                source=source,
                dest=signed_file,
                mime_type=output.mime_type,
                title=row["file"].rsplit("/", 1)[-1],
                generation=generation_record(output, consents),
            )
    except c2pa.C2paError as exc:
        signed_file.close()
        if output.kind == "image":  # an image never leaves unsigned
            raise
        log.warning("export: output %s could not be signed: %s", output.pk, exc)
        row["content_credentials"] = f"not signed: {exc}"[:300]
        return Member(output.file.open("rb"))
    except Exception:
        signed_file.close()
        raise
    digest = hashlib.sha256()
    size = 0
    while piece := signed_file.read(64 * 1024):
        digest.update(piece)
        size += len(piece)
    signed_file.seek(0)
    # The C2PA convention: a sidecar manifest store next to the file, same name, `.c2pa`. A
    # GLB's sidecar is its only credentials: `name.glb.c2pa`, so the pair reads as one.
    stem = row["file"] if not signed.embedded else row["file"].rsplit(".", 1)[0]
    sidecar = f"{stem}.c2pa"
    row["size_bytes"] = size
    row["sha256"] = digest.hexdigest()
    row["content_credentials"] = sidecar
    row["c2pa_manifest"] = signed.label
    return Member(signed_file, [(sidecar, signed.manifest_store)])


def lapsed_outputs(outputs: QuerySet[Output]) -> list[int]:
    """Return the ids, among `outputs`, of those made under a revoked or expired consent: an
    export selection that contains them is not the one built before the consent lapsed."""
    lapsed = Consent.objects.lapsed()
    return sorted(
        outputs.filter(job__consent_uses__consent__in=lapsed)
        .values_list("pk", flat=True)
        .distinct()
    )
