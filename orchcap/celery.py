import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")

app = Celery("orchcap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _start_embedded_broker(sender: Celery, **kwargs: object) -> None:
    """With CELERY_BROKER_URL unset, the first use of Celery in a process starts the embedded broker."""
    from django.conf import settings

    if settings.EMBEDDED_BROKER_ENABLED:
        from orchcap.runtime.broker import EmbeddedBroker

        EmbeddedBroker(settings.DATA_DIR).ensure_running()


@worker_init.connect
def _worker_ready(**kwargs: object) -> None:
    # A worker must fail fast (one line) on a server without pgvector, like `up` and `migrate`.
    from django.db import connection

    connection.ensure_connection()
