"""Capital metrics at scale (issue 13): the team dashboard with 1M cases, 50k runs and 1,000 nodes
in the team (target ≤ 300 ms p95 server time), and the daily snapshot of 100 teams (≤ 60 s).

`bench_capital(data)` runs this file in a subprocess on a fresh data dir (as bench/pages.py):
it migrates, builds the data with set-based SQL (`INSERT … SELECT … FROM generate_series`, no
row-by-row Python), writes the big team's daily snapshots for the last 56 days (the dashboard
shows 28 days against the 28 before), then measures:

- `capital_dashboard_p95_ms`: GET /teams/bench/capital/ as the team's manager through Django's
  test client (middleware, session, view, queries, template), 20 requests per run, p95 per run.
  Baseline: a bare `SELECT count(*)` over the team's cases (the same million rows), p95 of 20.
- `capital_snapshot_100_teams_s`: `snapshot_all()` of today for 100 teams (the big one and 99
  teams of 3,000 cases each). Baseline: bare `count(*)` over the same cases, decisions, runs
  and nodes.
- `capital_snapshot_1m_team_day_s` (no target): one day's snapshot of the big team alone.

`BENCH_CAPITAL_CASES` (default 1,000,000) shrinks the big team while working on this file.
"""

import io
import json
import logging
import os
import sys
import time
from pathlib import Path

from measure import REPEATS, figure, run_in_child

ROOT = Path(__file__).resolve().parent.parent
N_CASES = int(os.environ.get("BENCH_CAPITAL_CASES", "1000000"))
N_RUNS = 50_000
N_NODES = 1_000
N_PROCESSES = 20
SMALL_TEAMS = 99
SMALL_CASES = 3_000
HISTORY_DAYS = 56
DASHBOARD_REQUESTS = 20
_started = time.monotonic()


def say(message: str) -> None:
    print(f"  capital [{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def bench_capital(data: Path) -> list[dict[str, object]]:
    return run_in_child(__file__, data)


# --- the child side ----------------------------------------------------------------------------


def _sql(sql: str, params: dict | None = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})


def _scalar(sql: str, params: dict | None = None) -> object:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchone()[0]


def _processes(team, count: int, prefix: str) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """`count` processes of `team` with the invoice schema: [(process id, schema id)]."""
    from apps.cases.services.processes import create_process

    fields = [{"name": "amount", "type": "number", "required": True}]
    decisions = [{"label": "approve", "reason_codes": []}, {"label": "reject", "reason_codes": []}]
    made = []
    for index in range(count):
        process = create_process(
            team=team, name=f"{prefix} {index}", slug=f"{prefix}-{index}", fields=fields,
            decisions=decisions, minutes_per_case=6,
        )  # fmt: skip
        made.append((process.pk, process.schema_id))
    return made


def _cases(processes: list[tuple[int, int]], total: int, expert_id: int, robot_id: int) -> None:
    """`total` cases spread over `processes` and 120 days: 95 % decided (one decision each: a
    tenth by the model, the rest reviewed with a measured time), a tenth with a due time."""
    ids = [pid for pid, _ in processes]
    schemas = [sid for _, sid in processes]
    params = {"ids": ids, "schemas": schemas, "n": len(ids), "total": total}
    first = _scalar("SELECT COALESCE(MAX(id), 0) FROM cases_case")
    _sql(
        """
        INSERT INTO cases_case (process_id, schema_version_id, external_id, fields,
            exception_reason, exception_fields, status, priority, label_count, final_label,
            final_reason_code, decided_at, is_synthetic, created_at, due_by)
        SELECT (%(ids)s::bigint[])[g %% %(n)s + 1], (%(schemas)s::bigint[])[g %% %(n)s + 1],
            'C-' || g, jsonb_build_object('amount', g %% 5000), 'bench', '[]',
            CASE WHEN decided THEN 'decided' ELSE 'open' END, 0,
            CASE WHEN decided THEN 1 ELSE 0 END,
            CASE WHEN decided THEN 'approve' ELSE '' END, '',
            CASE WHEN decided THEN LEAST(arrived + (g %% 72) * interval '1 hour', now()) END,
            true, arrived,
            CASE WHEN g %% 10 = 3 THEN arrived + interval '1 day' END
        FROM generate_series(1, %(total)s) AS g,
        LATERAL (SELECT g %% 20 <> 0 AS decided,
                        now() - (%(total)s - g)::float8 / %(total)s * interval '120 days'
                        AS arrived) AS t
        """,
        params,
    )
    _sql(
        """
        INSERT INTO cases_decision (case_id, expert_id, label, reason_code, rationale,
            key_factors, seconds_spent, source, decided_at)
        SELECT c.id, CASE WHEN c.id %% 10 = 1 THEN %(robot)s ELSE %(expert)s END, 'approve', '',
            '', '[]', CASE WHEN c.id %% 10 = 1 THEN NULL ELSE 30 + c.id %% 120 END,
            CASE WHEN c.id %% 10 = 1 THEN 'model' ELSE 'review' END, c.decided_at
        FROM cases_case c WHERE c.id > %(first)s AND c.status = 'decided'
        """,
        {"robot": robot_id, "expert": expert_id, "first": first},
    )


def _orchestrations(team, manager) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """One live orchestration per big-team process: [(orchestration id, version id)]."""
    from apps.cases.models import Process
    from apps.orchestrations.services import change_stage, create_orchestration, create_version

    made = []
    for process in Process.objects.filter(team=team).order_by("pk"):
        orchestration = create_orchestration(
            process=process, slug=f"flow-{process.pk}", name=f"Flow {process.pk}", owner=manager
        )
        version = create_version(orchestration=orchestration, actor=manager, values={})
        change_stage(version=version, stage="live", actor=manager, reason="bench")
        made.append((orchestration.pk, version.pk))
    return made


def _runs(orchestrations: list[tuple[int, int]]) -> None:
    _sql(
        """
        INSERT INTO orchestrations_run (orchestration_id, version_id, external_id, fields, state,
            outcome, label, reason_code, decided_by, confidence, routed_to, idempotency_key,
            request_hash, received_at, finished_at, dispatch_attempts, error)
        SELECT (%(orch)s::bigint[])[g %% %(n)s + 1], (%(versions)s::bigint[])[g %% %(n)s + 1],
            'R-' || g, '{}', 'finished',
            (ARRAY['decided', 'standard', 'routed'])[g %% 3 + 1],
            CASE WHEN g %% 3 = 0 THEN 'approve' ELSE '' END, '',
            CASE WHEN g %% 3 = 0 THEN 'rule:1@1' ELSE '' END, NULL, '', '', '', at, at, 1, ''
        FROM generate_series(1, %(total)s) AS g,
        LATERAL (SELECT now() - (%(total)s - g)::float8 / %(total)s * interval '60 days' AS at) t
        """,
        {
            "orch": [o for o, _ in orchestrations],
            "versions": [v for _, v in orchestrations],
            "n": len(orchestrations),
            "total": N_RUNS,
        },
    )


def _nodes(team_id: int) -> None:
    _sql(
        """
        INSERT INTO fabric_computenode (name, team_id, purpose, node_class, detected, declared,
            labels, data_sources, max_concurrent_tasks, state, drain_requested, approved_at,
            software_version, credential_hash, fingerprint, timezone, availability,
            heartbeat_count, running_tasks, worker_ready, control_plane, created_at, updated_at)
        SELECT 'node-' || g, %(team)s, '', 'workstation', '{}', '{}', '{}', '[]', 1, 'online',
            false, now() - interval '30 days', '', md5('bench-node-' || g), md5('fp' || g), 'UTC',
            '{}', 0, 0, false, false, now() - interval '30 days', now()
        FROM generate_series(1, %(total)s) AS g
        """,
        {"team": team_id, "total": N_NODES},
    )
    # Online since enrolment; every other node off for a while each day of the last week.
    _sql(
        """
        INSERT INTO fabric_nodeevent (node_id, kind, from_state, to_state, message, at)
        SELECT n.id, 'state', 'pending', 'online', '', n.created_at
        FROM fabric_computenode n WHERE n.team_id = %(team)s
        UNION ALL
        SELECT n.id, 'state', s.from_state, s.to_state, '', now() - d * interval '1 day' + s.shift
        FROM fabric_computenode n, generate_series(1, 7) AS d,
        LATERAL (VALUES ('online', 'offline', interval '0 hours'),
                        ('offline', 'online', (n.id %% 20) * interval '1 hour')) AS s(from_state,
                        to_state, shift)
        WHERE n.team_id = %(team)s AND n.id %% 2 = 0
        """,
        {"team": team_id},
    )


def build() -> tuple[object, object]:
    from django.contrib.auth import get_user_model

    from apps.cases.services.automation import autopilot_user
    from apps.people.models import Role
    from apps.people.services import add_member, create_team

    users = get_user_model()
    team = create_team(slug="bench", name="Bench")
    manager = users.objects.create_user(username="bench-manager", password="x" * 20)
    expert = users.objects.create_user(username="bench-expert", password="x" * 20)
    add_member(team=team, user=manager, role=Role.MANAGER)
    add_member(team=team, user=expert, role=Role.EXPERT)
    robot = autopilot_user()
    _sql("SET session_replication_role = replica")  # consistent by construction: no FK triggers
    begin = time.monotonic()
    _cases(_processes(team, N_PROCESSES, "big"), N_CASES, expert.pk, robot.pk)
    say(
        f"{N_CASES:,} cases of the big team with their decisions in {time.monotonic() - begin:.0f}s"
    )
    begin = time.monotonic()
    small = []
    for index in range(SMALL_TEAMS):
        other = create_team(slug=f"small-{index}", name=f"Small {index}")
        small += _processes(other, 1, f"small{index}")
    _cases(small, SMALL_TEAMS * SMALL_CASES, expert.pk, robot.pk)
    say(f"{SMALL_TEAMS} teams of {SMALL_CASES:,} cases in {time.monotonic() - begin:.0f}s")
    _sql("SET session_replication_role = DEFAULT")
    orchestrations = _orchestrations(team, manager)
    _sql("SET session_replication_role = replica")
    _runs(orchestrations)
    _nodes(team.pk)
    _sql("SET session_replication_role = DEFAULT")
    _sql("ANALYZE")
    say(f"{N_RUNS:,} runs and {N_NODES:,} nodes; analysed")
    return team, manager


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def measure(team, manager) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.test import Client

    from apps.capital.snapshots import backfill, snapshot_all, take_snapshot, today

    begin = time.monotonic()
    take_snapshot(team=team, day=today() - timedelta(days=1))
    one_day = time.monotonic() - begin
    say(f"one day of the big team: {one_day:.2f}s; writing {HISTORY_DAYS} days of history")
    backfill(team=team, since=today() - timedelta(days=HISTORY_DAYS - 1))
    say("history written")

    day_runs = []
    for _ in range(REPEATS):
        begin = time.monotonic()
        take_snapshot(team=team, day=today() - timedelta(days=1))
        day_runs.append(time.monotonic() - begin)

    client = Client()
    client.force_login(manager)
    path = f"/teams/{team.slug}/capital/"
    response = client.get(path, secure=True)  # warm: imports, templates
    assert response.status_code == 200, response.status_code
    dashboard, bare = [], []
    for _ in range(REPEATS):
        times = []
        for _ in range(DASHBOARD_REQUESTS):
            begin = time.perf_counter()
            response = client.get(path, secure=True)
            times.append((time.perf_counter() - begin) * 1000)
            assert response.status_code == 200
        dashboard.append(_p95(times))
        counts = []
        for _ in range(DASHBOARD_REQUESTS):
            begin = time.perf_counter()
            _scalar(
                "SELECT count(*) FROM cases_case c JOIN cases_process p ON p.id = c.process_id "
                "WHERE p.team_id = %(team)s",
                {"team": team.pk},
            )
            counts.append((time.perf_counter() - begin) * 1000)
        bare.append(_p95(counts))
        say(f"dashboard p95 {dashboard[-1]:.1f} ms (bare count(*) p95 {bare[-1]:.1f} ms)")

    all_teams, all_bare = [], []
    for _ in range(REPEATS):
        begin = time.monotonic()
        written = snapshot_all()
        all_teams.append(time.monotonic() - begin)
        assert len(written) == SMALL_TEAMS + 1, len(written)
        begin = time.monotonic()
        for table in ("cases_case", "cases_decision", "orchestrations_run", "fabric_computenode"):
            _scalar(f"SELECT count(*) FROM {table}")  # noqa: S608 (our table names)
        all_bare.append(time.monotonic() - begin)
        say(
            f"snapshot of {len(written)} teams {all_teams[-1]:.1f}s (bare counts {all_bare[-1]:.2f}s)"
        )

    return [
        figure(
            "capital_dashboard_p95_ms", dashboard, "ms", 300.0, "lower",
            baseline=("team_cases_count_p95_ms", bare),
        ),
        figure(
            "capital_snapshot_100_teams_s", all_teams, "s", 60.0, "lower",
            baseline=("count_all_rows_s", all_bare),
        ),
        figure("capital_snapshot_1m_team_day_s", day_runs, "s", 60.0, "lower"),
    ]  # fmt: skip


def child(out: Path) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0, stdout=io.StringIO())
    setup_test_environment()
    logging.getLogger("axes").setLevel(logging.WARNING)
    team, manager = build()
    results = measure(team, manager)
    say("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child(Path(sys.argv[1]))
