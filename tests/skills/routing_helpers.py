"""What the routing tests share: a process with one category field and a case of it as
`route_case` loads it."""

from apps.cases.models import Case
from apps.cases.services.intake import create_cases

FIELDS = [{"name": "po_status", "type": "category", "choices": ["matched", "missing"]}]


def open_case(process, po_status: str = "missing") -> Case:
    (case,) = create_cases(
        process=process, rows=[{"fields": {"po_status": po_status}, "exception": {}}], embed=False
    ).cases
    return Case.objects.select_related("process__schema").get(pk=case.pk)
