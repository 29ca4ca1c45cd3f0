"""Every page of the app in a real browser: no sideways scroll at 390 px, no table overflowing its
container at 1440 px (unless it sits in a .table-scroll), no serious or critical axe-core finding.

The pages are enumerated from Django's URL resolver, so a new page is checked without being
listed here: each URL's arguments are filled from the objects built below (by argument name), and
each page is visited as the first persona whose GET answers a full HTML page. A URL no persona
can open fails the test (build its object below); POST-only actions (405), redirects, fragments
and non-HTML answers (CSV, JSON, metrics) are not pages.
"""

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from apps.cases.services.decisions import record_decision
from apps.classifiers.models import TrainingJob
from apps.connectors.models import Delivery
from apps.connectors.services.connectors import create_connector
from apps.fabric.services import dispatch
from apps.orchestrations.inbound import receive_items
from apps.orchestrations.services import change_stage, create_orchestration, create_version
from apps.people import services as people_services
from apps.people.models import Role
from apps.rules.services.authoring import create_rule
from tests.autonomy.conftest import fitted_model, store_promoted_model  # noqa: F401
from tests.browser.conftest import log_in
from tests.cases.test_upload import confirm, uploaded_job
from tests.conftest import client_for
from tests.fabric.conftest import enroll
from tests.factories import make_cases, make_decided_cases, make_process

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Other sites mounted in urls.py, with their own checks: Django's admin and the JSON API.
NOT_APP_PAGES = ("admin", "api")
# Endpoints for machines, not people: the load balancer's health check, Prometheus' scrape.
NOT_PAGES = {"healthz", "metrics"}
PHONE_WIDTH = 390
# The main pages, shown in docs/ui.md: (file, url name, role). Refreshed into docs/img/ by a run
# with ORCHCAP_DOCS_SCREENSHOTS=1; otherwise they are only written under test-artifacts/.
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
DOCS_SCREENSHOTS = [
    ("home.png", "home", "manager"),
    ("review.png", "review", "expert"),
    ("process.png", "process_detail", "manager"),
    ("fleet.png", "fabric_fleet", "admin"),
    ("node.png", "fabric_node", "admin"),
]
# Roles tried in this order: the first that may open a page visits it.
ROLE_ORDER = ("manager", "expert", "admin", "staff", "outsider", "anonymous")

# The page's width, and the innermost elements that stick out past the viewport (to say which).
SIDEWAYS_SCROLL = """() => {
  const width = document.scrollingElement.scrollWidth;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
  const out = (e) => e.checkVisibility() && !e.closest('.table-scroll') &&
    e.getBoundingClientRect().right > window.innerWidth + 1;
  const wide = [...document.body.querySelectorAll('*')].filter((e) => out(e) && ![...e.children].some(out));
  return { width, culprits: wide.slice(0, 4).map(name) };
}"""
# Every table sits in a scroll container (docs/ui.md), so a wide one never widens the page.
UNWRAPPED_TABLES = """() => [...document.querySelectorAll('table')]
  .filter((table) => !table.closest('.table-scroll'))
  .map((table) => table.id || table.className || table.outerHTML.slice(0, 80))"""
# Tables wider than their container, and not inside a scroll container that takes the overflow.
OVERFLOWING_TABLES = """() => [...document.querySelectorAll('table')]
  .filter((table) => !table.closest('.table-scroll'))
  .filter((table) => table.getBoundingClientRect().width > table.parentElement.clientWidth + 1)
  .map((table) => table.id || table.className || table.outerHTML.slice(0, 80))"""
AXE_SCAN = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'], reporter: 'no-passes' });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}"""


@dataclass
class AppPage:
    url_name: str
    path: str
    role: str


def page_patterns() -> list[tuple[str, set[str]]]:
    """(url name, argument names) of every named URL of the app, admin and API aside."""
    found: list[tuple[str, set[str]]] = []

    def walk(patterns: list, arguments: set[str]) -> None:
        for entry in patterns:
            names = arguments | set(getattr(entry.pattern, "converters", {}))
            if isinstance(entry, URLResolver):
                if entry.namespace in NOT_APP_PAGES or entry.app_name in NOT_APP_PAGES:
                    continue
                walk(entry.url_patterns, names)
            elif isinstance(entry, URLPattern) and entry.name not in NOT_PAGES:
                assert entry.name, f"every URL of the app has a name: {entry.pattern}"
                found.append((entry.name, names))

    walk(get_resolver().url_patterns, set())
    return found


@pytest.fixture
def everything(team, expert, second_expert, manager, staff, admin, outsider, fitted_model):  # noqa: F811
    """One of each object a page shows: a process with open, decided and disputed cases, a rule,
    a promoted model and a training job, an upload, a node and a task, an invitation."""
    process = make_process(team)
    make_decided_cases(process, second_expert, 40, seed=2)
    (case, *_) = make_cases(process, 3)
    model = store_promoted_model(process, fitted_model)
    double = make_process(team, slug="double", overlap=2)
    (disputed,) = make_cases(double, 1)
    record_decision(case=disputed, expert=expert, label="approve", reason_code="ok")
    record_decision(case=disputed, expert=second_expert, label="reject", reason_code="duplicate")
    rule = create_rule(
        process=process, owner=manager, name="No PO", action={"decide": "request_info"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
    )  # fmt: skip
    training = TrainingJob.objects.create(process=process, requested_by=manager, stage="queued")
    as_manager = client_for(manager)
    csv = b"external_id,vendor,amount,po_status\nUP-1,Acme GmbH,12.5,missing\nUP-2,Beta,x,matched\n"
    upload = uploaded_job(as_manager, process, csv)
    imported = uploaded_job(as_manager, process, csv.replace(b",x,", b",7,"))
    confirm(as_manager, process, imported)
    node = enroll(_token(admin), name="build-1").node
    task = dispatch.submit_task(kind="probe", payload={"seconds": 1}, submitted_by=admin)
    invitation, invitation_token = people_services.create_invitation(
        team=team, role=Role.EXPERT, created_by=manager
    )
    api_token, _ = people_services.create_api_token(user=manager, name="laptop")
    # A public address (checked, never connected to: no worker runs here) and one delivery.
    connector = create_connector(
        team=team, name="ERP", url="https://93.184.216.34/hooks", event_types=["item.decided"],
        owner=manager,
    )  # fmt: skip
    delivery = Delivery.objects.create(
        connector=connector, event_type="item.decided", payload={}, webhook_id="msg_page",
        created_at=timezone.now(), next_attempt_at=timezone.now(),
    )  # fmt: skip
    # An orchestration with a live version and a draft (stage buttons, diff, stage log).
    orchestration = create_orchestration(
        process=process, slug="invoice-flow", name="Invoice flow", owner=manager
    )
    live = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=live, stage="live", actor=manager, reason="first go")
    create_version(
        orchestration=orchestration, actor=manager,
        values={"rules": [{"rule": rule.pk}], "connectors": [connector.pk], "sla_minutes": 60},
    )  # fmt: skip
    # A challenger model and a shadow version (the challenger page's figures, the evidence).
    from apps.orchestrations.challenger import set_challenger

    set_challenger(orchestration=orchestration, model_version=model.version, actor=manager)
    change_stage(
        version=create_version(orchestration=orchestration, actor=manager, values={}),
        stage="shadow", actor=manager,
    )  # fmt: skip
    # One routed run (with its case) for the run page and its trace.
    [run] = receive_items(
        orchestration=orchestration,
        items=[{"external_id": "ITEM-1", "fields": {"vendor": "Acme GmbH", "amount": 120}}],
    )[0].runs
    # The delivery made for it: the run page lists its deliveries (a table at 390 px too).
    Delivery.objects.filter(pk=delivery.pk).update(run_id=run.pk)
    # A recorded assessment (capital): its version page needs one.
    from apps.capital.services_roadmap import record_assessment

    record_assessment(team=team, by=manager)
    # Skills: the seeded framework and one plan (the person, plan and framework pages).
    from apps.skills.demo import seed_skills
    from apps.skills.models import CareerRole
    from apps.skills.services import create_plan

    seed_skills()
    author = CareerRole.objects.get(slug="knowledge-author")
    skill_plan = create_plan(person=expert, target_role=author, by=expert)
    values = {
        "slug": process.slug,
        "team_slug": team.slug,
        "metric": "hours_saved",
        "case_id": case.pk,
        "rule_id": rule.pk,
        "version": model.version,
        "node_id": node.pk,
        "task_id": task.pk,
        "invitation_id": invitation.pk,
        "token_id": api_token.pk,
        "user_id": expert.pk,
        "token": invitation_token,
        "job_id": upload.pk,
        "connector_id": connector.pk,
        "delivery_id": delivery.pk,
        "orchestration_slug": orchestration.slug,
        "run_id": run.pk,
        "number": 2,
        "action": "approve",  # the node actions are POST-only: their GET must answer 405
        "plan_id": skill_plan.pk,
        "skill_id": author.requirements.first().skill_id,
        "role_id": author.pk,
        "evidence_id": skill_plan.pk,  # POST-only (405)
        "review_id": skill_plan.pk,  # POST-only (405)
        "notification_id": run.pk,  # POST-only (405)
        "gold_id": case.pk,  # practice answers are POST-only (405)
    }
    # Where one argument name means different objects on different pages.
    by_page = {
        "team_detail": {"slug": team.slug},
        "training_job": {"job_id": training.pk},
        "import_job": {"job_id": imported.pk},
        "adjudication_queue": {"slug": double.slug},
        "capital_assessment_version": {"number": 1},
    }
    personas = {
        "manager": manager, "expert": expert, "admin": admin, "staff": staff,
        "outsider": outsider, "anonymous": None,
    }  # fmt: skip
    return values, by_page, personas


def _token(admin) -> str:
    from apps.fabric.services.enrollment import create_enrollment_token

    return create_enrollment_token(created_by=admin, auto_approve=True)[1]


def app_pages(values: dict, by_page: dict, personas: dict) -> list[AppPage]:
    """Every page of the app with the persona that visits it."""
    clients = {}
    for role, user in personas.items():
        clients[role] = Client()
        if user is not None:
            clients[role].force_login(user)
    pages, unreachable = [], []
    for url_name, arguments in page_patterns():
        kwargs = {**values, **by_page.get(url_name, {})}
        missing = arguments - kwargs.keys()
        assert not missing, f"{url_name}: no object for {missing}: build one in everything()"
        path = reverse(url_name, kwargs={name: kwargs[name] for name in arguments})
        answers = []
        for role in ROLE_ORDER:
            response = clients[role].get(path)
            answers.append(response.status_code)
            content_type = response.get("Content-Type", "")
            if response.status_code == 405:
                break  # POST-only, whoever asks
            if response.status_code == 200 and not content_type.startswith("text/html"):
                break  # a download or a JSON/metrics endpoint, not a page
            if response.status_code == 200:
                if b"<html" in response.content[:500].lower():
                    pages.append(AppPage(url_name, path, role))
                break  # (a 200 without <html> is an htmx fragment)
        else:
            if not set(answers) <= {405, 302}:
                unreachable.append(f"{url_name} {path}: {answers}")
    assert not unreachable, "pages no persona could open:\n" + "\n".join(unreachable)
    return pages


def _context(browser, live_server, viewport: dict, user) -> BrowserContext:
    context = browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    if user is not None:
        log_in(context, user, live_server.url)
    return context


def _screenshot(page: Page, name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"every-page-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return str(path)


def sweep(browser, live_server, pages: list[AppPage], personas: dict, *, width: int, axe: bool):
    """Visit every page at `width` (one context per role, reused); returns the problems found."""
    problems: list[str] = []
    by_role: dict[str, list[AppPage]] = {}
    for app_page in pages:
        by_role.setdefault(app_page.role, []).append(app_page)
    for role, role_pages in by_role.items():
        context = _context(browser, live_server, {"width": width, "height": 900}, personas[role])
        page = context.new_page()
        for app_page in role_pages:
            found = []
            page.goto(app_page.path, wait_until="load")
            if width == PHONE_WIDTH:
                unwrapped = page.evaluate(UNWRAPPED_TABLES)
                if unwrapped:
                    found.append(f"tables outside a .table-scroll: {unwrapped}")
                sideways = page.evaluate(SIDEWAYS_SCROLL)
                if sideways["width"] > PHONE_WIDTH:
                    found.append(
                        f"scrolls sideways: {sideways['width']} px wide at {width} px,"
                        f" sticking out: {', '.join(sideways['culprits'])}"
                    )
            else:
                overflowing = page.evaluate(OVERFLOWING_TABLES)
                if overflowing:
                    found.append(f"tables overflow outside a .table-scroll: {overflowing}")
            if axe:
                page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
                found += page.evaluate(AXE_SCAN)
            if found:
                shot = _screenshot(page, f"{app_page.url_name}-{width}")
                problems += [f"{app_page.url_name} ({app_page.path}) as {role}: {p}" for p in found]
                problems.append(f"  screenshot: {shot}")
        context.close()
    return problems


def docs_screenshots(browser, live_server, pages: list[AppPage], personas: dict) -> list[Path]:
    """Desktop screenshots of the main pages at half scale (small PNGs): the paths written."""
    paths = {p.url_name: p.path for p in pages}
    folder = ARTIFACTS / "docs-img"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, url_name, role in DOCS_SCREENSHOTS:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1440, "height": 900},
            device_scale_factor=0.5, locale="en-GB",
        )  # fmt: skip
        log_in(context, personas[role], live_server.url)
        page = context.new_page()
        page.goto(paths[url_name], wait_until="load")
        page.screenshot(path=str(folder / file_name), animations="disabled")
        context.close()
        written.append(folder / file_name)
        if os.environ.get("ORCHCAP_DOCS_SCREENSHOTS") == "1":
            DOCS_IMG.mkdir(exist_ok=True)
            shutil.copyfile(folder / file_name, DOCS_IMG / file_name)
    return written


def test_every_page_fits_a_phone_keeps_its_tables_and_passes_axe(browser, live_server, everything):
    values, by_page, personas = everything
    pages = app_pages(values, by_page, personas)
    assert {"home", "review", "process_detail", "fabric_fleet", "fabric_node"} <= {
        p.url_name for p in pages
    }
    # Home differs most by role: every persona sees theirs.
    pages += [
        AppPage("home", "/", role) for role in ("expert", "staff", "admin") if role != "manager"
    ]

    started = time.monotonic()
    problems = sweep(browser, live_server, pages, personas, width=PHONE_WIDTH, axe=False)
    phone_seconds = time.monotonic() - started
    problems += sweep(browser, live_server, pages, personas, width=1440, axe=True)
    seconds = time.monotonic() - started
    print(
        f"{len(pages)} pages: 390 px in {phone_seconds:.1f} s, then 1440 px with axe-core: {seconds:.1f} s"
    )

    assert not problems, f"{len(pages)} pages checked:\n" + "\n".join(problems)

    for shot in docs_screenshots(browser, live_server, pages, personas):
        image = shot.read_bytes()
        assert image.startswith(b"\x89PNG"), shot
        width = int.from_bytes(image[16:20], "big")
        assert width == 720, (shot, width)  # 1440 CSS px at half scale
        assert len(image) < 250_000, (shot, len(image))


def test_the_node_identity_table_fits_a_desktop_without_scrolling(logged_in, admin, everything):
    values, _, _ = everything
    page = logged_in(admin, reverse("fabric_node", args=[values["node_id"]]), "desktop")
    identity = page.locator("section:has(h2:text-is('Identity')) .table-scroll")
    expect(identity).to_be_visible()
    assert identity.evaluate("(box) => box.scrollWidth <= box.clientWidth")


def test_log_out_and_api_tokens_are_reachable_on_a_phone(logged_in, expert):
    page = logged_in(expert, "/", "phone")
    tokens = page.get_by_role("link", name="API tokens")
    expect(tokens).to_be_hidden()

    page.locator("summary.nav-menu-button").click()
    tokens.click()
    expect(page).to_have_url(re.compile(r"/account/tokens/$"))

    page.locator("summary.nav-menu-button").click()
    page.locator(".user-menu > summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert page.locator("summary.nav-menu-button").count() == 0
