"""The webhook transport against a raw socket server on loopback that answers in the framings
real receivers use: chunked, until close, after an interim 100, too long, malformed."""

import http.client
import socket
import threading

import pytest

from apps.connectors.targets import check_target
from apps.connectors.transport import MAX_DRAIN_BYTES, Session


class RawServer:
    """Answers each request it reads with the next of `replies` (raw bytes, sent as they are),
    closing the connection after a `Connection: close` or HTTP/1.0 one (or when the client
    does). Counts connections accepted."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = list(replies)
        self.accepted = 0
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.replies:
            conn, _ = self._sock.accept()
            self.accepted += 1
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    pass  # the client dropped the connection

    def _answer(self, conn: socket.socket) -> None:
        buf = b""
        while self.replies:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
            if b"\r\n\r\n" not in buf:
                break
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                buf += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + buf[:length])
            buf = buf[length:]
            reply = self.replies.pop(0)
            conn.sendall(reply)
            head = reply.split(b"\r\n\r\n")[0]
            if b"Connection: close" in head or head.startswith(b"HTTP/1.0"):
                break

    def close(self) -> None:
        self._sock.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def serve():
    servers: list[RawServer] = []

    def start(replies: list[bytes]) -> tuple[RawServer, Session]:
        server = RawServer(replies)
        servers.append(server)
        return server, Session(check_target(server.url), timeout=5)

    yield start
    for server in servers:
        server.close()


def test_a_request_goes_out_whole_with_its_host_and_length(serve):
    server, session = serve([OK])
    answer = session.request("POST", {"webhook-id": "msg_1"}, b'{"a":1}')
    session.close()
    assert (answer.status, answer.snippet) == (200, "ok")
    (request,) = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}".encode() in lines
    assert b"webhook-id: msg_1" in lines
    assert b"Content-Length: 7" in lines
    assert body == b'{"a":1}'


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(serve):
    chunked = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nac\r\n3;x=1\r\ncep\r\n0\r\nX-T: 1\r\n\r\n"
    server, session = serve([chunked, OK])
    first = session.request("POST", {}, b"{}")
    second = session.request("POST", {}, b"{}")
    session.close()
    assert (first.status, first.snippet) == (202, "accep")
    assert (second.status, second.snippet) == (200, "ok")
    assert server.accepted == 1


def test_an_interim_100_is_skipped_for_the_real_answer(serve):
    _, session = serve([b"HTTP/1.1 100 Continue\r\n\r\n" + OK])
    answer = session.request("POST", {}, b"{}")
    session.close()
    assert (answer.status, answer.snippet) == (200, "ok")


def test_an_answer_read_until_close_or_too_long_ends_the_connection(serve):
    long_body = b"x" * (MAX_DRAIN_BYTES + 10)
    server, session = serve(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(long_body) + long_body,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
            b"HTTP/1.0 500 Oops\r\n\r\nbroken",
            OK,
        ]
    )
    too_long = session.request("POST", {}, b"{}")  # not read to its end: connection dropped
    closing = session.request("POST", {}, b"{}")
    until_close = session.request("POST", {}, b"{}")
    last = session.request("POST", {}, b"{}")
    session.close()
    assert (too_long.status, len(too_long.snippet)) == (200, 1024)
    assert (closing.status, closing.snippet) == (200, "bye")
    assert (until_close.status, until_close.snippet) == (500, "broken")
    assert (last.status, last.snippet) == (200, "ok")
    assert server.accepted == 4  # each of the first three ended its connection


def test_a_malformed_status_line_is_an_error_not_an_answer(serve):
    _, session = serve([b"HTTP/1.1 abc Nope\r\n\r\n"])
    with pytest.raises(http.client.HTTPException):
        session.request("POST", {}, b"{}")
    session.close()
