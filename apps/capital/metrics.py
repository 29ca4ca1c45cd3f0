"""Capital metrics as SQL aggregates over what orchcap records (definitions: metrics_definitions).

`measure(team_id=…, start=…, end=…)` returns, per process of the team and for the team as a whole
(key None), each metric's numerator and denominator: flows (decisions, runs, hours) over
[start, end), states (backlog, stages, levels, nodes) at `end`, reconstructed from the logs when
`end` is in the past. Each `_sql_*` function answers one question with one query over the whole
team, grouped by process, so a team costs the same few queries whatever its number of processes.

Sources are read where they are, not invented: only finished runs without an error are
credited; an automatic run's decision is overturned only through an audit (AuditSample, counted
with the audits); SLA attainment comes from the due time orchestrations give routed cases
(`Case.due_by`); the assessment's listed assets and data sources from `assessment_sources`.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection

from apps.capital.metrics_definitions import BASELINE_DAYS, BY_KEY, Kind

REVIEW_SOURCES = ("review", "api")
TIMED_SOURCES = ("review", "api", "adjudication")
FABRIC_WINDOW = timedelta(days=7)
STAGE_ORDER = {"draft": 1, "shadow": 2, "canary": 3, "live": 4}


@dataclass
class Raw:
    """One metric's measurement: `num` and `den` add up across days (see Kind)."""

    num: float = 0.0
    den: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def value(self, kind: Kind) -> float | None:
        if kind in (Kind.SUM, Kind.STATE):
            return self.num
        if not self.den:
            return None
        return self.num / self.den

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"num": round(self.num, 6), "den": self.den}
        if self.details:
            data["details"] = self.details
        return data


# {process id or None (the team): {metric key: Raw}}
Measurement = dict[int | None, dict[str, Raw]]


def _json_list(value: object) -> list:
    """A jsonb column read through Django's cursor comes back as text."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, list) else []


def online_hours_threshold() -> float:
    return float(settings.ORCHCAP_CAPITAL_ONLINE_HOURS)


def _rows(sql: str, params: dict[str, Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _f(value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, Decimal):
        return float(value)
    return float(value)  # type: ignore[arg-type]


# --- the team's processes and their minutes per case --------------------------------------------


@dataclass
class ProcessInfo:
    id: int
    name: str
    slug: str
    created_at: datetime
    configured_minutes: float
    measured_seconds: float | None = None  # mean of the first BASELINE_DAYS of timed reviews
    measured_count: int = 0
    override_seconds: float | None = None
    override_by: str = ""
    first_decision: datetime | None = None

    @property
    def seconds_per_case(self) -> float:
        if self.override_seconds is not None:
            return self.override_seconds
        if self.measured_seconds is not None:
            return self.measured_seconds
        return self.configured_minutes * 60

    @property
    def minutes_source(self) -> str:
        if self.override_seconds is not None:
            return f"set by {self.override_by or 'a manager'}"
        if self.measured_seconds is not None:
            return f"measured over {self.measured_count} timed reviews"
        return "configured estimate (no timed reviews yet)"


@dataclass
class ProcessHistory:
    """What does not depend on the day measured: when a process started, and its measured
    minutes per case (fixed once its first BASELINE_DAYS of timed reviews have passed)."""

    started_at: datetime | None  # its creation, first case or first decision, whichever first
    first_decision: datetime | None
    measured_count: int
    measured_seconds: float | None


def process_history(*, team_id: int) -> dict[int, ProcessHistory]:
    """One pass over the team's decisions (and an index probe per process for its first case)."""
    rows = _rows(
        """
        WITH d AS MATERIALIZED (
            SELECT c.process_id, d.decided_at, d.seconds_spent,
                   (d.seconds_spent IS NOT NULL AND d.source IN ('review', 'api')) AS timed
            FROM cases_decision d
            JOIN cases_case c ON c.id = d.case_id
            JOIN cases_process p ON p.id = c.process_id
            WHERE p.team_id = %(team)s AND d.retracted_at IS NULL
        ), f AS (
            SELECT process_id, MIN(decided_at) AS first_any,
                   MIN(decided_at) FILTER (WHERE timed) AS first_timed
            FROM d GROUP BY process_id
        ), b AS (
            SELECT f.process_id, COUNT(*) AS n, AVG(d.seconds_spent) AS mean
            FROM f JOIN d ON d.process_id = f.process_id
            WHERE d.timed AND d.decided_at < f.first_timed + make_interval(days => %(days)s)
            GROUP BY f.process_id
        )
        SELECT p.id, p.created_at,
               (SELECT MIN(c1.created_at) FROM cases_case c1 WHERE c1.process_id = p.id),
               f.first_any, b.n, b.mean
        FROM cases_process p
        LEFT JOIN f ON f.process_id = p.id
        LEFT JOIN b ON b.process_id = p.id
        WHERE p.team_id = %(team)s
        """,
        {"team": team_id, "days": BASELINE_DAYS},
    )
    return {
        row[0]: ProcessHistory(
            started_at=min(at for at in (row[1], row[2], row[3]) if at is not None),
            first_decision=row[3],
            measured_count=int(row[4] or 0),
            measured_seconds=_f(row[5]) if row[4] else None,
        )
        for row in rows
    }


def team_processes(
    *,
    team_id: int,
    end: datetime | None = None,
    history: dict[int, ProcessHistory] | None = None,
) -> list[ProcessInfo]:
    """The team's processes that existed before `end` (created, or with a case or a decision,
    imported history included), with the minutes per case hours saved use:
    a manager's override, else the measured baseline, else the configured estimate.
    `history` (process_history) may be passed in when many days are measured in a row."""
    if history is None:
        history = process_history(team_id=team_id)
    rows = _rows(
        """
        SELECT p.id, p.name, p.slug, p.created_at, p.minutes_per_case
        FROM cases_process p WHERE p.team_id = %(team)s ORDER BY p.id
        """,
        {"team": team_id},
    )
    processes = []
    for row in rows:
        known = history.get(row[0])
        started = known.started_at if known else row[3]
        if end is not None and started >= end:
            continue
        processes.append(
            ProcessInfo(
                id=row[0],
                name=row[1],
                slug=row[2],
                created_at=row[3],
                configured_minutes=_f(row[4]),
                measured_count=known.measured_count if known else 0,
                measured_seconds=known.measured_seconds if known else None,
                first_decision=known.first_decision if known else None,
            )
        )
    from apps.capital.models import BaselineOverride

    overrides = (
        BaselineOverride.objects.filter(
            team_id=team_id, metric="review_seconds", cleared_at__isnull=True
        )
        .select_related("set_by")
        .order_by("set_at", "pk")
    )
    by_process: dict[int | None, BaselineOverride] = {}
    for override in overrides:  # oldest first: the latest wins
        by_process[override.process_id] = override
    for process in processes:
        override = by_process.get(process.id) or by_process.get(None)
        if override is not None:
            process.override_seconds = override.value
            process.override_by = override.set_by.get_username() if override.set_by else ""
    return processes


# --- value: decisions, runs, audits -------------------------------------------------------------


def _sql_model_decisions(params: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """{process: (credited, overturned)} for automatic (source model) decisions in the period.

    Overturned: the case is no longer decided with the model's label (a second look reopened it,
    an adjudicator settled it otherwise) or an expert's active label disagrees with the model's.
    """
    rows = _rows(
        """
        SELECT c.process_id,
               COUNT(*) FILTER (WHERE NOT x.overturned),
               COUNT(*) FILTER (WHERE x.overturned)
        FROM cases_decision d
        JOIN cases_case c ON c.id = d.case_id
        CROSS JOIN LATERAL (
            SELECT (c.status <> 'decided' OR c.final_label <> d.label OR EXISTS (
                SELECT 1 FROM cases_decision o
                WHERE o.case_id = d.case_id AND o.id <> d.id AND o.retracted_at IS NULL
                  AND o.label <> d.label
            )) AS overturned
        ) x
        WHERE c.process_id = ANY(%(procs)s) AND d.source = 'model' AND d.retracted_at IS NULL
          AND d.decided_at >= %(start)s AND d.decided_at < %(end)s
        GROUP BY c.process_id
        """,
        params,
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def _sql_audits(params: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """{process: (confirmed, overturned)} for audit samples experts decided in the period."""
    rows = _rows(
        """
        SELECT a.process_id, COUNT(*) FILTER (WHERE a.correct), COUNT(*) FILTER (WHERE NOT a.correct)
        FROM autonomy_auditsample a
        WHERE a.process_id = ANY(%(procs)s) AND a.correct IS NOT NULL
          AND a.decided_at >= %(start)s AND a.decided_at < %(end)s
        GROUP BY a.process_id
        """,
        params,
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


@dataclass
class RunCounts:
    decided: int = 0  # decided by a rule or the model, no person involved
    standard: int = 0
    routed: int = 0  # sent to people (their case counts as a case)
    caught_confirmed: int = 0


def _sql_runs(params: dict[str, Any]) -> dict[int, RunCounts]:
    """Finished orchestration runs of the period by process.

    A run decided by a rule or the model without a case is automatic. A routed run keeps its
    case (its `decided_by` becomes `expert:<name>` once experts decide it), and so does a run
    drawn for audit: those count as cases, not as automatic decisions. A catch is confirmed when
    experts decided the routed case with the label the model suggested when routing it.
    """
    rows = _rows(
        """
        SELECT o.process_id,
               COUNT(*) FILTER (WHERE r.outcome = 'decided' AND r.case_id IS NULL
                                AND r.decided_by NOT LIKE 'expert:%%'
                                AND r.finished_at >= %(start)s AND r.finished_at < %(end)s),
               COUNT(*) FILTER (WHERE r.outcome = 'standard'
                                AND r.finished_at >= %(start)s AND r.finished_at < %(end)s),
               COUNT(*) FILTER (WHERE r.case_id IS NOT NULL
                                AND r.finished_at >= %(start)s AND r.finished_at < %(end)s),
               COUNT(*) FILTER (WHERE c.status = 'decided'
                                AND c.decided_at >= %(start)s AND c.decided_at < %(end)s
                                AND EXISTS (SELECT 1 FROM orchestrations_runstep s
                                            WHERE s.run_id = r.id AND s.kind = 'route'
                                              AND s.data ->> 'suggested' = c.final_label))
        FROM orchestrations_run r
        JOIN orchestrations_orchestration o ON o.id = r.orchestration_id
        LEFT JOIN cases_case c ON c.id = r.case_id
        WHERE o.team_id = %(team)s AND r.state = 'finished' AND r.error = ''
          AND ((r.finished_at >= %(start)s AND r.finished_at < %(end)s)
               OR (c.decided_at >= %(start)s AND c.decided_at < %(end)s))
        GROUP BY o.process_id
        """,
        params,
    )
    return {row[0]: RunCounts(*(int(v) for v in row[1:])) for row in rows}


def _sql_sla(params: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """{process: (met, settled)} for cases due in the period (Case.due_by, set by the
    orchestration that routed them), as apps.cases.selectors_sla counts them: met when decided
    by the due time; missed when decided after it or still undecided when the period ends."""
    rows = _rows(
        """
        SELECT c.process_id,
               COUNT(*) FILTER (WHERE c.decided_at IS NOT NULL AND c.decided_at < %(end)s
                                AND c.decided_at <= c.due_by),
               COUNT(*) FILTER (WHERE (c.decided_at IS NOT NULL AND c.decided_at < %(end)s)
                                OR c.due_by < %(end)s)
        FROM cases_case c
        WHERE c.process_id = ANY(%(procs)s)
          AND c.due_by >= %(start)s AND c.due_by < %(end)s
        GROUP BY c.process_id
        """,
        params,
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def _sql_cases_decided(params: dict[str, Any]) -> dict[int, tuple[int, float]]:
    """{process: (cases decided in the period, Σ hours from receipt to decision)}, leaving out
    cases decided by imported history (decided before they were received)."""
    rows = _rows(
        """
        SELECT c.process_id, COUNT(*),
               SUM(EXTRACT(EPOCH FROM (c.decided_at - c.created_at))) / 3600.0
        FROM cases_case c
        WHERE c.process_id = ANY(%(procs)s) AND c.status = 'decided'
          AND c.decided_at >= %(start)s AND c.decided_at < %(end)s
          AND c.decided_at >= c.created_at
        GROUP BY c.process_id
        """,
        params,
    )
    return {row[0]: (int(row[1]), _f(row[2])) for row in rows}


def _sql_backlog(params: dict[str, Any]) -> dict[int, tuple[int, float]]:
    """{process: (cases waiting at `end`, Σ their ages in days)}."""
    rows = _rows(
        """
        SELECT c.process_id, COUNT(*),
               SUM(EXTRACT(EPOCH FROM (%(end)s - c.created_at))) / 86400.0
        FROM cases_case c
        WHERE c.process_id = ANY(%(procs)s) AND c.created_at < %(end)s
          AND (c.decided_at IS NULL OR c.decided_at >= %(end)s)
        GROUP BY c.process_id
        """,
        params,
    )
    return {row[0]: (int(row[1]), _f(row[2])) for row in rows}


@dataclass
class ReviewTimes:
    timed: int = 0  # active review decisions with a time, in the period
    seconds: float = 0.0
    invested_seconds: float = 0.0  # every timed decision, undone ones too
    with_n: int = 0  # accepted suggestions (level ≥ 2, recorded label before the review began)
    with_seconds: float = 0.0
    without_n: int = 0  # decisions at a level below suggest
    without_seconds: float = 0.0


def _sql_review_times(params: dict[str, Any]) -> dict[int, ReviewTimes]:
    """Timed decisions of the period by process, split for the time saved by suggestions.

    A decision is *with a suggestion* only when one really existed when the expert opened the
    case (the decision's time minus its seconds spent): the process was at level 2 or above
    then, and the latest prediction recorded for the case by that moment (not a backfilled one)
    had the label the expert chose. A prediction recorded later — during the review, after it,
    or backfilled over history — was never seen. *Without*: the process was below level 2 then
    (suggestions held back). Decisions at level 2 or above with no prediction on record, or
    whose expert chose otherwise, are in neither group: whether a suggestion was shown and
    followed isn't known from the tables.
    """
    rows = _rows(
        """
        SELECT c.process_id,
               COUNT(*) FILTER (WHERE x.active AND x.review),
               COALESCE(SUM(d.seconds_spent) FILTER (WHERE x.active AND x.review), 0),
               COALESCE(SUM(d.seconds_spent), 0),
               COUNT(*) FILTER (WHERE x.active AND x.review AND x.lvl >= 2 AND x.accepted),
               COALESCE(SUM(d.seconds_spent)
                        FILTER (WHERE x.active AND x.review AND x.lvl >= 2 AND x.accepted), 0),
               COUNT(*) FILTER (WHERE x.active AND x.review AND x.lvl < 2),
               COALESCE(SUM(d.seconds_spent)
                        FILTER (WHERE x.active AND x.review AND x.lvl < 2), 0)
        FROM cases_decision d
        JOIN cases_case c ON c.id = d.case_id
        CROSS JOIN LATERAL (
            SELECT d.decided_at - make_interval(secs => d.seconds_spent) AS started
        ) r
        LEFT JOIN LATERAL (
            SELECT ac.to_level FROM autonomy_autonomychange ac
            WHERE ac.process_id = c.process_id AND ac.at <= r.started
            ORDER BY ac.at DESC, ac.id DESC LIMIT 1
        ) l ON true
        LEFT JOIN LATERAL (
            SELECT sp.label FROM autonomy_shadowprediction sp
            WHERE sp.case_id = d.case_id AND NOT sp.backfilled AND sp.created_at <= r.started
            ORDER BY sp.created_at DESC, sp.id DESC LIMIT 1
        ) s ON true
        CROSS JOIN LATERAL (
            SELECT d.retracted_at IS NULL AS active,
                   d.source IN ('review', 'api') AS review,
                   COALESCE(l.to_level, 0) AS lvl,
                   COALESCE(s.label = d.label, false) AS accepted
        ) x
        WHERE c.process_id = ANY(%(procs)s) AND d.seconds_spent IS NOT NULL
          AND d.source IN ('review', 'api', 'adjudication')
          AND d.decided_at >= %(start)s AND d.decided_at < %(end)s
        GROUP BY c.process_id
        """,
        params,
    )
    return {
        row[0]: ReviewTimes(
            int(row[1]), _f(row[2]), _f(row[3]), int(row[4]), _f(row[5]), int(row[6]), _f(row[7])
        )
        for row in rows
    }


def _sql_training_seconds(params: dict[str, Any]) -> dict[int, float]:
    rows = _rows(
        """
        SELECT m.process_id, SUM(m.training_seconds) FROM classifiers_modelversion m
        WHERE m.process_id = ANY(%(procs)s)
          AND m.trained_at >= %(start)s AND m.trained_at < %(end)s
        GROUP BY m.process_id
        """,
        params,
    )
    return {row[0]: _f(row[1]) for row in rows}


# --- capability and compound: states at `end` ---------------------------------------------------


def _sql_process_states(params: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Per process at `end`: best orchestration stage, autonomy level, rules enabled, whether a
    model was promoted, first live, and whether first live fell in the period."""
    rows = _rows(
        """
        WITH vstage AS (
            SELECT o.process_id, o.id AS orchestration_id, COALESCE((
                SELECT sc.to_stage FROM orchestrations_stagechange sc
                WHERE sc.version_id = v.id AND sc.created_at < %(end)s
                ORDER BY sc.created_at DESC, sc.id DESC LIMIT 1), 'draft') AS stage
            FROM orchestrations_orchestrationversion v
            JOIN orchestrations_orchestration o ON o.id = v.orchestration_id
            WHERE o.team_id = %(team)s AND v.created_at < %(end)s
        ), first_live AS (
            SELECT o.process_id, o.id AS orchestration_id, MIN(sc.created_at) AS at
            FROM orchestrations_stagechange sc
            JOIN orchestrations_orchestration o ON o.id = sc.orchestration_id
            WHERE o.team_id = %(team)s AND sc.to_stage = 'live' AND sc.created_at < %(end)s
            GROUP BY o.process_id, o.id
        )
        SELECT p.id,
               (SELECT MAX(CASE vs.stage WHEN 'draft' THEN 1 WHEN 'shadow' THEN 2
                                         WHEN 'canary' THEN 3 WHEN 'live' THEN 4 ELSE 0 END)
                FROM vstage vs WHERE vs.process_id = p.id),
               COALESCE((SELECT ac.to_level FROM autonomy_autonomychange ac
                         WHERE ac.process_id = p.id AND ac.at < %(end)s
                         ORDER BY ac.at DESC, ac.id DESC LIMIT 1), 0),
               (SELECT COUNT(*) FROM rules_rule r WHERE r.process_id = p.id AND r.enabled
                  AND EXISTS (SELECT 1 FROM rules_ruleversion rv
                              WHERE rv.rule_id = r.id AND rv.created_at < %(end)s)),
               EXISTS (SELECT 1 FROM classifiers_modelversion m
                       WHERE m.process_id = p.id AND m.promoted_at < %(end)s),
               (SELECT MIN(fl.at) FROM first_live fl WHERE fl.process_id = p.id),
               (SELECT COUNT(*) FROM first_live fl
                WHERE fl.process_id = p.id AND fl.at >= %(start)s)
        FROM cases_process p
        WHERE p.id = ANY(%(procs)s)
        """,
        params,
    )
    stages = {rank: name for name, rank in STAGE_ORDER.items()}
    return {
        row[0]: {
            "stage": stages.get(row[1] or 0, "none"),
            "level": int(row[2]),
            "rules": int(row[3]),
            "model": bool(row[4]),
            "first_live": row[5],
            "new_live": int(row[6]),
        }
        for row in rows
    }


def _sql_reuse(params: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """{process: (versions using a component whose first user was another orchestration,
    versions saved by `end`)}."""
    rows = _rows(
        """
        SELECT o.process_id, COUNT(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM orchestrations_componentreuse cr
                   WHERE cr.version_id = v.id AND (
                       -- the component's first user: reuse only when that is another
                       -- orchestration (a later version of the same one reuses nothing)
                       SELECT prior.orchestration_id FROM orchestrations_componentreuse prior
                       JOIN orchestrations_orchestrationversion pv ON pv.id = prior.version_id
                       WHERE prior.kind = cr.kind AND prior.component_id = cr.component_id
                       ORDER BY pv.created_at, pv.id LIMIT 1) <> cr.orchestration_id)),
               COUNT(*)
        FROM orchestrations_orchestrationversion v
        JOIN orchestrations_orchestration o ON o.id = v.orchestration_id
        WHERE o.team_id = %(team)s AND v.created_at < %(end)s
        GROUP BY o.process_id
        """,
        params,
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


@dataclass
class NodeState:
    id: int
    name: str
    node_class: str
    enrolled_hours: float  # within the window
    online_hours: float
    participates: bool
    data_sources: list[str]


def fabric_nodes(*, team_id: int, end: datetime) -> list[NodeState]:
    """The team's listed nodes at `end` (approved by then, neither retired nor revoked) with
    their online hours over the 7 days before `end`, from the state changes in the node log."""
    window_start = end - FABRIC_WINDOW
    rows = _rows(
        """
        WITH nodes AS (
            SELECT n.id, n.name, n.node_class, n.created_at, n.data_sources
            FROM fabric_computenode n
            WHERE n.team_id = %(team)s AND n.approved_at IS NOT NULL AND n.approved_at < %(end)s
              AND (n.revoked_at IS NULL OR n.revoked_at >= %(end)s)
              AND NOT EXISTS (SELECT 1 FROM fabric_nodeevent r WHERE r.node_id = n.id
                              AND r.kind = 'retired' AND r.at < %(end)s)
        ), ev AS (
            SELECT e.node_id, e.to_state, e.at,
                   LEAD(e.at) OVER (PARTITION BY e.node_id ORDER BY e.at, e.id) AS next_at
            FROM fabric_nodeevent e JOIN nodes ON nodes.id = e.node_id
            WHERE e.to_state <> '' AND e.at < %(end)s
        ), online AS (
            SELECT node_id, SUM(EXTRACT(EPOCH FROM (
                       COALESCE(next_at, %(end)s) - GREATEST(at, %(wstart)s)))) / 3600.0 AS hours
            FROM ev
            WHERE to_state IN ('online', 'draining') AND COALESCE(next_at, %(end)s) > %(wstart)s
            GROUP BY node_id
        )
        SELECT nodes.id, nodes.name, nodes.node_class,
               EXTRACT(EPOCH FROM (%(end)s - GREATEST(nodes.created_at, %(wstart)s))) / 3600.0,
               COALESCE(online.hours, 0), nodes.data_sources
        FROM nodes LEFT JOIN online ON online.node_id = nodes.id
        ORDER BY nodes.name, nodes.id
        """,
        {"team": team_id, "end": end, "wstart": window_start},
    )
    threshold = online_hours_threshold()
    week_hours = FABRIC_WINDOW.total_seconds() / 3600
    nodes = []
    for row in rows:
        enrolled = max(_f(row[3]), 0.0)
        online = _f(row[4])
        # A node enrolled during the window needs the same share of its time there, not 10 h
        # it could not have had.
        needed = threshold * min(enrolled, week_hours) / week_hours
        nodes.append(
            NodeState(
                id=row[0],
                name=row[1],
                node_class=row[2],
                enrolled_hours=round(enrolled, 3),
                online_hours=round(online, 3),
                participates=online > 0 and online + 1e-9 >= needed,
                data_sources=[str(source) for source in _json_list(row[5])],
            )
        )
    return nodes


def listed_assets(*, team_id: int, end: datetime) -> tuple[int, list[str]]:
    """Assets the team listed in its assessment but has not enrolled, and data sources it
    listed, at `end`. Read from the assessment models when they exist (roadmap work in
    progress), else nothing: (unenrolled asset count, listed data source names)."""
    try:
        from apps.capital import assessment_sources
    except ImportError:
        return 0, []
    return assessment_sources.listed(team_id=team_id, end=end)


# --- putting it together ------------------------------------------------------------------------


def _money_rates(team_id: int) -> dict[int | None, tuple[float | None, float | None, str]]:
    from apps.capital.models import MoneyRate

    rates: dict[int | None, tuple[float | None, float | None, str]] = {}
    for rate in MoneyRate.objects.filter(team_id=team_id).order_by("set_at", "pk"):
        rates[rate.process_id] = (
            float(rate.per_hour) if rate.per_hour is not None else None,
            float(rate.per_case) if rate.per_case is not None else None,
            rate.currency,
        )
    return rates


def measure(
    *,
    team_id: int,
    start: datetime,
    end: datetime,
    processes: list[ProcessInfo] | None = None,
    history: dict[int, ProcessHistory] | None = None,
) -> Measurement:
    """Every metric of the team and of each of its processes for [start, end) (states at `end`).

    Precondition: `start < end`, both aware. Returns {process id: {key: Raw}, None: {key: Raw}}.
    """
    if processes is None:
        processes = team_processes(team_id=team_id, end=end, history=history)
    procs = [process.id for process in processes]
    params = {"team": team_id, "procs": procs, "start": start, "end": end}
    model = _sql_model_decisions(params)
    audits = _sql_audits(params)
    runs = _sql_runs(params)
    sla = _sql_sla(params)
    decided = _sql_cases_decided(params)
    backlog = _sql_backlog(params)
    reviews = _sql_review_times(params)
    training = _sql_training_seconds(params)
    states = _sql_process_states(params)
    reuse = _sql_reuse(params)
    rates = _money_rates(team_id)

    result: Measurement = {}
    for process in processes:
        pid = process.id
        credited_cases, overturned_cases = model.get(pid, (0, 0))
        confirmed, audit_overturns = audits.get(pid, (0, 0))
        run = runs.get(pid, RunCounts())
        n_decided, decision_hours = decided.get(pid, (0, 0.0))
        n_backlog, backlog_days = backlog.get(pid, (0, 0.0))
        times = reviews.get(pid, ReviewTimes())
        state = states.get(pid, {})
        reused, versions = reuse.get(pid, (0, 0))
        sla_met, sla_settled = sla.get(pid, (0, 0))

        seconds_per_case = process.seconds_per_case
        credited = credited_cases + run.decided
        automatic_hours = credited * seconds_per_case / 3600
        # Time saved by suggestions: with vs without one, same process and period; the measured
        # baseline stands in when every decision of the period had a suggestion.
        without_mean = None
        without_source = ""
        if times.without_n:
            without_mean = times.without_seconds / times.without_n
            without_source = f"{times.without_n} decisions without a suggestion"
        elif process.measured_seconds is not None or process.override_seconds is not None:
            without_mean = seconds_per_case
            without_source = f"baseline ({process.minutes_source})"
        suggestion_hours = 0.0
        if times.with_n and without_mean is not None:
            with_mean = times.with_seconds / times.with_n
            suggestion_hours = max(0.0, without_mean - with_mean) * times.with_n / 3600
        hours = automatic_hours + suggestion_hours
        invested = times.invested_seconds / 3600 + training.get(pid, 0.0) / 3600

        first_decision, first_live = process.first_decision, state.get("first_live")
        if first_decision is not None and first_decision >= end:
            first_decision = None
        ttl = None
        if first_decision is not None and first_live is not None:
            ttl = max((first_live - first_decision).total_seconds() / 86400, 0.0)

        figures: dict[str, Raw] = {
            "orchestrated_processes": Raw(
                1.0 if state.get("stage") in ("canary", "live") else 0.0,
                1.0,
                {"stage": state.get("stage", "none"), "level": state.get("level", 0)},
            ),
            "rules_in_use": Raw(float(state.get("rules", 0))),
            "models_in_use": Raw(1.0 if state.get("model") else 0.0),
            "automatic_decisions": Raw(
                float(credited), details={"cases": credited_cases, "runs": run.decided}
            ),
            "overturns": Raw(
                float(overturned_cases + audit_overturns),
                details={"later_corrections": overturned_cases, "audits": audit_overturns},
            ),
            "hours_saved": Raw(
                hours,
                details={
                    "automatic_hours": round(automatic_hours, 4),
                    "suggestion_hours": round(suggestion_hours, 4),
                    "minutes_per_case": round(seconds_per_case / 60, 3),
                    "minutes_source": process.minutes_source,
                },
            ),
            "suggestion_hours_saved": Raw(
                suggestion_hours,
                details={
                    "accepted": times.with_n,
                    "with_seconds": times.with_seconds,
                    "without": without_source,
                },
            ),
            "errors_prevented": Raw(
                float(confirmed + run.caught_confirmed),
                details={"audits_confirmed": confirmed, "catches_confirmed": run.caught_confirmed},
            ),
            "straight_through": Raw(
                float(credited + run.standard),
                float(n_decided + run.decided + run.standard),
                {"standard_runs": run.standard, "routed_runs": run.routed},
            ),
            "backlog": Raw(float(n_backlog)),
            "backlog_age_days": Raw(backlog_days, float(n_backlog)),
            "time_to_decision_hours": Raw(decision_hours, float(n_decided)),
            "review_seconds": Raw(times.seconds, float(times.timed)),
            "sla_attainment": Raw(float(sla_met), float(sla_settled)),
            "component_reuse": Raw(float(reused), float(versions)),
            "time_to_first_live_days": Raw(ttl or 0.0, 1.0 if ttl is not None else 0.0),
            "investment_hours": Raw(invested),
            "value_ratio": Raw(hours, invested),
            "marginal_cost_hours": Raw(invested, float(state.get("new_live", 0))),
        }
        per_hour, per_case, currency = rates.get(pid) or rates.get(None) or (None, None, "")
        if per_hour is not None or per_case is not None:
            money = hours * (per_hour or 0) + credited * (per_case or 0)
            figures["money_value"] = Raw(money, details={"currency": currency})
        result[pid] = figures

    result[None] = _team_totals(team_id=team_id, end=end, result=result, processes=processes)
    return result


def _team_totals(
    *, team_id: int, end: datetime, result: Measurement, processes: list[ProcessInfo]
) -> dict[str, Raw]:
    team: dict[str, Raw] = {}
    for key, definition in BY_KEY.items():
        if not definition.per_process:
            continue
        rows = [figures[key] for figures in result.values() if key in figures]
        if not rows and key != "money_value":
            rows = [Raw(0.0, 0.0 if definition.kind in (Kind.RATIO, Kind.STATE_RATIO) else None)]
        if not rows:
            continue
        num = sum(raw.num for raw in rows)
        den = None
        if definition.kind in (Kind.RATIO, Kind.STATE_RATIO):
            den = sum(raw.den or 0.0 for raw in rows)
        team[key] = Raw(num, den)
    # Breakdowns and lists that only make sense for the team.
    by_stage: dict[str, int] = {}
    by_level: dict[str, int] = {}
    go_lives = []
    for process in processes:
        details = result[process.id]["orchestrated_processes"].details
        by_stage[details["stage"]] = by_stage.get(details["stage"], 0) + 1
        by_level[str(details["level"])] = by_level.get(str(details["level"]), 0) + 1
        ttl = result[process.id]["time_to_first_live_days"]
        if ttl.den:
            go_lives.append({"process": process.slug, "days": round(ttl.num, 2)})
    team["orchestrated_processes"].details = {"by_stage": by_stage, "by_level": by_level}
    team["time_to_first_live_days"].details = {"processes": go_lives}
    if "money_value" in team:
        currencies = {
            figures["money_value"].details.get("currency")
            for figures in result.values()
            if "money_value" in figures
        }
        team["money_value"].details = {"currency": ", ".join(sorted(c for c in currencies if c))}

    nodes = fabric_nodes(team_id=team_id, end=end)
    unenrolled, sources = listed_assets(team_id=team_id, end=end)
    participating = [node for node in nodes if node.participates]
    team["fabric_participation"] = Raw(
        float(len(participating)),
        float(len(nodes) + unenrolled),
        {"enrolled": len(nodes), "listed_not_enrolled": unenrolled},
    )
    if sources:
        hosted = {source for node in participating for source in node.data_sources}
        reachable = [source for source in sources if source in hosted]
        team["data_sources_reachable"] = Raw(float(len(reachable)), float(len(sources)))
    else:
        team["data_sources_reachable"] = Raw(0.0, 0.0, {"note": "no data sources listed"})
    return team
