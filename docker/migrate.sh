#!/bin/sh
# One-shot, before web, worker and beat start (they wait for it to exit 0): Django's deployment
# checks (a misconfiguration stops here, with its reason, instead of in a running service),
# then the migrations. Exits; it is not restarted.
set -eu
python manage.py check --deploy
exec python manage.py migrate --noinput
