"""Every server-side fetch of a URL goes through here (result downloads today; any URL input
the studio ever fetches tomorrow), so one place enforces the rules against SSRF:

- http(s) only, no credentials in the URL, the default ports or ones named in settings;
- the host name is resolved once, and every address it resolves to must be public (loopback,
  private, link-local, multicast, reserved, unspecified and the like are refused), except the
  studio's own sandbox when it is explicitly enabled;
- the connection is pinned to the checked address (no second lookup an attacker could answer
  differently), with the original name kept for the Host header and TLS (SNI, certificate);
- every redirect is checked again from scratch;
- a byte cap, a wall-clock deadline for the whole download, and an optional content-type check.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

from studio import httpclients
from studio.ids import parse_int

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class FetchError(Exception):
    """The URL could not be fetched; `retryable` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnsafeURL(FetchError):
    """The URL points somewhere the studio must not fetch from."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class Downloaded:
    path: Path
    content_type: str
    size: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"The host {host} could not be resolved.", retryable=True) from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public(address: Address) -> bool:
    """Return whether an address is one the open internet routes to."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return is_public(address.ipv4_mapped)
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour:
        return is_public(address.sixtofour)
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def literal_address(host: str) -> Address | None:
    """Return the address a host names literally, in any encoding a URL parser accepts
    (dotted, decimal `2130706433`, hex `0x7f.1`, octal `0177.0.0.1`, short `127.1`, IPv6)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # inet_aton accepts exactly the legacy forms browsers and libc resolvers do.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, UnicodeError):
        return None


INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")

# Full stops that IDNA (UTS #46) reads as "." in a host name; NFKC leaves the ideographic one.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


@dataclass(frozen=True)
class ParsedURL:
    parts: SplitResult  # of the normalised URL
    host: str  # ASCII (IDNA), lower case, no trailing dot; "" when there is none


def parse_url(url: str) -> ParsedURL:
    """Return a URL split the way the hosts that will fetch it read it, for both the form's
    check and the fetcher's (one function, so they cannot disagree).

    The text is NFKC-normalised (fullwidth and circled digits become ASCII digits, so 127.0.0.1
    in fullwidth digits is 127.0.0.1), ideographic full stops become dots, and the host
    is IDNA-encoded. Raise ValueError for what no two parsers read alike: a backslash (a
    path separator to browsers, part of the user name to Python, so
    `http://127.0.0.1\\@example.com/` names two different hosts) or a host IDNA refuses.
    """
    if "\\" in url:
        raise ValueError("A URL may not contain a backslash; percent-encode it (%5C).")
    text = unicodedata.normalize("NFKC", url.strip()).translate(_DOTS)
    if "\\" in text:  # a fullwidth backslash, now a backslash
        raise ValueError("A URL may not contain a backslash; percent-encode it (%5C).")
    parts = urlsplit(text)
    host = (parts.hostname or "").rstrip(".").lower()
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError("The URL's host name is not a valid international name.") from exc
    return ParsedURL(parts=parts, host=host)


def internal_url_reason(url: str) -> str | None:
    """Return why a URL given as an input obviously points inside a network, or None.

    Checked on forms without a DNS lookup (names are checked again, resolved, at fetch time),
    on the URL as `parse_url` reads it, exactly as the fetcher does.
    """
    try:
        parsed = parse_url(url)
        parsed.parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return str(exc) if "backslash" in str(exc) else "The URL cannot be parsed."
    host = parsed.host
    if parsed.parts.username is not None or parsed.parts.password is not None:
        return "URLs with a user name or password are refused; give a public URL."
    if host == "localhost" or host.endswith(INTERNAL_SUFFIXES):
        return f"{host} is an internal host name; give a public URL."
    literal = literal_address(host)
    if literal is not None and not is_public(literal):
        return f"{host} is not a public address; give a public URL."
    return None


@dataclass(frozen=True)
class Target:
    """Where a checked URL is fetched from. The request names the host (so Host, SNI, the
    certificate check and a kept-alive connection are that host's); its connections are
    pinned to `address` (`httpclients.pinned`), never looked up again."""

    url: str  # the URL to request (a literal address in it: the checked one)
    name: str  # the host as a connection names it (IDNA, no port)
    address: str  # the checked address


class Guard:
    """Decides whether a URL may be fetched and pins it to a checked address."""

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        allowed_ports: Iterable[int] = (80, 443),
        exempt_prefixes: Iterable[str] = (),
        is_allowed_address: Callable[[Address], bool] = is_public,
    ) -> None:
        self.resolver = resolver
        self.allowed_ports = set(allowed_ports)
        self.exempt_prefixes = tuple(exempt_prefixes)
        self.is_allowed_address = is_allowed_address

    def _exempt(self, url: str) -> bool:
        path = urlsplit(url).path
        if "/../" in f"{path}/" or "/./" in f"{path}/" or "%2e" in path.lower():
            return False
        return any(url.startswith(prefix) for prefix in self.exempt_prefixes)

    def check(self, url: str) -> Target:
        try:
            parsed = parse_url(url)
        except ValueError as exc:
            raise UnsafeURL(str(exc)) from exc
        parts, host = parsed.parts, parsed.host
        if parts.scheme not in ("http", "https"):
            raise UnsafeURL("Only http and https URLs can be fetched.")
        if parts.username is not None or parts.password is not None:
            raise UnsafeURL("URLs with credentials are refused.")
        if not host:
            raise UnsafeURL("The URL has no host.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise UnsafeURL("The URL has an invalid port.") from exc
        exempt = self._exempt(url)
        if not exempt and port not in self.allowed_ports:
            raise UnsafeURL(f"Port {port} is not allowed.")
        if not exempt and (host == "localhost" or host.endswith(INTERNAL_SUFFIXES)):
            raise UnsafeURL(f"{host} is an internal host name; refused.")
        literal = literal_address(host)
        addresses = [str(literal)] if literal is not None else self.resolver(host, port)
        if not addresses:
            raise FetchError(f"The host {host} has no address.", retryable=True)
        checked = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        if not exempt:
            refused = [str(a) for a in checked if not self.is_allowed_address(a)]
            if refused:
                raise UnsafeURL(
                    f"{host} resolves to a non-public address ({', '.join(refused)}); refused."
                )
        pinned = checked[0]
        if literal is not None:  # the checked address, written as one
            host = f"[{pinned}]" if pinned.version == 6 else str(pinned)
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return Target(url=url, name=host.strip("[]"), address=str(pinned))


def default_guard() -> Guard:
    """The guard for this deployment: the sandbox's own files are exempt only when enabled."""
    exempt = []
    if settings.SANDBOX_ENABLED:
        exempt = [f"{settings.PUBLIC_BASE_URL}/sandbox/"]
        if settings.SANDBOX_URL:  # served by a process of its own (runstudio, make bench)
            exempt.append(f"{settings.SANDBOX_URL}/")
    return Guard(exempt_prefixes=exempt, allowed_ports=settings.FETCH_ALLOWED_PORTS)


def download(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 60.0,
    max_redirects: int = 3,
    content_types: Iterable[str] = (),
    guard: Guard | None = None,
) -> Downloaded:
    """Download `url` into a temporary file and return it; the caller owns the file.

    `timeout` is a wall-clock deadline for the whole download: the name lookup, every
    redirect, the headers and the body. Per-read timeouts cannot give that (a server sending
    one byte every half second never trips one), so every connect, write and read runs under
    `httpclients.deadline` with only the time left, and a name lookup (which cannot be
    interrupted) is waited for at most that long, in a thread.
    `content_types` lists acceptable type prefixes (e.g. "image/"); empty accepts any.

    The process's one downloading client keeps connections alive between downloads from the
    same host (a result per job from the same provider): no event loop, client or TCP
    handshake per download.
    """
    request = _Request(
        guard=guard or default_guard(),
        max_bytes=max_bytes,
        max_redirects=max_redirects,
        accepted=tuple(content_types),
    )
    end = time.monotonic() + timeout
    with httpclients.deadline(timeout):
        return _download(url, request, end, timeout)


@dataclass(frozen=True)
class _Request:
    guard: Guard
    max_bytes: int
    max_redirects: int
    accepted: tuple[str, ...]


def _took_longer(timeout: float) -> FetchError:
    return FetchError(f"The download took longer than {timeout:g} s.", retryable=True)


def _download(url: str, request: _Request, end: float, timeout: float) -> Downloaded:
    # The overall deadline is `end` (`httpclients.deadline` cuts every step to it); httpx's
    # own timeout bounds each wait, and is never longer than the whole.
    limits = httpx.Timeout(min(timeout, 30.0))
    http = httpclients.shared("downloads", trust_env=False)
    for _ in range(request.max_redirects + 1):
        target = _checked(request.guard, url, end, timeout)
        try:
            with (
                httpclients.pinned({target.name: target.address}),
                http.stream("GET", target.url, timeout=limits) as response,
            ):
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                _check_response(response, request)
                return _save(response, request.max_bytes)
        except httpx.TimeoutException as exc:
            if time.monotonic() >= end - DEADLINE_SLACK:
                raise _took_longer(timeout) from exc
            raise FetchError("The download timed out.", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise FetchError(
                f"The download failed: {exc.__class__.__name__}.", retryable=True
            ) from exc
    raise FetchError("Too many redirects.", retryable=False)


# A step cut by the deadline ends when its socket's timeout (the time left) runs out: within
# a clock tick of the deadline.
DEADLINE_SLACK = 0.05

_lookups: tuple[int, ThreadPoolExecutor] | None = None
_lookups_lock = threading.Lock()


def _checked(guard: Guard, url: str, end: float, timeout: float) -> Target:
    """Return `guard.check(url)`, waiting at most until `end` for its name lookup."""
    try:
        host = parse_url(url).host
    except ValueError:
        host = ""
    if not host or literal_address(host) is not None:
        return guard.check(url)  # nothing to look up (or a URL the check itself refuses)
    future = _lookup_pool().submit(guard.check, url)
    try:
        return future.result(timeout=max(0.0, end - time.monotonic()))
    except LookupTimeout as exc:
        raise _took_longer(timeout) from exc


def _lookup_pool() -> ThreadPoolExecutor:
    """This process's threads for name lookups (made again in a forked child)."""
    global _lookups
    with _lookups_lock:
        if _lookups is None or _lookups[0] != os.getpid():
            _lookups = (os.getpid(), ThreadPoolExecutor(8, thread_name_prefix="fetch-lookup"))
        return _lookups[1]


def _check_response(response: httpx.Response, request: _Request) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        raise FetchError(f"The file server answered HTTP {response.status_code}.", retryable=True)
    if response.status_code != 200:
        raise FetchError(
            f"The file could not be downloaded (HTTP {response.status_code}).",
            retryable=response.status_code in (403, 404, 408),
        )
    content_type = _content_type(response)
    if request.accepted and not content_type.startswith(request.accepted):
        raise FetchError(
            f"Expected {' or '.join(request.accepted)} but got {content_type or 'no type'}.",
            retryable=False,
        )
    declared = parse_int(response.headers.get("Content-Length"), max_digits=15)
    if declared is not None and declared > request.max_bytes:
        raise FetchError(f"The file is larger than {request.max_bytes} bytes.", retryable=False)


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def _save(response: httpx.Response, max_bytes: int) -> Downloaded:
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(prefix="studio-dl-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            # Each piece as it arrives (no re-chunking that would wait for 64 KiB).
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"The file is larger than {max_bytes} bytes.", retryable=False)
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:  # the deadline's timeout included: no half file left behind
        path.unlink(missing_ok=True)
        raise
    return Downloaded(
        path=path, content_type=_content_type(response), size=size, sha256=digest.hexdigest()
    )
