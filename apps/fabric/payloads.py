"""The work a node can do: pure functions over the data and artefacts a task sends.

No Django and no database here: `orchcap-agent` imports this module on the node, and the
control plane imports it to check a task before sending it. A task has a `kind`:

- `probe` `{"seconds": n}`: sleeps n seconds (0 to 3600) and returns what it sees of the host;
  admins send it to check a node end to end, the sweeper sends it to check a quiet node still
  takes work from its queue.
- `call` `{"function": name, "args": {...}}`: runs a function registered below with
  `@payload_function(name)`. Only registered functions run: a task can't name arbitrary code.

A payload reaches artefacts (a model, a rule set) only through `Context.artifact(sha256)`: the
agent downloads the bytes with its node credential and they are checked against the SHA-256
before the function sees them. A payload that makes bytes (a trained model) hands them back with
`Context.store_artifact(data)`, which uploads them for its own attempt and answers their SHA-256.

Domains register their own functions in modules listed in PAYLOAD_MODULES (imported on first
use, on the node and on the control plane alike), e.g. the classifiers' training and prediction.
"""

import hashlib
import importlib
import math
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Modules whose import registers more payload functions; Django-free, like this one.
PAYLOAD_MODULES = ("apps.classifiers.node_work", "apps.orchestrations.node_work")
MAX_PROBE_SECONDS = 3600
MAX_BATCH_ROWS = 10_000
SHA256_HEX = frozenset("0123456789abcdef")


class PayloadError(ValueError):
    """A payload that can't run: the message says what is wrong with it."""


class ArtifactMismatch(PayloadError):
    """Downloaded bytes whose SHA-256 is not the one asked for: never used."""


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= SHA256_HEX


@dataclass
class Context:
    """What a payload function may use besides its arguments."""

    node_id: int
    task_id: int
    attempt: int
    artifacts: tuple[str, ...] = ()  # the SHA-256s its task names; nothing else can be fetched
    fetch: Callable[[str], bytes] | None = field(default=None, repr=False)
    # store(data, name) keeps bytes this attempt produced on the server; answers their SHA-256.
    store: Callable[[bytes, str], str] | None = field(default=None, repr=False)

    def artifact(self, sha256: str) -> bytes:
        if sha256 not in self.artifacts:
            raise PayloadError(f"artefact {sha256[:12]}… is not one of this task's artefacts")
        if self.fetch is None:
            raise PayloadError("artefacts can't be fetched here")
        data = self.fetch(sha256)
        verify(data, sha256)
        return data

    def store_artifact(self, data: bytes, name: str = "") -> str:
        if self.store is None:
            raise PayloadError("this node can't store artefacts")
        sha256 = self.store(data, name)
        verify(data, sha256)  # the server must answer the hash of what we sent
        return sha256


def verify(data: bytes, sha256: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ArtifactMismatch(f"artefact {sha256[:12]}… arrived with SHA-256 {actual[:12]}…")


PayloadFunction = Callable[[dict[str, Any], Context], Any]
FUNCTIONS: dict[str, PayloadFunction] = {}
CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {}


def payload_function(
    name: str, *, check: Callable[[dict[str, Any]], None] | None = None
) -> Callable[[PayloadFunction], PayloadFunction]:
    """Register `function(args, context)` as callable by `call` tasks; `check(args)` validates
    the arguments at submission (raising PayloadError) so bad work never reaches a node."""

    def register(function: PayloadFunction) -> PayloadFunction:
        FUNCTIONS[name] = function
        if check is not None:
            CHECKS[name] = check
        return function

    return register


# --- kinds ----------------------------------------------------------------------------------


def _probe_seconds(payload: dict[str, Any]) -> float:
    seconds = payload.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise PayloadError("probe: seconds must be a number")
    if not 0 <= seconds <= MAX_PROBE_SECONDS or math.isnan(seconds):
        raise PayloadError(f"probe: seconds must be from 0 to {MAX_PROBE_SECONDS}")
    return float(seconds)


def host_facts() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "os": platform.system(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": load,
    }


def probe(payload: dict[str, Any], context: Context) -> dict[str, Any]:
    seconds = _probe_seconds(payload)
    started = time.monotonic()
    if seconds:
        time.sleep(seconds)
    return {
        **host_facts(),
        "node_id": context.node_id,
        "attempt": context.attempt,
        "slept_seconds": round(time.monotonic() - started, 3),
    }


def load_payload_modules() -> None:
    """Import PAYLOAD_MODULES once (cheap afterwards); a module that can't be imported here (a
    node without its optional dependencies) leaves its functions unknown, not the node broken."""
    for module in PAYLOAD_MODULES:
        if module not in _loaded:
            _loaded.add(module)
            try:
                importlib.import_module(module)
            except ImportError as exc:
                _unavailable[module] = str(exc)


_loaded: set[str] = set()
_unavailable: dict[str, str] = {}


def _call_target(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    load_payload_modules()
    name = payload.get("function")
    if not isinstance(name, str) or name not in FUNCTIONS:
        known = ", ".join(sorted(FUNCTIONS))
        missing = "".join(f"; {m} not loaded ({why})" for m, why in sorted(_unavailable.items()))
        raise PayloadError(f"call: function must be one of {known}, got {name!r}{missing}")
    args = payload.get("args") or {}
    if not isinstance(args, dict):
        raise PayloadError("call: args must be an object")
    return name, args


def call(payload: dict[str, Any], context: Context) -> Any:
    name, args = _call_target(payload)
    return FUNCTIONS[name](args, context)


KINDS: dict[str, Callable[[dict[str, Any], Context], Any]] = {"probe": probe, "call": call}


def validate(kind: str, payload: object, artifacts: list[str] | tuple[str, ...] = ()) -> None:
    """Raise PayloadError unless a node could run this; called before a task is accepted."""
    if kind not in KINDS:
        raise PayloadError(f"kind must be one of {', '.join(sorted(KINDS))}, got {kind!r}")
    if not isinstance(payload, dict):
        raise PayloadError("payload must be an object")
    for sha in artifacts:
        if not is_sha256(sha):
            raise PayloadError(f"artefacts must be SHA-256 hex digests, got {sha!r}")
    if kind == "probe":
        _probe_seconds(payload)
        unknown = set(payload) - {"seconds"}
        if unknown:
            raise PayloadError(f"probe: unknown field(s) {', '.join(sorted(unknown))}")
    else:
        name, args = _call_target(payload)
        if name in CHECKS:
            CHECKS[name](args)


def execute(kind: str, payload: dict[str, Any], context: Context) -> Any:
    """Run one payload on this machine; exceptions are the task's failure."""
    if kind not in KINDS:
        raise PayloadError(f"this node does not know the kind {kind!r}")
    return KINDS[kind](payload, context)


# --- registered functions -------------------------------------------------------------------


@payload_function("echo")
def echo(args: dict[str, Any], context: Context) -> dict[str, Any]:
    """Returns its arguments: the smallest round trip."""
    return args


def _check_score_batch(args: dict[str, Any]) -> None:
    rows, weights = args.get("rows"), args.get("weights")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise PayloadError("score_batch: rows must be a list of objects")
    if len(rows) > MAX_BATCH_ROWS:
        raise PayloadError(f"score_batch: at most {MAX_BATCH_ROWS} rows per task")
    if not isinstance(weights, dict) or not all(
        isinstance(w, int | float) and not isinstance(w, bool) for w in weights.values()
    ):
        raise PayloadError("score_batch: weights must be an object of numbers")


@payload_function("score_batch", check=_check_score_batch)
def score_batch(args: dict[str, Any], context: Context) -> dict[str, Any]:
    """A linear score per case and a label by threshold: a batch of cases in one task.

    args: {"rows": [{field: number}], "weights": {field: weight}, "bias": 0,
           "threshold": 0, "labels": ["below", "above"]}
    """
    _check_score_batch(args)
    weights = args["weights"]
    bias = float(args.get("bias", 0))
    threshold = float(args.get("threshold", 0))
    low, high = (args.get("labels") or ["below", "above"])[:2]
    scores = []
    for row in args["rows"]:
        total = bias
        for name, weight in weights.items():
            value = row.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                total += weight * value
        scores.append(round(total, 6))
    return {"scores": scores, "labels": [high if s > threshold else low for s in scores]}


def _check_artifact_digest(args: dict[str, Any]) -> None:
    if not is_sha256(args.get("artifact")):
        raise PayloadError("artifact_digest: artifact must be a SHA-256 hex digest")


@payload_function("artifact_digest", check=_check_artifact_digest)
def artifact_digest(args: dict[str, Any], context: Context) -> dict[str, Any]:
    """Fetches one of the task's artefacts, verified, and says what arrived."""
    _check_artifact_digest(args)
    data = context.artifact(args["artifact"])
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
