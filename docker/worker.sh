#!/bin/sh
# A Celery worker for one of the studio's queues (`docker/worker.sh io|media|exports`), with the
# pool `runstudio` gives it: threads for provider I/O (each call has its own deadline), prefork
# for media and exports (the only pool where Celery enforces the task time limits). `exec` makes
# it PID 1: SIGTERM is Celery's warm shutdown (running tasks finish; tasks are acknowledged late,
# so one cut short is delivered again).
set -eu
queue="${CELERY_QUEUE:-studio}"
case "${1:-io}" in
  io) queues="$queue"; pool=threads; concurrency="${WORKER_IO_CONCURRENCY:-32}" ;;
  media) queues="$queue-media"; pool=prefork; concurrency="${WORKER_MEDIA_CONCURRENCY:-2}" ;;
  exports) queues="$queue-exports"; pool=prefork; concurrency="${WORKER_EXPORTS_CONCURRENCY:-1}" ;;
  *) echo "usage: docker/worker.sh io|media|exports" >&2; exit 2 ;;
esac
# Node name left at celery@<container host name>: the health check pings that one.
exec celery -A studio worker --loglevel "${LOG_LEVEL:-INFO}" --pool "$pool" \
  --concurrency "$concurrency" --queues "$queues"
