#!/bin/sh
# Celery beat: the periodic sweeps. Run one; a second by mistake is harmless (every sweep is
# idempotent), it only doubles the sweeps. `exec` makes it PID 1 for a clean SIGTERM.
set -eu
exec celery -A studio beat --loglevel "${LOG_LEVEL:-INFO}" \
  --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
