"""Skill evidence from decisions (registered for `skills`, see apps/core/evidence_kinds.py).

- `cases.decisions_agree`: the person's labels on decided cases and the share equal to the final
  label (an overturned label, after a disagreement or a second look, counts against).
- `cases.peer_kappa`: Cohen's kappa between the person's labels and the other experts' labels on
  the cases both labelled (overlap ≥ 2 or second looks), whatever the case's status.
- `cases.adjudications_upheld`: disputes the person took part in that an adjudicator settled, and
  the share settled with the person's label.

Only labels the person gave (review, API, import) count: not adjudications or the model's.
"""

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Q, QuerySet
from django.urls import reverse

from apps.cases import agreement
from apps.cases.models import CaseStatus, Decision, DecisionSource
from apps.core.evidence_kinds import (
    MAX_REFS,
    EvidenceKind,
    Measurement,
    Param,
    Ref,
    between,
    register_evidence_kind,
)

LABEL_SOURCES = (DecisionSource.REVIEW, DecisionSource.API, DecisionSource.IMPORT)
PROCESS = Param("process", "process", "a process slug (empty: every process)")
LABEL = Param("label", "text", "a decision label (empty: every label)")


def _labels(
    person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> QuerySet[Decision]:
    rows = Decision.objects.filter(
        expert=person,
        retracted_at__isnull=True,
        source__in=LABEL_SOURCES,
        **between("decided_at", since, until),
    )
    if params.get("process"):
        rows = rows.filter(case__process__slug=params["process"])
    return rows


def _case_ref(case_id: int, text: str) -> Ref:
    return Ref(f"case {case_id}: {text}", reverse("case_detail", kwargs={"case_id": case_id}))


def decisions_agree(
    *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> Measurement:
    rows = _labels(person, params, since, until).filter(case__status=CaseStatus.DECIDED)
    rows = rows.exclude(case__final_label="")
    if params.get("label"):
        # "This label or not": the labels that said it and the cases that ended with it.
        rows = rows.filter(Q(label=params["label"]) | Q(case__final_label=params["label"]))
    total = rows.count()
    agreed = rows.filter(label=F("case__final_label")).count()
    latest = rows.order_by("-decided_at", "-pk").values_list(
        "case_id", "label", "case__final_label"
    )
    refs = [
        _case_ref(case_id, "agreed" if label == final else "overturned")
        for case_id, label, final in latest[:MAX_REFS]
    ]
    return Measurement(count=total, value=agreed / total if total else None, refs=refs)


def peer_kappa(
    *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> Measurement:
    mine = dict(_labels(person, params, since, until).values_list("case_id", "label"))
    others = (
        Decision.objects.filter(
            case_id__in=list(mine), retracted_at__isnull=True, source__in=LABEL_SOURCES
        )
        .exclude(expert=person)
        .values_list("case_id", "label")
    )
    pairs: list[tuple[str, str]] = []
    shared: dict[int, int] = defaultdict(int)
    for case_id, label in others:
        pairs.append((mine[case_id], label))
        shared[case_id] += 1
    refs = [_case_ref(case_id, "labelled by others too") for case_id in sorted(shared)[-MAX_REFS:]]
    return Measurement(count=len(shared), value=agreement.cohens_kappa(pairs), refs=refs)


def adjudications_upheld(
    *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> Measurement:
    mine = dict(_labels(person, params, since, until).values_list("case_id", "label"))
    settled = Decision.objects.filter(
        case_id__in=list(mine), source=DecisionSource.ADJUDICATION, retracted_at__isnull=True
    ).values_list("case_id", "label")
    outcome = dict(settled)
    upheld = [case_id for case_id, label in outcome.items() if mine[case_id] == label]
    refs = [
        _case_ref(case_id, "upheld" if case_id in upheld else "not upheld")
        for case_id in sorted(outcome)[-MAX_REFS:]
    ]
    total = len(outcome)
    return Measurement(count=total, value=len(upheld) / total if total else None, refs=refs)


register_evidence_kind(
    EvidenceKind(
        key="cases.decisions_agree",
        label="Decisions on decided cases, agreeing with the final label",
        value_label="agreement",
        measure=decisions_agree,
        params=(PROCESS, LABEL),
        todo="decide {n} more cases",
        owner="cases",
    )
)
register_evidence_kind(
    EvidenceKind(
        key="cases.peer_kappa",
        label="Cases labelled by other experts too (Cohen's kappa with them)",
        value_label="kappa",
        measure=peer_kappa,
        params=(PROCESS,),
        todo="label {n} more cases that other experts label too",
        owner="cases",
    )
)
register_evidence_kind(
    EvidenceKind(
        key="cases.adjudications_upheld",
        label="Disputes settled by an adjudicator, upheld with your label",
        value_label="upheld",
        measure=adjudications_upheld,
        params=(PROCESS,),
        todo="take part in {n} more settled disputes",
        owner="cases",
    )
)
