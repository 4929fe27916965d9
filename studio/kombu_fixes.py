"""A fix for kombu, applied when the Celery app loads, until kombu ships it.

The bug: a worker that loses Redis dies with `Unrecoverable error: AttributeError("'NoneType'
object has no attribute 'hostname'")` as soon as it has unacknowledged messages (late acks,
countdowns), which our tasks always do.

Celery 5.7's `Consumer.on_connection_error_after_connected` calls `connection.collect()` and
then `connection.close()`. With the Redis transport:

1. `collect()` closes the default channel, but the channel's `close()` first reads the reply of
   the BRPOP the event loop left in flight; Redis is gone, so that read raises a connection
   error (swallowed by `maybe_close_channel`) before the channel is marked closed or its
   unacknowledged messages restored.
2. `collect()` then detaches the transport from the connection (`transport.client = None`) but
   keeps `_default_channel`, which now belongs to a detached transport.
3. `close()` closes that channel again; this time it gets as far as restoring the unacked
   messages, which needs a new Redis client built from `transport.client.hostname`: the
   AttributeError, which no one expects and which stops the worker.

Celery 5.6 called only `collect()`; 5.7 added the `close()` (to release the old socket before
reconnecting), which is what turns kombu's half-closed channel into a crash. Pinning Celery
below 5.7 would hide it but give up 5.7's reconnect fixes (teardown reads bounded by a socket
timeout, celery/celery#9705); the defect is kombu's, so the fix goes there.

The fix is at step 2: a collected connection forgets its default channel, as it already forgets
its connection. `close()` after `collect()` is then a no-op, and a new default channel is made
on the next connect. The unacknowledged messages stay in Redis's unacked hash and kombu's
`restore_visible` puts them back once they are older than the visibility timeout; if Redis lost
them (no persistence), the beat sweep re-drives the jobs from the database.

Tests: tests/test_broker_restart.py reproduces the sequence with kombu alone against a real
Redis; tests/test_runstudio.py stops and restarts Redis under a running studio. Remove this
module once kombu's `Connection.collect()` resets `_default_channel` itself.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from kombu import Connection

log = logging.getLogger(__name__)

_MARK = "_studio_collect_forgets_default_channel"


def _collect_forgetting_default_channel(collect: Any) -> Any:
    @functools.wraps(collect)
    def wrapped(self: Connection, *args: Any, **kwargs: Any) -> Any:
        try:
            return collect(self, *args, **kwargs)
        finally:
            self._default_channel = None

    setattr(wrapped, _MARK, True)
    return wrapped


def apply() -> None:
    """Install the fix once (idempotent)."""
    if not applied():
        Connection.collect = _collect_forgetting_default_channel(Connection.collect)


def applied() -> bool:
    return bool(getattr(Connection.collect, _MARK, False))
