"""Live event streams (`studio.streams`): one render per team, each user's own star, a resync
after a reconnect, a removed member's stream ended, and no thread or DB connection per stream."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from django.test import Client

from jobs.models import Job
from review import services as review_services
from studio import streams
from studio.live import publish
from studio.models import Membership, Role, Team

from . import factories
from .stack import Stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def session_of(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Reader:
    """An SSE stream read in a thread; `headers` are sent with the request."""

    def __init__(self, url: str, session: str, **headers: str) -> None:
        self.lines: list[str] = []
        self.closed = threading.Event()
        self._client = httpx.Client(
            base_url=url, cookies={"sessionid": session}, timeout=httpx.Timeout(10, read=60)
        )
        self._headers = headers
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: any(line.startswith("retry:") for line in self.lines), timeout=10)

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/events/", headers=self._headers) as response:
                for line in response.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError:
            pass
        finally:
            self.closed.set()

    def text(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        self._client.close()


def test_a_job_event_is_rendered_once_with_each_users_own_bits(team: Team, editor: Any) -> None:
    """One render per variant (starred or not, may start jobs or not), each member their own."""
    reviewer = factories.member(team, Role.REVIEWER)
    output = factories.completed_output(team, editor)
    review_services.star_set(user=reviewer, outputs=[output], starred=True)

    messages, members = streams.team_messages(team.pk, {"event": "job", "job_id": output.job_id})

    owner = factories.owner_of(team)
    assert members == {owner.pk, editor.pk, reviewer.pk}
    message, toast = messages  # the card, and the "job done" toast for who started it
    assert toast.name == "job-done" and toast.for_user(editor.pk) is not None
    assert toast.for_user(owner.pk) is None and toast.for_user(reviewer.pk) is None
    assert message.name == f"job-{output.job_id}"
    assert len(message.variants) == 2  # owner and editor see the same card
    assert message.for_user(owner.pk) == message.for_user(editor.pk)
    mine, theirs = message.for_user(editor.pk), message.for_user(reviewer.pk)
    assert mine is not None and theirs is not None
    assert 'aria-pressed="true"' in theirs and 'aria-pressed="false"' in mine
    assert streams.Message.for_user(message, 10**9) is None  # not a member: nothing


def test_reconnecting_with_last_event_id_resyncs_cards_changed_meanwhile(
    live: Stack, team: Team, editor: Any
) -> None:
    before = str(time.time_ns() // 1000 - 10_000_000)  # as if the stream dropped 10 s ago
    output = factories.completed_output(team, editor, prompt="missed while away")
    reader = Reader(live.url, session_of(editor), **{"Last-Event-ID": before})
    try:
        wait_for(lambda: "missed while away" in reader.text(), message="no resync")
        assert f"event: job-{output.job_id}" in reader.text()
    finally:
        reader.close()


def test_a_stream_carries_ids_and_ends_when_its_user_leaves_the_team(
    live: Stack, team: Team, editor: Any
) -> None:
    job = factories.completed_output(team, editor).job
    reader = Reader(live.url, session_of(editor))
    try:
        publish(team.pk, "job", job_id=job.pk)
        wait_for(lambda: f"event: job-{job.pk}" in reader.text(), message="no event")
        assert any(line.startswith("id: ") for line in reader.lines)
        Membership.objects.filter(team=team, user=editor).delete()
        publish(team.pk, "job", job_id=job.pk)
        assert reader.closed.wait(10), "the former member's stream stayed open"
        assert reader.text().count(f"event: job-{job.pk}") == 1
    finally:
        reader.close()


def test_idle_streams_hold_no_thread_of_their_own(live: Stack, team: Team, editor: Any) -> None:
    """Twenty open streams add no thread to the web process (each is an asyncio queue)."""
    pid = live.processes["web"].pid

    def threads() -> int:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("Threads:"))

    session = session_of(editor)
    warm = Reader(live.url, session)  # the first stream starts the hub and the thread pool
    readers: list[Reader] = []
    try:
        publish(team.pk, "job", job_id=0)
        baseline = threads()
        readers = [Reader(live.url, session) for _ in range(20)]
        assert threads() <= baseline + 2
        assert Job.objects.count() == 0
    finally:
        for reader in [warm, *readers]:
            reader.close()
