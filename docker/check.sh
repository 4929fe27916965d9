#!/usr/bin/env bash
# `make docker-check`: build the image, bring docker-compose.yml up with the sandbox (fresh
# throwaway secrets, its own project name and volumes), wait for /healthz to report the database,
# Redis and the worker healthy, then take everything down again. Exit 0 only if it got there.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT="${COMPOSE_PROJECT_NAME:-studio-check}"
export STUDIO_PORT="${STUDIO_PORT:-18000}"
TIMEOUT="${DOCKER_CHECK_TIMEOUT:-240}"
PY="${PYTHON:-python3}"
export SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')"
export FIELD_ENCRYPTION_KEYS="$($PY -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
export SANDBOX_ENABLED=true
export SANDBOX_API_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')"

# Compose v2 (`docker compose`) or v1 (`docker-compose` >= 1.29: service_completed_successfully).
if docker compose version >/dev/null 2>&1; then
  compose() { docker compose -p "$PROJECT" -f docker-compose.yml "$@"; }
else
  compose() { docker-compose -p "$PROJECT" -f docker-compose.yml "$@"; }
fi
cleanup() {
  status=$?
  if [ "$status" != 0 ]; then compose ps -a || true; compose logs --tail 80 || true; fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  exit "$status"
}
trap cleanup EXIT

# The image compose's services use (`image: studio:latest`). DOCKER_BUILD_NETWORK=host where
# the daemon gives containers no route out (e.g. dockerd --iptables=false).
docker build --network "${DOCKER_BUILD_NETWORK:-default}" -t studio:latest .
compose up -d --no-build
echo "waiting up to ${TIMEOUT}s for http://127.0.0.1:${STUDIO_PORT}/healthz"
deadline=$(( $(date +%s) + TIMEOUT ))
until body="$(curl -fsS "http://127.0.0.1:${STUDIO_PORT}/healthz" 2>/dev/null)"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "docker-check: /healthz never answered 200" >&2
    exit 1
  fi
  sleep 3
done
echo "healthz: $body"
compose ps
# Every long-running service must be healthy by its own check, and migrate must have exited 0.
for service in web worker beat; do
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q "$service")")" = healthy ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "docker-check: $service is not healthy" >&2
      exit 1
    fi
    sleep 3
  done
  echo "$service: healthy"
done
test "$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -aq migrate)")" = 0
# A clean stop: every process is PID 1 through `exec`, so SIGTERM ends it (no 137).
compose stop web worker beat
for service in web worker beat; do
  code="$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -aq "$service")")"
  if [ "$code" = 137 ]; then
    echo "docker-check: $service needed SIGKILL to stop" >&2
    exit 1
  fi
done
echo "docker-check: ok"
