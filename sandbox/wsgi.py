"""The sandbox in a process of its own (runstudio, `make bench`): `sandbox.wsgi:application`,
served by uvicorn's WSGI interface (`--interface wsgi`).

Only the sandbox's routes, at the same paths (`/sandbox/…`), and none of the studio's
middleware: its routes take no session, sign-in, team or CSRF token (the provider's own API key
is checked by each route), and the stand-in provider must not spend on the studio's request
handling the CPU the benchmarks measure the studio by. Its views are plain synchronous ones:
under WSGI each request runs in one thread, where ASGI hands it between the event loop and
threads three times (about 4 ms of CPU less per job, measured). Chosen before the settings
load (`SANDBOX_PROCESS`, read by studio.settings.base).
"""

from __future__ import annotations

import os

os.environ["SANDBOX_PROCESS"] = "true"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.local")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
