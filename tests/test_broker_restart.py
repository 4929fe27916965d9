"""The Celery worker survives its broker going away: the kombu sequence Celery 5.7 runs on a
lost connection (collect, then close) against a real Redis that stopped while a BRPOP was in
flight and a message was unacknowledged. See studio/kombu_fixes.py for the root cause."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection, Queue

from studio import kombu_fixes
from studio.embedded import EmbeddedRedis


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.stop()


def _connection_with_unacked_message_and_brpop_in_flight(url: str) -> Connection:
    connection = Connection(url)
    queue = Queue("broker-restart-test")
    with connection.Producer() as producer:
        producer.publish({"n": 1}, routing_key=queue.name, declare=[queue])
    received = []
    channel = connection.default_channel
    consumer = connection.Consumer(
        [queue], channel=channel, callbacks=[lambda b, m: received.append(m)]
    )
    consumer.consume()
    connection.drain_events(timeout=5)
    assert len(received) == 1 and channel.qos._delivered  # taken, not acknowledged
    # What the worker's event loop keeps in flight while idle: a BRPOP on the default channel,
    # and one on a second channel (the worker has several: consumer, pidbox, events).
    other = connection.channel()
    connection.Consumer([queue], channel=other, callbacks=[lambda b, m: None]).consume()
    for busy in (channel, other):
        connection.transport.cycle._register_BRPOP(busy)
        assert busy._in_poll
    return connection


def test_closing_a_collected_connection_after_the_broker_died_does_not_crash(
    redis_server: EmbeddedRedis,
) -> None:
    connection = _connection_with_unacked_message_and_brpop_in_flight(redis_server.url)
    channels = list(connection.transport.channels)
    redis_server.stop()
    try:
        # celery.worker.consumer.Consumer.on_connection_error_after_connected, in this order:
        connection.collect(socket_timeout=1)
        connection.close()  # raised AttributeError('NoneType' … 'hostname') without the fix
    finally:
        # Kombu would try to restore the unacked message again at interpreter exit, with no
        # Redis to take it: nothing to restore in this test.
        for channel in channels:
            channel.qos._on_collect.cancel()


def test_the_fix_is_installed_by_the_celery_app() -> None:
    import studio.celery  # noqa: F401  (applies the fixes, as every worker does)

    assert kombu_fixes.applied()
