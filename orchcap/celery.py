import os

from celery import Celery
from celery.signals import (
    celeryd_after_setup,
    worker_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")

app = Celery("orchcap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Where finished fabric work is recorded (handle_finished_tasks: an orchestration batch's
# outcomes, a trained model, scores): a queue of its own, so that recording a batch of runs never
# waits behind the background work new cases start on `orchcap` (embedding, scoring, routing).
# Every control-plane worker consumes it beside its other queues (_consume_results_queue).
RESULTS_QUEUE = "orchcap.results"
_results_queue = Queue(RESULTS_QUEUE, Exchange(RESULTS_QUEUE, type="direct"), RESULTS_QUEUE)
app.conf.task_routes = {"apps.fabric.tasks.handle_finished_tasks": {"queue": _results_queue}}


@app.on_after_configure.connect
def _start_embedded_broker(sender: Celery, **kwargs: object) -> None:
    """With CELERY_BROKER_URL unset, the first use of Celery in a process starts the embedded broker."""
    from django.conf import settings

    from orchcap.runtime.supervisor import under_supervisor

    if settings.EMBEDDED_BROKER_ENABLED and not under_supervisor():  # under `up`, `up` restarts it
        from orchcap.runtime.broker import EmbeddedBroker

        EmbeddedBroker(settings.DATA_DIR).ensure_running()


@worker_init.connect
def _check_database_before_consuming(**kwargs: object) -> None:
    # A worker must stop (one line, exit 2) on a server without pgvector, like `up` and `migrate`.
    # Celery swallows exceptions from signal handlers, but not SystemExit.
    import sys

    from django.db import connection

    from orchcap.runtime.errors import EngineError

    try:
        connection.ensure_connection()
    except EngineError as exc:
        print(f"orchcap: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        connection.close()


@celeryd_after_setup.connect
def _consume_results_queue(sender: str, instance: object, **kwargs: object) -> None:
    """Whatever queues a worker of ours is started with (`up` passes `--queues orchcap`), it
    consumes RESULTS_QUEUE too: without a consumer there, runs sent to the fabric never finish."""
    if getattr(instance, "app", None) is app:
        instance.app.amqp.queues.select_add(_results_queue)


_local_heartbeats = []


@celeryd_after_setup.connect
def _enrol_as_local_node(sender: str, instance: object, **kwargs: object) -> None:
    """The control plane's worker is fabric node `local` too: it consumes `node.<id>`."""
    from apps.fabric import protocol
    from apps.fabric.services import local

    if getattr(instance, "app", None) is not app or not local.local_node_enabled():
        return  # another Celery app in a Django process (an agent) is not the control plane
    node = local.ensure_local_node(concurrency=getattr(instance, "concurrency", 1) or 1)
    if node is None:
        return
    for name in local.queues_of(node):
        instance.app.amqp.queues.select_add(protocol.queue(name))
    _local_heartbeats.append(local.LocalHeartbeats(node.pk))


@worker_ready.connect
def _start_local_heartbeats(**kwargs: object) -> None:
    for heartbeats in _local_heartbeats:
        heartbeats.start()


@worker_shutting_down.connect
def _local_node_draining(**kwargs: object) -> None:
    # Sent from the signal handler: only wake the heartbeat thread (see LocalHeartbeats).
    for heartbeats in _local_heartbeats:
        heartbeats.stopping()


@worker_shutdown.connect
def _stop_local_heartbeats(**kwargs: object) -> None:
    for heartbeats in _local_heartbeats:
        heartbeats.stop()
