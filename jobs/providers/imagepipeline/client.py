"""ImagePipeline (https://api.imagepipeline.io): flat JSON bodies, `X-API-Key`, `job_id`.

Error shapes (../shared/api/README.md): 422 is FastAPI's `{"detail": [{"loc", "msg", "type"}]}`;
other errors are `{error, error_code, message}`; 429 carries `Retry-After` in seconds.
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
    as_decimal,
    as_float,
    decode_json,
    retry_after_seconds,
    send,
)

NAME = "imagepipeline"
UPLOAD_PATH = "/upload/image/v1"


class ImagePipelineClient(HTTPClient):
    name = NAME

    def __init__(self, *, base_url: str, api_key: str, timeout: float) -> None:
        super().__init__(base_url=base_url, headers={"X-API-Key": api_key}, timeout=timeout)

    def submit(self, endpoint: Endpoint, payload: dict[str, Any]) -> Submission:
        response = send(self._http, "POST", endpoint.path, json=payload)
        data = accepted_json(response, self._check)
        job_id = data.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise OutcomeUnknownError("The provider accepted the request but sent no job_id.")
        return Submission(
            provider_job_id=job_id, status=str(data.get("status", "queued")), raw=data
        )

    def upload_image(self, filename: str, data: bytes, content_type: str) -> str:
        """Hand an input image to the provider (`POST /upload/image/v1`, multipart `file`) and
        return the URL it will read it from: for a studio the provider cannot reach."""
        response = send(
            self._http, "POST", UPLOAD_PATH, files={"file": (filename, data, content_type)}
        )
        url = self._check(response).get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise RetryableError("The provider's upload route answered without a URL.")
        return url

    def status(self, endpoint: Endpoint, provider_job_id: str) -> JobStatus:
        path = endpoint.status_path.format(job_id=provider_job_id)
        data = self._check(send(self._http, "GET", path))
        return parse_status(data, provider_job_id)

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        code = response.status_code
        if 200 <= code < 300:
            return decode_json(response)
        if code == 429:
            raise RateLimitedError(
                "The provider is rate limiting the studio.",
                retry_after=retry_after_seconds(response),
            )
        if code >= 500:
            raise RetryableError(f"The provider had an error (HTTP {code}).", status_code=code)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if code in (401, 403):
            raise AuthError(
                _message(data)
                or (
                    "The API key was refused."
                    if code == 401
                    else "This feature is not on the provider plan."
                ),
                status_code=code,
            )
        if code == 422:
            field_errors = _field_errors(data.get("detail"))
            summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in field_errors.items())
            raise PermanentError(
                f"The provider refused the request: {summary or 'invalid parameters'}.",
                status_code=code,
                error_code="INVALID_PARAMETERS",
                field_errors=field_errors,
            )
        raise PermanentError(
            _message(data) or f"The provider refused the request (HTTP {code}).",
            status_code=code,
            error_code=str(data.get("error_code", "")),
        )


def parse_status(data: dict[str, Any], provider_job_id: str) -> JobStatus:
    status = str(data.get("status", "")).lower()
    if status not in {"queued", "pending", "processing", "completed", "failed", "cancelled"}:
        raise RetryableError(f"The provider reported an unknown status {status!r}.")
    progress = data.get("progress")
    return JobStatus(
        provider_job_id=str(data.get("job_id") or provider_job_id),
        status=status,
        progress=int(progress) if isinstance(progress, int | float) else None,
        result_url=str(data.get("result_url") or ""),
        result_mime_type=str(data.get("result_mime_type") or ""),
        error=str(data.get("error") or ""),
        failure_reason_code=str(data.get("failure_reason_code") or ""),
        retryable=data.get("retryable") if isinstance(data.get("retryable"), bool) else None,
        processing_time_seconds=as_float(data.get("processing_time_seconds")),
        cost_usd=as_decimal(data.get("cost_usd")),
        balance_remaining_usd=as_decimal(data.get("balance_remaining_usd")),
        credits_charged=(
            data["credits_charged"] if isinstance(data.get("credits_charged"), bool) else None
        ),
        credits_amount=as_decimal(data.get("credits_amount")),
        raw=data,
    )


def _message(data: dict[str, Any]) -> str:
    for key in ("message", "error", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _field_errors(detail: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if isinstance(detail, list):
        for item in detail:
            if not isinstance(item, dict):
                continue
            loc = item.get("loc") or []
            name = str(loc[-1]) if isinstance(loc, list) and loc else "body"
            errors.setdefault(name, []).append(str(item.get("msg", "invalid")))
    elif isinstance(detail, str):
        errors["body"] = [detail]
    return errors
