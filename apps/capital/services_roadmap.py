"""Writes for the assessment, the first battle and the roadmap. Bad input raises ValidationError
with a reason a person can read; nothing here trusts a form to have checked it."""

import logging
import math
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.capital import criteria
from apps.capital.models import (
    Assessment,
    AssessmentAnswer,
    BattleChoice,
    BattleWeights,
    CandidateProcess,
    DataSource,
    ListedAsset,
    PhaseCriterion,
    PhaseEntry,
)
from apps.capital.selectors_assessment import assessment_figures
from apps.capital.selectors_battle import ranking
from apps.capital.selectors_gaps import gap_questions
from apps.capital.selectors_roadmap import PHASES, criteria_rows, evaluate_phase, team_start
from apps.cases.models import Process
from apps.fabric.models import ComputeNode, NodeClass
from apps.orchestrations.models import Orchestration, Stage, StageChange
from apps.people.models import Membership, Team

MAX_ANSWER = 4000
log = logging.getLogger(__name__)


def _text(value: object, *, name: str, limit: int, required: bool = False) -> str:
    text = str(value or "").strip()
    if "\x00" in text:
        raise ValidationError(f"{name} must not contain a NUL character.")
    if required and not text:
        raise ValidationError(f"{name} is required.")
    if len(text) > limit:
        raise ValidationError(f"{name} is longer than {limit} characters.")
    return text


# --- inventory: machines, data sources, named processes -----------------------------------------


def add_asset(
    *, team: Team, name: str, asset_class: str, site: str = "", note: str = "", by: AbstractBaseUser
) -> ListedAsset:
    """List a machine of the team. If a node of the team already bears that name, the asset is
    linked to it (enrolled)."""
    name = _text(name, name="Name", limit=120, required=True)
    if asset_class not in NodeClass.values:
        raise ValidationError(f"Class must be one of {', '.join(NodeClass.values)}.")
    if ListedAsset.objects.filter(team=team, name__iexact=name).exists():
        raise ValidationError(f"{name} is already listed.")
    node = ComputeNode.objects.filter(team=team, name__iexact=name).first()
    return ListedAsset.objects.create(
        team=team,
        name=name,
        asset_class=asset_class,
        site=_text(site, name="Site", limit=120),
        note=_text(note, name="Note", limit=300),
        node=node,
        added_by=by,
        added_at=timezone.now(),
    )


def link_enrolled_assets(*, team: Team) -> int:
    """Link listed machines to the team's nodes of the same name (enrolled since they were
    listed); returns how many were linked."""
    linked = 0
    nodes = {n.name.lower(): n for n in ComputeNode.objects.filter(team=team)}
    for asset in ListedAsset.objects.filter(team=team, node__isnull=True):
        node = nodes.get(asset.name.lower())
        if node is not None:
            asset.node = node
            asset.save(update_fields=["node"])
            linked += 1
    return linked


def add_data_source(
    *, team: Team, name: str, system: str = "", site: str = "", note: str = "", by: AbstractBaseUser
) -> DataSource:
    name = _text(name, name="Name", limit=120, required=True)
    if DataSource.objects.filter(team=team, name__iexact=name).exists():
        raise ValidationError(f"{name} is already listed.")
    return DataSource.objects.create(
        team=team,
        name=name,
        system=_text(system, name="System", limit=120),
        site=_text(site, name="Site", limit=120),
        note=_text(note, name="Note", limit=300),
        added_by=by,
        added_at=timezone.now(),
    )


def _member(team: Team, owner: AbstractBaseUser | None) -> AbstractBaseUser | None:
    if owner is not None and not Membership.objects.filter(team=team, user=owner).exists():
        raise ValidationError(f"{owner.get_username()} is not a member of {team.name}.")
    return owner


def _list_of_names(values: object, *, name: str) -> list[str]:
    if isinstance(values, str):
        values = values.replace("\n", ",").split(",")
    if not isinstance(values, list):
        raise ValidationError(f"{name} must be a list of names.")
    cleaned = [_text(v, name=name, limit=100) for v in values]
    cleaned = [v for v in cleaned if v]
    if len(cleaned) > 50:
        raise ValidationError(f"{name}: at most 50.")
    return list(dict.fromkeys(cleaned))


def add_named_process(
    *,
    team: Team,
    name: str,
    by: AbstractBaseUser,
    owner: AbstractBaseUser | None = None,
    cases_per_week: float | None = None,
    minutes_per_case: float | None = None,
    backlog: int | None = None,
    labels: object = (),
    fields: object = (),
    note: str = "",
) -> CandidateProcess:
    """A process the team names but has not connected; its figures are the manager's
    estimates (shown as such)."""
    name = _text(name, name="Name", limit=120, required=True)
    if CandidateProcess.objects.filter(team=team, name__iexact=name).exists() or (
        Process.objects.filter(team=team, name__iexact=name).exists()
    ):
        raise ValidationError(f"{name} is already a candidate or a connected process.")
    for label, value in (("Cases a week", cases_per_week), ("Minutes per case", minutes_per_case)):
        if value is not None and (not math.isfinite(value) or value < 0 or value > 1_000_000):
            raise ValidationError(f"{label} must be between 0 and 1,000,000.")
    if backlog is not None and backlog < 0:
        raise ValidationError("Backlog must not be negative.")
    return CandidateProcess.objects.create(
        team=team,
        name=name,
        owner=_member(team, owner),
        cases_per_week=cases_per_week,
        minutes_per_case=minutes_per_case,
        backlog=backlog,
        labels=_list_of_names(
            list(labels) if not isinstance(labels, str) else labels, name="Outcomes"
        ),
        fields=_list_of_names(
            list(fields) if not isinstance(fields, str) else fields, name="Inputs"
        ),
        note=_text(note, name="Note", limit=300),
        added_by=by,
        added_at=timezone.now(),
    )


def link_connected_candidates(*, team: Team) -> int:
    """Link processes the team named to the connected process of the same name (case-insensitive)
    once it exists, so a candidate is ranked once, with measured figures, and a battle chosen
    while it was only named follows it. Returns how many were linked."""
    linked = 0
    processes = {
        p.name.lower(): p for p in Process.objects.filter(team=team, capital_candidate__isnull=True)
    }
    for candidate in CandidateProcess.objects.filter(team=team, process__isnull=True):
        process = processes.get(candidate.name.lower())
        if process is not None:
            candidate.process = process
            candidate.save(update_fields=["process"])
            linked += 1
    return linked


def set_process_owner(
    *, process: Process, owner: AbstractBaseUser | None, by: AbstractBaseUser
) -> CandidateProcess:
    """The owner of a connected process (its stakeholder for the first battle)."""
    owner = _member(process.team, owner)
    link_connected_candidates(team=process.team)
    candidate, _ = CandidateProcess.objects.get_or_create(
        process=process,
        defaults={
            "team": process.team,
            "name": process.name,
            "added_by": by,
            "added_at": timezone.now(),
        },
    )
    candidate.owner = owner
    candidate.save(update_fields=["owner"])
    return candidate


def remove_inventory(*, team: Team, kind: str, item_id: int) -> None:
    """Remove a listed machine, data source or named (unconnected) process of `team`."""
    model = {"asset": ListedAsset, "source": DataSource, "named": CandidateProcess}.get(kind)
    if model is None:
        raise ValidationError("Unknown kind of item.")
    rows = model.objects.filter(team=team, pk=item_id)
    if model is CandidateProcess:
        rows = rows.filter(process__isnull=True)
    if not rows.exists():
        raise ValidationError("No such item.")
    rows.delete()


# --- answers and recorded assessments -----------------------------------------------------------


def save_answers(*, team: Team, answers: dict[str, str], by: AbstractBaseUser) -> int:
    """Store the manager's answers to the current gap questions (an empty answer removes one);
    keys that are not current questions are refused. Returns how many answers are stored."""
    figures = assessment_figures(team=team)
    current = {q.key for q in gap_questions(team=team, figures=figures)}
    unknown = sorted(set(answers) - current)
    if unknown:
        raise ValidationError(f"Not a current question: {', '.join(unknown)}.")
    now = timezone.now()
    with transaction.atomic():
        for key in sorted(answers):
            text = _text(answers[key], name="An answer", limit=MAX_ANSWER)
            if text:
                AssessmentAnswer.objects.update_or_create(
                    team=team,
                    question=key,
                    defaults={"answer": text, "answered_by": by, "answered_at": now},
                )
            else:
                AssessmentAnswer.objects.filter(team=team, question=key).delete()
    return AssessmentAnswer.objects.filter(team=team).count()


def record_assessment(*, team: Team, by: AbstractBaseUser, note: str = "") -> Assessment:
    """Freeze the figures as measured now and the gap questions with their answers as the next
    version of the team's assessment."""
    note = _text(note, name="Note", limit=MAX_ANSWER)
    link_enrolled_assets(team=team)
    link_connected_candidates(team=team)
    now = timezone.now()
    figures = assessment_figures(team=team, now=now)
    questions = [
        {"key": q.key, "pillar": q.pillar, "text": q.text, "answer": q.answer}
        for q in gap_questions(team=team, figures=figures)
    ]
    with transaction.atomic():
        # The team row serialises concurrent recordings, so versions never collide.
        Team.objects.select_for_update().filter(pk=team.pk).first()
        latest = Assessment.objects.filter(team=team).aggregate(v=Max("version"))["v"] or 0
        return Assessment.objects.create(
            team=team,
            version=latest + 1,
            figures=figures,
            questions=questions,
            note=note,
            recorded_by=by,
            recorded_at=now,
        )


# --- the first battle ---------------------------------------------------------------------------


def set_weights(
    *, team: Team, pain: float, data: float, stakeholders: float, by: AbstractBaseUser
) -> BattleWeights:
    values = {"pain": pain, "data": data, "stakeholders": stakeholders}
    for key, value in values.items():
        if not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 10:
            raise ValidationError(f"The weight of {key} must be between 0 and 10.")
    if sum(values.values()) <= 0:
        raise ValidationError("At least one weight must be above 0.")
    weights, _ = BattleWeights.objects.update_or_create(
        team=team, defaults={**values, "set_by": by, "set_at": timezone.now()}
    )
    return weights


def choose_battle(
    *, team: Team, candidate_key: str, reason: str, by: AbstractBaseUser
) -> BattleChoice:
    """Record the manager's first battle with the ranking row and the estimate of value as they
    stand now; the previous choice, if any, is superseded (kept as history). If the chosen
    process already has a live orchestration, the estimate is frozen at once."""
    reason = _text(reason, name="The reason", limit=MAX_ANSWER, required=True)
    now = timezone.now()
    candidates = ranking(team=team, now=now)
    chosen = next((c for c in candidates if c.key == candidate_key), None)
    if chosen is None:
        raise ValidationError("Choose one of the ranked candidates.")
    process = None
    candidate = None
    if candidate_key.startswith("process:"):
        process = Process.objects.get(team=team, slug=candidate_key.split(":", 1)[1])
        candidate = CandidateProcess.objects.filter(process=process).first()
    else:
        candidate = CandidateProcess.objects.get(team=team, pk=int(candidate_key.split(":", 1)[1]))
    from apps.capital.selectors_battle import weights_of

    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=team.pk).first()
        BattleChoice.objects.filter(team=team, superseded_at__isnull=True).update(superseded_at=now)
        choice = BattleChoice.objects.create(
            team=team,
            candidate=candidate,
            process=process,
            name=chosen.name,
            reason=reason,
            scores=chosen.as_json(),
            weights=weights_of(team=team),
            estimated_hours_per_week=round(chosen.hours_per_week, 2),
            estimate_basis=chosen.estimate_basis,
            chosen_by=by,
            chosen_at=now,
        )
    freeze_battle_estimates(team=team)
    choice.refresh_from_db()
    return choice


def freeze_battle_estimates(*, team: Team) -> int:
    """Freeze the estimate of every battle whose process has had a live orchestration version
    (at the first time it went live, or at the choice when it was live already). Returns how many
    were frozen now. Idempotent: a frozen estimate never changes."""
    frozen = 0
    open_choices = BattleChoice.objects.filter(team=team, estimate_frozen_at__isnull=True)
    for choice in open_choices.select_related("candidate"):
        process_id = choice.process_id or (
            choice.candidate.process_id if choice.candidate else None
        )
        if process_id is None:
            continue
        first_live = (
            StageChange.objects.filter(orchestration__process_id=process_id, to_stage=Stage.LIVE)
            .order_by("created_at", "pk")
            .first()
        )
        if first_live is None:
            continue
        choice.estimate_frozen_at = max(first_live.created_at, choice.chosen_at)
        choice.frozen_by_orchestration = Orchestration.objects.get(pk=first_live.orchestration_id)
        if choice.process_id is None:
            choice.process_id = process_id
        choice.save(update_fields=["estimate_frozen_at", "frozen_by_orchestration", "process"])
        frozen += 1
    return frozen


def refresh_battle_estimate(*, team: Team, by: AbstractBaseUser) -> BattleChoice:
    """Re-estimate the current battle's value from today's figures, until it is frozen."""
    from apps.capital.selectors_battle import current_battle

    choice = current_battle(team=team)
    if choice is None:
        raise ValidationError("No first battle is chosen.")
    if choice.estimate_frozen_at is not None:
        raise ValidationError("The estimate is frozen: its orchestration went live.")
    key = f"process:{choice.process.slug}" if choice.process else f"named:{choice.candidate_id}"
    row = next((c for c in ranking(team=team) if c.key == key), None)
    if row is None:
        raise ValidationError("The chosen candidate is no longer ranked.")
    choice.estimated_hours_per_week = round(row.hours_per_week, 2)
    choice.estimate_basis = row.estimate_basis
    choice.save(update_fields=["estimated_hours_per_week", "estimate_basis"])
    return choice


# --- the roadmap --------------------------------------------------------------------------------


def advance_roadmap(*, team: Team, now: datetime | None = None) -> list[PhaseEntry]:
    """Bring the team's phase entries up to date: phase 1 from the team's start, then each next
    phase once every criterion of the one before is met, dated when the last of them was met
    (now, when a criterion can't say). Entries are never moved or removed: a roadmap doesn't go
    back when a figure dips. Idempotent and safe to run concurrently (unique entries)."""
    now = now or timezone.now()
    link_connected_candidates(team=team)
    freeze_battle_estimates(team=team)
    entries = {e.phase: e for e in PhaseEntry.objects.filter(team=team)}
    if 1 not in entries:
        entries[1] = _enter(team, 1, team_start(team=team), [])
    rows = criteria_rows()
    for spec in PHASES[:-1]:
        entry = entries.get(spec.number)
        if entry is None or spec.number + 1 in entries:
            continue
        states = evaluate_phase(team=team, phase=spec.number, rows=rows, now=now)
        if not states or not all(s.met for s in states):
            break
        dates = [s.met_at or now for s in states]
        entered = max([entry.entered_at, *dates])
        evidence = [{"kind": s.kind, "label": s.label, "evidence": s.evidence} for s in states]
        entries[spec.number + 1] = _enter(team, spec.number + 1, entered, evidence)
    return [entries[p] for p in sorted(entries)]


def advance_roadmaps(*, now: datetime | None = None) -> dict[str, int]:
    """advance_roadmap for every team (the hourly capital refresh, so reading a roadmap never
    writes); {team slug: its current phase}. A team that fails is logged and the others still
    advance."""
    now = now or timezone.now()
    phases: dict[str, int] = {}
    for team in Team.objects.order_by("pk"):
        try:
            entries = advance_roadmap(team=team, now=now)
        except Exception:
            log.exception("capital roadmap of team %s failed to advance", team.slug)
            continue
        phases[team.slug] = entries[-1].phase
    return phases


def _enter(team: Team, phase: int, at: datetime, evidence: list) -> PhaseEntry:
    try:
        with transaction.atomic():
            return PhaseEntry.objects.create(
                team=team, phase=phase, entered_at=at, evidence=evidence
            )
    except IntegrityError:  # another request wrote it first: theirs stands
        return PhaseEntry.objects.get(team=team, phase=phase)


def set_criterion(
    *, phase: int, kind: str, threshold: float, by: AbstractBaseUser
) -> PhaseCriterion:
    """Add a criterion to a phase, or change its threshold (organisation admins)."""
    if phase not in {p.number for p in PHASES}:
        raise ValidationError("Phase must be 1, 2, 3 or 4.")
    if kind not in criteria.KINDS:
        raise ValidationError(f"Kind must be one of {', '.join(sorted(criteria.KINDS))}.")
    if not math.isfinite(threshold) or threshold < 0:
        raise ValidationError("The threshold must be a number of 0 or more.")
    if criteria.KINDS[kind].unit == "share" and threshold > 1:
        raise ValidationError("A share is between 0 and 1 (0.3 for 30 %).")
    position = (
        PhaseCriterion.objects.filter(phase=phase).aggregate(p=Max("position"))["p"] or 0
    ) + 1
    row, created = PhaseCriterion.objects.get_or_create(
        phase=phase,
        kind=kind,
        defaults={"threshold": threshold, "position": position, "updated_by": by},
    )
    if not created:
        row.threshold = threshold
        row.updated_by = by
        row.save(update_fields=["threshold", "updated_by", "updated_at"])
    return row


def remove_criterion(*, criterion_id: int) -> None:
    deleted, _ = PhaseCriterion.objects.filter(pk=criterion_id).delete()
    if not deleted:
        raise ValidationError("No such criterion.")
