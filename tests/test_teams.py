"""Teams: invites, roles and the last-owner rule, several teams per person, roles enforced in
every service, write-only keys, the audit log, brand defaults, and the lock helper."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from casting import services as casting_services
from jobs import catalog
from jobs import services as job_services
from profiles import services as profile_services
from profiles.models import Profile
from review import services as review_services
from studio import locks
from studio import services as team_services
from studio.models import AuditEntry, Invite, Membership, Role, Team
from studio.permissions import NotPermitted
from usage import services as usage_services

from . import factories

pytestmark = pytest.mark.django_db

KEY = "ip-live-SECRET-0123456789abcdef"


@pytest.fixture
def acme() -> Team:
    return factories.team(name="Acme")


@pytest.fixture
def owner(acme: Team) -> Any:
    return factories.owner_of(acme)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


# --- invites ---------------------------------------------------------------------------------


def test_invite_link_makes_an_account_with_the_chosen_role(acme: Team, owner: Any) -> None:
    made = team_services.invite_create(team=acme, actor=owner, role=Role.REVIEWER)
    page = Client().get(made.url.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200 and "as <strong>reviewer</strong>" in page.content.decode()

    visitor = Client()
    response = visitor.post(
        reverse("invite", args=[token_of(made.url)]),
        {"username": "rosa", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("jobs:gallery")
    rosa = get_user_model().objects.get(username="rosa")
    assert Membership.objects.get(team=acme, user=rosa).role == Role.REVIEWER
    assert visitor.get(reverse("jobs:gallery")).status_code == 200  # signed in
    assert AuditEntry.objects.filter(team=acme, action="invite.accepted", actor=rosa).exists()


def test_invite_is_one_time(acme: Team, owner: Any) -> None:
    made = team_services.invite_create(team=acme, actor=owner, role=Role.EDITOR)
    token = token_of(made.url)
    team_services.invite_accept(token=token, user=factories.user())
    with pytest.raises(team_services.TeamError, match="already been used"):
        team_services.invite_accept(token=token, user=factories.user())
    page = client_for(factories.user()).get(reverse("invite", args=[token]))
    assert page.status_code == 410 and "already been used" in page.content.decode()
    assert Membership.objects.filter(team=acme).count() == 2


def test_expired_and_revoked_invites_are_refused(acme: Team, owner: Any) -> None:
    expired = team_services.invite_create(team=acme, actor=owner, role=Role.VIEWER)
    Invite.objects.filter(pk=expired.invite.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(team_services.TeamError, match="expired"):
        team_services.invite_accept(token=token_of(expired.url), user=factories.user())
    response = Client().post(
        reverse("invite", args=[token_of(expired.url)]),
        {"username": "late", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"},
    )
    assert response.status_code == 410
    assert not get_user_model().objects.filter(username="late").exists()

    revoked = team_services.invite_create(team=acme, actor=owner, role=Role.VIEWER)
    team_services.invite_revoke(invite=revoked.invite, actor=owner)
    with pytest.raises(team_services.TeamError, match="withdrawn"):
        team_services.invite_accept(token=token_of(revoked.url), user=factories.user())
    assert Client().get(reverse("invite", args=["not-a-token"])).status_code == 404


def test_signed_in_person_joins_with_one_click_and_a_member_keeps_their_role(
    acme: Team, owner: Any
) -> None:
    other_team = factories.team(name="Other")
    person = factories.owner_of(other_team)
    made = team_services.invite_create(team=acme, actor=owner, role=Role.VIEWER)
    client = client_for(person)
    assert client.post(reverse("invite", args=[token_of(made.url)])).status_code == 302
    assert Membership.objects.get(team=acme, user=person).role == Role.VIEWER
    # The session now shows the team just joined.
    assert "Acme · Viewer" in client.get(reverse("jobs:gallery")).content.decode()

    again = team_services.invite_create(team=acme, actor=owner, role=Role.VIEWER)
    team_services.invite_accept(token=token_of(again.url), user=owner)
    assert Membership.objects.get(team=acme, user=owner).role == Role.OWNER


def test_join_form_errors_keep_the_name_and_say_why(acme: Team, owner: Any) -> None:
    made = team_services.invite_create(team=acme, actor=owner, role=Role.VIEWER)
    url = reverse("invite", args=[token_of(made.url)])
    response = Client().post(url, {"username": "kim", "password1": "x", "password2": "x"})
    assert response.status_code == 422
    page = response.content.decode()
    assert 'value="kim"' in page and "too short" in page
    response = Client().post(
        url, {"username": owner.username, "password1": "a-long-pass", "password2": "a-long-pass"}
    )
    assert response.status_code == 422 and "That name is taken" in response.content.decode()
    assert Invite.objects.get(pk=made.invite.pk).state == "open"


def test_owner_makes_an_invite_on_the_members_page_shown_once_and_mailed(
    acme: Team, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("team_members"), {"role": "reviewer", "email": "rev@example.com"}
        )
    assert response.status_code == 302
    first = client.get(reverse("team_members")).content.decode()
    assert "/invite/" in first and "shown only once" in first
    assert "/invite/" not in client.get(reverse("team_members")).content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["rev@example.com"]
    assert "/invite/" in mail.outbox[0].body and "reviewer" in mail.outbox[0].body
    invite = Invite.objects.get(team=acme)
    assert invite.role == Role.REVIEWER
    # Only the token's hash is stored, never the token the link holds.
    link = next(line for line in mail.outbox[0].body.splitlines() if "/invite/" in line)
    assert token_of(link) not in str(Invite.objects.values_list().get(pk=invite.pk))


# --- roles and the last owner ----------------------------------------------------------------


def test_owner_changes_roles_and_removes_members(acme: Team, owner: Any) -> None:
    editor = factories.member(acme, Role.EDITOR)
    membership = Membership.objects.get(team=acme, user=editor)
    client = client_for(owner)
    client.post(reverse("member_role", args=[membership.pk]), {"role": "reviewer"})
    assert Membership.objects.get(pk=membership.pk).role == Role.REVIEWER
    client.post(reverse("member_remove", args=[membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    actions = list(AuditEntry.objects.filter(team=acme).values_list("action", flat=True))
    assert actions[:2] == ["member.removed", "member.role_changed"]


def test_a_team_always_keeps_an_owner(acme: Team, owner: Any) -> None:
    mine = Membership.objects.get(team=acme, user=owner)
    with pytest.raises(team_services.TeamError, match="at least one owner"):
        team_services.member_set_role(membership=mine, actor=owner, role=Role.EDITOR)
    with pytest.raises(team_services.TeamError, match="at least one owner"):
        team_services.member_remove(membership=mine, actor=owner)
    response = client_for(owner).post(reverse("member_role", args=[mine.pk]), {"role": "viewer"})
    assert response.status_code == 302
    assert Membership.objects.get(pk=mine.pk).role == Role.OWNER

    second = factories.member(acme, Role.OWNER)
    team_services.member_set_role(membership=mine, actor=second, role=Role.EDITOR)
    theirs = Membership.objects.get(team=acme, user=second)
    with pytest.raises(NotPermitted):  # no longer an owner
        team_services.member_set_role(membership=theirs, actor=owner, role=Role.EDITOR)
    with pytest.raises(team_services.TeamError, match="at least one owner"):
        team_services.member_remove(membership=theirs, actor=second)


# --- several teams ---------------------------------------------------------------------------


def test_member_of_two_teams_sees_each_teams_data_only_in_that_team(acme: Team) -> None:
    globex = factories.team(name="Globex")
    person = factories.member(acme, Role.EDITOR)
    Membership.objects.create(team=globex, user=person, role=Role.VIEWER)
    in_acme = factories.completed_output(acme, person, prompt="acme fox", cost="0.02")
    in_globex = factories.completed_output(
        globex, factories.owner_of(globex), prompt="globex owl", cost="0.25"
    )
    client = client_for(person)

    client.post(reverse("switch_team"), {"team": acme.pk})
    page = client.get(reverse("jobs:gallery")).content.decode()
    assert f"job-{in_acme.job_id}" in page and f"job-{in_globex.job_id}" not in page
    assert "Acme · Editor" in page and "Globex · Viewer" in page  # the switcher
    usage = client.get(reverse("usage:page")).content.decode()
    assert "$0.02" in usage and "$0.25" not in usage

    client.post(reverse("switch_team"), {"team": globex.pk})
    page = client.get(reverse("jobs:gallery")).content.decode()
    assert f"job-{in_globex.job_id}" in page and f"job-{in_acme.job_id}" not in page
    assert f'<option value="{globex.pk}" selected>Globex · Viewer' in page
    usage = client.get(reverse("usage:page")).content.decode()
    assert "$0.25" in usage and "$0.02" not in usage
    # A viewer in Globex, though an editor in Acme: Globex's forms refuse them.
    assert client.get(reverse("jobs:new", args=["text-to-image"])).status_code == 403


# --- every service checks the acting user's role ------------------------------------------


def _world(team: Team) -> dict[str, Any]:
    owner = factories.owner_of(team)
    editor = factories.member(team, Role.EDITOR)
    output = factories.completed_output(team, editor)
    profile = profile_services.profile_create(
        team=team, user=editor, fields={"name": "Lead", "prompt_template": "portrait"}
    )
    Profile.objects.filter(pk=profile.pk).update(
        sync_state=Profile.SyncState.SYNCED,
        provider_profile_id="prof_0123abcd",
        synced_version=profile.version,
    )
    profile.refresh_from_db()
    run = casting_services.casting_run_create(
        team=team,
        user=editor,
        endpoint=catalog.get("text-to-image"),
        prompt="a scene",
        profiles=[profile],
    )
    job_services.job_fail(run.casting_jobs.get().job_id, "failed for the test")
    return {
        "owner": owner,
        "job": output.job,
        "profile": profile,
        "run": run,
        "invite": team_services.invite_create(team=team, actor=owner, role="viewer").invite,
        "owner_membership": Membership.objects.get(team=team, user=owner),
    }


T2I = catalog.get("text-to-image")
SUBMIT = {Role.OWNER, Role.EDITOR}
OWNER = {Role.OWNER}
SERVICES: dict[str, tuple[set[Role], Callable[[Team, Any, dict[str, Any]], Any]]] = {
    "job_create": (
        SUBMIT,
        lambda t, u, w: job_services.job_create(
            team=t, user=u, endpoint=T2I, params={"prompt": "p"}
        ),
    ),
    "job_rerun": (SUBMIT, lambda t, u, w: job_services.job_rerun(job=w["job"], user=u)),
    "casting_run_create": (
        SUBMIT,
        lambda t, u, w: casting_services.casting_run_create(
            team=t, user=u, endpoint=T2I, prompt="p", profiles=[w["profile"]]
        ),
    ),
    "casting_rerun": (
        SUBMIT,
        lambda t, u, w: casting_services.casting_rerun(run=w["run"], user=u, failed_only=True),
    ),
    "profile_create": (
        SUBMIT,
        lambda t, u, w: profile_services.profile_create(
            team=t, user=u, fields={"name": "New", "prompt_template": "x"}
        ),
    ),
    "profile_update": (
        SUBMIT,
        lambda t, u, w: profile_services.profile_update(
            profile=w["profile"], user=u, fields={"description": "changed"}
        ),
    ),
    "profile_duplicate": (
        SUBMIT,
        lambda t, u, w: profile_services.profile_duplicate(profile=w["profile"], user=u),
    ),
    "profile_archive": (
        SUBMIT,
        lambda t, u, w: profile_services.profile_archive(profile=w["profile"], user=u),
    ),
    "profile_resync": (
        SUBMIT,
        lambda t, u, w: profile_services.profile_resync(profile=w["profile"], user=u),
    ),
    "invite_create": (
        OWNER,
        lambda t, u, w: team_services.invite_create(team=t, actor=u, role="editor"),
    ),
    "invite_revoke": (
        OWNER,
        lambda t, u, w: team_services.invite_revoke(invite=w["invite"], actor=u),
    ),
    "member_set_role": (
        OWNER,
        lambda t, u, w: team_services.member_set_role(
            membership=w["owner_membership"], actor=u, role="owner"
        ),
    ),
    "member_remove": (
        OWNER,
        lambda t, u, w: team_services.member_remove(membership=w["owner_membership"], actor=u),
    ),
    "team_update": (
        OWNER,
        lambda t, u, w: team_services.team_update(team=t, actor=u, changes={"name": "X"}),
    ),
    "team_set_provider_key": (
        OWNER,
        lambda t, u, w: team_services.team_set_provider_key(
            team=t, actor=u, provider="imagepipeline", key=KEY
        ),
    ),
    "team_set_budget": (
        OWNER,
        lambda t, u, w: team_services.team_set_budget(team=t, actor=u, monthly_budget_usd=None),
    ),
}


@pytest.mark.parametrize("name", sorted(SERVICES))
@pytest.mark.parametrize("role", [*Role, None])
def test_every_service_refuses_a_role_that_may_not_act(
    acme: Team, name: str, role: Role | None
) -> None:
    """Called directly, not through a view: a role not allowed (or an outsider, None) gets
    NotPermitted, and nothing is written; an allowed role is let through."""
    world = _world(acme)
    allowed, call = SERVICES[name]
    person = factories.member(acme, role) if role else factories.owner_of(factories.team())
    if role in allowed:
        try:
            call(acme, person, world)
        except NotPermitted:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{name} refused a {role}")
        except (team_services.TeamError, job_services.JobStateError):
            pass  # refused for another reason (e.g. the last owner): not for the role
        return
    counts = (AuditEntry.objects.count(), Membership.objects.count(), Invite.objects.count())
    with pytest.raises(NotPermitted):
        call(acme, person, world)
    assert counts == (
        AuditEntry.objects.count(),
        Membership.objects.count(),
        Invite.objects.count(),
    )


def test_refused_submission_does_not_use_the_rate_allowance(acme: Team, settings: Any) -> None:
    settings.SUBMIT_RATE = (2, 60)
    viewer = factories.member(acme, Role.VIEWER)
    for _ in range(3):
        with pytest.raises(NotPermitted):
            job_services.job_create(team=acme, user=viewer, endpoint=T2I, params={"prompt": "p"})
    editor = factories.member(acme, Role.EDITOR)
    # Ids come back after a rolled-back test; Redis keeps its counters for the whole run.
    bucket = int(time.time()) // 60
    cache.delete_many([f"ratelimit:submit:{editor.pk}:{b}" for b in (bucket, bucket + 1)])
    for _ in range(2):
        job_services.job_create(team=acme, user=editor, endpoint=T2I, params={"prompt": "p"})
    with pytest.raises(job_services.RateLimited, match="too many jobs"):
        job_services.job_create(team=acme, user=editor, endpoint=T2I, params={"prompt": "p"})


# --- keys never leave ------------------------------------------------------------------------


def test_keys_never_appear_in_pages_logs_payloads_exports_or_the_admin(
    acme: Team, owner: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(owner)
    response = client.post(
        reverse("team_settings"),
        {"name": "Acme", "imagepipeline_api_key": KEY, "provider__face-swap": "face-swap"},
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.provider_key("imagepipeline") == KEY and KEY not in acme.imagepipeline_key
    # An error on the same form must not echo the key back either.
    failed = client.post(reverse("team_settings"), {"name": "", "imagepipeline_api_key": KEY})
    assert failed.status_code == 422
    output = factories.completed_output(acme, owner)
    staff = get_user_model().objects.create_superuser("operator", "op@example.com", "pw-op")
    admin = client_for(staff)
    pages = [
        failed.content.decode(),
        client.get(reverse("team_settings")).content.decode(),
        client.get(reverse("audit_log")).content.decode(),
        client.get(reverse("usage:page")).content.decode(),
        b"".join(client.get(reverse("usage:csv")).streaming_content).decode(),
        client.get(reverse("jobs:detail", args=[output.job_id])).content.decode(),
        admin.get(reverse("admin:studio_team_change", args=[acme.pk])).content.decode(),
        admin.get(reverse("admin:jobs_job_change", args=[output.job_id])).content.decode(),
        admin.get(reverse("admin:studio_auditentry_changelist")).content.decode(),
        admin.get(reverse("admin:studio_invite_changelist")).content.decode(),
        admin.get(reverse("admin:studio_membership_add")).content.decode(),
        admin.get(reverse("admin:jobs_output_changelist")).content.decode(),
        admin.get(reverse("admin:usage_usageday_changelist")).content.decode(),
        str(list(AuditEntry.objects.values_list())),
        str(output.job.payload),
        caplog.text,
    ]
    for text in pages:
        assert KEY not in text and KEY[-12:] not in text
    assert "••••" in pages[1] and "Set the imagepipeline API key" in pages[2]


# --- settings, brand defaults, audit ---------------------------------------------------------


def test_brand_defaults_prefill_the_forms_that_have_those_fields(acme: Team, owner: Any) -> None:
    client = client_for(owner)
    response = client.post(
        reverse("team_settings"),
        {
            "name": "Acme",
            "provider__face-swap": "face-swap",
            "palette_use_0": "on",
            "palette_0": "#ff5733",
            "palette_1": "#000000",  # not ticked: not used
            "palette_use_2": "on",
            "palette_2": "#3498db",
            "brand_output_format": "png",
            "brand_width": "768",
            "brand_height": "512",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    acme.refresh_from_db()
    assert acme.brand_palette == ["#FF5733", "#3498DB"]
    form = client.get(reverse("jobs:new", args=["text-to-image"])).content.decode()
    assert 'value="768"' in form and 'value="512"' in form
    assert '<option value="png" selected>' in form
    swap = client.get(reverse("jobs:new", args=["face-swap"])).content.decode()
    assert 'value="#FF5733, #3498DB"' in swap
    settings_page = client.get(reverse("team_settings")).content.decode()
    assert 'value="#ff5733"' in settings_page  # the swatch's colour picker

    bad = client.post(
        reverse("team_settings"),
        {"name": "Acme", "provider__face-swap": "face-swap", "palette_use_0": "on",
         "palette_0": "navy"},
    )  # fmt: skip
    assert bad.status_code == 422 and "hex codes" in bad.content.decode()


def test_audit_log_is_for_owners_and_filters(acme: Team, owner: Any) -> None:
    editor = factories.member(acme, Role.EDITOR)
    team_services.invite_create(team=acme, actor=owner, role="viewer")
    team_services.team_set_budget(team=acme, actor=owner, monthly_budget_usd=10)
    client = client_for(owner)
    page = client.get(reverse("audit_log"), REMOTE_ADDR="10.1.2.3").content.decode()
    assert "Invited someone (link) as viewer." in page and "Monthly budget $10" in page
    filtered = client.get(reverse("audit_log"), {"action": "budget.changed"}).content.decode()
    assert "Monthly budget $10" in filtered and "Invited" not in filtered
    assert (
        "Nothing matches" in client.get(reverse("audit_log"), {"actor": "nobody"}).content.decode()
    )
    assert client_for(editor).get(reverse("audit_log")).status_code == 403

    # The address of the request that made the change is recorded.
    client.post(reverse("team_members"), {"role": "editor"}, REMOTE_ADDR="203.0.113.9")
    entry = AuditEntry.objects.filter(action="invite.created").first()
    assert entry is not None and entry.address == "203.0.113.9"
    by_address = client.get(reverse("audit_log"), {"address": "203.0.113"}).content.decode()
    assert "203.0.113.9" in by_address and "Monthly budget" not in by_address


def test_exports_and_archives_are_audited(acme: Team, owner: Any) -> None:
    editor = factories.member(acme, Role.EDITOR)
    review_services.export_create(team=acme, user=editor, filters={}, label="picks")
    profile = profile_services.profile_create(
        team=acme, user=editor, fields={"name": "Lead", "prompt_template": "x"}
    )
    profile_services.profile_archive(profile=profile, user=editor)
    actions = set(AuditEntry.objects.filter(team=acme).values_list("action", flat=True))
    assert {"export.created", "profile.archived"} <= actions


# --- the lock helper -------------------------------------------------------------------------


def test_lock_is_held_once_and_never_frees_another_holders_lock() -> None:
    with locks.held("test:lock", timeout=5) as first:
        assert first is not None
        with locks.held("test:lock", timeout=5) as second:
            assert second is None
    late = locks.held("test:late", timeout=0.2)
    slow = late.__enter__()
    assert slow is not None
    deadline = time.monotonic() + 5
    while slow.locked() and time.monotonic() < deadline:  # wait for it to expire
        time.sleep(0.02)
    with locks.held("test:late", timeout=5) as other:
        assert other is not None
        late.__exit__(None, None, None)  # the slow holder finishes after its lock expired
        assert other.owned()  # and did not free the lock someone else holds now


def test_studios_sharing_a_redis_never_share_a_lock(settings: Any) -> None:
    """Two studios on one Redis (their own LIVE_CHANNEL_PREFIX each, as the README says) each
    get their own lock for the same name: one's export 1 never blocks the other's."""
    with locks.held("review:export:1", timeout=5) as ours:
        assert ours is not None
        settings.LIVE_CHANNEL_PREFIX = f"{settings.LIVE_CHANNEL_PREFIX}-other"
        with locks.held("review:export:1", timeout=5) as theirs:
            assert theirs is not None


def test_usage_rebuild_command_and_budget_cache(acme: Team, owner: Any) -> None:
    from django.core.management import call_command

    factories.completed_output(acme, owner, cost="0.5")
    out = io.StringIO()
    call_command("usage_rebuild", acme.slug, stdout=out)
    assert f"{acme.slug}: 1 usage rows" in out.getvalue()
    team_services.team_set_budget(team=acme, actor=owner, monthly_budget_usd=1)
    acme.refresh_from_db()
    state = usage_services.budget_state(acme)
    assert state is not None and state.spent == 0.5 and state.percent == 50
