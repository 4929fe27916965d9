#!/bin/sh
# The web process: the studio (and the sandbox, when enabled) under uvicorn, ASGI.
# `exec` makes uvicorn PID 1, so `docker stop` (SIGTERM) reaches it and it shuts down cleanly.
# TRUSTED_PROXIES (addresses or networks of your reverse proxies) is the one list the studio
# and uvicorn both use to believe X-Forwarded-For.
set -eu
exec uvicorn studio.asgi:application \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --proxy-headers --forwarded-allow-ips "${TRUSTED_PROXIES:-127.0.0.1}" \
  --timeout-graceful-shutdown 5
