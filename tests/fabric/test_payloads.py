"""What nodes run (pure payload functions) and the agent's side of results and artefacts,
against a tiny HTTP server standing in for orchcap."""

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.fabric import payloads, protocol
from apps.fabric.agent.artifacts import ArtifactCache
from apps.fabric.agent.reporter import ResultReporter


def context(**fields: object) -> payloads.Context:
    return payloads.Context(node_id=7, task_id=1, attempt=1, **fields)


def test_probe_sleeps_and_reports_the_host():
    result = payloads.execute("probe", {"seconds": 0.05}, context())
    assert result["node_id"] == 7
    assert result["slept_seconds"] >= 0.05
    assert result["cpu_count"] >= 1
    assert result["hostname"]


def test_call_runs_only_registered_functions():
    assert payloads.execute("call", {"function": "echo", "args": {"a": 1}}, context()) == {"a": 1}
    with pytest.raises(payloads.PayloadError, match="function must be one of"):
        payloads.execute("call", {"function": "__import__", "args": {}}, context())
    with pytest.raises(payloads.PayloadError, match="does not know the kind"):
        payloads.execute("shell", {}, context())


def test_score_batch_scores_every_case_of_its_batch():
    args = {
        "rows": [{"amount": 100, "late": 1}, {"amount": 5, "late": 0}, {"amount": "n/a"}],
        "weights": {"amount": 0.01, "late": 2},
        "threshold": 1.5,
        "labels": ["pay", "review"],
    }
    result = payloads.execute("call", {"function": "score_batch", "args": args}, context())
    assert result == {"scores": [3.0, 0.05, 0.0], "labels": ["review", "pay", "pay"]}


def test_a_payload_gets_only_the_artefacts_its_task_names_and_only_if_they_match():
    data = b"rules v3"
    sha = hashlib.sha256(data).hexdigest()
    ok = context(artifacts=(sha,), fetch=lambda _: data)
    args = {"artifact": sha}
    assert payloads.execute("call", {"function": "artifact_digest", "args": args}, ok) == {
        "sha256": sha, "bytes": 8,
    }  # fmt: skip
    tampered = context(artifacts=(sha,), fetch=lambda _: b"rules v4")
    with pytest.raises(payloads.ArtifactMismatch):
        payloads.execute("call", {"function": "artifact_digest", "args": args}, tampered)
    not_listed = context(artifacts=(), fetch=lambda _: data)
    with pytest.raises(payloads.PayloadError, match="not one of this task's artefacts"):
        not_listed.artifact(sha)


def test_the_celery_id_carries_task_attempt_and_token():
    celery_id = protocol.celery_task_id(42, 3, "9f0a")
    assert protocol.held_attempt(celery_id) == (42, 3, "9f0a")
    assert protocol.held_attempt("some-other-task-id") is None
    queue = protocol.queue("node.5")
    assert (queue.durable, queue.auto_delete, queue.routing_key) == (True, False, "node.5")


class FakeServer:
    """Answers POST /api/v1/fabric/results and GET /api/v1/fabric/artifacts/<sha>."""

    def __init__(self, artefact: bytes = b"") -> None:
        self.posts: list[list[dict]] = []
        self.artefact = artefact
        self.gets = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.posts.append(body["results"])
                outcomes = [{"task": r["task"], "recorded": True, "reason": "recorded"}
                            for r in body["results"]]  # fmt: skip
                self._reply(200, json.dumps({"outcomes": outcomes}).encode())

            def do_GET(self) -> None:
                owner.gets += 1
                assert self.headers["Authorization"] == "Node 7:ocn_x"
                self._reply(200, owner.artefact)

            def _reply(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def fake_server():
    servers: list[FakeServer] = []

    def make(**kwargs: object) -> FakeServer:
        servers.append(FakeServer(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_results_finishing_together_travel_in_few_posts(fake_server):
    server = fake_server()
    reporter = ResultReporter(server.url, "Node 7:ocn_x")
    outcomes: list[dict | None] = []

    def finish(task_id: int) -> None:
        body = {"task": task_id, "attempt": 1, "token": "ab", "ok": True, "result": task_id}
        outcomes.append(reporter.deliver(body, timeout=10))

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(o is not None and o["recorded"] for o in outcomes)
    delivered = [r["task"] for batch in server.posts for r in batch]
    assert sorted(delivered) == list(range(60))  # each result once
    assert len(server.posts) < 60  # batched while earlier posts were on their way


def test_artefacts_are_checked_and_cached_and_a_bad_download_is_never_used(fake_server, tmp_path):
    data = b"model weights"
    sha = hashlib.sha256(data).hexdigest()
    server = fake_server(artefact=data)
    cache = ArtifactCache(tmp_path / "artifacts", server.url, "Node 7:ocn_x")
    assert cache.fetch(sha) == data
    assert cache.fetch(sha) == data
    assert server.gets == 1  # the second read came from the cache, checked again
    (tmp_path / "artifacts" / sha).write_bytes(b"tampered")
    assert cache.fetch(sha) == data  # a changed cache file is fetched again
    assert server.gets == 2

    server.artefact = b"something else"
    other = hashlib.sha256(b"expected").hexdigest()
    with pytest.raises(payloads.ArtifactMismatch):
        cache.fetch(other)
    assert not (tmp_path / "artifacts" / other).exists()


def test_a_bundle_runs_side_by_side_and_reports_every_result(fake_server, tmp_path):
    from apps.fabric.agent import worker
    from apps.fabric.agent.config import AgentConfig

    server = fake_server()
    config = AgentConfig(server.url, 7, "ocn_x", "n", "ab", "t")
    worker._runtime.update(
        config=config,
        concurrency=4,
        artifacts=ArtifactCache(tmp_path, server.url, config.authorization),
    )
    items = [
        protocol.message(task_id=i, attempt=1, token="ab", kind="probe",
                         payload={"seconds": 0.2}, artifacts=[])
        for i in range(4)
    ]  # fmt: skip
    started = time.monotonic()
    worker.run_payload(**protocol.bundle_message(items))
    elapsed = time.monotonic() - started
    assert elapsed < 0.6  # four 0.2 s probes side by side, not one after the other
    reported = [r for batch in server.posts for r in batch]
    assert sorted(r["task"] for r in reported) == [0, 1, 2, 3]
    assert all(r["ok"] and r["result"]["node_id"] == 7 for r in reported)
    assert len(server.posts) == 1  # finished together, reported together
