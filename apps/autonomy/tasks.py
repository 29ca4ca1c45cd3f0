from celery import shared_task

from apps.autonomy.services import shadow
from apps.cases.models import Process


@shared_task(acks_late=True)
def handle_new_cases(process_id: int, case_ids: list[int]) -> None:
    process = Process.objects.filter(pk=process_id).first()
    if process is not None:
        shadow.process_new_cases(process=process, case_ids=case_ids)


@shared_task(acks_late=True)
def backfill_shadow(process_id: int) -> None:
    process = Process.objects.filter(pk=process_id).first()
    if process is not None:
        shadow.backfill_open_cases(process=process)
