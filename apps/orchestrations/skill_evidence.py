"""Skill evidence from orchestrations (registered for `skills`, see apps/core/evidence_kinds.py).

- `orchestrations.designed_live`: orchestrations the person owns or wrote a version of that have a
  live version now (being live is a state, not an event: the period doesn't apply). A count only.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from apps.core.evidence_kinds import (
    MAX_REFS,
    EvidenceKind,
    Measurement,
    Param,
    Ref,
    register_evidence_kind,
)
from apps.orchestrations.models import Orchestration, OrchestrationVersion, Stage


def designed_live(
    *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> Measurement:
    wrote = OrchestrationVersion.objects.filter(orchestration=OuterRef("pk"), created_by=person)
    live = OrchestrationVersion.objects.filter(orchestration=OuterRef("pk"), stage=Stage.LIVE)
    rows = Orchestration.objects.filter(Q(owner=person) | Exists(wrote)).filter(Exists(live))
    if params.get("process"):
        rows = rows.filter(process__slug=params["process"])
    rows = list(rows.order_by("name", "pk"))
    refs = [
        Ref(
            f"orchestration {row.name}: live",
            reverse("orchestration_detail", kwargs={"orchestration_slug": row.slug}),
        )
        for row in rows[:MAX_REFS]
    ]
    return Measurement(count=len(rows), refs=refs)


register_evidence_kind(
    EvidenceKind(
        key="orchestrations.designed_live",
        label="Orchestrations you designed that are live",
        value_label="",
        measure=designed_live,
        params=(Param("process", "process", "a process slug (empty: every process)"),),
        todo="take {n} more orchestrations live",
        owner="orchestrations",
    )
)
