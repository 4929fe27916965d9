"""Logs never carry secrets: every log line this test run produced — the stack's log files
(var/test-logs), the records logged in the test process, runstudio's output — is searched for
every callback token a provider was given during the run. It runs last (see conftest)."""

from __future__ import annotations

import re
import secrets
import sys
from typing import Any

import httpx
import pytest

from jobs import catalog, services
from jobs.models import Job
from studio.models import Team

from .conftest import ISSUED_TOKENS, logs_written_this_run, record_issued_tokens, wait_job
from .stack import Stack, free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# A webhook path whose token was not replaced (independent of the studio's own pattern).
UNREDACTED = re.compile(r"(?:\\?/)webhooks(?:\\?/)[\w-]+(?:\\?/)(?!\[redacted\])[^/\s\"'\\?#&]+")


def _debug_web_server(live: Stack) -> str:
    """A second web process as `DEBUG=1 make run` would start it (local settings), its access
    log at INFO: Django's own console handler then prints "Not Found: <path>", the classic
    leak."""
    port = free_port()
    original = live.env
    live.env = {**live.env, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "studio.settings.local"}
    try:
        live.start(
            "web-debug",
            [
                sys.executable, "-m", "uvicorn", "studio.asgi:application",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
            ],
        )  # fmt: skip
    finally:
        live.env = original
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout=30, message="the DEBUG web server did not start")
    return url


def test_no_log_line_carries_a_webhook_token(live: Stack, team: Team, editor: Any) -> None:
    # Real callback tokens: jobs the sandbox calls back (access log lines for their webhooks).
    jobs = [
        services.job_create(
            team=team, user=editor, endpoint=catalog.get("text-to-image"), params={"prompt": p}
        )
        for p in ("log scan one", "log scan two")
    ]
    for job in jobs:
        assert wait_job(job).status == Job.Status.COMPLETED
    record_issued_tokens()
    assert len(ISSUED_TOKENS) >= 2

    debug_url = _debug_web_server(live)
    try:
        forged = secrets.token_urlsafe(32)
        ISSUED_TOKENS.add(forged)
        real = sorted(ISSUED_TOKENS - {forged})[0]
        for url in (live.url, debug_url):
            for token in (real, forged):
                hook = f"{url}/webhooks/imagepipeline/{token}/"
                httpx.post(hook, json={"status": "completed"}, timeout=10)  # 200 or 404
                httpx.post(hook, content=b"not json", timeout=10)  # 400: "Bad Request: <path>"
                httpx.get(hook, timeout=10)  # 405
        # The requests above are logged by the time their answers came back; the access log
        # of the DEBUG server too (it writes before it answers).
    finally:
        live.stop("web-debug")

    leaks = []
    for source, text in logs_written_this_run().items():
        for number, line in enumerate(text.splitlines(), 1):
            found = [t for t in ISSUED_TOKENS if t in line]
            unredacted = [m.group(0) for m in UNREDACTED.finditer(line)]
            if found or unredacted:
                leaks.append(f"{source}:{number}: {line[:300]}")
    assert not leaks, f"{len(leaks)} log lines carry a webhook token:\n" + "\n".join(leaks[:20])
    # The scan saw the webhook requests, redacted.
    assert any(
        re.search(r"/webhooks/imagepipeline/\[redacted\]", text)
        for text in logs_written_this_run().values()
    )


test_no_log_line_carries_a_webhook_token.run_last = True  # type: ignore[attr-defined]
