"""What the assessment's hand-typed inventory gives the metrics (apps/capital/metrics.py asks
`listed()`): the machines a team listed but has not enrolled, and the data sources it listed."""

from datetime import datetime

from django.db.models import Q

from apps.capital.models import DataSource, ListedAsset


def listed(*, team_id: int, end: datetime) -> tuple[int, list[str]]:
    """(machines listed by `end` and not enrolled at `end`, names of data sources listed by
    `end`). A machine counts as enrolled once it is linked to a node created by `end`."""
    assets = ListedAsset.objects.filter(team_id=team_id, added_at__lt=end)
    not_enrolled = assets.filter(Q(node__isnull=True) | Q(node__created_at__gte=end)).count()
    sources = list(
        DataSource.objects.filter(team_id=team_id, added_at__lt=end)
        .order_by("name")
        .values_list("name", flat=True)
    )
    return not_enrolled, sources
