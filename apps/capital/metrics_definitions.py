"""What each capital metric means: the entries of the definitions page, the API and the CSV.

A figure is stored as a numerator and a denominator per day (`MetricSnapshot.figures`), so the
figure of any period is the sum of its days' numerators over the sum of their denominators
(`Kind.RATIO`), the sum of their numerators (`Kind.SUM`), or the last day's value for a state
measured at the end of a day (`Kind.STATE`, `Kind.STATE_RATIO`).
"""

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    CAPABILITY = "capability"
    VALUE = "value"
    COMPOUND = "compound"


FAMILY_LABELS = {
    Family.CAPABILITY: "Capability",
    Family.VALUE: "Value",
    Family.COMPOUND: "Compound",
}


class Kind(StrEnum):
    SUM = "sum"  # value = Σ numerator over the days
    RATIO = "ratio"  # value = Σ numerator / Σ denominator over the days
    STATE = "state"  # value = numerator at the end of the period's last day
    STATE_RATIO = "state_ratio"  # numerator / denominator at the end of the last day


class Drill(StrEnum):
    CASES = "cases"
    RUNS = "runs"
    NODES = "nodes"
    PROCESSES = "processes"
    VERSIONS = "versions"
    DECISIONS = "decisions"
    NONE = ""


@dataclass(frozen=True)
class Definition:
    key: str
    family: Family
    name: str
    unit: str  # share, hours, count, days, seconds, ratio, money
    kind: Kind
    formula: str
    sources: tuple[str, ...]
    excludes: str
    drill: Drill = Drill.NONE
    higher_is_better: bool = True
    headline: bool = False
    per_process: bool = True
    # Multiply the stored ratio for display (shares are stored 0-1 and shown in %).
    scale: float = 1.0
    note: str = ""

    @property
    def anchor(self) -> str:
        return f"metric-{self.key}"


BASELINE_DAYS = 28
BASELINE_TEXT = (
    f"Measured: the figure over the first {BASELINE_DAYS} days of the team's (or process's) "
    "recorded history, from its daily snapshots. A manager may override a baseline with a reason; "
    "the figure then says 'baseline set by <manager>' and the measured one stays on record."
)

DEFINITIONS: tuple[Definition, ...] = (
    # --- capability ----------------------------------------------------------------------------
    Definition(
        key="orchestrated_processes",
        family=Family.CAPABILITY,
        name="Processes with a live orchestration",
        unit="share",
        kind=Kind.STATE_RATIO,
        formula="processes with an orchestration version live or in canary at the end of the "
        "day ÷ the team's processes by then (created, or with a case or decision recorded, "
        "imported history included)",
        sources=(
            "cases_process",
            "orchestrations_orchestrationversion",
            "orchestrations_stagechange",
            "autonomy_autonomychange",
        ),
        excludes="Versions only in draft or shadow, and retired ones, do not count. The stage "
        "and autonomy level on a past day come from the stage-change and autonomy logs.",
        drill=Drill.PROCESSES,
        headline=True,
        scale=100,
        note="The breakdown by best stage and by autonomy level is in the figure's details.",
    ),
    Definition(
        key="fabric_participation",
        family=Family.CAPABILITY,
        name="Infrastructure in the fabric",
        unit="share",
        kind=Kind.STATE_RATIO,
        formula="the team's nodes online at least N hours in the 7 days ending that day (N from "
        "ORCHCAP_CAPITAL_ONLINE_HOURS, default 10, pro-rated for a node enrolled during those "
        "days) ÷ the team's listed infrastructure (nodes enrolled by then and not retired, plus "
        "assets listed in the assessment but not enrolled)",
        sources=("fabric_computenode", "fabric_nodeevent", "capital assessment assets"),
        excludes="Nodes pending approval, retired or revoked before the day; hours in states "
        "other than online and draining.",
        drill=Drill.NODES,
        headline=True,
        per_process=False,
        scale=100,
    ),
    Definition(
        key="data_sources_reachable",
        family=Family.CAPABILITY,
        name="Data sources reachable",
        unit="share",
        kind=Kind.STATE_RATIO,
        formula="data sources listed for the team that a participating node hosts ÷ data "
        "sources listed for the team",
        sources=("capital assessment data sources", "fabric_computenode.data_sources"),
        excludes="Without listed data sources the figure is empty, not 0 %: the denominator "
        "comes from the assessment (a data catalog will fill it in when it exists).",
        per_process=False,
        scale=100,
    ),
    Definition(
        key="rules_in_use",
        family=Family.CAPABILITY,
        name="Rules in use",
        unit="count",
        kind=Kind.STATE,
        formula="enabled rules of the team's processes whose first version was saved by then",
        sources=("rules_rule", "rules_ruleversion"),
        excludes="Disabled rules. Enabling is not logged, so past days use today's flag.",
        drill=Drill.PROCESSES,
    ),
    Definition(
        key="models_in_use",
        family=Family.CAPABILITY,
        name="Processes with a promoted model",
        unit="count",
        kind=Kind.STATE,
        formula="processes with a model version promoted by the end of the day",
        sources=("classifiers_modelversion",),
        excludes="Models trained but never promoted.",
        drill=Drill.PROCESSES,
    ),
    # --- value ---------------------------------------------------------------------------------
    Definition(
        key="hours_saved",
        family=Family.VALUE,
        name="Hours saved",
        unit="hours",
        kind=Kind.SUM,
        formula="credited automatic decisions x measured minutes per case ÷ 60, plus the hours "
        "experts saved on suggestions they accepted (see 'Time saved by suggestions')",
        sources=(
            "cases_decision (source model)",
            "orchestrations_run (outcome decided)",
            "cases_decision.seconds_spent",
        ),
        excludes="Items that ended in an error or were not finished, standard items (no work "
        "was avoided), and automatic decisions an audit or a later expert label overturned.",
        drill=Drill.CASES,
        headline=True,
        note="Minutes per case: the mean review seconds of the process's first "
        f"{BASELINE_DAYS} days of timed decisions; without timed decisions, the process's "
        "configured estimate (the figure says so); a manager's override says so too.",
    ),
    Definition(
        key="automatic_decisions",
        family=Family.VALUE,
        name="Decided without a person (credited)",
        unit="count",
        kind=Kind.SUM,
        formula="cases the model decided at autonomy level 3 + orchestration runs decided by a "
        "rule or the model without a case, that day, not overturned",
        sources=("cases_decision", "cases_case", "orchestrations_run"),
        excludes="Retracted decisions, overturned ones (counted under Overturns), standard "
        "runs, runs that ended in an error and unfinished runs.",
        drill=Drill.CASES,
    ),
    Definition(
        key="overturns",
        family=Family.VALUE,
        name="Overturns",
        unit="count",
        kind=Kind.SUM,
        formula="automatic decisions whose case an expert later labelled otherwise (second "
        "look, adjudication) or reopened + audit samples the expert decided against the model",
        sources=("cases_decision", "cases_case", "autonomy_auditsample"),
        excludes="Counted on the day of the automatic decision (audits: on the audit's day).",
        drill=Drill.CASES,
        higher_is_better=False,
    ),
    Definition(
        key="suggestion_hours_saved",
        family=Family.VALUE,
        name="Time saved by suggestions",
        unit="hours",
        kind=Kind.SUM,
        formula="accepted suggestions x (mean review seconds without a suggestion - mean with "
        "one), same process and day, ÷ 3600; without unassisted decisions that day, the "
        "process's baseline review seconds stand in for them. A suggestion is accepted when, "
        "as the expert opened the case (decided minus seconds spent), the process was at level "
        "2 or above and the latest prediction recorded for the case by then had the label the "
        "expert chose; without one: the process was below level 2 then",
        sources=(
            "cases_decision.seconds_spent",
            "autonomy_shadowprediction",
            "autonomy_autonomychange",
        ),
        excludes="Decisions without a measured time, imported history, suggestions the expert "
        "did not follow, predictions recorded after the review began or backfilled over "
        "history (never seen), decisions at level 2 or above with no prediction on record "
        "(whether one was shown is unknown); never negative.",
        drill=Drill.DECISIONS,
    ),
    Definition(
        key="errors_prevented",
        family=Family.VALUE,
        name="Errors prevented",
        unit="count",
        kind=Kind.SUM,
        formula="audit samples where the expert confirmed the model + routed runs whose case "
        "experts decided with the label the model suggested when routing it",
        sources=("autonomy_auditsample", "orchestrations_run", "cases_case"),
        excludes="Audits the expert decided otherwise; routed runs whose case is still open.",
        drill=Drill.CASES,
    ),
    Definition(
        key="straight_through",
        family=Family.VALUE,
        name="Straight-through share",
        unit="share",
        kind=Kind.RATIO,
        formula="(credited automatic decisions + standard runs) ÷ (cases decided + runs "
        "decided or standard)",
        sources=("cases_case", "cases_decision", "orchestrations_run"),
        excludes="Routed and audited runs are counted once, as their case.",
        drill=Drill.RUNS,
        headline=True,
        scale=100,
    ),
    Definition(
        key="backlog",
        family=Family.VALUE,
        name="Backlog",
        unit="count",
        kind=Kind.STATE,
        formula="cases received by the end of the day and not decided by then (open or "
        "awaiting adjudication)",
        sources=("cases_case",),
        excludes="A case decided, reopened and decided again counts by its last decision.",
        drill=Drill.CASES,
        higher_is_better=False,
    ),
    Definition(
        key="backlog_age_days",
        family=Family.VALUE,
        name="Backlog age",
        unit="days",
        kind=Kind.STATE_RATIO,
        formula="mean age, in days at the end of the day, of the cases in the backlog",
        sources=("cases_case",),
        excludes="As for Backlog.",
        drill=Drill.CASES,
        higher_is_better=False,
    ),
    Definition(
        key="time_to_decision_hours",
        family=Family.VALUE,
        name="Time to decision",
        unit="hours",
        kind=Kind.RATIO,
        formula="Σ (decided - received) over the cases decided that day ÷ their number",
        sources=("cases_case",),
        excludes="Cases whose decision was imported with the case (history).",
        drill=Drill.CASES,
        higher_is_better=False,
    ),
    Definition(
        key="review_seconds",
        family=Family.VALUE,
        name="Review time per case",
        unit="seconds",
        kind=Kind.RATIO,
        formula="Σ seconds spent ÷ timed review decisions that day",
        sources=("cases_decision.seconds_spent",),
        excludes="Retracted decisions, imported and automatic ones, decisions without a time.",
        drill=Drill.DECISIONS,
        higher_is_better=False,
    ),
    Definition(
        key="sla_attainment",
        family=Family.VALUE,
        name="SLA attainment",
        unit="share",
        kind=Kind.RATIO,
        formula="cases due that day decided by their due time / cases due that day that are "
        "settled (decided, or still undecided once the day is over)",
        sources=("cases_case.due_by", "cases_case.decided_at"),
        excludes="Cases without a due time (only orchestrations with an SLA give one).",
        drill=Drill.CASES,
        scale=100,
    ),
    Definition(
        key="money_value",
        family=Family.VALUE,
        name="Value in money",
        unit="money",
        kind=Kind.SUM,
        formula="hours saved x the manager's value per hour + credited automatic decisions x "
        "the value per case",
        sources=("capital_moneyrate", "hours_saved", "automatic_decisions"),
        excludes="Empty (and said so) unless a manager gave a value per hour or per case on "
        "the money page; a process's own value wins over the team's.",
    ),
    # --- compound ------------------------------------------------------------------------------
    Definition(
        key="component_reuse",
        family=Family.COMPOUND,
        name="Component reuse",
        unit="share",
        kind=Kind.STATE_RATIO,
        formula="orchestration versions that use a rule, model or connector whose first user "
        "was another orchestration ÷ orchestration versions saved by then",
        sources=("orchestrations_componentreuse", "orchestrations_orchestrationversion"),
        excludes="A component reused by later versions of the same orchestration.",
        drill=Drill.VERSIONS,
        headline=True,
        scale=100,
    ),
    Definition(
        key="time_to_first_live_days",
        family=Family.COMPOUND,
        name="Time to first live orchestration",
        unit="days",
        kind=Kind.STATE_RATIO,
        formula="mean over processes live by then of days from the process's first decision "
        "to its first orchestration going live; the details list them in go-live order (is "
        "the next one faster?)",
        sources=("cases_decision", "orchestrations_stagechange"),
        excludes="Processes with no decision or no live orchestration yet.",
        drill=Drill.PROCESSES,
        higher_is_better=False,
    ),
    Definition(
        key="investment_hours",
        family=Family.COMPOUND,
        name="Investment",
        unit="hours",
        kind=Kind.SUM,
        formula="expert hours labelling (seconds spent on every review decision, undone ones "
        "too) + compute hours training models",
        sources=("cases_decision.seconds_spent", "classifiers_modelversion.training_seconds"),
        excludes="Decisions without a measured time (imported history, automatic ones).",
        drill=Drill.DECISIONS,
        higher_is_better=False,
    ),
    Definition(
        key="value_ratio",
        family=Family.COMPOUND,
        name="Value per hour invested",
        unit="ratio",
        kind=Kind.RATIO,
        formula="hours saved ÷ hours invested",
        sources=("hours_saved", "investment_hours"),
        excludes="Empty while nothing was invested.",
        headline=True,
    ),
    Definition(
        key="marginal_cost_hours",
        family=Family.COMPOUND,
        name="Marginal cost per new orchestration",
        unit="hours",
        kind=Kind.RATIO,
        formula="hours invested ÷ orchestrations that went live for the first time",
        sources=("investment_hours", "orchestrations_stagechange"),
        excludes="Empty in a period where no orchestration went live.",
        higher_is_better=False,
    ),
)

BY_KEY: dict[str, Definition] = {definition.key: definition for definition in DEFINITIONS}
HEADLINES: tuple[Definition, ...] = tuple(d for d in DEFINITIONS if d.headline)


def definitions_of(family: Family) -> list[Definition]:
    return [definition for definition in DEFINITIONS if definition.family == family]


def definition_as_dict(definition: Definition) -> dict[str, object]:
    return {
        "key": definition.key,
        "family": str(definition.family),
        "name": definition.name,
        "unit": definition.unit,
        "kind": str(definition.kind),
        "formula": definition.formula,
        "sources": list(definition.sources),
        "excludes": definition.excludes,
        "note": definition.note,
        "higher_is_better": definition.higher_is_better,
        "baseline": BASELINE_TEXT,
    }
