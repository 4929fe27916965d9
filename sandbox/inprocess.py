"""The provider double of the fast test tier: the sandbox, answering in this process.

Chosen by a setting, like Django's locmem mail backend: with
`PROVIDER_TRANSPORT = "sandbox.inprocess.InProcessTransport"` every provider call the studio's
clients make goes through this httpx transport instead of a socket. It hands the request to the
sandbox's own views (the same validation, job states and answers a real HTTP call would get)
inside this process and this database transaction, and keeps each call in `outbox`, so a test
reads what the studio sent. No server, no worker, no network: for service and task tests that
do not need real HTTP. What only real processes show (webhooks pushed over a socket, downloads,
a worker dying) stays with the end-to-end tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

outbox: list[Call] = []


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: str
    json: Any  # the decoded JSON body, or None


class InProcessTransport(httpx.BaseTransport):
    """An httpx transport that answers from the sandbox's views in process."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from django.test import Client  # test support: only ever chosen by a setting in tests

        content = request.read()
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        outbox.append(Call(request.method, request.url.path, request.url.query.decode(), body))
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = Client().generic(
            request.method,
            request.url.raw_path.decode(),
            data=content,
            content_type=request.headers.get("Content-Type", "application/octet-stream"),
            headers=headers,
        )
        return httpx.Response(
            answer.status_code,
            headers=[(k, v) for k, v in answer.items() if k.lower() != "content-length"],
            content=b"".join(answer) if answer.streaming else answer.content,
            request=request,
        )
