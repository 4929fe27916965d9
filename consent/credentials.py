"""Content Credentials (C2PA): signing exported files and reading credentials back.

Everything goes through `c2pa-python` (the CAI's maintained bindings of c2pa-rs): the studio
describes the manifest as JSON and the library builds, embeds and signs it; no manifest byte
is written by hand. Formats are the library's (`c2pa.Builder.get_supported_mime_types()`):
PNG, JPEG, WebP, GIF, MP4, WAV and MP3 among them, signed with the manifest embedded. GLB
meshes are not among them (the library has no glTF handler to embed into), so they are signed
the way C2PA provides for any file: a sidecar manifest store (`name.glb.c2pa`) whose hard
binding (`c2pa.hash.data`, no exclusions) covers every byte of the unchanged file; the library
makes it (`Builder.set_no_embed()`) and reads the pair back (`Reader(format, file,
manifest_data)`), and a changed byte fails `assertion.dataHash.mismatch`.

Each team signs with its own certificate chain and key (`SigningCredential`). A team without
one gets a development chain on first use: a root and a signing certificate made here with
`cryptography`. It verifies, but nobody outside the studio trusts it, and the UI says so.

Which signers a team trusts is its trust list (`TrustAnchor`: root certificates an owner adds).
Reading credentials back hands that list to the library (a `c2pa.Context` whose settings set
`trust.trust_anchors`), so the chain is checked by c2pa-rs itself, as any C2PA validator
would check it, never by hand here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from studio.crypto import decrypt, encrypt
from studio.models import Team
from studio.permissions import OWNERS, require_role

from .models import SigningCredential, TrustAnchor

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
STUDIO_ASSERTION = "studio.generation"  # our own assertion: provider, endpoint, consent, review
DEV_ORGANISATION = "Studio development certificate (untrusted)"
ALGORITHMS = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "es384": c2pa.C2paSigningAlg.ES384,
    "ps256": c2pa.C2paSigningAlg.PS256,
}
# MIME types the studio's outputs are stored as → the format word the library takes.
SIGNABLE = {
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/webp": "image/webp",
    "image/gif": "image/gif",
    "video/mp4": "video/mp4",
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/mpeg": "audio/mpeg",
}


# Formats the library cannot embed into: signed with a sidecar manifest store only.
SIDECAR_ONLY = {"model/gltf-binary": "model/gltf-binary"}


def can_sign(mime_type: str) -> bool:
    return mime_type in SIGNABLE or mime_type in SIDECAR_ONLY


def embeds(mime_type: str) -> bool:
    """Return whether the credentials go inside the file (else only in its .c2pa sidecar)."""
    return mime_type in SIGNABLE


# --- the team's signing credential -----------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANISATION),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def development_chain(team_name: str) -> tuple[str, str, x509.Certificate]:
    """Return (chain PEM, key PEM, signing certificate) of a fresh development chain: a root CA
    and a leaf with the key usages C2PA validators ask for (digitalSignature, emailProtection)."""
    now = timezone.now()
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{team_name[:40]} development root")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{team_name[:40]} (development signer)"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return _pem(leaf) + _pem(root), key_pem, leaf


def _describe(credential: SigningCredential, leaf: x509.Certificate) -> None:
    credential.subject = leaf.subject.rfc4514_string()[:300]
    credential.serial_number = str(leaf.serial_number)
    credential.not_after = leaf.not_valid_after_utc


def signing_credential(team: Team) -> SigningCredential:
    """Return the team's signing credential, making a development one on first use."""
    existing = SigningCredential.objects.filter(team=team).first()
    if existing is not None:
        return existing
    chain, key, leaf = development_chain(team.name)
    credential = SigningCredential(
        team=team,
        certificate_chain=chain,
        private_key=encrypt(key),
        algorithm="es256",
        development=True,
    )
    _describe(credential, leaf)
    try:
        with transaction.atomic():
            credential.save()
    except IntegrityError:  # another process made it at the same moment: use theirs
        return SigningCredential.objects.get(team=team)
    return credential


def credential_check(chain_pem: str, key_pem: str) -> tuple[str, x509.Certificate]:
    """Return (algorithm, signing certificate) of an uploaded chain and key; raise
    ValidationError when they cannot sign Content Credentials."""
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        raise ValidationError(
            {"certificate_chain": ["This is not a PEM certificate chain."]}
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValidationError(
            {"private_key": ["This is not an unencrypted PEM private key."]}
        ) from None
    leaf = certs[0]
    if leaf.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValidationError(
            {"private_key": ["This key does not belong to the first certificate of the chain."]}
        )
    if leaf.not_valid_after_utc < timezone.now():
        raise ValidationError({"certificate_chain": ["The signing certificate has expired."]})
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = {"secp256r1": "es256", "secp384r1": "es384"}.get(key.curve.name)
    elif isinstance(key, rsa.RSAPrivateKey):
        algorithm = "ps256"
    else:
        algorithm = None
    if algorithm is None:
        raise ValidationError(
            {"private_key": ["Use an ECDSA P-256 or P-384 key, or an RSA key (PS256)."]}
        )
    return algorithm, leaf


@transaction.atomic
def signing_credential_set(*, team: Team, user: Any, chain_pem: str, key_pem: str) -> Any:
    """Replace the team's signing credential with its own certificate chain and key."""
    from .models import ConsentEvent
    from .services import _event

    algorithm, leaf = credential_check(chain_pem, key_pem)
    credential, _ = SigningCredential.objects.select_for_update().get_or_create(
        team=team, defaults={"private_key": ""}
    )
    credential.certificate_chain = chain_pem.strip() + "\n"
    credential.private_key = encrypt(key_pem)
    credential.algorithm = algorithm
    credential.development = False
    credential.updated_by = user
    _describe(credential, leaf)
    credential.save()
    _event(
        team,
        ConsentEvent.Action.POLICY,
        user,
        f"Content Credentials are now signed by {credential.subject}.",
    )
    return credential


# --- the team's trust list ------------------------------------------------------------------------

TRUST_ANCHORS_MAX = 50


def trust_anchors_check(pem: str) -> list[x509.Certificate]:
    """Return the CA certificates of a pasted PEM (one or a bundle); raise ValidationError
    (on `certificate`) when one cannot anchor a chain."""

    def refuse(message: str) -> ValidationError:
        return ValidationError({"certificate": [message]})

    try:
        certs = x509.load_pem_x509_certificates(pem.strip().encode())
    except ValueError:
        raise refuse(
            "This is not a PEM certificate: paste the text from “-----BEGIN CERTIFICATE-----” "
            "to “-----END CERTIFICATE-----”."
        ) from None
    now = timezone.now()
    for cert in certs:
        name = cert.subject.rfc4514_string() or "the certificate"
        try:
            ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise refuse(
                f"“{name}” is not a CA certificate: add the root certificate that issued "
                "the signing certificate, not the signing certificate itself."
            )
        if cert.not_valid_after_utc < now:
            raise refuse(f"“{name}” expired on {cert.not_valid_after_utc:%Y-%m-%d}.")
    return certs


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


@transaction.atomic
def trust_anchors_add(*, team: Team, user: Any, pem: str) -> list[TrustAnchor]:
    """Add the CA certificate(s) of `pem` to the team's trust list (owners only); raise
    ValidationError when one cannot be added, adding none of them."""
    from .models import ConsentEvent
    from .services import _event

    require_role(user, team, OWNERS, "change the trust list")
    certs = trust_anchors_check(pem)
    Team.objects.select_for_update().filter(pk=team.pk).first()  # one change at a time
    have = set(TrustAnchor.objects.filter(team=team).values_list("fingerprint_sha256", flat=True))
    added = []
    for cert in certs:
        fingerprint = _fingerprint(cert)
        if fingerprint in have:
            raise ValidationError(
                {
                    "certificate": [
                        f"“{cert.subject.rfc4514_string()}” is already on the trust list."
                    ]
                }
            )
        have.add(fingerprint)
        added.append(
            TrustAnchor(
                team=team,
                certificate=_pem(cert),
                subject=cert.subject.rfc4514_string()[:300],
                fingerprint_sha256=fingerprint,
                not_after=cert.not_valid_after_utc,
                added_by=user,
            )
        )
    if len(have) > TRUST_ANCHORS_MAX:
        raise ValidationError(
            {"certificate": [f"A trust list holds at most {TRUST_ANCHORS_MAX} certificates."]}
        )
    TrustAnchor.objects.bulk_create(added)
    for anchor in added:
        _event(
            team,
            ConsentEvent.Action.TRUST,
            user,
            f"Trust list: added {anchor.subject} (SHA-256 {anchor.fingerprint}).",
        )
    return added


@transaction.atomic
def trust_anchor_remove(*, anchor: TrustAnchor, user: Any) -> None:
    """Take a certificate off its team's trust list (owners only)."""
    from .models import ConsentEvent
    from .services import _event

    require_role(user, anchor.team_id, OWNERS, "change the trust list")
    deleted, _ = TrustAnchor.objects.filter(pk=anchor.pk).delete()
    if deleted:
        _event(
            anchor.team,
            ConsentEvent.Action.TRUST,
            user,
            f"Trust list: removed {anchor.subject} (SHA-256 {anchor.fingerprint}).",
        )


@contextlib.contextmanager
def _reading_context(team: Team | None) -> Iterator[c2pa.Context | None]:
    """Yield the library context a team's files are read with: its trust list as the
    library's trust anchors (none: the library's defaults, which trust no studio signer)."""
    anchors = (
        list(TrustAnchor.objects.filter(team=team).values_list("certificate", flat=True))
        if team is not None
        else []
    )
    if not anchors:
        yield None
        return
    settings_ = c2pa.Settings.from_dict({"trust": {"trust_anchors": "\n".join(anchors)}})
    with settings_, c2pa.Context(settings=settings_) as context:
        yield context


# --- signing -------------------------------------------------------------------------------------


def _signer(credential: SigningCredential) -> c2pa.Signer:
    info = c2pa.C2paSignerInfo(
        ALGORITHMS[credential.algorithm],
        credential.certificate_chain.encode(),
        decrypt(credential.private_key).encode(),
        settings.C2PA_TIMESTAMP_URL or None,
    )
    return c2pa.Signer.from_info(info)


def manifest_definition(title: str, generation: dict[str, Any]) -> dict[str, Any]:
    """Return the manifest the library builds: an AI-generated creation, with what made it."""
    return {
        "claim_generator_info": [{"name": "Studio", "version": "1"}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": {
                                "name": f"{generation['provider']} {generation['endpoint']}"
                            },
                        }
                    ]
                },
            },
            {"label": STUDIO_ASSERTION, "data": generation},
        ],
    }


@dataclass
class Signed:
    manifest_store: bytes  # the signed manifest store on its own (a .c2pa sidecar)
    label: str
    embedded: bool = True  # False: the sidecar is the file's only credentials


def sign(
    *,
    team: Team,
    source: IO[bytes],
    dest: IO[bytes],
    mime_type: str,
    title: str,
    generation: dict[str, Any],
) -> Signed:
    """Write the file, signed with a C2PA manifest, into `dest`; raise c2pa.C2paError if it
    cannot be signed. A format the library cannot embed into (GLB) is copied unchanged and
    its credentials are only in the returned manifest store, its sidecar."""
    credential = signing_credential(team)
    embedded = embeds(mime_type)
    fmt = SIGNABLE[mime_type] if embedded else SIDECAR_ONLY[mime_type]
    with (
        _signer(credential) as signer,
        c2pa.Builder(manifest_definition(title, generation)) as builder,
    ):
        if not embedded:
            builder.set_no_embed()
        store = builder.sign(signer, fmt, source, dest)
    dest.seek(0)
    with c2pa.Reader(fmt, dest, None if embedded else store) as reader:
        label = json.loads(reader.json()).get("active_manifest", "")
    dest.seek(0)
    return Signed(store, label, embedded)


# --- reading back ------------------------------------------------------------------------------


@dataclass
class Verification:
    """What a file's credentials say: state is "none", "valid", "invalid", "unreadable", or
    "sidecar" (a GLB dropped without its .c2pa sidecar); a valid one is `trusted` when its
    signing chain leads to the team's trust list."""

    state: str
    message: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    signer: dict[str, str] = field(default_factory=dict)
    development: bool = False
    own_team: bool = False
    trusted: bool = False

    @property
    def assertions(self) -> dict[str, Any]:
        return {a.get("label", ""): a.get("data") for a in self.manifest.get("assertions", [])}

    @property
    def generation(self) -> dict[str, Any]:
        return self.assertions.get(STUDIO_ASSERTION) or {}

    @property
    def actions(self) -> list[dict[str, Any]]:
        for label, data in self.assertions.items():
            if label.startswith("c2pa.actions") and isinstance(data, dict):
                return list(data.get("actions", []))
        return []

    @property
    def ai_generated(self) -> bool:
        return any(a.get("digitalSourceType") == DIGITAL_SOURCE_TYPE for a in self.actions)


MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"glTF", "model/gltf-binary"),
)


def sniff(data: bytes) -> str | None:
    """Return the MIME type of a file the library can read, from its first bytes."""
    for magic, mime in MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def is_manifest_store(data: bytes) -> bool:
    """Return whether `data` looks like a C2PA manifest store (a .c2pa sidecar): a JUMBF
    superbox. The library validates the rest."""
    return len(data) >= 8 and data[4:8] == b"jumb"


def verify(data: bytes, *, team: Team | None = None, sidecar: bytes | None = None) -> Verification:
    """Read a file's Content Credentials back and validate them: those embedded in it, or,
    given `sidecar` (its .c2pa manifest store), those, bound to the file's bytes."""
    mime = sniff(data)
    if mime is None and sidecar is not None:
        # The sidecar's hard binding covers the bytes whatever they are: check them against it.
        mime = "application/octet-stream"
    if mime is None:
        return Verification(
            "unreadable", "This file type cannot carry Content Credentials the studio reads."
        )
    if sidecar is None and mime in SIDECAR_ONLY:
        return Verification(
            "sidecar",
            "A GLB (3D) file cannot carry Content Credentials inside it: they travel beside "
            "it as a .c2pa sidecar (name.glb.c2pa in the export). Drop both files to check "
            "them.",
        )
    try:
        with (
            _reading_context(team) as context,
            c2pa.Reader(mime, io.BytesIO(data), sidecar, context=context) as reader,
        ):
            state = reader.get_validation_state() or ""
            manifest = reader.get_active_manifest() or {}
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in str(exc):
            return Verification("none", "This file carries no Content Credentials.")
        if "could not be parsed" in str(exc):
            return Verification(
                "unreadable", f"The file could not be read as {mime}: it is damaged."
            )
        return Verification("invalid", f"Its credentials cannot be read: {exc}")
    # An untrusted signer (not on the team's trust list, as a development chain is until its
    # root is added) is not tampering: it is reported as the signer's standing, not as a
    # failure. The library says "Trusted" when the chain leads to one of the anchors.
    failures = [
        {"code": f.get("code", ""), "explanation": f.get("explanation", "")}
        for f in (results.get("activeManifest") or {}).get("failure", [])
        if f.get("code") != "signingCredential.untrusted"
    ]
    signer = manifest.get("signature_info") or {}
    development = DEV_ORGANISATION in str(signer.get("issuer", ""))
    own = bool(
        team is not None
        and signer.get("cert_serial_number")
        and SigningCredential.objects.filter(
            team=team, serial_number=signer.get("cert_serial_number")
        ).exists()
    )
    if state.lower() in ("valid", "trusted") and not failures:
        trusted = state.lower() == "trusted"
        return Verification(
            "valid",
            "The credentials are intact: the file has not changed since it was signed."
            + (
                ""
                if trusted
                else " Its signing certificate does not lead to a root on your team’s trust "
                "list, so the studio cannot vouch for who signed it."
            ),
            manifest,
            failures,
            signer,
            development,
            own,
            trusted,
        )
    return Verification(
        "invalid",
        "The file was altered after it was signed, or its credentials are damaged."
        + (" Or the .c2pa sidecar belongs to another file." if sidecar is not None else ""),
        manifest,
        failures,
        signer,
        development,
        own,
    )
