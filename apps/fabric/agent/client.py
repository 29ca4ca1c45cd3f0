"""A tiny JSON-over-HTTP client on urllib (no extra dependencies on the node)."""

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit


class Unreachable(Exception):
    """The server could not be reached (network, DNS, refused connection, timeout)."""


class ServerError(Exception):
    """The server answered with an error status; `detail` is its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail

    @property
    def refused(self) -> bool:
        """The credential or token is not accepted: retrying won't help."""
        return self.status in (401, 403, 410)


def check_server_url(url: str) -> str:
    """The base URL without a trailing slash; ValueError when it isn't http(s)://host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--server must be an http:// or https:// URL, got {url!r}")
    return url.strip().rstrip("/")


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def request_json(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    *,
    authorization: str | None = None,
    timeout: float = 15,
) -> dict[str, Any]:
    raw = request_bytes(method, url, body, authorization=authorization, timeout=timeout)
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise ServerError(502, f"the server's answer is not JSON: {exc}") from None


def request_bytes(
    method: str,
    url: str,
    body: dict[str, Any] | bytes | None = None,
    *,
    authorization: str | None = None,
    timeout: float = 15,
) -> bytes:
    """The raw answer; ServerError for an error status, Unreachable when there is none. A
    bytes body is sent as it is (application/octet-stream), anything else as JSON."""
    headers = {"Accept": "application/json", "User-Agent": "orchcap-agent"}
    if isinstance(body, bytes):
        data: bytes | None = body
        headers["Content-Type"] = "application/octet-stream"
    else:
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only: check_server_url)
            return response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            detail = json.loads(raw).get("detail") or exc.reason
        except (ValueError, AttributeError):
            detail = raw.decode(errors="replace")[:200] or str(exc.reason)
        raise ServerError(exc.code, str(detail)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach {url}: {reason}") from None
