"""Server time of every page on the demo data (issue 11: every page within 200 ms).

`bench_pages(data)` runs this file in a subprocess on a fresh data dir (Django must see
ORCHCAP_DATA_DIR before `django.setup()`), like bench/classifiers.py: it migrates, loads the demo
organisation with `manage.py seed_demo`, then asks for each page as the demo persona who uses it,
through Django's test client in the same process: the whole request (middleware, session, view,
queries, template) with no network, which is the server's share of a page view. Each page is
asked for once to warm it (the first request of a process imports and compiles), then REPEATS
times; the figure is the median.

Baseline: a trivial view (`HttpResponse("ok")`) behind the same middleware for the same signed-in
user, measured in the same run: the floor every page pays (session, user, CSP, messages).

`python bench/pages.py OUT.json` with ORCHCAP_DATA_DIR set runs the child side directly (on an
already seeded data dir it reuses the demo: seed_demo is idempotent).
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
TARGET_MS = 200.0
_started = time.monotonic()


def say(message: str) -> None:
    print(f"  pages [{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def bench_pages(data: Path) -> list[dict[str, object]]:
    return run_in_child(__file__, data)


# --- the child side ----------------------------------------------------------------------------


def trivial(request):  # type: ignore[no-untyped-def]
    from django.http import HttpResponse

    return HttpResponse("ok")


def _urlconf() -> None:
    """This module as ROOT_URLCONF: the app's URLs plus the trivial baseline view."""
    from django.urls import path

    from orchcap.urls import urlpatterns as app_urls

    globals()["urlpatterns"] = [*app_urls, path("bench/trivial", trivial)]


def pages() -> list[tuple[str, str, str]]:
    """(figure name, persona's username, path) for every page of the demo, as the persona who
    uses it (managers see the most on a process page, so most are asked for as the manager)."""
    from django.urls import reverse

    from apps.cases.models import Case, CaseStatus, Process
    from apps.classifiers.models import ModelVersion

    ap = Process.objects.get(slug="ap-invoice-exceptions")
    claims = Process.objects.get(slug="claims-triage")
    decided = Case.objects.filter(process=ap, status=CaseStatus.DECIDED).order_by("pk").first()
    open_case = Case.objects.filter(process=ap, status=CaseStatus.OPEN).order_by("pk").first()
    version = ModelVersion.objects.filter(process=ap).order_by("-version").first()
    rows = [
        ("login", "", reverse("login")),
        ("home_expert", "erin", reverse("home")),
        ("home_manager", "maya", reverse("home")),
        ("home_admin", "ada", reverse("home")),
        ("process_list", "erin", reverse("process_list")),
        ("process_new", "maya", reverse("process_create")),
        ("process_detail", "maya", reverse("process_detail", args=[ap.slug])),
        ("process_edit", "maya", reverse("process_edit", args=[ap.slug])),
        ("review", "erin", reverse("review", args=[ap.slug])),
        ("case_decided", "erin", reverse("case_detail", args=[decided.pk])),
        ("case_open", "maya", reverse("case_detail", args=[open_case.pk])),
        ("quality", "maya", reverse("process_quality", args=[ap.slug])),
        ("quality_claims", "maya", reverse("process_quality", args=[claims.slug])),
        ("adjudication", "maya", reverse("adjudication_queue", args=[claims.slug])),
        ("upload", "maya", reverse("process_upload", args=[ap.slug])),
        ("my_decisions", "erin", reverse("my_decisions")),
        ("rules", "maya", reverse("rule_list", args=[ap.slug])),
        ("rule_induce", "maya", reverse("rule_induce", args=[ap.slug])),
        ("rationales", "maya", reverse("rationale_summary", args=[ap.slug])),
        ("rationales_expert", "erin", reverse("rationale_summary", args=[ap.slug])),
        ("models", "maya", reverse("model_list", args=[ap.slug])),
        ("label_errors", "maya", reverse("label_errors", args=[ap.slug])),
        ("autonomy", "maya", reverse("autonomy_overview")),
        ("autonomy_process", "maya", reverse("autonomy_process", args=[claims.slug])),
        ("team", "maya", reverse("team_detail", args=["ap"])),
        ("api_tokens", "erin", reverse("api_tokens")),
        ("fabric", "ada", reverse("fabric_fleet")),
        ("fabric_tasks", "ada", reverse("fabric_tasks")),
    ]
    if version is not None:
        rows.append(
            ("model_detail", "maya", reverse("model_detail", args=[ap.slug, version.version]))
        )
    return rows + _later_pages()


def _later_pages() -> list[tuple[str, str, str]]:
    """Orchestrations, connectors, notifications, capital and skills (issues 12 to 14)."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from apps.connectors.models import Connector
    from apps.fabric.models import ComputeNode
    from apps.orchestrations.models import Orchestration, Run
    from apps.skills.models import Plan

    rows = []
    orchestration = Orchestration.objects.order_by("pk").first()
    if orchestration is not None:
        slug = orchestration.slug
        rows += [
            ("orchestrations", "maya", reverse("orchestration_list")),
            ("orchestration", "maya", reverse("orchestration_detail", args=[slug])),
            ("orchestration_challenger", "maya", reverse("orchestration_challenger", args=[slug])),
            ("orchestration_upload", "maya", reverse("orchestration_upload", args=[slug])),
        ]
        run = Run.objects.filter(orchestration=orchestration).order_by("-pk").first()
        if run is not None:
            rows.append(
                ("orchestration_run", "maya", reverse("orchestration_run", args=[slug, run.pk]))
            )
    connector = Connector.objects.order_by("pk").first()
    rows.append(("connectors", "maya", reverse("connector_list")))
    if connector is not None:
        rows.append(("connector", "maya", reverse("connector_detail", args=[connector.pk])))
    node = ComputeNode.objects.order_by("pk").first()
    if node is not None:
        rows.append(("fabric_node", "ada", reverse("fabric_node", args=[node.pk])))
    rows += [
        ("notifications", "erin", reverse("notification_list")),
        ("capital", "maya", reverse("capital_dashboards")),
        ("capital_definitions", "maya", reverse("capital_definitions")),
        ("capital_dashboard", "maya", reverse("capital_dashboard", args=["ap"])),
        ("capital_assessment", "maya", reverse("capital_assessment", args=["ap"])),
        ("capital_battle", "maya", reverse("capital_battle", args=["ap"])),
        ("capital_roadmap", "maya", reverse("capital_roadmap", args=["ap"])),
        ("capital_roadmaps", "maya", reverse("capital_roadmaps")),
        ("capital_criteria", "maya", reverse("capital_criteria")),
        ("capital_report", "maya", reverse("capital_report", args=["ap"])),
        ("my_skills", "sam", reverse("my_skills")),
        ("skill_paths", "sam", reverse("skill_paths")),
        ("skill_reviews", "maya", reverse("skill_reviews")),
        ("skills_framework", "ada", reverse("skills_framework")),
    ]
    ap_slug = "ap-invoice-exceptions"
    rows += [
        ("capital_money", "maya", reverse("capital_money", args=["ap"])),
        ("skill_matrices", "maya", reverse("skill_matrices")),
        ("team_skill_matrix", "maya", reverse("team_skill_matrix", args=["ap"])),
        ("practice_home", "sam", reverse("practice_home")),
        ("practice_queue", "sam", reverse("practice_queue", args=[ap_slug])),
        ("gold_list", "maya", reverse("gold_list", args=[ap_slug])),
        ("skills_routing_index", "maya", reverse("skills_routing_index")),
        ("skills_routing", "maya", reverse("skills_routing", args=[ap_slug])),
    ]
    sam = get_user_model().objects.filter(username="sam").first()
    if sam is not None:
        rows.append(("person_skills", "maya", reverse("person_skills", args=[sam.pk])))
        plan = Plan.objects.filter(person=sam).order_by("pk").first()
        if plan is not None:
            rows.append(("skill_plan", "sam", reverse("skill_plan", args=[plan.pk])))
    return rows


def _ms(client, path: str) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    response = client.get(path, secure=True)  # DEBUG off redirects http to https
    took = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    return took


def measure_pages(*, only: set[str] | None = None) -> list[dict[str, object]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    users = {u.username: u for u in get_user_model().objects.all()}
    clients: dict[str, Client] = {}

    def client_for(username: str) -> Client:
        if username not in clients:
            clients[username] = Client()
            if username:
                clients[username].force_login(users[username])
        return clients[username]

    results = []
    for name, username, path in pages():
        if only and name not in only:
            continue
        client = client_for(username)
        baseline_client = client_for(username)
        _ms(client, path)  # warm: imports, template compilation, first-use caches
        runs, base = [], []
        for _ in range(REPEATS):
            base.append(_ms(baseline_client, "/bench/trivial"))
            runs.append(_ms(client, path))
        result = figure(
            f"page_{name}_server_ms",
            runs,
            "ms",
            TARGET_MS,
            "lower",
            baseline=("trivial_view_server_ms", base),
        )
        say(f"{name:<20} {result['value']:>8} ms  ({path} as {username or 'anonymous'})")
        results.append(result)
    return results


def child(out: Path, only: set[str] | None = None) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings, setup_test_environment

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # as `up` does with DEBUG off
    say("loading the demo (manage.py seed_demo)")
    call_command("seed_demo", stdout=io.StringIO())
    setup_test_environment()  # the test client's host is allowed; outgoing mail kept in memory
    logging.getLogger("axes").setLevel(logging.WARNING)  # a line per test-client login otherwise
    _urlconf()
    with override_settings(ROOT_URLCONF=__name__):
        results = measure_pages(only=only)
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child(Path(sys.argv[1]), set(sys.argv[2:]) or None)
