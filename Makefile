# The two commands of the README: `make run` and `make test`. Both create the virtualenv and
# install what they need on first use; nothing else has to be set up by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install lock docker-check clean

# Exact versions from the lock file, every download checked against its hash; then the project
# itself (editable, no dependencies of its own to resolve).
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## The whole studio on embedded defaults: SQLite, an embedded Redis, the sandbox provider.
run: $(STAMP)
	$(PY) manage.py runstudio

## Lint, migrations and system checks, then the test suite (against a real worker and server).
test: $(STAMP) lint
	$(PY) -m studio.embedded -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=studio.settings.test $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=studio.settings.test $(PY) manage.py check --fail-level WARNING
	@# Production settings must pass Django's deployment checklist (throwaway secrets here).
	DJANGO_SETTINGS_MODULE=studio.settings.production \
	  SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  FIELD_ENCRYPTION_KEYS="$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
	  IMAGEPIPELINE_API_KEY=deploy-check IMAGINEPRO_API_KEY=deploy-check \
	  PUBLIC_BASE_URL=https://studio.example.com \
	  $(PY) manage.py check --deploy --fail-level WARNING

## After changing dependencies in pyproject.toml: pin them (with hashes) for the image and for dev/CI.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --quiet -o requirements-dev.lock

## Build the image, bring docker-compose.yml up with the sandbox, wait for /healthz (needs Docker).
docker-check:
	PYTHON=$(PYTHON) docker/check.sh

## Side by side with the official client, then the gallery and queue at 100,000 outputs.
bench: $(STAMP)
	$(PY) -m studio.embedded -- $(PY) -m benchmarks.throughput
	$(PY) -m studio.embedded -- $(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
