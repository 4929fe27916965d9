"""Walk every URL of the studio for every role and for a member of another team.

Another team's objects are a 404, forbidden actions a 403, and a viewer never changes anything.
A route missing from WALK fails `test_every_route_is_walked`, so new pages join the walk.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from PIL import Image

from casting.services import casting_run_create
from consent import services as consent_services
from jobs import catalog, services
from jobs.models import Asset, Job, Output
from profiles.models import Profile
from profiles.services import profile_create
from review import services as review_services
from review.models import Export
from studio.models import Membership, Role
from studio.services import invite_create

from . import factories
from .conftest import wait_job
from .stack import Stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERS = ("owner", "editor", "reviewer", "viewer")
ROLES = (*MEMBERS, "outsider")
# Routes that are not team pages: public by design, the sandbox (a stand-in provider with its
# own key), Django's admin (staff only), and the event stream (covered by the SSE tests, and
# an endless response the test client cannot read).
NOT_TEAM_SCOPED = ("admin:", "sandbox:")
RELEASE_PDF = b"%PDF-1.4\ntrailer <<>>\n%%EOF\n"
PUBLIC = {"login", "logout", "healthz", "livez", "webhook", "asset_public", "events", "invite"}
# The signed-in user's own account, in no team (tests/test_signin.py).
ACCOUNT = {
    "password_change",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}


@dataclass
class Route:
    args: Callable[[dict[str, Any]], list[Any]] = lambda objs: []
    query: Callable[[dict[str, Any]], str] = lambda objs: ""
    get: dict[str, int] = field(default_factory=dict)
    post: dict[str, int] = field(default_factory=dict)
    data: Callable[[dict[str, Any]], dict[str, Any]] = lambda objs: {}


def everyone(status: int, outsider: int | None = None) -> dict[str, int]:
    return {**dict.fromkeys(MEMBERS, status), "outsider": status if outsider is None else outsider}


WALK: dict[str, Route] = {
    "jobs:gallery": Route(get=everyone(200)),
    "jobs:catalog": Route(get=everyone(200)),
    "jobs:catalog_json": Route(get=everyone(200)),
    "jobs:new": Route(
        args=lambda o: ["text-to-image"],
        get={"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 200},
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403},
        data=lambda o: {"prompt": "walk"},
    ),
    "jobs:asset_picker": Route(  # lists only the user's own team's files
        args=lambda o: ["image-to-video", "input_image"],
        get={"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 200},
    ),
    "jobs:detail": Route(args=lambda o: [o["job"].pk], get=everyone(200, outsider=404)),
    "jobs:card": Route(args=lambda o: [o["job"].pk], get=everyone(200, outsider=404)),
    "jobs:rerun": Route(
        args=lambda o: [o["job"].pk],
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "jobs:cancel": Route(  # the walk's job is finished: members who may cancel get a message
        args=lambda o: [o["job"].pk],
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "jobs:output_file": Route(
        args=lambda o: [o["job"].output.pk, "file"], get=everyone(200, outsider=404)
    ),
    "jobs:asset_file": Route(
        args=lambda o: [o["asset"].pk, "preview"], get=everyone(200, outsider=404)
    ),
    "team_settings": Route(
        get=everyone(200),
        post={"owner": 302, "editor": 403, "reviewer": 403, "viewer": 403},
        data=lambda o: {"name": "Renamed", "provider__face-swap": "face-swap"},
    ),
    "profiles:list": Route(get=everyone(200)),
    "profiles:new": Route(
        get={"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 200},
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403},
        data=lambda o: {"name": "Walk profile", "prompt_template_mode": "suffix"},
    ),
    "profiles:preview": Route(
        post=everyone(200), data=lambda o: {"prompt_template": "t", "sample_prompt": "p"}
    ),  # reads nothing stored: a pure function of what is posted
    "profiles:job_preview": Route(  # reads only profiles the user may see
        post=everyone(200), data=lambda o: {"profile_id": o["profile"].pk, "prompt": "p"}
    ),
    "profiles:detail": Route(args=lambda o: [o["profile"].pk], get=everyone(200, outsider=404)),
    "profiles:edit": Route(
        args=lambda o: [o["profile"].pk],
        get={"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 404},
        post={"reviewer": 403, "viewer": 403, "outsider": 404},
        data=lambda o: {"name": "Hijacked", "prompt_template_mode": "suffix"},
    ),
    "profiles:duplicate": Route(
        args=lambda o: [o["profile"].pk],
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "profiles:archive": Route(
        args=lambda o: [o["profile"].pk],
        post={"reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "profiles:resync": Route(
        args=lambda o: [o["profile"].pk],
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "consent:list": Route(get=everyone(200)),
    "consent:new": Route(
        get={"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 200},
        # The outsider names an input of another team: a form error, nothing recorded.
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403, "outsider": 422},
        data=lambda o: {
            "subject": "Walker",
            "on": f"asset:{o['asset'].pk}",
            "operations": ["face-swap"],
            "usage": "internal",
            "document": SimpleUploadedFile("release.pdf", RELEASE_PDF, "application/pdf"),
        },
    ),
    "consent:settings": Route(
        get={"owner": 200, "editor": 403, "reviewer": 403, "viewer": 403, "outsider": 200},
        post={"owner": 302, "editor": 403, "reviewer": 403, "viewer": 403},
        data=lambda o: {"form": "policy", "mode": "off"},
    ),
    "consent:verify": Route(get=everyone(200), post=everyone(422)),  # reads only the file sent
    "consent:detail": Route(args=lambda o: [o["consent"].pk], get=everyone(200, outsider=404)),
    "consent:document": Route(
        args=lambda o: [o["consent"].pk],
        get={"owner": 200, "editor": 200, "reviewer": 404, "viewer": 404, "outsider": 404},
    ),
    "consent:revoke": Route(
        args=lambda o: [o["consent"].pk],
        post={"reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "review:queue": Route(get=everyone(200)),
    "review:activity": Route(get=everyone(200)),
    "review:output": Route(args=lambda o: [o["output"].pk], get=everyone(200, outsider=404)),
    "review:decide": Route(
        args=lambda o: [o["output"].pk],
        post={"owner": 302, "reviewer": 302, "editor": 403, "viewer": 403, "outsider": 404},
        data=lambda o: {"action": "reject", "comment": "walk"},
    ),
    "review:comment_add": Route(
        args=lambda o: [o["output"].pk],
        post={"owner": 302, "editor": 302, "reviewer": 302, "viewer": 403, "outsider": 404},
        data=lambda o: {"body": "walking by"},
    ),
    "review:comment_edit": Route(
        args=lambda o: [o["comment"].pk],
        get={"owner": 403, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 404},
        post={"owner": 403, "reviewer": 403, "viewer": 403, "outsider": 404},
        data=lambda o: {"body": "rewritten by someone else"},
    ),
    "review:star": Route(  # stars are personal bookmarks: every member may keep them
        args=lambda o: [o["output"].pk], post=everyone(302, outsider=404)
    ),
    "review:bulk": Route(
        post={"owner": 302, "reviewer": 302, "editor": 403, "viewer": 403},
        data=lambda o: {"action": "approve", "outputs": [o["output"].pk]},
    ),
    "review:boards": Route(
        get=everyone(200),
        post={"owner": 302, "editor": 302, "reviewer": 302, "viewer": 403},
        data=lambda o: {"name": f"Board {uuid.uuid4().hex[:8]}"},
    ),
    "review:board": Route(args=lambda o: [o["board"].pk], get=everyone(200, outsider=404)),
    "review:compare": Route(
        query=lambda o: f"?a={o['output'].pk}&b={o['output'].pk}", get=everyone(200, outsider=404)
    ),
    "review:exports": Route(  # exporting approved work is reading it
        get=everyone(200), post={**dict.fromkeys(MEMBERS, 200), "outsider": 302}
    ),
    "review:export_new": Route(get=everyone(200)),  # the form; it posts to review:exports
    "review:export": Route(args=lambda o: [o["export"].pk], get=everyone(200, outsider=404)),
    "review:export_download": Route(
        args=lambda o: [o["export"].pk], get=everyone(200, outsider=404)
    ),
    "casting:list": Route(get=everyone(200)),
    "casting:new": Route(
        get={"owner": 200, "editor": 200, "reviewer": 403, "viewer": 403, "outsider": 200},
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403},
        data=lambda o: {
            "endpoint": "text-to-image",
            "prompt": "walk",
            "profiles": [o["cast"].pk],
        },
    ),
    "casting:detail": Route(args=lambda o: [o["run"].pk], get=everyone(200, outsider=404)),
    "casting:rerun_failed": Route(
        args=lambda o: [o["run"].pk],
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "casting:rerun_all": Route(
        args=lambda o: [o["run"].pk],
        post={"owner": 302, "editor": 302, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "switch_team": Route(  # only ever to one's own team: another's is a 404
        post=everyone(302, outsider=404), data=lambda o: {"team": o["team"].pk}
    ),
    "team_members": Route(
        get=everyone(200),
        post={"owner": 302, "editor": 403, "reviewer": 403, "viewer": 403},
        data=lambda o: {"role": "reviewer"},
    ),
    "member_role": Route(
        args=lambda o: [o["viewer_membership"].pk],
        post={"owner": 302, "editor": 403, "reviewer": 403, "viewer": 403, "outsider": 404},
        data=lambda o: {"role": "viewer"},
    ),
    "invite_revoke": Route(
        args=lambda o: [o["invite"].pk],
        post={"owner": 302, "editor": 403, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
    "audit_log": Route(
        get={"owner": 200, "editor": 403, "reviewer": 403, "viewer": 403, "outsider": 200}
    ),
    "usage:page": Route(get=everyone(200)),
    "usage:csv": Route(get=everyone(200)),
    "usage:budget": Route(
        post={"owner": 302, "editor": 403, "reviewer": 403, "viewer": 403},
        data=lambda o: {"monthly_budget_usd": "50", "budget_warn_percent": "80"},
    ),
    # Last: the owner's walk removes the viewer.
    "member_remove": Route(
        args=lambda o: [o["viewer_membership"].pk],
        post={"owner": 302, "editor": 403, "reviewer": 403, "viewer": 403, "outsider": 404},
    ),
}


def route_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(
                    pattern.url_patterns,
                    f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix,
                )
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(f"{prefix}{pattern.name}")

    walk(get_resolver().url_patterns, "")
    return names


def test_every_route_is_walked() -> None:
    team_routes = {
        name
        for name in route_names()
        if not name.startswith(NOT_TEAM_SCOPED) and name not in PUBLIC | ACCOUNT
    }
    assert team_routes - set(WALK) == set(), "add these routes to WALK"
    assert set(WALK) - team_routes == set(), "these routes no longer exist"


@pytest.fixture
def world(live: Stack) -> dict[str, Any]:
    team = factories.team(name="Walkers")
    people = {"owner": factories.owner_of(team)}
    for role in (Role.EDITOR, Role.REVIEWER, Role.VIEWER):
        people[role.value] = factories.member(team, role)
    other = factories.team(name="Others")
    people["outsider"] = factories.owner_of(other)
    job = wait_job(
        services.job_create(
            team=team,
            user=people["editor"],
            endpoint=catalog.get("text-to-image"),
            params={"prompt": "w"},
        )
    )
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "navy").save(buffer, "PNG")
    editor = Client()
    editor.force_login(people["editor"])
    editor.post(
        reverse("jobs:new", args=["face-swap"]),
        {
            "source__upload": SimpleUploadedFile("f.png", buffer.getvalue(), "image/png"),
            "target": "https://example.com/t.png",
        },
    )
    profile = profile_create(
        team=team, user=people["editor"], fields={"name": "Caucasian Woman", "prompt_template": "x"}
    )
    output = job.output
    review_services.review_transition(output_id=output.pk, user=people["owner"], action="approve")
    comment = review_services.comment_add(output=output, user=people["editor"], body="first")
    board = review_services.board_create(team=team, user=people["editor"], name="Picks")
    export = review_services.export_create(
        team=team, user=people["editor"], filters={}, label="all"
    )
    # A profile of its own for casting: the walk re-syncs "profile", which makes it unusable.
    cast = profile_create(
        team=team, user=people["editor"], fields={"name": "Cast", "prompt_template": "y"}
    )
    settle()
    cast.refresh_from_db()
    run = casting_run_create(
        team=team,
        user=people["editor"],
        endpoint=catalog.get("text-to-image"),
        prompt="walk",
        profiles=[cast],
    )
    wait_for(lambda: Export.objects.get(pk=export.pk).status == Export.Status.READY)
    settle()  # the casting run's jobs too
    consent = consent_services.consent_create(
        team=team,
        user=people["editor"],
        subject="Walker",
        document=consent_services.Document(RELEASE_PDF, "application/pdf", "pdf", "r.pdf"),
        operations=["face-swap"],
        usage="internal",
        asset=Asset.objects.get(team=team, job=None),
    )
    return {
        "consent": consent,
        "team": team,
        "people": people,
        "invite": invite_create(team=team, actor=people["owner"], role="viewer").invite,
        "viewer_membership": Membership.objects.get(team=team, user=people["viewer"]),
        "job": job,
        "asset": Asset.objects.get(team=team, job=None),  # the upload (outputs are assets too)
        "profile": profile,
        "output": output,
        "comment": comment,
        "board": board,
        "export": export,
        "cast": cast,
        "run": run,
    }


def settle() -> None:
    """Wait for background work (jobs, profile syncs) to end, so that row counts only change
    when a request changes them."""
    wait_for(lambda: not Job.objects.active().exists(), message="jobs settle")
    # A job is terminal before the task run that finished it has counted itself out
    # (`open_runs` is decremented after the commit): wait for that write too, or it lands
    # inside a snapshot window and looks like a refused request changed the job.
    wait_for(lambda: not Job.objects.filter(open_runs__gt=0).exists(), message="runs settle")
    # Image previews are made on the media queue after the job completes.
    wait_for(
        lambda: not Output.objects.filter(kind="image", preview="").exists(),
        message="previews settle",
    )
    wait_for(
        lambda: not Profile.objects.filter(sync_state="pending").exists(), message="syncs settle"
    )


def snapshot() -> dict[str, str]:
    """A digest of every row of every studio model, to prove a refused request changed
    nothing: no row added, removed or edited (a renamed team, an edited profile…)."""
    return {
        model._meta.label: hashlib.sha256(
            repr(list(model.objects.order_by("pk").values_list())).encode()
        ).hexdigest()
        for model in apps.get_models()
        if model._meta.app_label
        in ("studio", "jobs", "profiles", "casting", "review", "consent", "auth", "usage")
    }


@pytest.mark.parametrize("role", ROLES)
def test_walk_every_route(world: dict[str, Any], role: str) -> None:
    client = Client()
    client.force_login(world["people"][role])
    for name, route in WALK.items():
        url = reverse(name, args=route.args(world)) + route.query(world)
        if role in route.get:
            status = client.get(url).status_code
            assert status == route.get[role], f"GET {name} as {role}: {status}"
        if role in route.post:
            if route.post[role] in (403, 404):
                settle()
            before = snapshot()
            status = client.post(url, route.data(world)).status_code
            assert status == route.post[role], f"POST {name} as {role}: {status}"
            if status in (403, 404):
                assert snapshot() == before, f"refused POST {name} as {role} changed data"


def test_viewers_change_nothing_anywhere(world: dict[str, Any]) -> None:
    """POST to every team route as a viewer: each is refused and no row changes."""
    client = Client()
    client.force_login(world["people"]["viewer"])
    settle()
    before = snapshot()
    for name, route in WALK.items():
        if name in (
            "switch_team",
            "profiles:preview",
            "profiles:job_preview",
            "review:star",
            "review:exports",
            "consent:verify",
        ):
            continue  # personal: a session preference, a preview, a bookmark, a download
        status = client.post(reverse(name, args=route.args(world)), route.data(world)).status_code
        assert status in (403, 404, 405), f"viewer POST {name}: {status}"
    assert snapshot() == before
