"""Skill evidence from the model registry and label-error reviews (registered for `skills`, see
apps/core/evidence_kinds.py).

- `classifiers.models_trained`: model versions the person trained (with `promoted`, only those
  ever promoted); the figure is their mean held-out macro-F1.
- `classifiers.label_errors_resolved`: second looks the person asked for (from the likely label
  errors page) whose case is decided again; the figure is the share where the label changed (a
  label error confirmed and corrected).

Both measure a list of people at once (one read, grouped by person).
"""

from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from apps.cases.models import CaseEvent, CaseStatus
from apps.classifiers.models import ModelVersion, RegistryEvent
from apps.core.evidence_kinds import (
    MAX_REFS,
    PROCESS,
    EvidenceKind,
    Measurement,
    Param,
    Ref,
    between,
    register_evidence_kind,
    url_maker,
)


def models_trained(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    versions = ModelVersion.objects.filter(
        trained_by_id__in=people, **between("trained_at", since, until)
    ).select_related("process")
    if params.get("process"):
        versions = versions.filter(process__slug=params["process"])
    if params.get("promoted"):
        ever = RegistryEvent.objects.filter(model_version=OuterRef("pk"), kind="promoted")
        versions = versions.filter(Q(is_promoted=True) | Exists(ever))
    trained: dict[int, list[ModelVersion]] = {}
    for row in versions.order_by("-trained_at", "-pk").only(
        "version", "metrics", "process", "trained_by_id"
    ):
        trained.setdefault(row.trained_by_id, []).append(row)
    measured = {}
    for person_id, rows in trained.items():
        scores = [row.metrics.get("macro_f1") for row in rows]
        scores = [s for s in scores if isinstance(s, int | float)]
        refs = [
            Ref(
                f"{row.process.name} model v{row.version}",
                reverse("model_detail", kwargs={"slug": row.process.slug, "version": row.version}),
            )
            for row in rows[:MAX_REFS]
        ]
        mean = sum(scores) / len(scores) if scores else None
        measured[person_id] = Measurement(count=len(rows), value=mean, refs=refs)
    return measured


def label_errors_resolved(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    events = CaseEvent.objects.filter(
        actor_id__in=people, kind="second_look", **between("at", since, until)
    ).select_related("case")
    if params.get("process"):
        events = events.filter(case__process__slug=params["process"])
    # The latest second look per person and case: a case looked at twice counts once.
    looked: dict[int, dict[int, CaseEvent]] = {}
    for event in events.order_by("at", "pk"):
        looked.setdefault(event.actor_id, {})[event.case_id] = event
    case_url = url_maker("case_detail", "case_id")
    measured = {}
    for person_id, latest in looked.items():
        resolved = [e for e in latest.values() if e.case.status == CaseStatus.DECIDED]
        if not resolved:
            continue
        changed = [e for e in resolved if e.case.final_label != e.data.get("label")]
        refs = [
            Ref(
                f"case {e.case_id}: {'corrected' if e in changed else 'confirmed'}",
                case_url(e.case_id),
            )
            for e in sorted(resolved, key=lambda e: e.at, reverse=True)[:MAX_REFS]
        ]
        measured[person_id] = Measurement(
            count=len(resolved), value=len(changed) / len(resolved), refs=refs
        )
    return measured


register_evidence_kind(
    EvidenceKind(
        key="classifiers.models_trained",
        label="Model versions you trained",
        value_label="mean macro-F1",
        measure_many=models_trained,
        involves=lambda: Exists(ModelVersion.objects.filter(trained_by_id=OuterRef("pk"))),
        params=(PROCESS, Param("promoted", "bool", "count only versions ever promoted", False)),
        todo="train {n} more model versions",
        owner="classifiers",
    )
)
register_evidence_kind(
    EvidenceKind(
        key="classifiers.label_errors_resolved",
        label="Likely label errors you sent for a second look, resolved",
        value_label="corrected",
        measure_many=label_errors_resolved,
        involves=lambda: Exists(
            CaseEvent.objects.filter(actor_id=OuterRef("pk"), kind="second_look")
        ),
        params=(PROCESS,),
        todo="resolve {n} more likely label errors",
        owner="classifiers",
    )
)
