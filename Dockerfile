# One image for every role of the studio: web, worker, beat and the one-shot migrate
# (docker-compose.yml picks the script under docker/). Built in stages so the runtime image
# holds the locked dependencies, the code and the collected static files, and nothing else.

# --- dependencies: only the lock file, so this layer is rebuilt only when the lock changes ----
FROM python:3.11-slim AS deps
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.lock /tmp/requirements.lock
# Exact versions, every file checked against its hash; the project itself is not installed
# (it runs from /app), so nothing is installed twice.
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock

# --- static files: collected with the production storage (hashed names, compressed) ---------
FROM deps AS static
WORKDIR /app
COPY . .
# The build has no secrets: studio.settings.build is production with throwaway ones.
RUN DJANGO_SETTINGS_MODULE=studio.settings.build python manage.py collectstatic --noinput

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=studio.settings.production \
    MEDIA_ROOT=/app/var/media
RUN useradd --create-home --uid 1000 studio
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
COPY . .
COPY --from=static /app/var/staticfiles /app/var/staticfiles
RUN mkdir -p /app/var/media && chown -R studio /app/var

USER studio
EXPOSE 8000
# The scripts `exec` their server, so it is PID 1 and `docker stop` (SIGTERM) ends it cleanly.
CMD ["docker/web.sh"]
