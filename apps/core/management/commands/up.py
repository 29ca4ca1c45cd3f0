import os
import sys
from pathlib import Path

from celery.utils.nodenames import host_format
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from orchcap.env import env_int, env_str
from orchcap.runtime.broker import EmbeddedBroker
from orchcap.runtime.postgres import EmbeddedPostgres
from orchcap.runtime.supervisor import (
    SUPERVISED_ENV,
    Backoff,
    Child,
    EngineChild,
    InstanceLock,
    Liveness,
    Supervised,
    Supervisor,
    ensure_port_free,
    http_answers,
    say,
    state_path,
)


class Command(BaseCommand):
    help = (
        "Run orchcap: start the embedded engines as needed, migrate, load the demo organisation on an "
        "empty database, then serve the web app with a Celery worker and beat until Ctrl-C, "
        "restarting whatever dies."
    )
    requires_system_checks = []  # checks run below, once the database is up

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=None, help="Web port (default: $PORT or 8000)."
        )
        parser.add_argument(
            "--host", default=None, help="Bind address (default: $HOST or 127.0.0.1)."
        )
        parser.add_argument(
            "--no-demo", action="store_true", help="Don't load the demo organisation."
        )

    def handle(self, *args: object, **options: object) -> None:
        port = options["port"] or env_int("PORT", 8000, minimum=1, maximum=65535)
        host = str(options["host"] or env_str("HOST", "127.0.0.1"))
        shown_host = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104
        url = f"http://{f'[{shown_host}]' if ':' in shown_host else shown_host}:{port}"
        data: Path = settings.DATA_DIR
        backoff = self._backoff()  # a bad value stops `up` before anything starts

        lock = InstanceLock(data)
        lock.acquire(f"serving {url}")
        try:
            ensure_port_free(host, int(port))
            engines = self._start_engines(data)
            try:
                self._prepare_database(no_demo=bool(options["no_demo"]))
                code = self._serve(
                    host=host, port=int(port), url=url, data=data, engines=engines, backoff=backoff
                )
            finally:
                for engine in engines:
                    engine.stop()
                if engines:
                    say("orchcap: embedded engines stopped; data kept in " + str(data))
        finally:
            lock.release()
        if code:
            sys.exit(code)

    def _start_engines(self, data: Path) -> list[EmbeddedPostgres | EmbeddedBroker]:
        engines: list[EmbeddedPostgres | EmbeddedBroker] = []
        if settings.EMBEDDED_DATABASE_ENABLED:
            say(f"orchcap: starting embedded PostgreSQL + pgvector (data in {data / 'pgdata'})")
            postgres = EmbeddedPostgres(data)
            postgres.ensure_running()
            engines.append(postgres)
        if settings.EMBEDDED_BROKER_ENABLED:
            say(f"orchcap: starting embedded broker (data in {data / 'broker'})")
            broker = EmbeddedBroker(data)
            broker.ensure_running()
            engines.append(broker)
        return engines

    def _prepare_database(self, *, no_demo: bool) -> None:
        connection.ensure_connection()  # the pgvector check: one line and exit 2 if it is missing
        call_command("check", stdout=self.stdout)
        call_command("migrate", interactive=False, verbosity=0)
        say("orchcap: database migrated")
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        from django.contrib.auth import get_user_model

        if not no_demo and not get_user_model().objects.exists():
            call_command("seed_demo", stdout=self.stdout)
        connection.close()  # the children open their own connections

    def _serve(
        self,
        *,
        host: str,
        port: int,
        url: str,
        data: Path,
        engines: list[EmbeddedPostgres | EmbeddedBroker],
        backoff: Backoff,
    ) -> int:
        python = sys.executable
        worker_name = host_format("orchcap-local@%h")
        logs = data / "log"
        web_workers = env_int("WEB_CONCURRENCY", 2, minimum=1, maximum=64)
        children: list[Supervised] = [
            EngineChild("postgres" if isinstance(engine, EmbeddedPostgres) else "broker", engine)
            for engine in engines
        ]
        children += [
            Child(
                "worker",
                [python, "-m", "celery", "-A", "orchcap", "worker", "--loglevel", settings.LOG_LEVEL,
                 "--hostname", worker_name, "--queues", settings.CELERY_TASK_DEFAULT_QUEUE,
                 "--concurrency", str(settings.CELERY_WORKER_CONCURRENCY), "--without-gossip", "--without-mingle"],
                logs / "worker.log",
                probe=lambda: _worker_answers(worker_name),
            ),
            Child(
                "beat",
                [python, "-m", "celery", "-A", "orchcap", "beat", "--loglevel", settings.LOG_LEVEL, "--pidfile=",
                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
                logs / "beat.log",
            ),
            Child(
                "web",
                [python, "-m", "gunicorn", "orchcap.wsgi:application", "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                 "--workers", str(web_workers), "--access-logfile", "-", "--error-logfile", "-",
                 "--graceful-timeout", "10", "--timeout", "60", "--no-control-socket"],
                logs / "web.log",
                probe=lambda: http_answers(f"{url}/login/"),
            ),
        ]  # fmt: skip
        liveness = Liveness(
            every=env_int("ORCHCAP_UP_PROBE_SECONDS", 30, minimum=1, maximum=3600),
            misses=env_int("ORCHCAP_UP_PROBE_MISSES", 4, minimum=1, maximum=100),
        )
        supervisor = Supervisor(
            children, backoff=backoff, state_file=state_path(data), liveness=liveness
        )
        supervisor.install_signal_handlers()
        # Here too: a probe's Celery connection must not start the broker behind the supervisor.
        os.environ[SUPERVISED_ENV] = "1"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ORCHCAP_DATA_DIR": str(data)}
        try:
            supervisor.start(env)
            return supervisor.run(
                ready=lambda: http_answers(f"{url}/login/"),
                ready_timeout=90,
                on_ready=lambda: self._announce(url, data),
            )
        finally:
            say("orchcap: stopping web, beat and worker…")
            supervisor.stop_all()

    @staticmethod
    def _backoff() -> Backoff:
        initial = env_int("ORCHCAP_UP_BACKOFF_INITIAL", 1, minimum=1, maximum=3600)
        return Backoff(
            initial=initial,
            maximum=env_int("ORCHCAP_UP_BACKOFF_MAX", 30, minimum=initial, maximum=3600),
            stable=env_int("ORCHCAP_UP_STABLE_SECONDS", 60, minimum=1, maximum=24 * 3600),
            max_restarts=env_int("ORCHCAP_UP_MAX_RESTARTS", 5, minimum=0, maximum=1000),
        )

    def _announce(self, url: str, data: Path) -> None:
        logins = data / "demo-logins.txt"
        lines = [
            "",
            f"  orchcap is running at {url}",
            f"  API docs: {url}/api/v1/docs   health: {url}/healthz",
        ]
        if logins.exists():
            lines.append(f"  demo logins ({logins}):")
            lines.extend(f"    {line}" for line in logins.read_text().splitlines() if line.strip())
        lines += ["  Ctrl-C stops everything; data stays in " + str(data), ""]
        say("\n".join(lines))


def _worker_answers(name: str) -> bool:
    """Whether the worker called `name` answers a ping (a broker that is down means no)."""
    from orchcap.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return bool(app.control.ping(destination=[name], timeout=1, connection=conn))
    except Exception:  # any failure to reach it means "not yet"
        return False
