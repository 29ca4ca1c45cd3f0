"""Skill evidence from rules (registered for `skills`, see apps/core/evidence_kinds.py).

- `rules.rules_authored`: rules the person owns whose current version's backtest reaches
  `min_precision` (and, by default, that are still enabled); the figure is their mean precision.
- `rules.rationales_reused`: the person's rationales on cases a rule version was drafted from
  (`provenance.cases`, chat-model drafts from rationale groups): knowledge others turned into rules.

Both measure a list of people at once (one read of the rules, grouped by person).
"""

from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from apps.cases.models import Decision
from apps.cases.skill_evidence import LABEL_SOURCES
from apps.core.evidence_kinds import (
    MAX_REFS,
    PROCESS,
    EvidenceKind,
    Measurement,
    Param,
    Ref,
    between,
    group_by_first,
    register_evidence_kind,
)
from apps.rules.models import Rule, RuleVersion


def _rule_ref(rule: Rule, text: str) -> Ref:
    url = reverse("rule_builder", kwargs={"slug": rule.process.slug}) + f"?rule={rule.pk}"
    return Ref(f"rule “{rule.name}”{text}", url)


def rules_authored(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    rules = Rule.objects.filter(
        owner_id__in=people,
        current__backtested_at__isnull=False,
        **between("created_at", since, until),
    ).select_related("process", "current")
    if params.get("process"):
        rules = rules.filter(process__slug=params["process"])
    if params.get("enabled_only", True):
        rules = rules.filter(enabled=True)
    bar = params.get("min_precision", 0.0)
    kept: dict[int, list[tuple[Rule, float]]] = {}
    for rule in rules.order_by("-created_at", "-pk"):
        precision = (rule.current.backtest or {}).get("precision")
        if precision is not None and precision >= bar:
            kept.setdefault(rule.owner_id, []).append((rule, precision))
    return {
        owner: Measurement(
            count=len(rows),
            value=sum(p for _, p in rows) / len(rows),
            refs=[_rule_ref(rule, f": precision {p:.2f}") for rule, p in rows[:MAX_REFS]],
        )
        for owner, rows in kept.items()
    }


def rationales_reused(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    versions = RuleVersion.objects.filter(
        provenance__has_key="cases", **between("created_at", since, until)
    ).select_related("rule__process")
    if params.get("process"):
        versions = versions.filter(rule__process__slug=params["process"])
    rule_of_case: dict[int, Rule] = {}
    for version in versions.order_by("created_at", "pk"):
        for case_id in version.provenance.get("cases") or []:
            if isinstance(case_id, int):
                rule_of_case.setdefault(case_id, version.rule)
    if not rule_of_case:
        return {}
    reused = (
        Decision.objects.filter(
            expert_id__in=people,
            case_id__in=list(rule_of_case),
            retracted_at__isnull=True,
            source__in=LABEL_SOURCES,
        )
        .exclude(rationale="")
        .order_by("-decided_at", "-pk")
        .values_list("expert_id", "case_id")
    )
    return {
        expert: Measurement(
            count=len(cases),
            refs=[
                _rule_ref(rule_of_case[case_id], f" drew on the rationale on case {case_id}")
                for (case_id,) in cases[:MAX_REFS]
            ],
        )
        for expert, cases in group_by_first(reused).items()
    }


def _wrote_a_rationale_a_rule_drew_on() -> Q:
    # Some rule version drafted from cases, and a rationale of the person's.
    drafted = Exists(RuleVersion.objects.filter(provenance__has_key="cases"))
    wrote = Decision.objects.filter(
        expert_id=OuterRef("pk"), retracted_at__isnull=True, source__in=LABEL_SOURCES
    ).exclude(rationale="")
    return Q(drafted) & Q(Exists(wrote))


register_evidence_kind(
    EvidenceKind(
        key="rules.rules_authored",
        label="Rules you own that passed their backtest",
        value_label="mean precision",
        measure_many=rules_authored,
        involves=lambda: Exists(Rule.objects.filter(owner_id=OuterRef("pk"))),
        params=(
            PROCESS,
            Param("min_precision", "float", "the backtest precision each rule needs", 0.0),
            Param("enabled_only", "bool", "count only rules still enabled", True),
        ),
        todo="author {n} more rules that pass their backtest",
        owner="rules",
    )
)
register_evidence_kind(
    EvidenceKind(
        key="rules.rationales_reused",
        label="Your rationales reused as a rule's provenance",
        value_label="",
        measure_many=rationales_reused,
        involves=_wrote_a_rationale_a_rule_drew_on,
        params=(PROCESS,),
        todo="write {n} more rationales that rules are drafted from",
        owner="rules",
    )
)
