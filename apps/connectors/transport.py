"""HTTP to a checked target: the connection goes to the address `targets.check_target` approved
(TLS still verifies the certificate for the URL's host name), keeps alive between deliveries of
one drain, never follows redirects, and keeps at most 1 kB of the answer.

A request goes out as one buffer in one `sendall` (http.client writes the head and the body
in two: two segments, and on loopback two wake-ups of the receiver per delivery). The answer is
read by `_Reader`, which parses only what frames it (status, Content-Length, Transfer-Encoding,
Connection): http.client's HTTPResponse runs every answer's headers through the email parser,
about 50-350 µs an answer (idle to loaded machine), a fifth of a delivery's cost on loopback."""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from apps.connectors.targets import Target

SNIPPET_BYTES = 1024
# An answer longer than this is not read to its end: the connection is dropped instead.
MAX_DRAIN_BYTES = 64 * 1024
_BREAKS = frozenset("\r\n\x00")


@dataclass(frozen=True)
class Answer:
    status: int
    snippet: str
    latency_ms: float


MAX_HEAD_BYTES = 64 * 1024


def _status(line: bytes) -> tuple[bytes, int]:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise http.client.BadStatusLine(repr(line[:100]))
    try:
        status = int(parts[1])
    except ValueError:
        raise http.client.BadStatusLine(repr(line[:100])) from None
    if not 100 <= status <= 999:
        raise http.client.BadStatusLine(repr(line[:100]))
    return parts[0], status


class _Reader:
    """Reads the answers off one connection, keeping what arrived beyond the current one."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        self._buf += chunk

    def _find(self, mark: bytes) -> int:
        while (end := self._buf.find(mark)) < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise http.client.LineTooLong("answer head")
            self._fill()
        return end

    def _line(self) -> bytes:
        end = self._find(b"\r\n")
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _take(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def _chunked(self) -> tuple[bytes, bool]:
        body = bytearray()
        while True:
            try:
                size = int(self._line().split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.HTTPException("bad chunk size") from None
            if size == 0:
                while self._line():  # trailers, up to the blank line
                    pass
                return bytes(body), True
            if len(body) + size > MAX_DRAIN_BYTES:
                body += self._take(MAX_DRAIN_BYTES + 1 - len(body))
                return bytes(body), False
            body += self._take(size)
            if self._take(2) != b"\r\n":
                raise http.client.HTTPException("bad chunk end")

    def _until_close(self) -> bytes:
        try:
            while len(self._buf) <= MAX_DRAIN_BYTES:
                self._fill()
        except http.client.RemoteDisconnected:
            pass  # the end of this body
        return bytes(self._buf[: MAX_DRAIN_BYTES + 1])

    def answer(self, method: str) -> tuple[int, bytes, bool]:
        """(status, at most MAX_DRAIN_BYTES + 1 bytes of the body, whether the connection can
        carry the next request)."""
        while True:
            end = self._find(b"\r\n\r\n")
            lines = bytes(self._buf[:end]).split(b"\r\n")
            del self._buf[: end + 4]
            version, status = _status(lines[0])
            if status >= 200 or status == 101:
                break
            # An interim 1xx answer (100 Continue, 103 Early Hints): the real one follows.
        fields: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if colon:
                fields[name.strip().lower()] = value.strip()
        tokens = {token.strip() for token in fields.get(b"connection", b"").lower().split(b",")}
        close = b"close" in tokens or (version == b"HTTP/1.0" and b"keep-alive" not in tokens)
        if method == "HEAD" or status in (204, 304):
            body, complete = b"", True
        elif status == 101:
            body, complete = b"", False  # another protocol from here on
        elif b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            body, complete = self._chunked()
        elif b"content-length" in fields:
            try:
                length = int(fields[b"content-length"])
            except ValueError:
                raise http.client.HTTPException("bad Content-Length") from None
            if length < 0:
                raise http.client.HTTPException("bad Content-Length")
            complete = length <= MAX_DRAIN_BYTES
            body = self._take(length if complete else MAX_DRAIN_BYTES + 1)
        else:
            body, complete = self._until_close(), False
        # Anything sent beyond this answer (nothing was asked for): don't trust the connection.
        return status, body, complete and not close and not self._buf


def _text(raw: bytes) -> str:
    # PostgreSQL text holds no NUL.
    return raw[:SNIPPET_BYTES].decode("utf-8", errors="replace").replace("\x00", "")[:SNIPPET_BYTES]


def _clean(value: str, what: str) -> str:
    """A request-line or header part with no control characters or spaces that could split the
    request (http.client checks the same)."""
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        raise http.client.InvalidURL(f"{what} holds a control character or a space: {value!r}")
    return value


class Session:
    """One keep-alive connection to one target; `close()` when done."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader: _Reader | None = None
        self._path = _clean(target.path or "/", "The path")
        self._host = _clean(target.host_header, "The host")

    def _connection(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.target.address, self.target.port), self.timeout)
            try:
                # Nothing waits for an ACK before the next request (one buffer per request).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.target.scheme == "https":
                    sock = ssl.create_default_context().wrap_socket(
                        sock, server_hostname=self.target.host
                    )
            except BaseException:
                sock.close()
                raise
            self._sock, self._reader = sock, _Reader(sock)
        return self._sock

    def _message(self, method: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {self._path} HTTP/1.1", f"Host: {self._host}"]
        for name, value in headers.items():
            if _BREAKS.intersection(name) or _BREAKS.intersection(value):
                raise http.client.InvalidURL(f"The header {name!r} holds a line break.")
            lines.append(f"{name}: {value}")
        lines.append("Accept-Encoding: identity")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body else head

    def request(self, method: str, headers: dict[str, str], body: bytes | None) -> Answer:
        """Send one request; raises OSError / http.client.HTTPException when no answer came."""
        message = self._message(method, headers, body)
        started = time.perf_counter()
        reused = self._sock is not None
        try:
            status, raw = self._exchange(method, message)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if not reused:
                raise
            # The receiver closed the idle kept-alive connection: once more on a fresh one.
            status, raw = self._exchange(method, message)
        latency = (time.perf_counter() - started) * 1000
        return Answer(status, _text(raw), latency)

    def _exchange(self, method: str, message: bytes) -> tuple[int, bytes]:
        sock = self._connection()
        try:
            sock.sendall(message)
            assert self._reader is not None
            status, raw, reusable = self._reader.answer(method)
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if not reusable:
            self.close()  # closing, or more left than we read
        return status, raw

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = self._reader = None
