"""Every server-side fetch of a URL goes through here: result downloads and URL inputs.

Limits: http(s) only, no credentials in the URL, a byte cap, an overall time cap, and a
bounded number of redirects, each re-checked.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx


class FetchError(Exception):
    """The URL could not be fetched; `retryable` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Downloaded:
    path: Path
    content_type: str
    size: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError("Only http and https URLs can be fetched.", retryable=False)
    if parts.username or parts.password:
        raise FetchError("URLs with credentials are refused.", retryable=False)
    if not parts.hostname:
        raise FetchError("The URL has no host.", retryable=False)


def download(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 60.0,
    max_redirects: int = 3,
) -> Downloaded:
    """Download `url` into a temporary file and return it; the caller owns the file."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=httpx.Timeout(min(timeout, 30.0)), follow_redirects=False) as client:
        for _ in range(max_redirects + 1):
            check_url(url)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("Location", ""))
                        continue
                    if response.status_code == 429 or response.status_code >= 500:
                        raise FetchError(
                            f"The file server answered HTTP {response.status_code}.",
                            retryable=True,
                        )
                    if response.status_code != 200:
                        raise FetchError(
                            f"The file could not be downloaded (HTTP {response.status_code}).",
                            retryable=False,
                        )
                    declared = response.headers.get("Content-Length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise FetchError(
                            f"The file is larger than {max_bytes} bytes.", retryable=False
                        )
                    return _save(response, max_bytes=max_bytes, deadline=deadline)
            except httpx.TimeoutException as exc:
                raise FetchError("The download timed out.", retryable=True) from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"The download failed: {exc}.", retryable=True) from exc
    raise FetchError("Too many redirects.", retryable=False)


def _save(response: httpx.Response, *, max_bytes: int, deadline: float) -> Downloaded:
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(prefix="studio-dl-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            for chunk in response.iter_bytes(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"The file is larger than {max_bytes} bytes.", retryable=False)
                if time.monotonic() > deadline:
                    raise FetchError("The download took too long.", retryable=True)
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return Downloaded(path=path, content_type=content_type, size=size, sha256=digest.hexdigest())
