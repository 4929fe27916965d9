"""`make test`: like local, with fast sandbox timings and a test database that other
processes (the uvicorn server and the Celery worker started by the tests) can open."""

from __future__ import annotations

import uuid

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="test-only-insecure-secret-key")
SANDBOX_ENABLED = True
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SANDBOX_QUEUE_SECONDS = env.float("SANDBOX_QUEUE_SECONDS", default=0.3)
SANDBOX_PROCESSING_SECONDS = env.float("SANDBOX_PROCESSING_SECONDS", default=0.7)
SANDBOX_WEBHOOK_DELAY_SECONDS = env.float("SANDBOX_WEBHOOK_DELAY_SECONDS", default=0.05)
JOB_POLL_FIRST = env.float("JOB_POLL_FIRST", default=1.0)
JOB_POLL_BACKOFF = env.float("JOB_POLL_BACKOFF", default=1.3)
JOB_POLL_MAX_INTERVAL = env.float("JOB_POLL_MAX_INTERVAL", default=3.0)
JOB_SWEEP_GRACE = env.float("JOB_SWEEP_GRACE", default=2.0)
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=1.0)
CELERY_BEAT_SCHEDULE = {
    "sweep-due-jobs": {"task": "jobs.tasks.sweep_due_jobs", "schedule": SWEEP_INTERVAL_SECONDS},
    "heartbeat": {"task": "studio.tasks.heartbeat", "schedule": 1.0},
    "sweep-pending-profiles": {"task": "profiles.tasks.sweep_pending_profiles", "schedule": 5.0},
    "sweep-exports": {"task": "review.tasks.sweep_exports", "schedule": 10.0},
}
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=3.0)
# Tests share user ids across runs within a minute; the rate-limit tests set their own.
LOGIN_RATE = (1000, 60)
SUBMIT_RATE = (10000, 60)
WEBHOOK_CONFIRM_INTERVAL = env.float("WEBHOOK_CONFIRM_INTERVAL", default=0.5)
JOB_WEBHOOK_GRACE = env.float("JOB_WEBHOOK_GRACE", default=1.0)
PROFILE_SYNC_RETRY_FIRST = env.float("PROFILE_SYNC_RETRY_FIRST", default=0.3)
PROFILE_SYNC_RETRY_MAX = env.float("PROFILE_SYNC_RETRY_MAX", default=2.0)

MEDIA_ROOT = VAR_DIR / "test-media"

# A queue and channel prefix of this test run's own, so a `make run` worker (or another test
# run) on the same Redis never takes its tasks; the tests pass them on to their processes.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default=f"studio-test-{uuid.uuid4().hex[:8]}")
LIVE_CHANNEL_PREFIX = env("LIVE_CHANNEL_PREFIX", default=CELERY_TASK_DEFAULT_QUEUE)
CACHES = {
    "default": {
        "BACKEND": "studio.cache.SharedRedisCache",
        "LOCATION": env("REDIS_URL", default="redis://127.0.0.1:6399/0"),
        "KEY_PREFIX": LIVE_CHANNEL_PREFIX,
    }
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The default in-memory test database is invisible to other processes. SQLite creates the
    # file but not its folder, and a fresh checkout has no var/ (`make run` makes it otherwise).
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-studio.sqlite3")}

# Static files are served straight from static/ by WhiteNoise (no collectstatic needed).
STATIC_ROOT = None
