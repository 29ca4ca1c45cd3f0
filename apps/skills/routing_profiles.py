"""Expertise profiles: each person's measured accuracy per process, label region and field segment,
with their median review seconds, kept in `ExpertiseStat` by SQL aggregates (docs/skills.md).

- A label counts as for `cases.decisions_agree`: the person's own labels (review, API, import),
  not retracted, on decided cases; it agrees when it equals the final label.
- The **label region** of a case is the model's predicted label for it: the latest shadow
  prediction the autonomy app recorded for the case (none: the case has no region).
- A **field segment** is a category or boolean field's value ("po_status=missing") or a number
  or money field's quartile bucket ("amount=q3"); the quartile cut points are the process's
  decided cases', fixed at each full refresh (RoutingPolicy.bounds) so that an incremental
  refresh buckets the same way.

`refresh_process` recomputes a process in one statement per table (DELETE + INSERT … SELECT with
the three groupings); `refresh_case_people` recomputes only the people who labelled one case,
which is what a new or undone decision changes (its cost grows with those people's decisions in
the process, not with the process).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from apps.cases.models import Case, Decision, Process
from apps.skills.models import RoutingPolicy

SEGMENT_TYPES = ("category", "boolean")
NUMERIC_TYPES = ("number", "money")
LABEL_SOURCES = ("review", "api", "import")

# The decided labels of one process (optionally of some people, optionally of cases created
# before a cut-off), with each case's region and segment keys. Fixed SQL; values are parameters.
_LABELS = """
    SELECT d.expert_id, (d.label = c.final_label) AS ok, d.seconds_spent AS secs,
           sp.label AS region, c.fields
    FROM cases_decision d
    JOIN cases_case c ON c.id = d.case_id
    LEFT JOIN LATERAL (
        SELECT s.label FROM autonomy_shadowprediction s WHERE s.case_id = c.id
        ORDER BY s.created_at DESC, s.id DESC LIMIT 1
    ) sp ON true
    WHERE c.process_id = %(process)s AND c.status = 'decided' AND c.final_label <> ''
      AND d.retracted_at IS NULL AND d.source = ANY(%(sources)s)
      AND (%(people)s::bigint[] IS NULL OR d.expert_id = ANY(%(people)s::bigint[]))
      AND (%(before)s::timestamptz IS NULL OR c.created_at < %(before)s::timestamptz)
"""
# One row per (person, dimension, key): the three groupings over the labels above.
_AGGREGATE = f"""
    WITH d AS MATERIALIZED ({_LABELS}),
    seg AS (SELECT name, kind, b1, b2, b3
            FROM jsonb_to_recordset(%(segments)s::jsonb)
                 AS x(name text, kind text, b1 float8, b2 float8, b3 float8))
    SELECT expert_id, 'process', '', count(*), count(*) FILTER (WHERE ok),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY secs)
    FROM d GROUP BY expert_id
    UNION ALL
    SELECT expert_id, 'label', region, count(*), count(*) FILTER (WHERE ok), NULL
    FROM d WHERE region IS NOT NULL GROUP BY expert_id, region
    UNION ALL
    SELECT expert_id, 'segment', k.key, count(*), count(*) FILTER (WHERE ok), NULL
    FROM d CROSS JOIN LATERAL (
        SELECT seg.name || '=' || CASE
            WHEN seg.kind = 'num' THEN 'q' || (1 + ((d.fields->>seg.name)::float8 >= seg.b1)::int
                                                 + ((d.fields->>seg.name)::float8 >= seg.b2)::int
                                                 + ((d.fields->>seg.name)::float8 >= seg.b3)::int)
            ELSE d.fields->>seg.name END AS key
        FROM seg
        WHERE jsonb_typeof(d.fields->seg.name) = CASE WHEN seg.kind = 'num' THEN 'number'
                                                      ELSE jsonb_typeof(d.fields->seg.name) END
          AND jsonb_typeof(d.fields->seg.name) IN ('string', 'boolean', 'number')
    ) k
    GROUP BY expert_id, k.key
"""  # noqa: S608 (fixed SQL)
_INSERT = f"""
    INSERT INTO skills_expertisestat (person_id, dimension, key, decisions, agreed,
                                      median_seconds, process_id, refreshed_at)
    SELECT a.*, %(process)s, %(now)s FROM ({_AGGREGATE}) a
"""  # noqa: S608 (fixed SQL)
_DELETE = """
    DELETE FROM skills_expertisestat WHERE process_id = %(process)s
      AND (%(people)s::bigint[] IS NULL OR person_id = ANY(%(people)s::bigint[]))
"""
_BOUNDS = """
    SELECT percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY (c.fields->>%(name)s)::float8)
    FROM cases_case c
    WHERE c.process_id = %(process)s AND c.status = 'decided'
      AND jsonb_typeof(c.fields->%(name)s) = 'number'
"""


def policy_for(*, process: Process) -> RoutingPolicy:
    """The process's routing policy, made with the defaults (today's order) when it has none."""
    policy, _ = RoutingPolicy.objects.get_or_create(process=process)
    return policy


def segment_fields(process: Process) -> list[tuple[str, str]]:
    """[(field name, "cat" | "num")] of the process's current schema that make segments."""
    specs = process.schema.fields if process.schema_id else []
    out = []
    for spec in specs:
        if spec["type"] in SEGMENT_TYPES:
            out.append((spec["name"], "cat"))
        elif spec["type"] in NUMERIC_TYPES:
            out.append((spec["name"], "num"))
    return out


def _segments_param(process: Process, bounds: dict[str, list[float]]) -> str:
    rows = []
    for name, kind in segment_fields(process):
        if kind == "num":
            cuts = bounds.get(name)
            if not cuts:
                continue  # no decided case carries a number there yet: no buckets
            rows.append({"name": name, "kind": kind, "b1": cuts[0], "b2": cuts[1], "b3": cuts[2]})
        else:
            rows.append({"name": name, "kind": kind})
    return json.dumps(rows)


def segment_keys(case_fields: dict, process: Process, bounds: dict[str, list[float]]) -> list[str]:
    """The segment keys of one case, bucketed as the SQL above does."""
    keys = []
    for name, kind in segment_fields(process):
        value = case_fields.get(name)
        if value is None:
            continue
        if kind == "num":
            cuts = bounds.get(name)
            if not cuts or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            keys.append(f"{name}=q{1 + sum(1 for cut in cuts if value >= cut)}")
        elif isinstance(value, bool):
            keys.append(f"{name}={'true' if value else 'false'}")
        elif isinstance(value, str):
            keys.append(f"{name}={value}")
    return keys


def measure_bounds(process: Process) -> dict[str, list[float]]:
    """Quartile cut points of each number field over the process's decided cases."""
    bounds = {}
    with connection.cursor() as cursor:
        for name, kind in segment_fields(process):
            if kind != "num":
                continue
            cursor.execute(_BOUNDS, {"name": name, "process": process.pk})
            row = cursor.fetchone()
            if row and row[0]:
                bounds[name] = [float(x) for x in row[0]]
    return bounds


def _params(
    process: Process,
    bounds: dict[str, list[float]],
    people: list[int] | None,
    before: datetime | None,
) -> dict[str, object]:
    return {
        "process": process.pk,
        "sources": list(LABEL_SOURCES),
        "people": people,
        "before": before,
        "segments": _segments_param(process, bounds),
        "now": timezone.now(),
    }


def refresh_process(*, process: Process) -> int:
    """Recompute every profile of `process` from its decided labels (new quartile cut points
    first); returns the stat rows written."""
    policy = policy_for(process=process)
    bounds = measure_bounds(process)
    with transaction.atomic():
        RoutingPolicy.objects.filter(pk=policy.pk).update(bounds=bounds)
        with connection.cursor() as cursor:
            params = _params(process, bounds, None, None)
            cursor.execute(_DELETE, params)
            cursor.execute(_INSERT, params)
            return cursor.rowcount


def refresh_everything() -> int:
    """Every process's profiles (the periodic job); returns the stat rows written."""
    return sum(refresh_process(process=p) for p in Process.objects.select_related("schema"))


def refresh_people(*, process: Process, people: list[int]) -> int:
    """Recompute the profiles of `people` in `process` only (cut points kept)."""
    if not people:
        return 0
    policy = policy_for(process=process)
    with transaction.atomic(), connection.cursor() as cursor:
        params = _params(process, policy.bounds, sorted(set(people)), None)
        cursor.execute(_DELETE, params)
        cursor.execute(_INSERT, params)
        return cursor.rowcount


def refresh_case_people(*, case_id: int) -> int:
    """After a label on `case_id` was recorded or undone: the profiles of everyone who labelled
    it (their agreement on it may have changed with its final label)."""
    case = Case.objects.select_related("process__schema").filter(pk=case_id).first()
    if case is None:
        return 0
    people = list(Decision.objects.filter(case_id=case_id).values_list("expert_id", flat=True))
    return refresh_people(process=case.process, people=people)


# --- profiles in memory (routing and its simulation) -------------------------------------------


class Counts(NamedTuple):
    # Tuples and slots: a routing decision builds a profile for each of up to hundreds of people.
    decisions: int = 0
    agreed: int = 0


@dataclass(slots=True)
class Profile:
    person_id: int
    process: Counts = field(default_factory=Counts)
    median_seconds: float | None = None
    labels: dict[str, Counts] = field(default_factory=dict)
    segments: dict[str, Counts] = field(default_factory=dict)


def add_stat(profiles: dict[int, Profile], row: tuple) -> None:
    person_id, dimension, key, decisions, agreed, median = row
    profile = profiles.setdefault(person_id, Profile(person_id))
    counts = Counts(int(decisions), int(agreed))
    if dimension == "process":
        profile.process = counts
        profile.median_seconds = float(median) if median is not None else None
    elif dimension == "label":
        profile.labels[key] = counts
    else:
        profile.segments[key] = counts


def measured_profiles(
    *, process: Process, before: datetime, bounds: dict[str, list[float]]
) -> dict[int, Profile]:
    """Profiles measured only on cases created before `before` (the simulation's held-out
    split), computed on the fly by the same aggregate, not stored."""
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE, _params(process, bounds, None, before))
        rows = cursor.fetchall()
    profiles: dict[int, Profile] = {}
    for row in rows:
        add_stat(profiles, row)
    return profiles
