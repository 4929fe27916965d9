"""The typed edge between the studio and provider HTTP APIs.

Clients speak HTTP and nothing else (no ORM). Every vendor failure becomes one of the
exception types below, so callers never parse vendor text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from jobs.catalog import Endpoint
from studio import httpclients

# Provider status words, normalised (ImagePipeline's own; ImaginePro's are mapped onto them).
QUEUED, PENDING, PROCESSING = "queued", "pending", "processing"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})


class ProviderError(Exception):
    """Base of every provider failure; `str()` is a message fit for a user."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RetryableError(ProviderError):
    """Try again later: a 5xx, a connection refused, a malformed answer."""


class RateLimitedError(RetryableError):
    def __init__(self, message: str, *, retry_after: float, status_code: int = 429) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class OutcomeUnknownError(ProviderError):
    """The request went out but no answer came back: the provider may have acted on it."""


class AuthError(ProviderError):
    """The key is missing, wrong, or not allowed to use this feature (401/403)."""


class PermanentError(ProviderError):
    """The provider refused the request as such (422, 402, 404…); repeating it will not help."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str = "",
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.error_code = error_code
        self.field_errors = field_errors or {}


@dataclass(frozen=True)
class Submission:
    provider_job_id: str
    status: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class JobStatus:
    provider_job_id: str
    status: str  # normalised: queued, pending, processing, completed, failed, cancelled
    progress: int | None = None
    result_url: str = ""
    result_mime_type: str = ""
    error: str = ""
    failure_reason_code: str = ""
    retryable: bool | None = None
    processing_time_seconds: float | None = None
    cost_usd: Decimal | None = None
    balance_remaining_usd: Decimal | None = None
    credits_charged: bool | None = None
    credits_amount: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def provider_transport() -> httpx.BaseTransport | None:
    """Return the httpx transport that PROVIDER_TRANSPORT names (a dotted path to a class), or
    None for the network. Tests of the fast tier pick the in-process provider double here
    (`sandbox.inprocess.InProcessTransport`), like EMAIL_BACKEND picks locmem mail."""
    path = getattr(settings, "PROVIDER_TRANSPORT", "")
    return import_string(path)() if path else None


class HTTPClient:
    """What every provider client shares: the provider's base URL and auth header, a timeout
    that bounds each call as a whole, wall clock (connecting gets at most 10 s of it; see
    `studio.httpclients.deadline`: the provider-I/O worker runs on threads, where Celery's
    time limits do not apply), and the process's one long-lived httpx client, so calls reuse
    pooled connections and one SSL context.

    Constructing one is cheap (no sockets, no SSL context); `close()` is kept for callers
    that close what they open, and does nothing: the pool outlives the provider client."""

    def __init__(self, *, base_url: str, headers: dict[str, str], timeout: float) -> None:
        self._http = _Bound(
            base_url=base_url.rstrip("/"),
            headers={"Accept": "application/json", **headers},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            deadline=timeout,
            transport=provider_transport(),
        )

    def close(self) -> None:
        pass


class _Bound:
    """The shared client with one provider's base URL, headers and timeout applied."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        deadline: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.headers = headers
        self.timeout = timeout
        self.deadline = deadline
        # A transport of its own (the fast tier's in-process double) gets a client of its own.
        self._client = httpx.Client(transport=transport) if transport is not None else None

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}"
        client = self._client or httpclients.shared("providers")
        with httpclients.deadline(self.deadline):
            return client.request(method, url, headers=headers, timeout=self.timeout, **kwargs)


class ProviderClient(Protocol):
    name: str

    def submit(self, endpoint: Endpoint, payload: dict[str, Any]) -> Submission: ...

    def status(self, endpoint: Endpoint, provider_job_id: str) -> JobStatus: ...


def decode_json(response: httpx.Response) -> dict[str, Any]:
    """Return the JSON object of a response; a malformed body is a retryable failure."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RetryableError(
            f"The provider answered HTTP {response.status_code} with a body that is not JSON.",
            status_code=response.status_code,
        ) from exc
    if not isinstance(data, dict):
        raise RetryableError("The provider answered with JSON that is not an object.")
    return data


def accepted_json(
    response: httpx.Response, check: Callable[[httpx.Response], dict[str, Any]]
) -> dict[str, Any]:
    """Return the body of a submit answer. A 2xx whose body is unreadable means the provider
    took the job but we cannot tell which, and a 502/504 may hide the same: an unknown
    outcome, never a retry."""
    if response.status_code in (502, 504):
        # A gateway gave up waiting: the provider behind it may well have taken the job.
        raise OutcomeUnknownError(
            f"A gateway answered HTTP {response.status_code}: the provider may have the job."
        )
    try:
        return check(response)
    except RetryableError as exc:
        if 200 <= response.status_code < 300:
            raise OutcomeUnknownError(
                "The provider accepted the request but its answer was unreadable."
            ) from exc
        raise


def retry_after_seconds(response: httpx.Response, default: float = 5.0) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


def as_decimal(value: Any) -> Decimal | None:
    """Return a money figure the database can hold (|x| < 10^8), or None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 8:
        return None
    return number.quantize(Decimal("0.0001"))


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def send(client: httpx.Client | _Bound, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request, turning transport failures into our exception types.

    A failure before the request left (connection refused, connect timeout) is retryable;
    a failure after it left (read timeout, dropped connection) leaves the outcome unknown.
    """
    try:
        return client.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetryableError(f"Could not reach the provider: {exc.__class__.__name__}.") from exc
    except (
        httpx.ReadTimeout,
        httpx.WriteTimeout,
        httpx.RemoteProtocolError,
        httpx.ReadError,
    ) as exc:
        raise OutcomeUnknownError(
            f"The provider did not answer in time ({exc.__class__.__name__})."
        ) from exc
    except httpx.HTTPError as exc:
        raise RetryableError(f"HTTP error talking to the provider: {exc}.") from exc
