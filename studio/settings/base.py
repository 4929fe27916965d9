"""Settings shared by every environment, read from the environment (12-factor).

Each environment module (local, test, production) imports this one and changes only what
differs. Anything secret has no default here; the local and test modules supply throwaway
values so that `make run` and `make test` need no configuration.
"""

from __future__ import annotations

from pathlib import Path

import environ

from .storage import default_storage_from_env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "studio",
    "jobs",
    "profiles",
    "casting",
    "sandbox",
    "review",
    "consent",
    "usage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "studio.middleware.NullCharacterMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "studio.middleware.TeamMiddleware",
    "studio.audit.AddressMiddleware",
    "studio.middleware.SecurityHeadersMiddleware",
    "studio.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "studio.urls"

# The sandbox's own process (sandbox.wsgi) serves its routes alone, with no middleware: they
# take no session, sign-in or CSRF token (each checks the provider's API key itself).
SANDBOX_PROCESS = env.bool("SANDBOX_PROCESS", default=False)
if SANDBOX_PROCESS:
    MIDDLEWARE = []
    ROOT_URLCONF = "sandbox.process_urls"
ASGI_APPLICATION = "studio.asgi.application"
WSGI_APPLICATION = "studio.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "studio.context_processors.studio",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# SQLite when DATABASE_URL is unset, so `make run` needs no server. WAL and IMMEDIATE
# transactions let the web process and the worker write the same file without
# "database is locked" errors under ordinary load.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'studio.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A pool of connections per process (psycopg_pool). Without one, every request of the
    # ASGI web process and every Celery task opens a new PostgreSQL connection (Django closes
    # it at the end): a backend fork and authentication on the server, several ms of CPU per
    # job in a batch. The pool grows to DATABASE_POOL_MAX (a thread waits up to
    # DATABASE_POOL_TIMEOUT seconds for one beyond that); DATABASE_POOL_MAX=0 turns it off
    # (behind PgBouncer in transaction mode, say).
    _pool_max = env.int("DATABASE_POOL_MAX", default=40)
    if _pool_max:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN", default=1),
            "max_size": _pool_max,
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=20.0),
            # Idle connections above min_size are closed after a minute.
            "max_idle": 60.0,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The embedded Redis started by `make run` / `make test` listens here when REDIS_URL is unset.
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6399)
REDIS_URL = env("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

# Several studios (or a test run beside `make run`) can share one Redis: each uses its own
# queue (CELERY_QUEUE) and live-event channel prefix.
LIVE_CHANNEL_PREFIX = env("LIVE_CHANNEL_PREFIX", default="studio")

CACHES = {
    "default": {
        "BACKEND": "studio.cache.SharedRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": LIVE_CHANNEL_PREFIX,
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# No form takes more than a handful of files (jobs.catalog Field.max_items); refuse more early.
DATA_UPLOAD_MAX_NUMBER_FILES = 20
# Password reset emails. EMAIL_URL as django-environ reads it (smtp://user:pass@host:587,
# smtp+tls://…); `make run` prints emails to the terminal instead (local settings).
_email = env.email_url("EMAIL_URL", default="smtp://localhost:25")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="studio@localhost")
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 3600)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "jobs:gallery"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Where every file the studio writes goes (outputs, thumbnails, posters, assets, exports, sandbox
# results): STORAGE_BACKEND=local keeps them under MEDIA_ROOT (one host); s3 puts them on any
# S3-compatible object storage, shared by every web process and worker, and downloads become
# redirects to presigned URLs that live STORAGE_URL_MAX_AGE seconds (studio.files).
STORAGE_BACKEND = env("STORAGE_BACKEND", default="local")
STORAGE_URL_MAX_AGE = env.int("STORAGE_URL_MAX_AGE", default=3600)
STORAGES = {
    "default": default_storage_from_env(env, STORAGE_BACKEND, STORAGE_URL_MAX_AGE),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Celery: the broker is Redis. Late acknowledgement + reject on worker loss mean a task whose
# worker dies is delivered again; every task is idempotent, so a second run is harmless.
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every countdown the studio uses stays far below this (JOB_POLL_MAX_INTERVAL), so Redis never
# redelivers a scheduled task just because it waited.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="studio")
# Three queues, each consumed by a worker with its own pool (`runstudio`, docker-compose.yml):
# provider I/O on the default queue (submit, status, result download: a thread pool with high
# concurrency, since those tasks wait on the network), media work (previews) on
# "<queue>-media" and exports on "<queue>-exports", so that neither ever holds up a submission.
# `studio.celery.route` sends each task to its queue.
CELERY_TASK_ROUTES = ("studio.celery.route",)
WORKER_IO_CONCURRENCY = env.int("WORKER_IO_CONCURRENCY", default=32)
# Provider-I/O worker processes (`runstudio`; docker-compose.yml's `worker` replicas). One
# process's threads share one core (the GIL): a batch completes faster with one per core.
WORKER_IO_PROCESSES = env.int("WORKER_IO_PROCESSES", default=2)
WORKER_MEDIA_CONCURRENCY = env.int("WORKER_MEDIA_CONCURRENCY", default=2)
WORKER_EXPORTS_CONCURRENCY = env.int("WORKER_EXPORTS_CONCURRENCY", default=1)
# Time limits (seconds). Celery enforces them in the prefork pool only: the media and exports
# workers (`runstudio.worker_commands`). A task past its soft limit gets SoftTimeLimitExceeded
# and fails (tasks are idempotent: the sweep drives its job or export again); past the hard
# limit its pool process is killed and replaced. Export builds copy many files and get longer.
# The provider-I/O worker runs on threads, where these limits do nothing: there every provider
# call has a deadline (PROVIDER_TIMEOUT_SECONDS) and every result download one (jobs.fetch).
# A system check keeps every hard limit below the visibility timeout.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
EXPORT_SOFT_TIME_LIMIT = env.int("EXPORT_SOFT_TIME_LIMIT", default=1800)
EXPORT_TIME_LIMIT = env.int("EXPORT_TIME_LIMIT", default=1900)
CELERY_TASK_ANNOTATIONS = {
    "review.tasks.build_export": {
        "soft_time_limit": EXPORT_SOFT_TIME_LIMIT,
        "time_limit": EXPORT_TIME_LIMIT,
    }
}
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=15.0)
CELERY_BEAT_SCHEDULE = {
    "sweep-due-jobs": {"task": "jobs.tasks.sweep_due_jobs", "schedule": SWEEP_INTERVAL_SECONDS},
    "heartbeat": {"task": "studio.tasks.heartbeat", "schedule": 10.0},
    "sweep-pending-profiles": {"task": "profiles.tasks.sweep_pending_profiles", "schedule": 30.0},
    "sweep-exports": {"task": "review.tasks.sweep_exports", "schedule": 60.0},
    "retention-sweep": {"task": "studio.tasks.retention_sweep", "schedule": 3600.0},
    "record-expired-consents": {"task": "consent.tasks.record_expired", "schedule": 3600.0},
}

# Content Credentials: an RFC 3161 timestamp authority to countersign with (none by default:
# the studio makes no network call that a deployment did not ask for).
C2PA_TIMESTAMP_URL = env("C2PA_TIMESTAMP_URL", default="")

# Where the providers (and the sandbox) send webhooks, and where the worker reaches the studio.
# Invites are mailed through the same EMAIL_URL as password resets (above).
INVITE_MAX_AGE = env.int("INVITE_MAX_AGE", default=7 * 24 * 3600)

PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# False for a studio behind a firewall, which providers cannot call: image inputs are sent
# through the provider's upload route instead of as the studio's signed URLs, no webhook is
# asked for, and jobs are followed by polling alone; jobs with inputs the upload route does not
# take are refused. It implies JOB_WEBHOOKS=false (below), not the other way round: the two are
# kept apart on purpose, see JOB_WEBHOOKS.
PUBLICLY_REACHABLE = env.bool("PUBLICLY_REACHABLE", default=True)
# Addresses or networks (CIDR) of the reverse proxies in front of the studio: only from these is
# X-Forwarded-For believed, so rate limits see the real client's address (uvicorn is given the
# same list by docker/web.sh).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Fernet keys (urlsafe base64, 32 bytes) for secrets stored in the database, newest first:
# decrypt tries each, encrypt uses the first; `manage.py rotate_secrets` re-encrypts all.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

IMAGEPIPELINE_API_KEY = env("IMAGEPIPELINE_API_KEY", default="")
IMAGEPIPELINE_BASE_URL = env("IMAGEPIPELINE_BASE_URL", default="https://api.imagepipeline.io")
IMAGINEPRO_API_KEY = env("IMAGINEPRO_API_KEY", default="")
IMAGINEPRO_BASE_URL = env("IMAGINEPRO_BASE_URL", default="https://api.imaginepro.ai")
# Each provider call (submit, status, upload, profile sync) ends within this many seconds, wall
# clock, however slowly the provider answers (`studio.httpclients.deadline`): the provider-I/O
# worker runs on threads, where Celery's time limits are not enforced.
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=30.0)
# The httpx transport provider calls go through: empty for the network; the fast test tier sets
# "sandbox.inprocess.InProcessTransport" (the sandbox answering in process, with an outbox).
PROVIDER_TRANSPORT = ""
# How long the public URL of an input file handed to a provider stays valid (seconds).
ASSET_URL_MAX_AGE = env.int("ASSET_URL_MAX_AGE", default=48 * 3600)
# Ports the studio will fetch URLs from (result downloads), besides its own sandbox.
FETCH_ALLOWED_PORTS = [int(p) for p in env.list("FETCH_ALLOWED_PORTS", default=["80", "443"])]
# Largest result file the studio will download (bytes).
RESULT_MAX_BYTES = env.int("RESULT_MAX_BYTES", default=200 * 1024 * 1024)

# Follow-up of a submitted job when no webhook arrives: first check after JOB_POLL_FIRST,
# then the interval grows by JOB_POLL_BACKOFF up to JOB_POLL_MAX_INTERVAL (seconds).
JOB_POLL_FIRST = env.float("JOB_POLL_FIRST", default=5.0)
JOB_POLL_BACKOFF = env.float("JOB_POLL_BACKOFF", default=1.6)
JOB_POLL_MAX_INTERVAL = env.float("JOB_POLL_MAX_INTERVAL", default=60.0)
# A job whose provider has not finished after this long is failed (seconds).
JOB_MAX_AGE = env.float("JOB_MAX_AGE", default=6 * 3600)
JOB_SUBMIT_MAX_ATTEMPTS = env.int("JOB_SUBMIT_MAX_ATTEMPTS", default=5)
# Provider or download faults in a row after which a job fails with the last reason.
JOB_MAX_FAULTS = env.int("JOB_MAX_FAULTS", default=8)
# Task runs on one job that may kill their worker before the job is failed.
JOB_MAX_CRASHES = env.int("JOB_MAX_CRASHES", default=3)
# The sweep leaves a job alone for this long past its next_check_at (its own countdown task
# normally runs first).
JOB_SWEEP_GRACE = env.float("JOB_SWEEP_GRACE", default=20.0)
# Jobs are sent with a callback URL (the webhook path); off, the studio only polls. This is
# narrower than PUBLICLY_REACHABLE=false: input files still go to the provider as the studio's
# signed URLs, so every endpoint stays usable. For a studio the providers can fetch from but
# whose webhook route they cannot (or should not) call (a proxy that lets /public/assets/ in
# but not /webhooks/), and for measuring the polling path (benchmarks/throughput.py).
# A studio that providers cannot reach at all sets PUBLICLY_REACHABLE=false instead, which
# turns webhooks off whatever this says. Webhooks are asked for only when both are true.
JOB_WEBHOOKS = env.bool("JOB_WEBHOOKS", default=True)
# How long past the provider's estimated finish a job's webhook is waited for before the
# first status poll (polling is the fallback for a webhook that never comes).
JOB_WEBHOOK_GRACE = env.float("JOB_WEBHOOK_GRACE", default=30.0)
# At most one status confirmation per job in this many seconds, however many webhooks come.
WEBHOOK_CONFIRM_INTERVAL = env.float("WEBHOOK_CONFIRM_INTERVAL", default=2.0)
# /healthz calls the worker dead when its last heartbeat is older than this (seconds).
WORKER_HEARTBEAT_MAX_AGE = env.float("WORKER_HEARTBEAT_MAX_AGE", default=60.0)

# Pushing identity profiles to the provider: a failed attempt that may succeed later is
# retried after PROFILE_SYNC_RETRY_FIRST seconds, doubling up to PROFILE_SYNC_RETRY_MAX, at
# most PROFILE_SYNC_MAX_ATTEMPTS times; then the profile shows "failed" until re-synced.
PROFILE_SYNC_RETRY_FIRST = env.float("PROFILE_SYNC_RETRY_FIRST", default=5.0)
PROFILE_SYNC_RETRY_MAX = env.float("PROFILE_SYNC_RETRY_MAX", default=300.0)
PROFILE_SYNC_MAX_ATTEMPTS = env.int("PROFILE_SYNC_MAX_ATTEMPTS", default=5)

# The sandbox: a local stand-in of both providers, served by the studio itself. It is used
# whenever a provider's API key is unset, and refuses to start unless enabled.
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=False)
SANDBOX_API_KEY = env("SANDBOX_API_KEY", default="sandbox-key")
# Where the studio reaches its sandbox: unset, the web process's own /sandbox/ routes;
# `runstudio` serves it from a process of its own (on SANDBOX_PORT, or a free port)
# so that the stand-in provider never competes with the studio's own requests.
SANDBOX_URL = env("SANDBOX_URL", default="").rstrip("/")
SANDBOX_QUEUE_SECONDS = env.float("SANDBOX_QUEUE_SECONDS", default=1.5)
SANDBOX_PROCESSING_SECONDS = env.float("SANDBOX_PROCESSING_SECONDS", default=4.0)
SANDBOX_WEBHOOK_DELAY_SECONDS = env.float("SANDBOX_WEBHOOK_DELAY_SECONDS", default=0.2)

# Review: how long a comment's author may still edit it (seconds), and up to how many files an
# "Export approved" is streamed at once; larger selections are built by the worker.
REVIEW_COMMENT_EDIT_SECONDS = env.int("REVIEW_COMMENT_EDIT_SECONDS", default=15 * 60)
REVIEW_EXPORT_INLINE_MAX = env.int("REVIEW_EXPORT_INLINE_MAX", default=25)
# Background exports: per member, at most this many building at once and this many queued per
# hour (a reused identical export counts for neither); files removed after this many seconds.
REVIEW_EXPORT_MEMBER_ACTIVE = env.int("REVIEW_EXPORT_MEMBER_ACTIVE", default=2)
REVIEW_EXPORT_MEMBER_PER_HOUR = env.int("REVIEW_EXPORT_MEMBER_PER_HOUR", default=10)
REVIEW_EXPORT_MAX_AGE = env.int("REVIEW_EXPORT_MAX_AGE", default=24 * 3600)

# LOG_FORMAT=plain (a line per record) or json (an object per line, for log collectors); both
# carry the job a line is about (job_id) when there is one.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
# Every record is redacted at creation (studio.logging.configure installs a record factory);
# the console handler's formatter redacts the final text too. Django's own loggers and
# Celery's use the same handler, so no path through the logs skips the redaction.
LOGGING_CONFIG = "studio.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "studio.logging.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        # One JSON object per line (LOG_FORMAT=json), redacted like the plain one.
        "json": {"()": "studio.observability.JsonFormatter"},
    },
    "filters": {
        "redact": {"()": "studio.logging.RedactSecretsFilter"},
        "context": {"()": "studio.observability.ContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Django's defaults print "Internal Server Error: <path>" through handlers of their own
        # (console when DEBUG, mail_admins otherwise): ours instead.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # uvicorn's access log would print webhook paths: route it through the filter too.
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "propagate": False},
        "uvicorn.error": {"handlers": ["console"], "propagate": False},
    },
}
# Celery keeps Django's logging (the handler above) instead of installing its own on the root.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Content-Security-Policy: no inline script anywhere (htmx, its SSE extension, model-viewer and
# our own JS are static files). Styles may be inline (model-viewer and htmx set some).
# 'wasm-unsafe-eval' lets model-viewer compile its Draco/Meshopt decoders (WebAssembly) for
# compressed meshes; it allows no JavaScript eval.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' blob: data:; "
        "worker-src 'self' blob:; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# `make run` (runstudio): a crashed process is restarted after this many seconds, doubling up
# to the maximum while it keeps crashing.
SUPERVISOR_BACKOFF_FIRST = env.float("SUPERVISOR_BACKOFF_FIRST", default=1.0)
SUPERVISOR_BACKOFF_MAX = env.float("SUPERVISOR_BACKOFF_MAX", default=30.0)
# Where runstudio keeps the demo login it printed.
DEMO_CREDENTIALS_FILE = Path(
    env("DEMO_CREDENTIALS_FILE", default=str(VAR_DIR / "demo-credentials.txt"))
)

# Rate limits (count per window in seconds).
LOGIN_RATE = (env.int("LOGIN_RATE_LIMIT", default=10), 60)
SUBMIT_RATE = (env.int("SUBMIT_RATE_LIMIT", default=30), 60)

# Error reporting: Sentry (Django and Celery integrations) when SENTRY_DSN is set; nothing is sent
# otherwise. Webhook tokens are scrubbed from every event.
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="production")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)

# Retention: the provider-side files the studio keeps (the sandbox's results and uploads, whose
# URLs expire after 24 h anyway) and built exports are removed from storage after these ages;
# outputs and assets are kept. Beat runs the sweep hourly.
PROVIDER_FILE_RETENTION_HOURS = env.float("PROVIDER_FILE_RETENTION_HOURS", default=48.0)
EXPORT_RETENTION_DAYS = env.float("EXPORT_RETENTION_DAYS", default=30.0)
