"""Hostile input: SSRF URLs, forged and replayed webhooks, secrets, rate limits, headers."""

from __future__ import annotations

import http.server
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from jobs import catalog, fetch, services
from jobs.models import Job, WebhookDelivery
from studio import crypto
from studio.models import Role, Team
from studio.services import secrets_rotate, team_set_provider_key

from . import factories
from .conftest import wait_job
from .stack import LOG_DIR, Stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PRIVATE_URLS = [
    "http://127.0.0.1/x.png",
    "http://2130706433/x.png",  # decimal 127.0.0.1
    "http://0x7f.0.0.1/x.png",  # hex
    "http://0177.0.0.1/x.png",  # octal
    "http://127.1/x.png",  # short form
    "http://[::1]/x.png",
    "http://[::ffff:127.0.0.1]/x.png",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/latest/meta-data",  # 169.254.169.254 mapped
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://10.0.0.7/x.png",
    "http://172.16.5.4/x.png",
    "http://192.168.1.1/x.png",
    "http://100.64.0.1/x.png",  # carrier-grade NAT
    "http://[fd00::1]/x.png",  # unique local IPv6
    "http://[fe80::1]/x.png",  # link-local IPv6
    "http://0.0.0.0/x.png",
    "http://224.0.0.1/x.png",  # multicast
    "http://localhost/x.png",
    "http://LOCALHOST./x.png",
]


def fake_resolver(mapping: dict[str, list[str]]) -> Any:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in mapping:
            raise fetch.FetchError(f"{host} unknown", retryable=True)
        return mapping[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_guard_refuses_non_public_addresses_in_any_encoding(url: str) -> None:
    guard = fetch.Guard(resolver=fake_resolver({"localhost": ["127.0.0.1"]}))
    with pytest.raises(fetch.UnsafeURL):
        guard.check(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.png", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("gopher://example.com/", "Only http and https"),
        ("http://user:secret@example.com/a.png", "credentials"),
        ("http://example.com:22/a.png", "Port 22"),
        ("http:///a.png", "no host"),
    ],
)
def test_guard_refuses_odd_urls(url: str, reason: str) -> None:
    guard = fetch.Guard(resolver=fake_resolver({"example.com": ["93.184.216.34"]}))
    with pytest.raises(fetch.UnsafeURL, match=reason):
        guard.check(url)


def test_dns_names_resolving_to_private_addresses_are_refused() -> None:
    guard = fetch.Guard(resolver=fake_resolver({"cdn.evil.test": ["93.184.216.34", "10.1.2.3"]}))
    with pytest.raises(fetch.UnsafeURL, match=r"10\.1\.2\.3"):
        guard.check("https://cdn.evil.test/out.png")


def test_connection_is_pinned_to_the_checked_address() -> None:
    resolver = fake_resolver({"cdn.example": ["93.184.216.34"]})
    target = fetch.Guard(resolver=resolver).check("https://cdn.example/o/1.png?sig=abc")
    # Requested by its name (Host, SNI, certificate), connected to the checked address.
    assert target.url == "https://cdn.example/o/1.png?sig=abc"
    assert (target.name, target.address) == ("cdn.example", "93.184.216.34")
    assert resolver.calls == ["cdn.example"]  # resolved once, never again for the request


@pytest.fixture
def redirecting_server() -> Iterator[str]:
    """A file server on 127.0.0.2 that redirects to a loopback address on 127.0.0.1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/secret")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_port}"
    server.shutdown()


def test_every_redirect_is_checked_again(redirecting_server: str, tmp_path: Any) -> None:
    # Treat 127.0.0.2 as if it were public, to stand in for a public server that redirects.
    guard = fetch.Guard(
        allowed_ports=[int(redirecting_server.rsplit(":", 1)[1]), 9],
        is_allowed_address=lambda a: str(a) == "127.0.0.2",
    )
    with pytest.raises(fetch.UnsafeURL, match=r"127\.0\.0\.1"):
        fetch.download(f"{redirecting_server}/file.png", max_bytes=1000, guard=guard)


@pytest.mark.parametrize("url", [*PRIVATE_URLS[:6], "http://files.internal/a.png"])
def test_private_urls_are_refused_on_the_form(editor_client: Client, url: str) -> None:
    endpoint = catalog.get("face-swap")
    data = {"source": url, "target": "https://example.com/b.png"}
    response = editor_client.post(reverse("jobs:new", args=[endpoint.key]), data)
    assert response.status_code == 422
    assert "public" in response.context["form"].errors["source"][0]
    assert not Job.objects.exists()


def test_result_download_with_wrong_content_type_is_refused(live: Stack) -> None:
    # The sandbox's result route answers text/plain for a bad signature: not an image.
    url = f"{live.url}/sandbox/imagepipeline/files/job_x.webp?expires=1&signature=x"
    with pytest.raises(fetch.FetchError):
        fetch.download(url, max_bytes=10_000, content_types=("image/",))


def test_forged_webhooks_are_refused_and_tokens_never_logged(
    live: Stack, team: Team, editor: Any
) -> None:
    token = "leaky-token-do-not-log-0123456789"
    response = httpx.post(
        f"{live.url}/webhooks/imagepipeline/{token}/", json={"status": "completed"}
    )
    assert response.status_code == 404
    big = httpx.post(
        f"{live.url}/webhooks/imagepipeline/{token}/", content=b"{" + b" " * 70_000 + b"}"
    )
    assert big.status_code == 413
    assert not WebhookDelivery.objects.exists()
    wait_for(lambda: "[redacted]" in (LOG_DIR / "web.log").read_text(errors="replace"))
    assert token not in (LOG_DIR / "web.log").read_text(errors="replace")


def test_team_api_key_is_encrypted_write_only_and_used(
    live: Stack, team: Team, editor: Any
) -> None:
    team_set_provider_key(
        team=team,
        actor=factories.owner_of(team),
        provider="imagepipeline",
        key=settings.SANDBOX_API_KEY,
    )
    team.refresh_from_db()
    assert settings.SANDBOX_API_KEY not in team.imagepipeline_key
    assert team.provider_key("imagepipeline") == settings.SANDBOX_API_KEY
    owner = Client()
    owner.force_login(factories.owner_of(team))
    page = owner.get(reverse("team_settings")).content.decode()
    assert settings.SANDBOX_API_KEY not in page and "Saved (••••" in page

    ok = wait_job(
        services.job_create(
            team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "a"}
        )
    )
    assert ok.status == Job.Status.COMPLETED

    team_set_provider_key(
        team=team, actor=factories.owner_of(team), provider="imagepipeline", key="wrong-key-12345"
    )
    refused = wait_job(
        services.job_create(
            team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "b"}
        )
    )
    assert refused.status == Job.Status.FAILED
    assert "API key" in refused.error and "wrong-key-12345" not in refused.error


def test_secret_rotation_keeps_old_values_readable(team: Team, settings: Any) -> None:
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    team_set_provider_key(
        team=team, actor=factories.owner_of(team), provider="imaginepro", key="pro-key-abcdef"
    )
    old_token = Team.objects.get(pk=team.pk).imaginepro_key
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert Team.objects.get(pk=team.pk).provider_key("imaginepro") == "pro-key-abcdef"
    assert secrets_rotate() == 1
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    rotated = Team.objects.get(pk=team.pk)
    assert rotated.imaginepro_key != old_token
    assert rotated.provider_key("imaginepro") == "pro-key-abcdef"
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretUnreadable):
        Team.objects.get(pk=team.pk).provider_key("imaginepro")


def test_login_is_rate_limited(settings: Any, team: Team) -> None:
    settings.LOGIN_RATE = (3, 60)
    user = factories.member(team, Role.EDITOR)
    # An address of its own: the counters live in Redis, shared with the other tests' logins.
    client = Client(REMOTE_ADDR=f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}")
    codes = [
        client.post(reverse("login"), {"username": user.username, "password": "nope"}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    refused = client.post(
        reverse("login"), {"username": user.username, "password": "pw-for-tests-only"}
    )
    assert refused.status_code == 429 and "Too many sign-in attempts" in refused.content.decode()


def test_job_submission_is_rate_limited_without_losing_the_form(
    settings: Any, editor_client: Client
) -> None:
    settings.SUBMIT_RATE = (2, 60)
    url = reverse("jobs:new", args=["text-to-image"])
    assert [editor_client.post(url, {"prompt": f"p{i}"}).status_code for i in range(2)] == [
        302,
        302,
    ]
    third = editor_client.post(url, {"prompt": "keep this prompt"})
    assert third.status_code == 429
    assert "keep this prompt" in third.content.decode()
    assert Job.objects.count() == 2


def test_pages_carry_a_csp_without_inline_scripts(live: Stack, editor_client: Client) -> None:
    for url in ("/", "/jobs/new/image-edit/", "/catalog/", "/team/", "/accounts/login/"):
        response = editor_client.get(url)
        csp = response["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]+)", csp).group(1)
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        # WebAssembly only (model-viewer's Draco/Meshopt decoders), nothing more.
        assert script_src.split() == ["'self'", "'wasm-unsafe-eval'"]
        html = response.content.decode()
        inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert inline == [], (url, inline)
        assert not re.search(r"<[^>]+\son[a-z]+=", html), url  # no inline event handlers


def test_htmx_requests_need_the_csrf_token(live: Stack, editor_client: Client) -> None:
    client = Client(enforce_csrf_checks=True)
    client.cookies = editor_client.cookies
    response = client.post(
        reverse("jobs:new", args=["text-to-image"]), {"prompt": "x"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_healthz_reports_database_redis_and_worker(live: Stack) -> None:
    def healthy() -> dict[str, Any] | None:
        body = httpx.get(f"{live.url}/healthz").json()
        return body if body["status"] == "ok" else None

    body = wait_for(healthy, timeout=20)
    assert body == {"status": "ok", "database": "ok", "redis": "ok", "worker": "ok"}


ODD_NUMBERS = ["²", "9" * 5000, "-1", "1.5", "0x10", "١٢"]  # superscript, huge, Arabic digits


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_odd_numbers_in_ids_and_cursors_never_cause_a_500(editor_client: Client, odd: str) -> None:
    gets = [
        f"/?after=1.{odd}",
        f"/?after={odd}.1",
        f"/?profile={odd}",
        f"/?batch={odd}",
        f"/review/activity/?before={odd}.0",
        f"/review/compare/?a={odd}&b=1",
        f"/jobs/new/text-to-image/?from={odd}",
        f"/casting/new/?profile={odd}",
    ]
    for url in gets:
        assert editor_client.get(url).status_code < 500, url
    posts = [
        ("/teams/switch/", {"team": odd}),
        ("/review/bulk/", {"action": "star", "outputs": [odd], "board": odd}),
        ("/casting/new/", {"endpoint": "text-to-image", "prompt": "p", "seeds": odd}),
        ("/profiles/job-preview/", {"profile_id": odd, "prompt": "p"}),
    ]
    for url, data in posts:
        assert editor_client.post(url, data).status_code < 500, url


def test_admin_login_is_rate_limited_too(settings: Any, team: Team) -> None:
    settings.LOGIN_RATE = (3, 60)
    admin = factories.user()
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = Client(REMOTE_ADDR=f"10.78.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}")
    codes = [
        client.post("/admin/login/", {"username": admin.username, "password": "no"}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    right = client.post(
        "/admin/login/", {"username": admin.username, "password": "pw-for-tests-only"}
    )
    assert right.status_code == 429


def test_run_again_counts_against_the_submission_limit(
    live: Stack, settings: Any, editor_client: Client, team: Team, editor: Any
) -> None:
    job = wait_job(
        services.job_create(
            team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "r"}
        )
    )
    settings.SUBMIT_RATE = (2, 60)
    # The first job counted too (every job_create does); start the re-runs from a clean count.
    bucket = int(time.time()) // 60
    cache.delete_many([f"ratelimit:submit:{editor.pk}:{b}" for b in (bucket - 1, bucket)])
    for _ in range(4):
        editor_client.post(reverse("jobs:rerun", args=[job.pk]))
    assert Job.objects.filter(parent=job).count() == 2


def test_a_result_that_is_not_the_promised_kind_fails_the_job(
    live: Stack, sandbox: Any, team: Team, editor: Any
) -> None:
    sandbox(force_mode="malformed", force_count=5, force_scope="download")
    job = wait_job(
        services.job_create(
            team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": "m"}
        )
    )
    assert job.status == Job.Status.FAILED
    assert "Expected image/" in job.error


def test_chunked_webhook_bodies_are_capped_too(live: Stack) -> None:
    def body() -> Any:
        yield b'{"status": "completed", "pad": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    response = httpx.post(f"{live.url}/webhooks/imagepipeline/some-token/", content=body())
    assert response.status_code == 413


def test_the_sandbox_calls_back_only_the_studio(live: Stack) -> None:
    from sandbox.models import SandboxJob

    api = httpx.Client(
        base_url=f"{live.url}/sandbox/imagepipeline",
        headers={"X-API-Key": settings.SANDBOX_API_KEY},
    )
    job_id = api.post(
        "/generate/image/v1", json={"prompt": "x", "callback_url": "http://10.0.0.1/hook"}
    ).json()["job_id"]
    wait_for(lambda: api.get(f"/generate/image/v1/status/{job_id}").json()["status"] == "completed")
    time.sleep(0.5)
    assert SandboxJob.objects.get(pk=job_id).webhook_attempts == 0
