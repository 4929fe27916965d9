"""The team's trust list: root certificates an owner adds in Consent → Policy and signing.

The Verify page reads a file signed by a chain up to one of them as signed by a certificate the
team trusts, any other intact signature as valid but not on the trust list, and the studio's
development certificate as untrusted until its root is on the list. The chain is checked by
the C2PA library (its `trust.trust_anchors` setting), not by the studio.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consent import credentials
from consent.models import ConsentEvent, TrustAnchor
from studio.models import Role, Team

from . import factories
from .test_consent import png
from .test_consent_use import field_block

pytestmark = pytest.mark.django_db

GENERATION = {"provider": "imagepipeline", "endpoint": "face-swap"}


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def owner(acme: Team) -> Any:
    return factories.owner_of(acme)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ca(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Certificate, Any] | None
) -> x509.Certificate:
    now = timezone.now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_cert, signer_key = issuer if issuer else (None, key)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(signer_key, hashes.SHA256())
    )


def company_chain(company: str) -> tuple[str, str, str]:
    """Return (chain PEM: signer then intermediate, key PEM, root PEM) of a company's PKI:
    a root, an intermediate CA and a signing certificate, the way a real one is laid out
    (the root is not in the chain a file carries)."""
    root_key, mid_key, key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _ca(f"{company} Root CA", root_key, None)
    mid = _ca(f"{company} Issuing CA", mid_key, (root, root_key))
    now = timezone.now()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{company} Studio")]))
        .issuer_name(mid.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(mid_key.public_key()), False
        )
        .sign(mid_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return _pem(leaf) + _pem(mid), key_pem, _pem(root)


def signed_png(team: Team) -> bytes:
    out = io.BytesIO()
    credentials.sign(
        team=team,
        source=io.BytesIO(png()),
        dest=out,
        mime_type="image/png",
        title="out.png",
        generation=GENERATION,
    )
    return out.getvalue()


def add_to_trust_list(client: Client, pem: str) -> Any:
    return client.post(reverse("consent:settings"), {"form": "trust", "certificate": pem})


def verify_page(client: Client, data: bytes) -> str:
    upload = SimpleUploadedFile("file.png", data, "image/png")
    response = client.post(reverse("consent:verify"), {"file": upload})
    assert response.status_code == 200
    return response.content.decode()


def test_a_file_signed_by_a_chain_whose_root_is_on_the_list_reads_back_trusted(
    acme: Team, owner: Any
) -> None:
    chain, key, root = company_chain("Acme")
    credentials.signing_credential_set(team=acme, user=owner, chain_pem=chain, key_pem=key)
    data = signed_png(acme)
    client = Client()
    client.force_login(owner)
    before = credentials.verify(data, team=acme)
    assert before.state == "valid" and not before.trusted  # nothing on the list yet

    response = add_to_trust_list(client, root)

    assert response.status_code == 302
    result = credentials.verify(data, team=acme)
    assert result.state == "valid" and result.trusted and result.failures == []
    page = verify_page(client, data)
    assert "Signed by a certificate your team trusts" in page and "on your trust list" in page
    anchor = TrustAnchor.objects.get(team=acme)
    assert anchor.subject == "CN=Acme Root CA" and anchor.added_by == owner
    assert ConsentEvent.objects.filter(
        team=acme, action="trust", message__contains="added CN=Acme Root CA"
    ).exists()
    # Still a check of the file: a changed byte is altered, trusted signer or not.
    altered = bytearray(data)
    altered[data.index(b"IDAT") + 8] ^= 0x01
    assert credentials.verify(bytes(altered), team=acme).state == "invalid"


def test_a_file_whose_root_is_not_on_the_list_reads_back_untrusted(acme: Team, owner: Any) -> None:
    chain, key, _root = company_chain("Acme")
    credentials.signing_credential_set(team=acme, user=owner, chain_pem=chain, key_pem=key)
    data = signed_png(acme)
    _, _, other_root = company_chain("Globex")
    client = Client()
    client.force_login(owner)
    assert add_to_trust_list(client, other_root).status_code == 302

    result = credentials.verify(data, team=acme)

    assert result.state == "valid" and not result.trusted and result.failures == []
    page = verify_page(client, data)
    assert "Valid signature, certificate not on your trust list" in page
    assert "does not lead to a root on your team’s trust list" in page


def test_the_development_certificate_stays_untrusted_unless_its_root_is_added(
    acme: Team, owner: Any
) -> None:
    data = signed_png(acme)  # the development chain, made on first use
    client = Client()
    client.force_login(owner)
    page = verify_page(client, data)
    assert "Valid signature, certificate not on your trust list" in page
    assert "development certificate: untrusted" in page
    _, _, other_root = company_chain("Globex")
    add_to_trust_list(client, other_root)
    assert not credentials.verify(data, team=acme).trusted  # another root: still untrusted

    dev_root = x509.load_pem_x509_certificates(
        credentials.signing_credential(acme).certificate_chain.encode()
    )[-1]
    assert add_to_trust_list(client, _pem(dev_root)).status_code == 302

    assert credentials.verify(data, team=acme).trusted
    page = verify_page(client, data)
    assert "Signed by a certificate your team trusts" in page
    assert "development certificate: untrusted" not in page
    # Taken off the list again: untrusted again, and the audit trail says so.
    anchor = TrustAnchor.objects.get(team=acme, subject__contains="development root")
    response = client.post(
        reverse("consent:settings"), {"form": "trust_remove", "anchor": anchor.pk}
    )
    assert response.status_code == 302
    assert not credentials.verify(data, team=acme).trusted
    assert ConsentEvent.objects.filter(team=acme, action="trust", message__contains="removed")


def test_one_teams_trust_list_is_its_own(acme: Team, owner: Any) -> None:
    chain, key, root = company_chain("Acme")
    credentials.signing_credential_set(team=acme, user=owner, chain_pem=chain, key_pem=key)
    data = signed_png(acme)
    credentials.trust_anchors_add(team=acme, user=owner, pem=root)
    globex = factories.team(name="Globex")

    assert credentials.verify(data, team=acme).trusted
    assert not credentials.verify(data, team=globex).trusted


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("not a certificate", "This is not a PEM certificate"),
        ("signer", "is not a CA certificate: add the root certificate"),
        ("twice", "is already on the trust list"),
    ],
)
def test_a_bad_certificate_is_refused_next_to_the_field(
    pem: str, message: str, acme: Team, owner: Any
) -> None:
    chain, _key, root = company_chain("Acme")
    if pem == "signer":
        pem = chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    elif pem == "twice":
        credentials.trust_anchors_add(team=acme, user=owner, pem=root)
        pem = root
    client = Client()
    client.force_login(owner)
    count = TrustAnchor.objects.count()

    response = add_to_trust_list(client, pem)

    assert response.status_code == 422
    block = field_block(response.content.decode(), 'id="id_certificate"')
    assert "has-error" in block and message in block.replace("&#x27;", "'")
    assert TrustAnchor.objects.count() == count


def test_only_owners_change_the_trust_list(acme: Team, owner: Any) -> None:
    _, _, root = company_chain("Acme")
    editor = factories.member(acme, Role.EDITOR)
    client = Client()
    client.force_login(editor)

    assert add_to_trust_list(client, root).status_code == 403
    with pytest.raises(PermissionDenied, match="Only owners can change the trust list"):
        credentials.trust_anchors_add(team=acme, user=editor, pem=root)
    assert not TrustAnchor.objects.exists()
