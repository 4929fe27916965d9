"""ImagePipeline identity profiles: create, read, list, update and delete at `/profiles/v1`.

Source: ../shared/api/imagepipeline-profiles.txt and ../shared/api/README.md. Create answers
`{profile_id: "prof_<16 hex>", name, adapter_snapshot}`, list answers `{profiles, total}`,
DELETE answers 204 with no body. What PATCH answers is not documented: we read it like a
create answer when it is one, and otherwise keep what we knew (**assumed**).

HTTP only, no ORM: errors are the job client's (`_check`), so a 5xx is retryable, a 404 or 422
is permanent, 401/403 an auth error and 429 rate limiting with its Retry-After.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..base import OutcomeUnknownError, PermanentError, RetryableError, send
from .client import ImagePipelineClient

PATH = "/profiles/v1"
PROFILE_ID = re.compile(r"^prof_[0-9A-Za-z]{1,64}$")


@dataclass(frozen=True)
class RemoteProfile:
    """The provider's copy of a profile."""

    profile_id: str
    name: str
    adapter_snapshot: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


class ImagePipelineProfilesClient(ImagePipelineClient):
    """The profile routes; shares the job client's key, timeouts and error mapping."""

    def create_profile(self, body: dict[str, Any]) -> RemoteProfile:
        response = send(self._http, "POST", PATH, json=body)
        data = self._check(response)
        try:
            return parse_profile(data)
        except RetryableError as exc:
            # A 2xx means the provider made a profile we cannot name: sending the POST again
            # could make a second one, so the caller must treat it as an unknown outcome.
            raise OutcomeUnknownError(
                "The provider accepted the profile but its answer had no profile_id."
            ) from exc

    def get_profile(self, profile_id: str) -> RemoteProfile:
        data = self._check(send(self._http, "GET", _item(profile_id)))
        return parse_profile(data, profile_id)

    def list_profiles(self) -> list[RemoteProfile]:
        data = self._check(send(self._http, "GET", PATH))
        items = data.get("profiles")
        if not isinstance(items, list):
            raise RetryableError("The provider's profile list has no `profiles` array.")
        return [parse_profile(item) for item in items if isinstance(item, dict)]

    def update_profile(self, profile_id: str, body: dict[str, Any]) -> RemoteProfile | None:
        """PATCH the profile; return its new state when the answer carries one."""
        response = send(self._http, "PATCH", _item(profile_id), json=body)
        if response.status_code == 204 or (response.is_success and not response.content):
            return None
        data = self._check(response)
        return parse_profile(data, profile_id) if "adapter_snapshot" in data else None

    def delete_profile(self, profile_id: str) -> None:
        response = send(self._http, "DELETE", _item(profile_id))
        if response.status_code == 204 or (response.is_success and not response.content):
            return
        self._check(response)


def _item(profile_id: str) -> str:
    # The id goes into the URL path: refuse anything that could change the route.
    if not PROFILE_ID.match(profile_id):
        raise PermanentError(f"{profile_id!r} is not a profile id.", error_code="INVALID_ID")
    return f"{PATH}/{profile_id}"


def parse_profile(data: dict[str, Any], expected_id: str = "") -> RemoteProfile:
    """Return the profile in a provider answer; an answer without an id is retryable."""
    profile_id = data.get("profile_id") or expected_id
    if not isinstance(profile_id, str) or not PROFILE_ID.match(profile_id):
        raise RetryableError("The provider answered without a valid profile_id.")
    snapshot = data.get("adapter_snapshot")
    return RemoteProfile(
        profile_id=profile_id,
        name=str(data.get("name") or ""),
        adapter_snapshot=snapshot if isinstance(snapshot, dict) else {},
        raw=data,
    )


def is_not_found(exc: Exception) -> bool:
    """Check whether a provider error says the profile does not exist (HTTP 404)."""
    return isinstance(exc, PermanentError) and exc.status_code == 404
