"""Sign-in: limits keyed on the name Django's auth resolves, a lockout a stranger cannot aim at
a user, failing closed when Redis is down, and password change and reset for users."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import redis
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from studio.embedded import free_port
from studio.middleware import ServiceUnavailableMiddleware
from studio.models import Role, Team

from . import factories

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-for-tests-only"


def address() -> str:
    """An address of this test's own (the counters live in the run's shared Redis)."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250}"


def sign_in(username: str, password: str, *, at: str) -> int:
    client = Client(REMOTE_ADDR=at)
    return client.post(reverse("login"), {"username": username, "password": password}).status_code


@pytest.fixture
def named_user(team: Team) -> Any:
    return factories.member(team, Role.VIEWER, username=f"b_viewer{uuid.uuid4().hex[:6]}")


def test_spelling_variants_of_a_username_share_its_limit(settings: Any, named_user: Any) -> None:
    settings.LOGIN_RATE = (3, 60)
    name = named_user.username
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)
    variants = [f" {name}", f"{name} ", f"\t{name}", fullwidth, f"{name}\u00a0", name.upper()]
    # Three wrong guesses, each from its own address and spelling, use up the name's limit…
    assert [sign_in(v, "wrong", at=address()) for v in variants[:3]] == [200, 200, 200]
    # …so no other spelling gets through, even with the right password, from anywhere new.
    for variant in variants[3:] + variants[:3]:
        assert sign_in(variant, PASSWORD, at=address()) == 429, repr(variant)


def test_each_variant_signs_in_as_the_user_when_not_limited(named_user: Any) -> None:
    for variant in (f" {named_user.username}", f"{named_user.username}\u00a0"):
        client = Client(REMOTE_ADDR=address())
        response = client.post(reverse("login"), {"username": variant, "password": PASSWORD})
        assert response.status_code == 302
        assert client.get(reverse("jobs:gallery")).context["user"] == named_user


def test_a_stranger_cannot_lock_a_user_out_of_an_address_they_signed_in_from(
    settings: Any, named_user: Any
) -> None:
    settings.LOGIN_RATE = (3, 60)
    home = address()
    assert sign_in(named_user.username, PASSWORD, at=home) == 302  # a known address from now on
    # A stranger floods wrong passwords for the user from many addresses (the user's own first
    # sign-in, from a then unknown address, counted too).
    codes = [sign_in(named_user.username, "guess", at=address()) for _ in range(6)]
    assert codes[:2] == [200, 200] and set(codes[2:]) == {429}
    # The stranger stays locked out, even with the right password…
    assert sign_in(named_user.username, PASSWORD, at=address()) == 429
    # …but the user, from where they signed in before, is not.
    assert sign_in(named_user.username, PASSWORD, at=home) == 302
    # Their address still has its limit (two sign-ins so far, one more attempt, then no more).
    assert [sign_in(named_user.username, "typo", at=home) for _ in range(2)] == [200, 429]


@pytest.fixture
def redis_down(settings: Any) -> None:
    """The cache points at a port where no Redis listens."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }


def test_sign_in_fails_closed_with_a_clear_message_when_redis_is_down(
    named_user: Any, redis_down: None
) -> None:
    client = Client(REMOTE_ADDR=address())
    response = client.post(
        reverse("login"), {"username": named_user.username, "password": PASSWORD}
    )
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "Signing in is paused" in response.content.decode()
    assert "_auth_user_id" not in client.session
    admin = client.post("/admin/login/", {"username": named_user.username, "password": PASSWORD})
    assert admin.status_code == 503


def test_a_page_needing_redis_answers_503_not_500() -> None:
    request = RequestFactory().get("/anything/", HTTP_ACCEPT="text/html")
    middleware = ServiceUnavailableMiddleware(lambda r: None)  # type: ignore[arg-type,return-value]
    response = middleware.process_exception(request, redis.ConnectionError("refused"))
    assert response is not None and response.status_code == 503
    assert "Back in a moment" in response.content.decode()
    assert middleware.process_exception(request, ValueError("a bug")) is None  # still a 500


def test_a_user_changes_their_password(named_user: Any) -> None:
    client = Client()
    client.force_login(named_user)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200 and "Change password" in page.content.decode()
    wrong = client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "x", "new_password2": "y"},
    )
    assert wrong.status_code == 200 and "form-errors" in wrong.content.decode()
    new = "a-Longer-new-secret-42"
    done = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_change_done")
    assert client.get(reverse("password_change_done")).status_code == 200  # still signed in
    assert sign_in(named_user.username, new, at=address()) == 302


def test_a_user_resets_a_forgotten_password_by_email(named_user: Any) -> None:
    named_user.email = "viewer@example.com"
    named_user.save()
    client = Client(REMOTE_ADDR=address())
    login_page = client.get(reverse("login")).content.decode()
    assert reverse("password_reset") in login_page
    sent = client.post(reverse("password_reset"), {"email": "viewer@example.com"})
    assert sent.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/password/reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    new = "another-Longer-secret-77"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert sign_in(named_user.username, new, at=address()) == 302
    # The link works once.
    again = client.get(link.group(1), follow=True)
    assert "expired" in again.content.decode()
    # An unknown address is not revealed.
    assert (
        client.post(reverse("password_reset"), {"email": "nobody@example.com"}).status_code == 302
    )
    assert len(mail.outbox) == 1
