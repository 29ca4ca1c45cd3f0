"""The review pane in a real browser: the evidence (the model's suggestion and the precedents) sits
beside the decision form at 1440 x 900 without scrolling, everything stacks in reading order on a
phone without sideways scrolling, and an expert decides ten cases with the keyboard alone."""

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.cases.models import Case, CaseStatus, Decision
from apps.cases.services.intake import create_cases
from apps.cases.services.similarity import embed_cases
from tests.browser.conftest import DESKTOP
from tests.factories import make_cases, make_decided_cases, make_invoice_rows, make_process


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def suggesting_process(process, second_expert):
    """A process with decided history, a promoted model at level 2 (suggest) and one open case."""
    from apps.autonomy.models import Level, ProcessAutonomy
    from apps.classifiers import services

    make_decided_cases(process, second_expert, 120, seed=5)
    job = services.run_training_job(
        services.start_training(process=process, requested_by=second_expert).pk
    )
    services.promote(version=job.model_version, actor=second_expert)
    ProcessAutonomy.objects.update_or_create(process=process, defaults={"level": Level.SUGGEST})
    create_cases(process=process, rows=make_invoice_rows(1, seed=99), embed=False)
    embed_cases(case_ids=list(process.cases.values_list("pk", flat=True)))
    return process


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box


def _in_viewport(box: dict[str, float], size: dict[str, int]) -> bool:
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )


def test_at_1440_by_900_the_suggestion_and_first_precedent_show_beside_the_decision(
    logged_in, expert, suggesting_process
):
    page = logged_in(expert, reverse("review", args=[suggesting_process.slug]))
    expect(page.locator("[data-suggested-key]")).to_be_visible()
    expect(page.locator(".precedent-list > li").first).to_be_visible()

    suggestion = _box(page, "[data-suggested-key]")
    precedent = _box(page, ".precedent-list > li")
    decision = _box(page, "#decision-form")
    fields = _box(page, ".case-view")
    assert page.evaluate("window.scrollY") == 0
    for box in (suggestion, precedent, decision, fields):
        assert _in_viewport(box, DESKTOP), box
    # Beside the decision (left of it, overlapping its height), right of the case's fields.
    for evidence in (suggestion, precedent):
        assert evidence["x"] + evidence["width"] <= decision["x"]
        assert evidence["x"] >= fields["x"] + fields["width"]
        assert evidence["y"] < decision["y"] + decision["height"]


def test_on_a_phone_the_pane_stacks_case_evidence_decision_without_sideways_scroll(
    logged_in, expert, process, second_expert
):
    make_decided_cases(process, second_expert, 40, seed=2)
    create_cases(process=process, rows=make_invoice_rows(1, seed=99), embed=False)
    embed_cases(case_ids=list(process.cases.values_list("pk", flat=True)))
    page = logged_in(expert, reverse("review", args=[process.slug]), viewport="phone")
    expect(page.locator("#decision-form")).to_be_attached()

    case, evidence, decision = (
        _box(page, selector) for selector in (".case-view", ".review-evidence", "#decision-form")
    )
    assert case["y"] + case["height"] <= evidence["y"] + 1
    assert evidence["y"] + evidence["height"] <= decision["y"] + 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator(".precedent-list > li").first).to_be_visible()


def test_an_expert_decides_ten_cases_with_the_keyboard_alone(logged_in, expert, process):
    make_cases(process, 10)
    page = logged_in(expert, reverse("review", args=[process.slug]))
    expect(page.locator("#decision-form")).to_be_visible()
    keys = ["1", "2", "3"]  # approve, reject, request_info

    for number in range(10):
        shown = page.locator("#review-pane .case-head strong").inner_text()
        page.keyboard.press(keys[number % 3])
        if keys[number % 3] != "3":  # request_info has no reason codes
            page.keyboard.press("Shift+Digit1")
        if number == 4:
            page.keyboard.press("r")
            page.keyboard.type("half-way note", delay=10)
            page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        if number < 9:
            expect(page.locator("#review-pane .case-head strong")).not_to_have_text(shown)

    expect(page.locator("#review-pane")).to_contain_text("Nothing left for you to review")
    decided = list(
        Decision.objects.filter(expert=expert).order_by("pk").values_list("label", "reason_code")
    )
    assert decided == [
        [("approve", "ok"), ("reject", "duplicate"), ("request_info", "")][n % 3] for n in range(10)
    ]
    assert Decision.objects.filter(expert=expert, rationale="half-way note").count() == 1
    assert not Case.objects.filter(process=process, status=CaseStatus.OPEN).exists()
