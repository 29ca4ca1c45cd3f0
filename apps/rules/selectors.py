from django.db.models import QuerySet

from apps.cases.models import Process
from apps.rules.models import Rule


def rules_of(*, process: Process) -> QuerySet[Rule]:
    return (
        Rule.objects.filter(process=process)
        .select_related("current", "owner")
        .order_by("priority", "pk")
    )
