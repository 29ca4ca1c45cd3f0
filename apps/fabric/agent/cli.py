"""orchcap-agent: enrol this machine, show its status, run it, reclaim it for its owner.

Exit codes: 0 done, 1 the server refused or could not be reached, 2 bad arguments or nothing to
switch (reclaim when already reclaimed, release when not); errors are one line.
"""

import argparse
import logging
import re
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from apps.fabric.agent import __version__, config, probe
from apps.fabric.agent.client import (
    ServerError,
    Unreachable,
    check_server_url,
    is_loopback,
    request_json,
)
from apps.fabric.agent.runner import Agent, Worker

POOLS = ("prefork", "threads", "solo")

PROG = "orchcap-agent"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
NODE_CLASSES = ("server", "workstation", "edge", "gpu")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: {message}\n")


class UsageError(Exception):
    """Bad arguments found after parsing: one line, exit 2."""


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        key, item = key.strip(), item.strip()
        if not sep or not item:
            raise UsageError(f"--{what} {value!r} must look like key=value")
        if not _KEY.match(key):
            raise UsageError(
                f"--{what} {value!r}: the key must be lower-case letters, digits, _ . or -"
            )
        pairs[key] = item
    return pairs


def _typed(value: str) -> Any:
    """Declared values: 1 → int, 1.5 → float, true/false → bool, else text."""
    if value.lower() in ("true", "yes"):
        return True
    if value.lower() in ("false", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= number <= 256:
        raise argparse.ArgumentTypeError(f"must be from 1 to 256, got {number}")
    return number


def _seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0.1 <= number <= 3600:
        raise argparse.ArgumentTypeError(f"must be from 0.1 to 3600 seconds, got {text}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Lend this machine's spare capacity to orchcap.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--config", dest="config_top", type=Path, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="{enroll,status,run,reclaim,release}")

    config_help = "Directory of this agent's identity (default ~/.config/orchcap-agent)."
    enroll = commands.add_parser("enroll", help="Register this machine with an enrolment token.")
    enroll.add_argument(
        "--server", required=True, help="orchcap's URL, e.g. https://orchcap.example.com"
    )
    enroll.add_argument("--token", required=True, help="The enrolment token an admin gave you.")
    enroll.add_argument("--name", help="How the node is called (default: the host name).")
    enroll.add_argument(
        "--declare",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A capability the probe can't see, e.g. gpus=1 (shown as declared).",
    )
    enroll.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A label for placement, e.g. site=branch-3.",
    )
    enroll.add_argument(
        "--data-source",
        action="append",
        default=[],
        metavar="NAME",
        help="A data source this machine hosts (data-resident work runs here).",
    )
    enroll.add_argument(
        "--class",
        dest="node_class",
        choices=NODE_CLASSES,
        help="Kind of machine (default: gpu when GPUs are found, else server).",
    )
    enroll.add_argument(
        "--max-tasks", type=_positive_int, help="Tasks it may run at once (default: its CPU cores)."
    )
    enroll.add_argument("--config", type=Path, help=config_help)

    status = commands.add_parser("status", help="Show this node's identity and state.")
    status.add_argument("--config", type=Path, help=config_help)

    run = commands.add_parser("run", help="Heartbeat and take work until stopped.")
    run.add_argument(
        "--interval",
        type=_seconds,
        help="Seconds between heartbeats (default: what the server says).",
    )
    run.add_argument(
        "--pool",
        choices=POOLS,
        default="prefork",
        help="How tasks run: prefork (processes, the default), threads or solo (one at a time).",
    )
    run.add_argument("--config", type=Path, help=config_help)

    reclaim = commands.add_parser(
        "reclaim", help="I need this machine: no new work from now on, until released."
    )
    reclaim.add_argument("--config", type=Path, help=config_help)
    release = commands.add_parser("release", help="Give the machine back to its usual hours.")
    release.add_argument("--config", type=Path, help=config_help)
    return parser  # fmt: skip


def _config_dir(args: argparse.Namespace) -> Path:
    chosen = getattr(args, "config", None) or args.config_top
    return Path(chosen).expanduser() if chosen else config.default_config_dir()


def enroll(args: argparse.Namespace) -> int:
    try:
        server = check_server_url(args.server)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    declared = {k: _typed(v) for k, v in _pairs(args.declare, "declare").items()}
    labels = _pairs(args.label, "label")
    directory = _config_dir(args)
    existing = config.config_path(directory)
    if existing.exists():
        return _fail(
            f"already enrolled ({existing}); use another --config directory or delete that file"
        )
    if not is_loopback(server) and server.startswith("http://"):
        print(f"{PROG}: warning: the credential travels unencrypted over http://", file=sys.stderr)
    fingerprint = probe.fingerprint()
    body = {
        "token": args.token,
        "name": args.name or socket.gethostname(),
        "capabilities": {"detected": probe.detect_capabilities(), "declared": declared},
        "labels": labels,
        "data_sources": args.data_source,
        "fingerprint": fingerprint,
        "software_version": __version__,
        "timezone": probe.local_timezone(),
        "node_class": args.node_class,
        "max_concurrent_tasks": args.max_tasks,
    }
    try:
        reply = request_json("POST", f"{server}/api/v1/fabric/enroll", body)
    except ServerError as exc:
        return _fail(f"enrolment refused: {exc.detail}")
    except Unreachable as exc:
        return _fail(str(exc))
    path = config.save(
        directory,
        config.AgentConfig(
            server=server,
            node_id=int(reply["node_id"]),
            credential=str(reply["credential"]),
            name=body["name"],
            fingerprint=fingerprint,
            enrolled_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )
    waiting = (
        "waiting for an admin to approve it"
        if reply.get("state") == "pending"
        else str(reply.get("state"))
    )
    print(f"enrolled as node {reply['node_id']} ({waiting})")
    print(f"fingerprint {fingerprint}")
    print(f"credential saved in {path}; start it with: {PROG} run --config {directory}")
    return 0


def status(args: argparse.Namespace) -> int:
    directory = _config_dir(args)
    settings = config.load(directory)
    print(f"node {settings.node_id} “{settings.name}” at {settings.server}")
    print(f"config {config.config_path(directory)}")
    print(f"fingerprint {settings.fingerprint}")
    try:
        reply = request_json(
            "GET", f"{settings.server}/api/v1/fabric/node", authorization=settings.authorization
        )
    except ServerError as exc:
        return _fail(f"the server refuses this node: {exc.detail}")
    except Unreachable as exc:
        return _fail(str(exc))
    work = "takes new work" if reply.get("accept_work") else f"no new work: {reply.get('reason')}"
    print(f"state {reply.get('state')} ({work})")
    print(f"available {reply.get('availability')}")
    return 0


_DONE = {"reclaim": "reclaimed", "release": "released"}


def _switch(args: argparse.Namespace, action: str) -> int:
    """POST /api/v1/fabric/node/<action> with the node's credential: the owner at the machine."""
    directory = _config_dir(args)
    settings = config.load(directory)
    try:
        reply = request_json(
            "POST",
            f"{settings.server}/api/v1/fabric/node/{action}",
            authorization=settings.authorization,
        )
    except ServerError as exc:
        if exc.status == 409:
            # Already in the state asked for: nothing changed, and scripts can tell (exit 2).
            return _fail(exc.detail, code=2)
        return _fail(f"the server refuses this node: {exc.detail}")
    except Unreachable as exc:
        return _fail(str(exc))
    work = "takes new work" if reply.get("accept_work") else f"no new work: {reply.get('reason')}"
    print(f"node {reply.get('node_id')} “{reply.get('name')}” {_DONE[action]} ({work})")
    return 0


def reclaim(args: argparse.Namespace) -> int:
    return _switch(args, "reclaim")


def release(args: argparse.Namespace) -> int:
    return _switch(args, "release")


def run(args: argparse.Namespace) -> int:
    directory = _config_dir(args)
    settings = config.load(directory)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s orchcap-agent %(levelname)s: %(message)s"
    )

    def worker_factory(reply: dict[str, Any]) -> Worker:
        # Imported here: Celery is only needed once the node is approved.
        from apps.fabric.agent.worker import CeleryWorker

        return CeleryWorker(
            settings,
            directory,
            broker_url=str(reply["broker_url"]),
            queues=[str(q) for q in reply.get("queues") or []],
            concurrency=int(reply.get("max_concurrent_tasks") or 1),
            pool=args.pool,
        )

    return Agent(settings, interval=args.interval, worker_factory=worker_factory).run()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command: enroll, status or run (or reclaim, release)")
    handlers = {
        "enroll": enroll,
        "status": status,
        "run": run,
        "reclaim": reclaim,
        "release": release,
    }
    try:
        return handlers[args.command](args)
    except UsageError as exc:
        return _fail(str(exc), code=2)
    except config.ConfigError as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
