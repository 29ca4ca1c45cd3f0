"""HTTP to a checked target: the connection goes to the address `targets.check_target` approved
(TLS still verifies the certificate for the URL's host name), keeps alive between deliveries of
one drain, never follows redirects, and keeps at most 1 kB of the answer."""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from apps.connectors.targets import Target

SNIPPET_BYTES = 1024
# An answer longer than this is not read to its end: the connection is dropped instead.
MAX_DRAIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    snippet: str
    latency_ms: float


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout,
                         context=ssl.create_default_context())  # fmt: skip
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # As http.client does for plain HTTP: headers and body go out without waiting for an ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _text(raw: bytes) -> str:
    # PostgreSQL text holds no NUL.
    return raw[:SNIPPET_BYTES].decode("utf-8", errors="replace").replace("\x00", "")[:SNIPPET_BYTES]


class Session:
    """One keep-alive connection to one target; `close()` when done."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.target.scheme == "https":
                self._conn = _PinnedHTTPSConnection(self.target, self.timeout)
            else:
                self._conn = http.client.HTTPConnection(
                    self.target.address, self.target.port, timeout=self.timeout
                )
        return self._conn

    def request(self, method: str, headers: dict[str, str], body: bytes | None) -> Answer:
        """Send one request; raises OSError / http.client.HTTPException when no answer came."""
        headers = {"Host": self.target.host_header, **headers}
        started = time.perf_counter()
        reused = self._conn is not None
        try:
            status, raw = self._exchange(method, headers, body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if not reused:
                raise
            # The receiver closed the idle kept-alive connection: once more on a fresh one.
            status, raw = self._exchange(method, headers, body)
        latency = (time.perf_counter() - started) * 1000
        return Answer(status, _text(raw), latency)

    def _exchange(
        self, method: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            conn.request(method, self.target.path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read(MAX_DRAIN_BYTES + 1) if method != "HEAD" else b""
            if response.will_close or not response.isclosed():
                self.close()  # closing, or more left than we read: not reusable
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        return response.status, raw

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
