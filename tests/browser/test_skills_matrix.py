"""The team skills matrix in a real browser: at 390 px and 1440 px the page never scrolls sideways
(the table scrolls in its own container, which the keyboard can reach), and a level's evidence
opens from the keyboard, not on hover only."""

import pytest
from playwright.sync_api import expect

from apps.cases.services.decisions import record_decision
from apps.people.models import Role
from apps.skills import services
from apps.skills.demo import seed_skills
from tests.browser.conftest import VIEWPORTS
from tests.factories import make_cases, make_member, make_process


@pytest.fixture
def measured_team(team, expert, second_expert, manager, staff):
    """The default framework (8 skills) and six people, two of them with levels."""
    seed_skills()
    process = make_process(team)
    cases = make_cases(process, 9)
    for case in cases[:6]:
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    for case in cases[6:]:
        record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    make_member(team, Role.EXPERT, "ezra-with-a-rather-long-username")
    for person in (expert, second_expert):
        services.refresh_person(person=person)
    return team


def test_the_matrix_scrolls_in_its_container_never_the_page(
    logged_in, manager, measured_team, viewport
):
    page = logged_in(manager, f"/skills/teams/{measured_team.slug}/", viewport=viewport)
    expect(page.get_by_role("heading", name="People and skills")).to_be_visible()
    width = VIEWPORTS[viewport]["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    region = page.locator(".skills-matrix")
    sizes = region.evaluate("(box) => [box.scrollWidth, box.clientWidth]")
    if viewport == "phone":
        # Eight skill columns don't fit 390 px: the container scrolls, the page doesn't.
        assert sizes[0] > sizes[1]
        region.evaluate("(box) => { box.scrollLeft = box.scrollWidth; }")
        assert region.evaluate("(box) => box.scrollLeft") > 0
        assert page.evaluate("window.scrollX") == 0
        # The person column stays in view while the skills scroll past it.
        name = page.get_by_role("rowheader", name="erin")
        box = name.bounding_box()
        assert box is not None
        assert 0 <= box["x"] < width
    else:
        assert sizes[0] <= sizes[1] + 1
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_levels_evidence_opens_from_the_keyboard(logged_in, manager, measured_team):
    page = logged_in(manager, f"/skills/teams/{measured_team.slug}/", viewport="phone")
    summary = page.locator("tr", has_text="erin").locator("summary").first
    assert "Deciding exception cases: Aware" in (summary.get_attribute("title") or "")
    evidence = page.locator("tr", has_text="erin").locator("details ul").first
    expect(evidence).to_be_hidden()
    summary.focus()
    page.keyboard.press("Enter")
    expect(evidence).to_be_visible()
    expect(evidence).to_contain_text("measured 6")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= VIEWPORTS["phone"]["width"]
