"""The rule builder keeps what a person types while its form is re-rendered around them."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from apps.rules.models import Rule
from tests.browser.conftest import slow_network
from tests.factories import make_process


@pytest.fixture
def process(team):
    return make_process(team)


def test_a_priority_typed_while_the_form_is_re_rendered_is_the_one_saved(
    logged_in, expert, process, viewport
):
    page = logged_in(expert, reverse("rule_builder", args=[process.slug]), viewport=viewport)
    page.select_option("select[name$='.field']", "amount")
    value = page.locator("input[name$='.value']")
    expect(value).to_be_visible()
    value.fill("5000")
    # A real network: each re-render of the form takes a moment to come back.
    slow_network(page, 400)
    page.click("#rb-name")
    page.keyboard.type("Big invoices", delay=60)
    # Leaving the name re-renders the form (a change); the person types the priority meanwhile.
    page.keyboard.press("Tab")
    expect(page.locator("#rb-priority")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("5", delay=120)
    page.wait_for_timeout(1200)  # the re-render has landed

    assert page.input_value("#rb-priority") == "5"
    assert page.input_value("#rb-name") == "Big invoices"
    expect(page.locator("#rb-priority")).to_be_focused()
    page.click("button[name=do][value=save]")
    page.wait_for_url("**/rules/")

    rule = Rule.objects.get()
    assert (rule.name, rule.priority) == ("Big invoices", 5)


def test_a_value_typed_while_another_part_changes_is_kept(logged_in, expert, process):
    page = logged_in(expert, reverse("rule_builder", args=[process.slug]))
    page.select_option("select[name$='.field']", "amount")
    expect(page.locator("input[name$='.value']")).to_be_visible()
    slow_network(page, 400)
    # Choosing the action re-renders the form; the person goes straight on to the value.
    page.select_option("#rb-action-kind", "flag")
    page.click("input[name$='.value']")
    page.keyboard.type("7500", delay=80)
    page.wait_for_timeout(1500)

    assert page.input_value("input[name$='.value']") == "7500"
    expect(page.locator("#rb-action-flag")).to_be_visible()
