from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from orchcap.runtime.broker import EmbeddedBroker
from orchcap.runtime.postgres import EmbeddedPostgres


class Command(BaseCommand):
    help = "Show, start or stop the embedded engines (PostgreSQL + pgvector, the broker) of this data dir."
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "start", "stop"])

    def handle(self, *args: object, **options: object) -> None:
        engines: list[tuple[str, EmbeddedPostgres | EmbeddedBroker]] = []
        if settings.EMBEDDED_DATABASE_ENABLED:
            engines.append(("postgres", EmbeddedPostgres(settings.DATA_DIR)))
        else:
            self.stdout.write("postgres: external (DATABASE_URL)")
        if settings.EMBEDDED_BROKER_ENABLED:
            engines.append(("broker", EmbeddedBroker(settings.DATA_DIR)))
        else:
            self.stdout.write("broker: external (CELERY_BROKER_URL)")
        for name, engine in engines:
            if options["action"] == "start":
                engine.ensure_running()
            elif options["action"] == "stop":
                engine.stop()
            state = "running" if engine.is_running() else "stopped"
            self.stdout.write(f"{name}: {state} (data in {settings.DATA_DIR})")
