import os
import signal
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.orchestrations import simulator


class _OneLineParser(CommandParser):
    """Bad arguments: one line and exit 2 (argparse would print the whole usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message}\n")
        super().error(message)


class Command(BaseCommand):
    help = (
        "A simulated system of record: send an orchestration believable items through the API, "
        "receive orchcap's signed callbacks on a loopback port, verify their Standard Webhooks "
        "signatures and print what came back."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = _OneLineParser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orchestration", required=True, help="The orchestration's slug.")
        parser.add_argument(
            "--rate", type=float, default=1.0, help="Items per second (default 1, at most 200)."
        )
        parser.add_argument(
            "--count", type=int, default=None, help="Send this many items, then wait for their "
            "callbacks and stop (default: until Ctrl-C).",
        )  # fmt: skip
        parser.add_argument(
            "--port", type=int, default=simulator.DEFAULT_PORT,
            help=f"Loopback port for the callbacks (default {simulator.DEFAULT_PORT}).",
        )  # fmt: skip
        parser.add_argument(
            "--base-url", default=simulator.DEFAULT_BASE_URL,
            help=f"orchcap's address (default {simulator.DEFAULT_BASE_URL}).",
        )  # fmt: skip
        parser.add_argument(
            "--token", default=None, help="An API token (default: $ORCHCAP_API_TOKEN; without "
            "either, a token of the orchestration's owner in this installation, revoked at the "
            "end). Its user must manage the team's connectors.",
        )  # fmt: skip
        parser.add_argument(
            "--secret", default="", help="The connector's signing secret (whsec_…), if you have "
            "it; otherwise the connector's secret is rotated to learn a new one.",
        )  # fmt: skip
        parser.add_argument(
            "--wait", type=float, default=30.0,
            help="Seconds to wait for the last callbacks after sending (default 30).",
        )  # fmt: skip
        parser.add_argument("--seed", type=int, default=None, help="Seed for the item values.")
        parser.add_argument(
            "--prefix", default="", help="external_id prefix (default SIM-<5 digits of the time>)."
        )

    def handle(self, *args: object, **options: Any) -> None:
        rate, count, port = options["rate"], options["count"], options["port"]
        if not 0 < rate <= simulator.MAX_RATE:
            raise CommandError(
                f"--rate: from above 0 to {simulator.MAX_RATE:g} items per second, got {rate:g}",
                returncode=2,
            )
        if count is not None and count < 1:
            raise CommandError(f"--count: at least 1, got {count}", returncode=2)
        if not 1024 <= port <= 65535:
            raise CommandError(f"--port: from 1024 to 65535, got {port}", returncode=2)
        if not 0 <= options["wait"] <= 3600:
            raise CommandError("--wait: from 0 to 3600 seconds", returncode=2)
        base = urlsplit(options["base_url"])
        if base.scheme not in ("http", "https") or not base.netloc:
            raise CommandError(
                f"--base-url: an http(s) address like {simulator.DEFAULT_BASE_URL}, got "
                f"{options['base_url']!r}",
                returncode=2,
            )
        secret = options["secret"]
        if secret and not secret.startswith("whsec_"):
            raise CommandError(
                "--secret: a Standard Webhooks secret starts with whsec_", returncode=2
            )
        token = options["token"] or os.environ.get("ORCHCAP_API_TOKEN", "").strip()
        revoke = None
        try:
            if not token:
                token, revoke = simulator.token_for_owner(options["orchestration"])
                self.stdout.write(
                    "no --token: using a token of the orchestration's owner (revoked at the end)"
                )
            run = simulator.Simulator(
                simulator.Options(
                    base_url=options["base_url"], token=token,
                    orchestration=options["orchestration"], rate=rate, count=count, port=port,
                    secret=secret, wait_seconds=options["wait"], seed=options["seed"],
                    prefix=options["prefix"],
                ),
                self.stdout,
            )  # fmt: skip
            previous = signal.getsignal(signal.SIGINT)
            in_main = _in_main_thread()
            if in_main:
                # Ctrl-C: stop sending, then report (a second Ctrl-C stops at once).
                signal.signal(signal.SIGINT, lambda *_: _stop(run, previous))
            try:
                summary = run.run()
            finally:
                if in_main:
                    signal.signal(signal.SIGINT, previous)
            run.report()
        except simulator.SimulatorError as exc:
            raise CommandError(str(exc), returncode=2 if str(exc).startswith("--") else 1) from None
        finally:
            if revoke is not None:
                revoke()
        if not summary.ok:
            raise CommandError(
                "some items were rejected or got no callback (see above)", returncode=1
            )


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _stop(run: simulator.Simulator, previous: Any) -> None:
    run.stopping.set()
    signal.signal(signal.SIGINT, previous)
