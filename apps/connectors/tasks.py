from celery import shared_task

from apps.connectors.services import deliveries


@shared_task(acks_late=True)
def drain_connector_task(connector_id: int) -> None:
    deliveries.drain_connector(connector_id=connector_id)


@shared_task(acks_late=True)
def probe_connector_task(connector_id: int) -> None:
    deliveries.probe_connector(connector_id=connector_id)


@shared_task(acks_late=True)
def sweep_connectors() -> dict[str, int]:
    return deliveries.sweep()
