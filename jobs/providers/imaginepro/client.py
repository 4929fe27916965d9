"""ImaginePro (https://api.imaginepro.ai): Bearer auth, `messageId`, the progress route.

Statuses QUEUED / PROCESSING / DONE / FAIL are mapped onto ImagePipeline's words so the rest
of the studio sees one vocabulary. HTTP error codes are not documented (README: assumed
401/402/429); the body carries `error`, `message`, `statusCode`.
"""

from __future__ import annotations

from typing import Any

import httpx

from jobs.catalog import Endpoint

from ..base import (
    AuthError,
    HTTPClient,
    JobStatus,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    Submission,
    accepted_json,
    decode_json,
    retry_after_seconds,
    send,
)

NAME = "imaginepro"
STATUS_MAP = {
    "QUEUED": "queued",
    "PROCESSING": "processing",
    "DONE": "completed",
    "FAIL": "failed",
}


class ImagineProClient(HTTPClient):
    name = NAME

    def __init__(self, *, base_url: str, api_key: str, timeout: float) -> None:
        super().__init__(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def submit(self, endpoint: Endpoint, payload: dict[str, Any]) -> Submission:
        response = send(self._http, "POST", endpoint.path, json=payload)
        data = accepted_json(response, self._check)
        if data.get("success") is False:
            raise PermanentError(str(data.get("error") or "ImaginePro refused the request."))
        message_id = data.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise OutcomeUnknownError("ImaginePro accepted the request but sent no messageId.")
        return Submission(provider_job_id=message_id, status="queued", raw=data)

    def status(self, endpoint: Endpoint, provider_job_id: str) -> JobStatus:
        path = endpoint.status_path.format(job_id=provider_job_id)
        return parse_message(self._check(send(self._http, "GET", path)), provider_job_id)

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        code = response.status_code
        if 200 <= code < 300:
            return decode_json(response)
        if code == 429:
            raise RateLimitedError(
                "ImaginePro is rate limiting the studio.",
                retry_after=retry_after_seconds(response, default=3.0),
            )
        if code >= 500:
            raise RetryableError(f"ImaginePro had an error (HTTP {code}).", status_code=code)
        try:
            data = response.json()
        except ValueError:
            data = {}
        message = ""
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("error") or "")
        if code in (401, 403):
            raise AuthError(message or "ImaginePro refused the API key.", status_code=code)
        raise PermanentError(
            message or f"ImaginePro refused the request (HTTP {code}).", status_code=code
        )


def parse_message(data: dict[str, Any], provider_job_id: str) -> JobStatus:
    raw_status = str(data.get("status", "")).upper()
    status = STATUS_MAP.get(raw_status)
    if status is None:
        raise RetryableError(f"ImaginePro reported an unknown status {raw_status!r}.")
    progress = data.get("progress")
    return JobStatus(
        provider_job_id=str(data.get("messageId") or provider_job_id),
        status=status,
        progress=int(progress) if isinstance(progress, int | float) else None,
        result_url=str(data.get("uri") or ""),
        error=str(data.get("error") or ""),
        raw=data,
    )
