#!/bin/sh
# A Celery worker for one of the studio's queues (`docker/worker.sh io|media|exports`), with a
# thread pool (see `runstudio`). `exec` makes it PID 1: SIGTERM is Celery's warm shutdown
# (running tasks finish; tasks are acknowledged late, so one cut short is delivered again).
set -eu
queue="${CELERY_QUEUE:-studio}"
case "${1:-io}" in
  io) queues="$queue"; concurrency="${WORKER_IO_CONCURRENCY:-32}" ;;
  media) queues="$queue-media"; concurrency="${WORKER_MEDIA_CONCURRENCY:-2}" ;;
  exports) queues="$queue-exports"; concurrency="${WORKER_EXPORTS_CONCURRENCY:-1}" ;;
  *) echo "usage: docker/worker.sh io|media|exports" >&2; exit 2 ;;
esac
# Node name left at celery@<container host name>: the health check pings that one.
exec celery -A studio worker --loglevel "${LOG_LEVEL:-INFO}" --pool threads \
  --concurrency "$concurrency" --queues "$queues"
