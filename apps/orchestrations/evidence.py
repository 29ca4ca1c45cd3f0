"""Evidence for publishing, read from the traces: how a challenger model compared with the live
version's model on the same items, and how a shadow or canary version compared with experts'
outcomes. Every figure is a `Share` (count of total, with a 95 % Wilson interval), so a small
sample reads as small.

An **expert outcome** is the final label of the run's case when a person decided it: the case is
decided and no active decision of the model (autonomy level 3) settled it. Only routed items have
a case, so items the live version decided alone have no expert outcome (unless an audit gave
them one through their case); the counts say how many items each figure rests on.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Decision, DecisionSource
from apps.orchestrations.models import (
    ChallengerAction,
    Orchestration,
    OrchestrationVersion,
    Outcome,
    Run,
    RunStep,
    Stage,
    StageChange,
    StepKind,
)

SMALL_SAMPLE = 30  # below this many, a share is flagged "small sample"
MAX_ITEMS = 50_000  # the latest items of a period the comparison reads
DISAGREEMENT_RUNS = 5  # run links per disagreement pair
DEFAULT_DAYS = 30
Z95 = 1.959964


@dataclass(frozen=True)
class Share:
    """`count` of `total`, with the 95 % Wilson score interval (None when total is 0)."""

    count: int
    total: int

    @property
    def value(self) -> float | None:
        return self.count / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.total:
            return None
        n, p, z2 = self.total, self.count / self.total, Z95 * Z95
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    @property
    def small(self) -> bool:
        return self.total < SMALL_SAMPLE

    @property
    def percent(self) -> int | None:
        return None if self.value is None else round(100 * self.value)

    @property
    def interval_percent(self) -> tuple[int, int] | None:
        interval = self.interval
        return None if interval is None else (round(100 * interval[0]), round(100 * interval[1]))

    def as_dict(self) -> dict[str, Any]:
        interval = self.interval
        return {
            "count": self.count,
            "of": self.total,
            "share": None if self.value is None else round(self.value, 4),
            "low": None if interval is None else round(interval[0], 4),
            "high": None if interval is None else round(interval[1], 4),
            "small_sample": self.small,
        }


def _plain(value: Any) -> Any:
    """Shares as dicts, all the way down (for the API and the promotion's logged evidence)."""
    if isinstance(value, Share):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def as_data(evidence: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if evidence is None else _plain(evidence)


def expert_labels(case_ids: set[int] | list[int]) -> dict[int, str]:
    """{case id: final label} for the cases among `case_ids` that a person decided."""
    ids = [i for i in set(case_ids) if i is not None]
    if not ids:
        return {}
    by_model = Decision.objects.filter(
        case=OuterRef("pk"), source=DecisionSource.MODEL, retracted_at__isnull=True
    )
    return dict(
        Case.objects.filter(pk__in=ids, status=CaseStatus.DECIDED)
        .exclude(final_label="")
        .exclude(Exists(by_model))
        .values_list("pk", "final_label")
    )


def default_period(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    return now - timedelta(days=DEFAULT_DAYS), now


# --- champion and challenger --------------------------------------------------------------------


@dataclass
class _Side:
    predicted: int = 0
    confident: int = 0
    with_expert: int = 0
    correct: int = 0
    confident_with_expert: int = 0
    confident_correct: int = 0
    labels: dict[str, list[int]] = field(default_factory=dict)  # label: [predicted, judged, right]

    def add(self, label: str | None, confident: bool, expert: str | None) -> None:
        if not label:
            return
        self.predicted += 1
        self.confident += confident
        counts = self.labels.setdefault(label, [0, 0, 0])
        counts[0] += 1
        if expert is None:
            return
        right = label == expert
        self.with_expert += 1
        self.correct += right
        self.confident_with_expert += confident
        self.confident_correct += confident and right
        counts[1] += 1
        counts[2] += right

    def figures(self) -> dict[str, Any]:
        return {
            "predicted": self.predicted,
            "precision": Share(self.correct, self.with_expert),
            "coverage": Share(self.confident, self.predicted),
            "precision_at_threshold": Share(self.confident_correct, self.confident_with_expert),
        }


def challenger_models(*, orchestration: Orchestration) -> list[int]:
    """Model version numbers that have been this orchestration's challenger, newest first."""
    numbers = (
        orchestration.challenger_events.filter(action=ChallengerAction.SET)
        .order_by("-created_at", "-id")
        .values_list("model_version__version", flat=True)
    )
    return list(dict.fromkeys(n for n in numbers if n is not None))


def challenger_comparison(
    *,
    orchestration: Orchestration,
    since: datetime,
    until: datetime,
    model_version: int | None = None,
) -> dict[str, Any] | None:
    """The champion (the live version's model, as recorded on each run) against the challenger
    model version `model_version` (default: the current challenger) on the items of
    [since, until) that got a challenger step: agreement, precision against experts' outcomes,
    coverage at the threshold (the share at or above the version's threshold: those it would
    decide alone at level 3), per label, and the disagreements with run ids. None when there is
    no challenger to compare. Reads at most MAX_ITEMS items, the latest (`truncated` says so)."""
    if model_version is None:
        if orchestration.challenger_id is None:
            return None
        model_version = orchestration.challenger.version
    steps = (
        RunStep.objects.filter(
            kind=StepKind.CHALLENGER,
            run__orchestration=orchestration,
            run__received_at__gte=since,
            run__received_at__lt=until,
            data__model_version=model_version,
        )
        .order_by("-run_id")
        .values_list("run_id", "run__case_id", "data")[: MAX_ITEMS + 1]
    )
    rows = list(steps)
    truncated = len(rows) > MAX_ITEMS
    rows = rows[:MAX_ITEMS]
    experts = expert_labels([case_id for _, case_id, _ in rows])
    champion, challenger = _Side(), _Side()
    both = agree = 0
    champion_models: set[int] = set()
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    expert_count: dict[str, int] = {}
    for run_id, case_id, data in rows:
        expert = experts.get(case_id)
        if expert is not None:
            expert_count[expert] = expert_count.get(expert, 0) + 1
        theirs = data.get("champion") or {}
        threshold = data.get("threshold") or 1.0
        if theirs.get("model_version") is not None:
            champion_models.add(theirs["model_version"])
        champion_label = theirs.get("label")
        champion_confidence = theirs.get("confidence")
        champion.add(
            champion_label,
            champion_confidence is not None and champion_confidence >= threshold,
            expert,
        )
        label = data.get("label")
        challenger.add(label, bool(data.get("confident")), expert)
        if not (champion_label and label):
            continue
        both += 1
        if champion_label == label:
            agree += 1
            continue
        pair = pairs.setdefault(
            (champion_label, label),
            {"champion": champion_label, "challenger": label, "count": 0, "judged": 0,
             "champion_right": 0, "challenger_right": 0, "runs": []},
        )  # fmt: skip
        pair["count"] += 1
        if expert is not None:
            pair["judged"] += 1
            pair["champion_right"] += expert == champion_label
            pair["challenger_right"] += expert == label
        if len(pair["runs"]) < DISAGREEMENT_RUNS:
            pair["runs"].append(run_id)
    labels = sorted(set(champion.labels) | set(challenger.labels) | set(expert_count))
    per_label = []
    for name in labels:
        c_pred, c_judged, c_right = champion.labels.get(name, [0, 0, 0])
        x_pred, x_judged, x_right = challenger.labels.get(name, [0, 0, 0])
        per_label.append(
            {"label": name, "experts": expert_count.get(name, 0),
             "champion_predicted": c_pred, "champion_precision": Share(c_right, c_judged),
             "challenger_predicted": x_pred, "challenger_precision": Share(x_right, x_judged)}
        )  # fmt: skip
    return {
        "model_version": model_version,
        "is_current": orchestration.challenger_id is not None
        and orchestration.challenger.version == model_version,
        "champion_models": sorted(champion_models),
        "since": since,
        "until": until,
        "items": len(rows),
        "truncated": truncated,
        "expert_outcomes": sum(expert_count.values()),
        "both_predicted": both,
        "agreement": Share(agree, both),
        "champion": champion.figures(),
        "challenger": challenger.figures(),
        "labels": per_label,
        "disagreements": sorted(pairs.values(), key=lambda p: (-p["count"], p["champion"])),
    }


# --- shadow and canary versions -----------------------------------------------------------------


def _label_share(runs: list[tuple[str, str | None]]) -> Share:
    """(label, expert label) pairs: of those with both, how many agree."""
    judged = [(label, expert) for label, expert in runs if label and expert is not None]
    return Share(sum(label == expert for label, expert in judged), len(judged))


_ANSWER_STEPS = {
    StepKind.DECIDED: Outcome.DECIDED,
    StepKind.ROUTE: Outcome.ROUTED,
    StepKind.STANDARD: Outcome.STANDARD,
}


def machine_answers(*, orchestration_id: int, run_ids: list[int]) -> dict[int, tuple[str, str]]:
    """{run id: (outcome, label)} as the run's version answered it, read from its trace: the
    run's own fields change once an expert decides a routed item (it becomes `decided` with the
    expert's label), which would make the version look right by construction. The label of a
    routed item is its model's suggestion ("" when a rule routed it)."""
    if not run_ids:
        return {}
    steps = RunStep.objects.filter(
        run__orchestration_id=orchestration_id,
        run_id__gte=min(run_ids),
        run_id__lte=max(run_ids),
        kind__in=list(_ANSWER_STEPS),
    ).values_list("run_id", "kind", "data")
    wanted = set(run_ids)
    answers: dict[int, tuple[str, str]] = {}
    for run_id, kind, data in steps:
        if run_id in wanted and run_id not in answers:
            label = data.get("label") if kind == StepKind.DECIDED else data.get("suggested")
            answers[run_id] = (_ANSWER_STEPS[kind], label or "")
    return answers


def shadow_evidence(*, version: OrchestrationVersion) -> dict[str, Any] | None:
    """How `version` did in shadow: its would-be outcome on the live items it saw (the `shadow`
    steps naming its number) beside the live answer and the experts' outcomes. None when it
    never saw an item. Reads at most MAX_ITEMS items, the latest."""
    rows = list(
        RunStep.objects.filter(
            kind=StepKind.SHADOW,
            run__orchestration_id=version.orchestration_id,
            data__version=version.number,
        )
        .order_by("-run_id")
        .values_list("run_id", "run__case_id", "run__received_at", "data")[: MAX_ITEMS + 1]
    )
    if not rows:
        return None
    truncated = len(rows) > MAX_ITEMS
    rows = rows[:MAX_ITEMS]
    experts = expert_labels([row[1] for row in rows])
    answers = machine_answers(
        orchestration_id=version.orchestration_id, run_ids=[row[0] for row in rows]
    )
    live_outcomes = dict.fromkeys(Outcome.values, 0)
    outcomes = dict.fromkeys(Outcome.values, 0)
    same = 0
    decided_judged: list[tuple[str, str | None]] = []
    candidate_labels: list[tuple[str, str | None]] = []
    live_labels: list[tuple[str, str | None]] = []
    differ: list[int] = []
    for run_id, case_id, _, data in rows:
        expert = experts.get(case_id)
        live_outcome, live_label = answers.get(run_id, ("", ""))
        outcome, label = data.get("outcome") or "", data.get("label") or ""
        if live_outcome in live_outcomes:
            live_outcomes[live_outcome] += 1
        if outcome in outcomes:
            outcomes[outcome] += 1
        if (outcome, label) == (live_outcome, live_label):
            same += 1
        elif len(differ) < 10:
            differ.append(run_id)
        candidate_labels.append((label, expert))
        live_labels.append((live_label, expert))
        if outcome == Outcome.DECIDED:
            decided_judged.append((label, expert))
    return {
        "items": len(rows),
        "truncated": truncated,
        "since": min(row[2] for row in rows),
        "until": max(row[2] for row in rows),
        "expert_outcomes": sum(1 for row in rows if row[1] in experts),
        "same_as_live": Share(same, len(rows)),
        "outcomes": outcomes,
        "live_outcomes": live_outcomes,
        "precision": _label_share(candidate_labels),
        "live_precision": _label_share(live_labels),
        "decisions_precision": _label_share(decided_judged),
        "decided": Share(outcomes.get(Outcome.DECIDED, 0), len(rows)),
        "live_decided": Share(live_outcomes.get(Outcome.DECIDED, 0), len(rows)),
        "runs_differing": differ,
    }


def _canary_period(version: OrchestrationVersion) -> tuple[datetime, datetime] | None:
    """When `version` last took a canary share: from its move to canary to its next move (or
    now)."""
    moves = list(StageChange.objects.filter(version=version).order_by("created_at", "id"))
    start = end = None
    for move in moves:
        if move.to_stage == Stage.CANARY and move.from_stage != Stage.CANARY:
            start, end = move.created_at, None
        elif start is not None and end is None and move.to_stage != Stage.CANARY:
            end = move.created_at
    if start is None:
        return None
    return start, end or timezone.now()


def _side(runs: list[tuple[int, str, str, int | None]], experts: dict[int, str]) -> dict:
    outcomes = dict.fromkeys(Outcome.values, 0)
    for _, outcome, _, _ in runs:
        if outcome in outcomes:  # an unfinished run has none yet
            outcomes[outcome] += 1
    total = len(runs)
    return {
        "runs": total,
        "outcomes": outcomes,
        "decided": Share(outcomes.get(Outcome.DECIDED, 0), total),
        "straight_through": Share(
            outcomes.get(Outcome.DECIDED, 0) + outcomes.get(Outcome.STANDARD, 0), total
        ),
        "expert_outcomes": sum(1 for *_, case_id in runs if case_id in experts),
        "precision": _label_share([(label, experts.get(case_id)) for _, _, label, case_id in runs]),
    }


def canary_evidence(*, version: OrchestrationVersion) -> dict[str, Any] | None:
    """How `version` did as a canary: its own runs against the other runs of the same period
    (the live version's share), each against experts' outcomes. None when it never was one."""
    period = _canary_period(version)
    if period is None:
        return None
    since, until = period
    runs = list(
        Run.objects.filter(
            orchestration_id=version.orchestration_id,
            received_at__gte=since,
            received_at__lte=until,
        )
        .order_by("-id")
        .values_list("version_id", "id", "case_id")[: MAX_ITEMS + 1]
    )
    truncated = len(runs) > MAX_ITEMS
    answers = machine_answers(
        orchestration_id=version.orchestration_id, run_ids=[row[1] for row in runs[:MAX_ITEMS]]
    )
    runs = [
        (version_id, run_id, *answers.get(run_id, ("", "")), case_id)
        for version_id, run_id, case_id in runs[:MAX_ITEMS]
    ]
    experts = expert_labels([row[4] for row in runs])
    mine = [row[1:] for row in runs if row[0] == version.pk]
    others = [row[1:] for row in runs if row[0] != version.pk]
    live_numbers = sorted(
        set(
            OrchestrationVersion.objects.filter(
                pk__in={row[0] for row in runs if row[0] != version.pk}
            ).values_list("number", flat=True)
        )
    )
    return {
        "since": since,
        "until": until,
        "truncated": truncated,
        "share": version.canary_share,
        "candidate": _side(mine, experts),
        "live": _side(others, experts),
        "live_versions": live_numbers,
    }


def version_evidence(*, version: OrchestrationVersion) -> dict[str, Any]:
    """Both kinds of evidence for `version` (each None when it has none)."""
    return {
        "version": version.number,
        "stage": version.stage,
        "shadow": shadow_evidence(version=version),
        "canary": canary_evidence(version=version),
    }


def deploy_evidence(*, versions: list[OrchestrationVersion]) -> list[dict[str, Any]]:
    """Evidence for the versions now in shadow or canary (the candidates for publishing)."""
    return [
        version_evidence(version=v) for v in versions if v.stage in (Stage.SHADOW, Stage.CANARY)
    ]


MAX_PERIOD_DAYS = 366


def clean_period(
    since: datetime | None, until: datetime | None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[since, until): by default the last DEFAULT_DAYS days; naive times are the server's zone.
    ValidationError when until is not after since or the period is longer than a year."""
    now = now or timezone.now()
    until = until or now
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if timezone.is_naive(since):
        since = timezone.make_aware(since)
    if timezone.is_naive(until):
        until = timezone.make_aware(until)
    if until <= since:
        raise ValidationError("until: must be after since")
    if until - since > timedelta(days=MAX_PERIOD_DAYS):
        raise ValidationError(f"since: a period of at most {MAX_PERIOD_DAYS} days")
    return since, until
