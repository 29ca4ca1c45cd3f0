"""A small simulated system of record for `manage.py simulate_source`: it sends an orchestration
believable items through the public API, receives orchcap's signed callbacks on a loopback port,
verifies each signature with the Standard Webhooks algorithm (refusing a message that fails) and
prints what came back. It talks to orchcap only over HTTP, as a real source system would; only
the default token (`token_for_owner`) reads the local database."""

import base64
import hashlib
import hmac
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import quote

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_PORT = 8765
RECEIVER_PATH = "/orchcap/callbacks"
CONNECTOR_NAME = "simulate_source"
EVENT_TYPES = ["item.decided", "item.routed", "sla.breached", "audit.overturned"]
MAX_RATE = 200.0
WAIT_MS = 2000
TOLERANCE_SECONDS = 300
MAX_BODY = 1024 * 1024


class SimulatorError(Exception):
    """Something the simulator can't go on with; its message is one line for the person."""


# --- verifying callbacks ------------------------------------------------------------------------


def verify_webhook(
    *, secret: str, headers: dict[str, str], body: bytes, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """The Standard Webhooks check: HMAC-SHA256, keyed with the base64 after `whsec_`, of
    "{webhook-id}.{webhook-timestamp}.{body}", equal (in constant time) to one of the header's
    `v1,` signatures; the timestamp within `tolerance` seconds of now (no replays)."""
    try:
        msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
        if abs(time.time() - int(timestamp)) > tolerance:
            return False
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except (KeyError, ValueError):
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(value, expected)
        for version, _, value in (s.partition(",") for s in headers.get("webhook-signature", "").split())
    )  # fmt: skip


@dataclass
class Callback:
    webhook_id: str
    event_type: str
    data: dict
    received_at: float
    duplicate: bool = False


class CallbackReceiver:
    """An HTTP server on 127.0.0.1:`port` that answers orchcap's probes (HEAD) and POSTs: a
    message whose signature verifies is answered 200 and queued (a webhook-id already seen is
    marked duplicate: delivery is at least once); any other is refused with 401 and counted."""

    def __init__(self, *, port: int, secrets: Callable[[], list[str]]) -> None:
        self.port = port
        self.secrets = secrets
        self.messages: queue.Queue[Callback] = queue.Queue()
        self.refused = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{RECEIVER_PATH}"

    def start(self) -> "CallbackReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # orchcap keeps the connection alive between messages
            disable_nagle_algorithm = True

            def do_HEAD(self) -> None:  # the probe orchcap sends while it has a backlog
                self._answer(200)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413)
                    return
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                self._answer(200 if receiver.accept(headers, body) else 401)

            def _answer(self, status: int) -> None:
                reply = b"" if self.command == "HEAD" else (b"ok" if status == 200 else b"refused")
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        except OSError as exc:
            raise SimulatorError(
                f"--port {self.port}: can't listen on 127.0.0.1:{self.port} ({exc.strerror})"
            ) from None
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def accept(self, headers: dict[str, str], body: bytes) -> bool:
        """Verify one message; queue it when it verifies. Returns whether it did."""
        if not any(
            verify_webhook(secret=secret, headers=headers, body=body) for secret in self.secrets()
        ):
            with self._lock:
                self.refused += 1
            return False
        try:
            message = json.loads(body)
        except ValueError:
            message = {}
        message = message if isinstance(message, dict) else {}
        webhook_id = headers["webhook-id"]
        with self._lock:
            duplicate = webhook_id in self._seen
            self._seen.add(webhook_id)
        data = message.get("data")
        self.messages.put(
            Callback(
                webhook_id=webhook_id,
                event_type=str(message.get("type", "")),
                data=data if isinstance(data, dict) else {},
                received_at=time.monotonic(),
                duplicate=duplicate,
            )
        )
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- the API --------------------------------------------------------------------------------------


class Api:
    """orchcap's JSON API with a bearer token, over the standard library only."""

    def __init__(self, *, base_url: str, token: str, timeout: float = 15) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (the URL is checked to be http(s))
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                try:
                    return answer.status, json.loads(answer.read() or b"null")
                except ValueError:
                    raise SimulatorError(
                        f"{self.base} did not answer with JSON: is --base-url orchcap's address?"
                    ) from None
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"null")
            except ValueError:
                detail = None
            return exc.code, detail
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SimulatorError(f"can't reach orchcap at {self.base} ({reason})") from None

    def expect(self, method: str, path: str, body: object = None, ok: tuple = (200,)) -> Any:
        status, answer = self.call(method, path, body)
        if status in ok:
            return answer
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if status == 401:
            detail = "the API token was refused; pass a valid one with --token or ORCHCAP_API_TOKEN"
        raise SimulatorError(f"{method} {path}: {status} {detail or ''}".strip())


# --- believable items -----------------------------------------------------------------------------


def _schema_value(rng: random.Random, spec: dict, today: date) -> object:
    kind = spec["type"]
    if kind == "category":
        return rng.choice(spec["choices"])
    if kind == "money":
        return round(min(rng.lognormvariate(7.5, 1.2), 250_000.0), 2)
    if kind == "number":
        return rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 30, 60])
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "date":
        return (today - timedelta(days=rng.randint(0, 120))).isoformat()
    if kind == "datetime":
        return f"{(today - timedelta(days=rng.randint(0, 30))).isoformat()}T{rng.randint(7, 18):02d}:00:00Z"
    return f"{spec.get('label') or spec['name']} {rng.randint(1000, 99999)}"


def item_fields(*, process: dict, seed: int) -> Iterator[dict]:
    """Endless believable field values for `process` (its API representation): the demo's own
    generators for the demo processes, otherwise values drawn from each field's type and choices
    (a required field always, an optional one most of the time)."""
    from apps.cases import demo  # the generators only: no database

    rng = random.Random(seed)
    today = datetime.now(tz=UTC).date()
    if process["slug"] == demo.AP_SLUG:
        while True:
            for fields, *_ in demo.synthetic_invoice_cases(200, seed=rng.randint(0, 2**31)):
                yield fields
    if process["slug"] == demo.CLAIMS_SLUG:
        while True:
            yield from demo.synthetic_claims(200, seed=rng.randint(0, 2**31), today=today)
    while True:
        yield {
            spec["name"]: _schema_value(rng, spec, today)
            for spec in process["fields"]
            if spec.get("required") or rng.random() < 0.8
        }


# --- the loop ---------------------------------------------------------------------------------------


@dataclass
class Sent:
    external_id: str
    at: float
    outcome: str = ""
    run_id: int | None = None
    answered: bool = False


@dataclass
class Summary:
    sent: int = 0
    standard: int = 0
    expected: int = 0
    verified: int = 0
    duplicates: int = 0
    refused: int = 0
    rejected: int = 0
    missing: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.rejected


@dataclass
class Options:
    base_url: str
    token: str
    orchestration: str
    rate: float
    count: int | None
    port: int
    secret: str = ""
    wait_seconds: float = 30.0
    seed: int | None = None
    prefix: str = ""


class Simulator:
    def __init__(self, options: Options, out: IO[str]) -> None:
        self.options = options
        self.out = out
        self.api = Api(base_url=options.base_url, token=options.token)
        self.secrets: list[str] = [options.secret] if options.secret else []
        self.receiver = CallbackReceiver(port=options.port, secrets=lambda: list(self.secrets))
        self.sent: dict[str, Sent] = {}
        self.connector_id: int | None = None
        self.summary = Summary()
        self.stopping = threading.Event()

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    # setup

    def _connector(self, team: str) -> dict:
        """The team's connector for this receiver: found (enabled again if needed, its secret
        rotated unless --secret gives it) or created. Needs a manager's token."""
        slug = quote(team)
        status, connectors = self.api.call("GET", f"/connectors?team={slug}")
        if status != 200:
            raise SimulatorError(
                f"can't read team {team!r}'s connectors ({status}): the token's user must be one "
                "of the team's managers or admins"
            )
        connector = next((c for c in connectors if c["url"] == self.receiver.url), None)
        if connector is None:
            connector = self.api.expect(
                "POST", "/connectors",
                {"team": team, "name": CONNECTOR_NAME, "url": self.receiver.url,
                 "event_types": EVENT_TYPES,
                 "description": "The simulated system of record of manage.py simulate_source."},
                ok=(201,),
            )  # fmt: skip
            self.secrets = [connector["secret"]]
            self.say(f"connector #{connector['id']} created for {self.receiver.url}")
            return connector
        if not connector["enabled"]:
            self.api.expect("PATCH", f"/connectors/{connector['id']}", {"enabled": True})
            self.say(f"connector #{connector['id']} enabled again")
        missing = [t for t in ("item.decided", "item.routed") if t not in connector["event_types"]]
        if missing:
            # Without them, decided or routed items would never come back here.
            types = [*connector["event_types"], *missing]
            self.api.expect("PATCH", f"/connectors/{connector['id']}", {"event_types": types})
            self.say(f"connector #{connector['id']} now also receives {', '.join(missing)}")
        if not self.secrets:
            # The secret is shown only once; a rotation shows a new one (the old one keeps
            # signing during the overlap, so deliveries already on their way still verify).
            rotated = self.api.expect("POST", f"/connectors/{connector['id']}/rotate-secret")
            self.secrets = [rotated["secret"]]
            self.say(f"connector #{connector['id']} found for {self.receiver.url}; secret rotated")
        return connector

    def prepare(self) -> dict:
        slug = quote(self.options.orchestration)
        status, orchestration = self.api.call("GET", f"/orchestrations/{slug}")
        if status == 401:
            self.api.expect("GET", f"/orchestrations/{slug}")
        if status != 200:
            raise SimulatorError(
                f"--orchestration {self.options.orchestration!r}: not found ({status})"
            )
        if orchestration["live_version"] is None:
            raise SimulatorError(
                f"--orchestration {self.options.orchestration!r} has no live version to take items"
            )
        process = self.api.expect("GET", f"/processes/{quote(orchestration['process'])}")
        self.receiver.start()
        self.connector_id = self._connector(orchestration["team"])["id"]
        self.say(
            f"sending {orchestration['slug']} (process {process['slug']}, live version "
            f"v{orchestration['live_version']}) "
            + (f"{self.options.count} items" if self.options.count else "items until Ctrl-C")
            + f" at {self.options.rate:g}/s; callbacks on {self.receiver.url}"
        )
        return process

    # sending and receiving

    def send(self, external_id: str, fields: dict) -> None:
        slug = quote(self.options.orchestration)
        started = time.monotonic()
        sent = Sent(external_id, started)
        self.sent[external_id] = sent
        status, answer = self.api.call(
            "POST", f"/orchestrations/{slug}/items?wait_ms={WAIT_MS}",
            # The connector as the item's own callback: its outcome comes back here whichever
            # connectors the version pins.
            {"external_id": external_id, "fields": fields, "callback": self.connector_id},
        )  # fmt: skip
        self.summary.sent += 1
        if status not in (200, 201, 202) or not isinstance(answer, dict):
            self.summary.rejected += 1
            sent.outcome = "rejected"
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            rows = answer.get("rows") if isinstance(answer, dict) else None
            self.say(f"{external_id}  REJECTED {status} {detail or ''} {json.dumps(rows or '')}")
            return
        run = (answer.get("runs") or [{}])[0]
        sent.run_id = run.get("id") or (answer.get("run_ids") or [None])[0]
        self._answered(sent, run.get("outcome") or "", (time.monotonic() - started) * 1000)

    def _answered(self, sent: Sent, outcome: str, answer_ms: float | None) -> None:
        sent.outcome = outcome
        if outcome == "standard":
            took = f"answered in {answer_ms:.0f} ms; " if answer_ms is not None else ""
            self.say(f"{sent.external_id}  standard ({took}continues in the source system)")

    def _poll_pending(self) -> None:
        """The outcome of runs not finished when their answer came (evaluated on the fabric)."""
        slug = quote(self.options.orchestration)
        for sent in self.sent.values():
            if not sent.outcome and sent.run_id is not None:
                status, run = self.api.call("GET", f"/orchestrations/{slug}/runs/{sent.run_id}")
                if status == 200 and run.get("outcome"):
                    self._answered(sent, run["outcome"], None)

    def drain(self) -> None:
        """Print the callbacks received so far."""
        while True:
            try:
                callback = self.receiver.messages.get_nowait()
            except queue.Empty:
                return
            self._show(callback)

    def _show(self, callback: Callback) -> None:
        data = callback.data
        external_id = str(data.get("external_id") or "?")
        if callback.duplicate:
            self.summary.duplicates += 1
            self.say(f"{external_id}  (again: {callback.webhook_id} already received, ignored)")
            return
        sent = self.sent.get(external_id)
        outcome = data.get("outcome") or callback.event_type
        parts = [f"{external_id}  {outcome}"]
        for key, name in (
            ("label", "label"),
            ("reason_code", "reason"),
            ("decided_by", "by"),
            ("routed_to", "to"),
            ("due_by", "due"),
            ("suggested_label", "suggested"),
            ("confidence", "confidence"),
        ):
            if data.get(key) not in (None, ""):
                parts.append(f"{name}={data[key]}")
        if outcome == "routed" and not data.get("routed_to"):
            parts.insert(1, "to=the review queue")
        if sent is None:
            parts.append("(not sent by this run)")
        elif callback.event_type not in ("item.decided", "item.routed"):
            parts.append(f"({callback.event_type})")
        elif sent.answered:
            parts.append("(later: an expert or an audit)")
        else:
            sent.answered = True
            latency = (callback.received_at - sent.at) * 1000
            self.summary.verified += 1
            self.summary.latencies_ms.append(latency)
            sent.outcome = sent.outcome or str(outcome)
            parts.append(f"latency={latency:.0f} ms")
        parts.append(f"signature ok ({callback.webhook_id})")
        self.say("  ".join(parts))

    def _awaited(self) -> list[str]:
        """Items whose first callback hasn't come: decided, routed or not finished yet."""
        return [
            s.external_id
            for s in self.sent.values()
            if s.outcome not in ("standard", "rejected") and not s.answered
        ]

    def run(self) -> Summary:
        process = self.prepare()
        prefix = self.options.prefix or f"SIM-{int(time.time()) % 100000:05d}"
        seed = self.options.seed if self.options.seed is not None else random.randrange(2**31)
        fields = item_fields(process=process, seed=seed)
        interval = 1 / self.options.rate
        next_at = time.monotonic()
        number = 0
        try:
            while not self.stopping.is_set() and (
                self.options.count is None or number < self.options.count
            ):
                number += 1
                self.send(f"{prefix}-{number:05d}", next(fields))
                self.drain()
                next_at += interval
                self.stopping.wait(max(next_at - time.monotonic(), 0))
            deadline = time.monotonic() + self.options.wait_seconds
            polled = 0.0
            while self._awaited() and time.monotonic() < deadline and not self.stopping.is_set():
                self.stopping.wait(0.1)
                self.drain()
                if time.monotonic() - polled > 1:
                    self._poll_pending()
                    polled = time.monotonic()
            self.drain()
        finally:
            self.receiver.stop()
        self.summary.refused = self.receiver.refused
        self.summary.missing = self._awaited()
        self.summary.standard = sum(s.outcome == "standard" for s in self.sent.values())
        self.summary.expected = sum(
            s.outcome not in ("standard", "rejected") for s in self.sent.values()
        )
        return self.summary

    def report(self) -> None:
        s = self.summary
        latencies = sorted(s.latencies_ms)
        median = f", median latency {latencies[len(latencies) // 2]:.0f} ms" if latencies else ""
        self.say(
            f"sent {s.sent}: {s.standard} standard, {s.expected} decided or routed; "
            f"{s.verified} callbacks verified{median}; {s.refused} refused (bad signature); "
            f"{s.duplicates} duplicates ignored; {s.rejected} rejected by orchcap"
        )
        if s.missing:
            shown = ", ".join(s.missing[:5]) + (" …" if len(s.missing) > 5 else "")
            self.say(
                f"no callback within {self.options.wait_seconds:g} s for {len(s.missing)} item(s): "
                f"{shown} (is the worker running? see the connector's delivery log)"
            )


def token_for_owner(orchestration: str) -> tuple[str, Callable[[], None]]:
    """A personal API token for the owner of `orchestration` in the local database, and a function
    that revokes it (for a run without --token against this installation)."""
    from apps.orchestrations.models import Orchestration
    from apps.people.services import create_api_token, revoke_api_token

    found = Orchestration.objects.filter(slug=orchestration).select_related("owner").first()
    if found is None or found.owner is None or not found.owner.is_active:
        raise SimulatorError(
            f"--orchestration {orchestration!r}: not in the local database, or without an active "
            "owner; pass --token (or ORCHCAP_API_TOKEN)"
        )
    token, raw = create_api_token(user=found.owner, name="simulate_source (revoked at the end)")
    return raw, lambda: revoke_api_token(token=token)
