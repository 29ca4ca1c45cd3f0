"""Skills at scale (issue 14): evidence and expertise refresh for 1,000 people over 1M decisions
(≤ 60 s), the refresh one new decision needs (≤ 50 ms), and a routing decision among 200 experts
(≤ 5 ms p95).

`bench_skills(data)` runs this file in a subprocess on a fresh data dir (as bench/capital.py):
it migrates, seeds the default skill framework, and builds with set-based SQL (generate_series):
5 teams of 200 experts (1,000 people), 4 processes a team (a category and a number field), 1M
decided cases with one label each (1,000 a person, the person's accuracy varying with the case's
segment), a shadow prediction (the case's label region) on 40 % of them, and 2,000 open cases
routed to people (their load). Then, each figure the median of REPEATS runs:

- `skills_expertise_refresh_1m_decisions_s`: `refresh_everything()`, every process's expertise
  profiles (process, label region, segment) by SQL aggregates. Baseline: the bare aggregate
  `count(*)`, agreement and median seconds per person over the same decisions, no grouping sets.
- `skills_evidence_refresh_1000_people_s`: a whole `refresh_everyone()` (every evidence rule of
  the default framework measured for the 1,000 members at once, evidence stored, levels settled:
  the hourly job). Baseline: the bare `decisions_agree` aggregate for all 1,000 in one GROUP BY.
- `skills_incremental_one_decision_ms` (p95 of 50 decisions): what one new decided label costs
  the profiles: `refresh_case_people(case)` (the receiver of `decision_recorded`). Baseline:
  the bare aggregate of that person's labels in that process.
- `skills_evidence_incremental_one_decision_p95_ms` (p95 of 20): what the task a decided case
  queues costs for its labeller: `case_change(case)` (the rules that case can change) and
  `refresh_person_kinds` of the labeller with it, levels settled.
- `skills_evidence_one_person_p95_ms` (≤ 50 ms, p95 of 20): `refresh_person` of one person, every
  rule (what a "measure again" click costs). Baseline: the bare queries of that person's
  measurements that count anything for a labeller (agreement and its latest labels, peer and
  adjudicated labels), no transaction, no storing.
- `skills_routing_decision_p95_ms` (p95 of 200 decisions): `decide_for(case)` among a process's
  200 experts, as `route_case` takes it: one prepared statement (the pool, the case's region,
  loads, the profiles changed since the last read), then the score; one new decision's profile
  refresh (untimed) before each, so each reads a change. Baseline: the two bare queries a
  decision would need without profiles kept in memory (the case's profile rows, loads; the pool
  given), without Python.

`BENCH_SKILLS_DECISIONS` (default 1,000,000) shrinks it while working on this file.
"""

import io
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

from measure import REPEATS, figure, run_in_child

ROOT = Path(__file__).resolve().parent.parent
N_DECISIONS = int(os.environ.get("BENCH_SKILLS_DECISIONS", "1000000"))
TEAMS = 5
EXPERTS = 200  # a team
PROCESSES = 4  # a team
OPEN_CASES = 2000
_started = time.monotonic()


def say(message: str) -> None:
    print(f"  skills [{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def bench_skills(data: Path) -> list[dict[str, object]]:
    return run_in_child(__file__, data)


# --- the child side ----------------------------------------------------------------------------


def _sql(sql: str, params: dict | None = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})


def _rows(sql: str, params: dict | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


FIELDS = [
    {"name": "po_status", "type": "category", "choices": ["matched", "missing", "mismatch"]},
    {"name": "amount", "type": "number", "required": True},
]
DECISIONS = [{"label": "approve", "reason_codes": []}, {"label": "reject", "reason_codes": []}]


def build() -> list[int]:
    """The people, processes, decisions and open cases; returns the process ids."""
    from apps.cases.services.processes import create_process
    from apps.people.services import create_team
    from apps.skills.demo import seed_skills

    seed_skills()
    processes = []
    for t in range(TEAMS):
        team = create_team(slug=f"team-{t}", name=f"Team {t}")
        for p in range(PROCESSES):
            process = create_process(
                team=team, name=f"Process {t}-{p}", slug=f"p-{t}-{p}", fields=FIELDS,
                decisions=DECISIONS, priority_field="amount",
            )  # fmt: skip
            processes.append((process.pk, process.schema_id, team.pk))
    _sql(
        """
        INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined)
        SELECT '!', false, 'person-' || g, '', '', 'person-' || g || '@example.test', false, true,
               now()
        FROM generate_series(0, %(n)s - 1) g
        """,
        {"n": TEAMS * EXPERTS},
    )
    people = [pk for (pk,) in _rows("SELECT id FROM auth_user WHERE username LIKE 'person-%%' ORDER BY id")]  # fmt: skip
    teams = sorted({team for _, _, team in processes})
    _sql(
        """
        INSERT INTO people_membership (user_id, team_id, role, created_at, updated_at)
        SELECT (%(people)s::bigint[])[g + 1], (%(teams)s::bigint[])[g / %(size)s + 1], 'expert',
               now(), now()
        FROM generate_series(0, %(n)s - 1) g
        """,
        {"people": people, "teams": teams, "size": EXPERTS, "n": len(people)},
    )
    _sql("SET session_replication_role = replica")  # consistent by construction: no FK triggers
    begin = time.monotonic()
    # Case g belongs to process g % 20; its labeller is one of that process's team's 200 experts.
    # Accuracy depends on the person and the segment: p = 0.55 + 0.4 * ((person·7 + seg·13) % 10)/10.
    params = {
        "procs": [p for p, _, _ in processes],
        "schemas": [s for _, s, _ in processes],
        "people": people,
        "nproc": len(processes),
        "per_team": PROCESSES,
        "size": EXPERTS,
        "n": N_DECISIONS,
    }
    _sql(
        """
        INSERT INTO cases_case (process_id, schema_version_id, fields, exception_reason,
            exception_fields, status, priority, label_count, final_label, final_reason_code,
            decided_at, is_synthetic, created_at)
        SELECT (%(procs)s::bigint[])[g %% %(nproc)s + 1], (%(schemas)s::bigint[])[g %% %(nproc)s + 1],
               jsonb_build_object('po_status', (ARRAY['matched', 'missing', 'mismatch'])[g %% 3 + 1],
                                  'amount', (g::bigint * 7919) %% 10000),
               'bench', '[]', 'decided', 0, 1, 'approve', '',
               now() - (%(n)s - g) * interval '1 second', true,
               now() - (%(n)s - g) * interval '1 second' - interval '1 hour'
        FROM generate_series(0, %(n)s - 1) g
        """,
        params,
    )
    _sql(
        """
        INSERT INTO cases_decision (case_id, expert_id, label, reason_code, rationale, key_factors,
            seconds_spent, source, decided_at)
        SELECT c.id, x.person, CASE WHEN ((c.id * 2654435761) %% 1000) / 1000.0
                                    < 0.55 + 0.4 * ((x.person * 7 + x.seg * 13) %% 10) / 10.0
                               THEN 'approve' ELSE 'reject' END,
               '', '', '[]', 20 + (x.person %% 50) * 3 + c.id %% 30, 'review', c.decided_at
        FROM cases_case c,
        LATERAL (SELECT (%(people)s::bigint[])[
                          (array_position(%(procs)s::bigint[], c.process_id) - 1) / %(per_team)s
                          * %(size)s + (c.id / %(nproc)s) %% %(size)s + 1] AS person,
                        CASE c.fields->>'po_status' WHEN 'matched' THEN 0 WHEN 'missing' THEN 1
                             ELSE 2 END AS seg) x
        WHERE c.status = 'decided'
        """,
        params,
    )
    say(f"{N_DECISIONS:,} decided cases and their labels in {time.monotonic() - begin:.0f}s")
    _sql(
        """
        INSERT INTO autonomy_shadowprediction (process_id, case_id, model_version_id, label,
            confidence, route, route_source, backfilled, created_at, outcome_label)
        SELECT c.process_id, c.id, 1, CASE WHEN c.id %% 3 = 0 THEN 'reject' ELSE 'approve' END,
               0.8, '', '', true, c.created_at, ''
        FROM cases_case c WHERE c.id %% 5 < 2
        """
    )
    # Open cases routed to people (their load), and open fresh ones to route.
    _sql(
        """
        INSERT INTO cases_case (process_id, schema_version_id, fields, exception_reason,
            exception_fields, status, priority, label_count, final_label, final_reason_code,
            is_synthetic, created_at, routed_to_id)
        SELECT (%(procs)s::bigint[])[g %% %(nproc)s + 1], (%(schemas)s::bigint[])[g %% %(nproc)s + 1],
               jsonb_build_object('po_status', (ARRAY['matched', 'missing', 'mismatch'])[g %% 3 + 1],
                                  'amount', (g::bigint * 7919) %% 10000),
               'bench', '[]', 'open', 0, 0, '', '', true, now(),
               CASE WHEN (g / 20) %% 2 = 0 THEN (%(people)s::bigint[])[(g * 37) %% %(npeople)s + 1] END
        FROM generate_series(0, %(open)s - 1) g
        """,
        params | {"open": OPEN_CASES, "npeople": len(people)},
    )
    _sql("SET session_replication_role = DEFAULT")
    _sql("ANALYZE")
    say("shadow predictions, open cases; analysed")
    return [p for p, _, _ in processes]


_BARE_PROFILE = """
    SELECT d.expert_id, count(*), count(*) FILTER (WHERE d.label = c.final_label),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY d.seconds_spent)
    FROM cases_decision d JOIN cases_case c ON c.id = d.case_id
    WHERE c.status = 'decided' AND d.retracted_at IS NULL
    GROUP BY d.expert_id
"""
_BARE_AGREE = """
    SELECT d.expert_id, count(*), count(*) FILTER (WHERE d.label = c.final_label)
    FROM cases_decision d JOIN cases_case c ON c.id = d.case_id
    WHERE c.status = 'decided' AND c.final_label <> '' AND d.retracted_at IS NULL
      AND d.source IN ('review', 'api', 'import')
    GROUP BY d.expert_id
"""
_BARE_ONE = """
    SELECT count(*), count(*) FILTER (WHERE d.label = c.final_label)
    FROM cases_decision d JOIN cases_case c ON c.id = d.case_id
    WHERE d.expert_id = %(person)s AND c.process_id = %(process)s AND c.status = 'decided'
      AND d.retracted_at IS NULL
"""
# One person's measurements that count anything for a labeller, bare: their agreement with the
# final label all-time and over 90 days with the latest 10 of those labels, and the labels on
# cases someone else labelled too (peer kappa, 90 days) or an adjudicator settled.
_BARE_PERSON = [
    """
    SELECT count(*), count(*) FILTER (WHERE d.label = c.final_label),
           count(*) FILTER (WHERE d.decided_at >= now() - interval '90 days'),
           count(*) FILTER (WHERE d.decided_at >= now() - interval '90 days'
                            AND d.label = c.final_label)
    FROM cases_decision d JOIN cases_case c ON c.id = d.case_id
    WHERE d.expert_id = %(person)s AND c.status = 'decided' AND c.final_label <> ''
      AND d.retracted_at IS NULL AND d.source IN ('review', 'api', 'import')
    """,
    """
    SELECT d.case_id, d.label, c.final_label
    FROM cases_decision d JOIN cases_case c ON c.id = d.case_id
    WHERE d.expert_id = %(person)s AND c.status = 'decided' AND c.final_label <> ''
      AND d.retracted_at IS NULL AND d.source IN ('review', 'api', 'import')
    ORDER BY d.decided_at DESC, d.id DESC LIMIT 10
    """,
    """
    SELECT d.case_id, d.label FROM cases_decision d
    WHERE d.expert_id = %(person)s AND d.retracted_at IS NULL
      AND d.decided_at >= now() - interval '90 days'
      AND EXISTS (SELECT 1 FROM cases_decision o WHERE o.case_id = d.case_id
                  AND o.expert_id <> d.expert_id AND o.retracted_at IS NULL)
    """,
    """
    SELECT d.case_id, d.label FROM cases_decision d
    WHERE d.expert_id = %(person)s AND d.retracted_at IS NULL
      AND EXISTS (SELECT 1 FROM cases_decision a WHERE a.case_id = d.case_id
                  AND a.source = 'adjudication')
    """,
]
_BARE_ROUTE = """
    SELECT person_id, dimension, key, decisions, agreed, median_seconds FROM skills_expertisestat
    WHERE process_id = %(process)s AND person_id = ANY(%(people)s)
      AND (dimension = 'process' OR (dimension = 'label' AND key = %(region)s)
           OR (dimension = 'segment' AND key = ANY(%(segments)s)))
"""
_BARE_LOADS = """
    SELECT routed_to_id, count(*) FROM cases_case
    WHERE status = 'open' AND routed_to_id = ANY(%(people)s) GROUP BY routed_to_id
"""


def _timed(action) -> float:  # type: ignore[no-untyped-def]
    begin = time.perf_counter()
    action()
    return time.perf_counter() - begin


def measure(process_ids: list[int]) -> list[dict[str, object]]:
    import random

    from django.utils import timezone

    from apps.cases.models import Case, Decision, Process
    from apps.skills import services
    from apps.skills.routing import candidate_pool, decide_for
    from apps.skills.routing_profiles import policy_for, refresh_case_people, refresh_everything

    rng = random.Random(14)
    full, full_bare = [], []
    for _ in range(REPEATS):
        full.append(_timed(refresh_everything))
        full_bare.append(_timed(lambda: _rows(_BARE_PROFILE)))
        say(f"expertise refresh {full[-1]:.1f}s (bare aggregate {full_bare[-1]:.1f}s)")
    stats = _rows("SELECT count(*) FROM skills_expertisestat")[0][0]
    say(f"{stats:,} expertise rows")

    # The whole hourly run: the first grants the levels, the next ones find them held.
    from django.contrib.auth import get_user_model

    evidence, evidence_bare = [], []
    for _ in range(REPEATS):
        refreshed: list = []
        evidence.append(_timed(lambda r=refreshed: r.extend(services.refresh_everyone())))
        evidence_bare.append(_timed(lambda: _rows(_BARE_AGREE)))
        say(
            f"evidence refresh of {len(refreshed):,} people {evidence[-1]:.1f}s, "
            f"{sum(r.granted for r in refreshed):,} levels granted "
            f"(bare agree for all {evidence_bare[-1]:.2f}s)"
        )

    decided = list(
        Case.objects.filter(status="decided").order_by("?").values_list("pk", "process_id")[:50]
    )
    incremental, incremental_bare = [], []
    for _ in range(REPEATS):
        one, bare = [], []
        for case_id, process_id in decided:
            # a new label on a decided case: the receiver's work
            one.append(_timed(lambda c=case_id: refresh_case_people(case_id=c)) * 1000)
            person = Decision.objects.filter(case_id=case_id).values_list("expert_id", flat=True)[0]
            bare.append(
                _timed(lambda p=person, q=process_id: _rows(_BARE_ONE, {"person": p, "process": q}))
                * 1000
            )
        incremental.append(_p95(one))
        incremental_bare.append(_p95(bare))
        say(f"one decision p95 {incremental[-1]:.1f} ms (bare {incremental_bare[-1]:.1f} ms)")

    # The steady state: the hourly job has measured these people once.
    labellers = [
        (
            case_id,
            get_user_model().objects.get(
                pk=Decision.objects.filter(case_id=case_id).values_list("expert", flat=True)[0]
            ),
        )
        for case_id, _process in decided[:20]
    ]
    for _case_id, user in labellers:
        services.refresh_person(person=user)

    def decision_evidence(case_id: int, user: object) -> None:  # the task, for one labeller
        change = services.case_change(case_id=case_id)
        services.refresh_person_kinds(person=user, change=change)

    kinds_runs = []
    for _ in range(REPEATS):
        one = []
        for case_id, user in labellers:
            one.append(_timed(lambda c=case_id, u=user: decision_evidence(c, u)) * 1000)
        kinds_runs.append(_p95(one))
        say(f"decision evidence of one person p95 {kinds_runs[-1]:.0f} ms")

    some = list(get_user_model().objects.filter(username__startswith="person-").order_by("?")[:20])
    person_runs, person_bare = [], []
    for _ in range(REPEATS):
        person_runs.append(
            _p95([_timed(lambda p=p: services.refresh_person(person=p)) * 1000 for p in some])
        )
        person_bare.append(
            _p95(
                [
                    _timed(lambda p=p: [_rows(sql, {"person": p.pk}) for sql in _BARE_PERSON])
                    * 1000
                    for p in some
                ]
            )
        )
        say(
            f"evidence of one person p95 {person_runs[-1]:.0f} ms "
            f"(bare queries {person_bare[-1]:.1f} ms)"
        )

    process = Process.objects.select_related("schema").get(pk=process_ids[0])
    policy = policy_for(process=process)
    policy.strategy = "expertise"
    policy.save()
    pool = candidate_pool(process=process)
    assert len(pool) == EXPERTS, len(pool)
    fresh = list(
        Case.objects.filter(process=process, status="open", routed_to__isnull=True)
        .select_related("process__schema")
        .order_by("pk")[:200]
    )
    # Labels keep coming while cases are routed: before each decision, one new decision's
    # profile refresh (untimed), so each decision reads what changed since the one before.
    labelled = list(
        Case.objects.filter(process=process, status="decided")
        .order_by("?")
        .values_list("pk", flat=True)[: len(fresh)]
    )
    routing, routing_bare = [], []
    for _ in range(REPEATS):
        rng.shuffle(fresh)
        # The whole decision as route_case takes it: the pool is read in the same statement.
        times = []
        for case, decided_id in zip(fresh, labelled, strict=True):
            refresh_case_people(case_id=decided_id)
            times.append(_timed(lambda c=case: decide_for(case=c, policy=policy)) * 1000)
        bare = []
        for case in fresh:
            keys = [f"po_status={case.fields['po_status']}", "amount=q2"]
            begin = time.perf_counter()
            _rows(_BARE_ROUTE, {"process": process.pk, "people": pool, "region": "approve",
                                "segments": keys})  # fmt: skip
            _rows(_BARE_LOADS, {"people": pool})
            bare.append((time.perf_counter() - begin) * 1000)
        routing.append(_p95(times))
        routing_bare.append(_p95(bare))
        say(f"routing decision p95 {routing[-1]:.2f} ms (bare queries {routing_bare[-1]:.2f} ms)")
    choice = decide_for(case=fresh[0], policy=policy)
    assert choice is not None
    assert len(choice.candidates) == EXPERTS
    say(f"median decision {statistics.median(times):.2f} ms at {timezone.now():%H:%M:%S}")

    return [
        figure(
            "skills_expertise_refresh_1m_decisions_s", full, "s", 60.0, "lower",
            baseline=("bare_profile_aggregate_s", full_bare),
        ),
        figure(
            "skills_evidence_refresh_1000_people_s", evidence, "s", 60.0, "lower",
            baseline=("bare_agreement_aggregate_s", evidence_bare),
        ),
        figure(
            "skills_incremental_one_decision_p95_ms", incremental, "ms", 50.0, "lower",
            baseline=("bare_person_process_aggregate_p95_ms", incremental_bare),
        ),
        figure(
            "skills_evidence_incremental_one_decision_p95_ms", kinds_runs, "ms", 50.0, "lower",
            baseline=("bare_person_process_aggregate_p95_ms", incremental_bare),
        ),
        figure(
            "skills_evidence_one_person_p95_ms", person_runs, "ms", 50.0, "lower",
            baseline=("bare_person_measurement_queries_p95_ms", person_bare),
        ),
        figure(
            "skills_routing_decision_p95_ms", routing, "ms", 5.0, "lower",
            baseline=("bare_profile_and_load_queries_p95_ms", routing_bare),
        ),
    ]  # fmt: skip


def child(out: Path) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, stdout=io.StringIO())
    logging.getLogger("axes").setLevel(logging.WARNING)
    say("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    process_ids = build()
    results = measure(process_ids)
    say("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child(Path(sys.argv[1]))
