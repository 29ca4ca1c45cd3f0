"""Skill evidence from orchestrations (registered for `skills`, see apps/core/evidence_kinds.py).

- `orchestrations.designed_live`: orchestrations the person owns or wrote a version of that have a
  live version now (being live is a state, not an event: the period doesn't apply). A count only.
  Measures a list of people at once.
"""

from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from apps.core.evidence_kinds import (
    MAX_REFS,
    PROCESS,
    EvidenceKind,
    Measurement,
    Ref,
    register_evidence_kind,
)
from apps.orchestrations.models import Orchestration, OrchestrationVersion, Stage


def designed_live(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    wrote = OrchestrationVersion.objects.filter(
        orchestration=OuterRef("pk"), created_by_id__in=people
    )
    live = OrchestrationVersion.objects.filter(orchestration=OuterRef("pk"), stage=Stage.LIVE)
    rows = Orchestration.objects.filter(Q(owner_id__in=people) | Exists(wrote)).filter(Exists(live))
    if params.get("process"):
        rows = rows.filter(process__slug=params["process"])
    rows = list(rows.order_by("name", "pk"))
    authors: dict[int, set[int]] = {}
    for orchestration_id, author in OrchestrationVersion.objects.filter(
        orchestration__in=rows, created_by_id__in=people
    ).values_list("orchestration_id", "created_by_id"):
        authors.setdefault(orchestration_id, set()).add(author)
    wanted = set(people)
    designed: dict[int, list[Orchestration]] = {}
    for row in rows:  # by name
        owners = {row.owner_id} & wanted
        for person_id in authors.get(row.pk, set()) | owners:
            designed.setdefault(person_id, []).append(row)
    return {
        person_id: Measurement(
            count=len(mine),
            refs=[
                Ref(
                    f"orchestration {row.name}: live",
                    reverse("orchestration_detail", kwargs={"orchestration_slug": row.slug}),
                )
                for row in mine[:MAX_REFS]
            ],
        )
        for person_id, mine in designed.items()
    }


register_evidence_kind(
    EvidenceKind(
        key="orchestrations.designed_live",
        label="Orchestrations you designed that are live",
        value_label="",
        measure_many=designed_live,
        involves=lambda: (
            Q(Exists(Orchestration.objects.filter(owner_id=OuterRef("pk"))))
            | Q(Exists(OrchestrationVersion.objects.filter(created_by_id=OuterRef("pk"))))
        ),
        params=(PROCESS,),
        todo="take {n} more orchestrations live",
        owner="orchestrations",
    )
)
