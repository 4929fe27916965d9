#!/bin/sh
# A Celery worker. `exec` makes it PID 1: SIGTERM is Celery's warm shutdown (running tasks
# finish; tasks are acknowledged late, so one cut short is delivered again).
set -eu
exec celery -A studio worker --loglevel "${LOG_LEVEL:-INFO}" \
  --concurrency "${CELERY_CONCURRENCY:-4}" --queues "${CELERY_QUEUE:-studio}"
