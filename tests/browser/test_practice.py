"""Practice in a real browser: a person answers one gold case with the keyboard (the review pane's
keys) at 390 px and at 1440 px, sees the feedback (the verdict, the gold answer and rationale, the
similar decided cases) in place, and nothing scrolls sideways; nothing they answer writes a
decision."""

from django.urls import reverse
from playwright.sync_api import expect

from apps.cases.models import Case, Decision
from apps.cases.services.similarity import embed_cases
from apps.skills import gold as gold_services
from apps.skills.models import PracticeAttempt
from tests.browser.conftest import VIEWPORTS
from tests.factories import make_decided_cases, make_process


def test_practising_one_gold_case_shows_the_feedback_without_sideways_scroll(
    logged_in, viewport, team, staff, manager, second_expert
):
    process = make_process(team)
    cases = make_decided_cases(process, second_expert, 12, seed=3)
    embed_cases(case_ids=[c.pk for c in cases])
    gold = gold_services.mark_gold(
        case=Case.objects.get(pk=cases[0].pk), by=manager, rationale="The policy says so."
    )
    decisions = Decision.objects.count()
    width = VIEWPORTS[viewport]["width"]

    page = logged_in(staff, reverse("practice_queue", args=[process.slug]), viewport=viewport)
    expect(page.locator("#decision-form")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.keyboard.press("1")  # the first decision, as in the review queue
    page.keyboard.press("Enter")

    expect(page.locator("#feedback-verdict")).to_be_visible()
    expect(page.locator("#gold-rationale")).to_contain_text("The policy says so.")
    expect(page.locator("#practice-precedents > li").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    attempt = PracticeAttempt.objects.get(person=staff)
    assert attempt.gold == gold
    verdict = page.locator("#feedback-verdict").inner_text()
    assert ("Right." in verdict) == attempt.correct
    assert Decision.objects.count() == decisions
    assert page.errors == []  # type: ignore[attr-defined]
    # Enter again: the next gold case (here the same one, the only gold), ready to answer.
    page.keyboard.press("Enter")
    expect(page.locator("#decision-form input[name=label]").first).to_be_visible()
