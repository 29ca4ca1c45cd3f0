"""Rule drafts by a chat model (langchain-core's fake model here): off without a setting, checked
with the rule language, opened in the builder for an expert, never saved on their own."""

import json
import re

import pytest
from django.urls import reverse

from apps.cases.services.decisions import record_decision
from apps.rules.models import Rule
from apps.rules.services import drafting
from tests.conftest import client_for
from tests.factories import make_cases
from tests.rules import fake_chat

DUPLICATE = "Same invoice number already paid last month, duplicate submission"
GOOD_RULE = {
    "condition": {"all": [{"field": "po_status", "op": "eq", "value": "mismatch"},
                          {"field": "amount", "op": "gt", "value": 5000}]},
    "action": {"decide": "reject", "reason_code": "duplicate"},
}  # fmt: skip


def _words(html: str) -> str:
    """The page's text without tags: rule sentences carry field names and codes as tooltips."""
    return re.sub(r"<[^>]+>", "", html)


@pytest.fixture
def rationales(process, second_expert):
    cases = make_cases(process, 6, po_status="mismatch", amount=9000)
    for index, case in enumerate(cases):
        record_decision(
            case=case,
            expert=second_expert,
            label="reject",
            reason_code="duplicate",
            rationale=f"{DUPLICATE} #{index}",
        )
    return cases


@pytest.fixture
def chat(settings, monkeypatch):
    """Configure the fake chat model; returns a function setting what it replies."""
    settings.ORCHCAP_CHAT_MODEL = "tests.rules.fake_chat:model"

    def replies(*texts):
        monkeypatch.setattr(fake_chat, "REPLIES", list(texts))

    return replies


def draft(client, process, cases, label="reject"):
    return client.post(
        reverse("rule_draft", args=[process.slug]),
        {"label": label, "cases": [c.pk for c in cases], "terms": ["duplicate", "invoice"]},
    )


def test_without_a_chat_model_the_feature_says_it_is_off(process, expert, rationales, settings):
    settings.ORCHCAP_CHAT_MODEL = ""
    client = client_for(expert)
    page = client.get(reverse("rationale_summary", args=[process.slug])).content.decode()
    assert "Rule drafts by a chat model are off: set ORCHCAP_CHAT_MODEL" in page
    assert "Draft a rule" not in page
    response = draft(client, process, rationales)
    assert response.status_code == 409
    assert response.content.decode() == drafting.OFF_MESSAGE
    api = client.post(
        f"/api/v1/processes/{process.slug}/rules/draft",
        {"label": "reject", "cases": [rationales[0].pk]},
        content_type="application/json",
    )
    assert api.status_code == 409
    assert api.json() == {"detail": drafting.OFF_MESSAGE}


def test_a_draft_opens_in_the_builder_with_its_provenance_and_is_not_saved(
    process, expert, rationales, chat
):
    chat("Here is the rule:\n```json\n" + json.dumps(GOOD_RULE) + "\n```")
    client = client_for(expert)
    page = client.get(reverse("rationale_summary", args=[process.slug])).content.decode()
    assert "Draft a rule" in page
    response = draft(client, process, rationales)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Draft by chat model tests.rules.fake_chat:model" in html
    assert "Po status is mismatch and Amount &gt; 5,000" in _words(html)
    assert "decide Reject (reason code: Duplicate)" in _words(html)
    assert 'id="rule-builder"' in html
    assert not Rule.objects.exists()
    builder = response.context["builder"]
    provenance = builder["state"].provenance
    assert provenance["source"] == "chat-draft"
    assert provenance["cases"] == sorted(c.pk for c in rationales)
    assert (
        provenance["note"] == "drafted by chat model tests.rules.fake_chat:model from rationale "
        "group “duplicate, invoice” (reject)"
    )
    # The expert saves it from the builder: the provenance travels signed with the form.
    save = {
        "c.0.kind": "all",
        "c.0.0.kind": "cmp", "c.0.0.field": "po_status", "c.0.0.op": "eq", "c.0.0.value": "mismatch",
        "c.0.1.kind": "cmp", "c.0.1.field": "amount", "c.0.1.op": "gt", "c.0.1.value": "5000",
        "action.kind": "decide", "action.decide": "reject", "action.reason_code": "duplicate",
        "name": builder["state"].name, "priority": "100", "target": "new",
        "provenance": builder["provenance"], "do": "save",
    }  # fmt: skip
    saved = client.post(reverse("rule_builder", args=[process.slug]), save)
    assert saved.status_code == 302
    rule = Rule.objects.get()
    assert rule.name == "Drafted: reject (duplicate, invoice)"
    assert rule.provenance["note"].startswith("drafted by chat model tests.rules.fake_chat:model")
    assert rule.current.condition == GOOD_RULE["condition"]
    listing = client.get(reverse("rule_list", args=[process.slug])).content.decode()
    assert "drafted by chat model tests.rules.fake_chat:model" in listing


def test_the_model_reads_the_groups_rationales_and_the_schema(process, rationales, chat, expert):
    chat(json.dumps(GOOD_RULE))
    seen = []

    class Recording(fake_chat.FakeListChatModel):
        def invoke(self, messages, *args, **kwargs):
            seen.append(messages)
            return super().invoke(messages, *args, **kwargs)

    result = drafting.draft_rule(
        process=process,
        label="reject",
        case_ids=[c.pk for c in rationales],
        viewer=expert,
        model=Recording(responses=[json.dumps(GOOD_RULE)]),
    )
    system, question = seen[0]
    assert "po_status: category, one of matched, missing, mismatch" in system.content
    assert "reject: duplicate, fraud" in system.content
    assert f"{DUPLICATE} #0" in question.content
    assert result.sentence.startswith("Po status is mismatch")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("I think you should reject duplicates.", "the reply holds no JSON object"),
        ('{"condition": {"field": "amount", }', "the reply is not valid JSON"),
        ('{"rule": {}}', 'the reply is not an object with "condition" and "action"'),
        (json.dumps({**GOOD_RULE, "condition": {"field": "iban", "op": "eq", "value": "x"}}),
         "condition.field: unknown field 'iban' (not in the process's schema)"),
        (json.dumps({**GOOD_RULE, "action": {"decide": "maybe"}}),
         "action.decide: unknown decision 'maybe'"),
    ],
)  # fmt: skip
def test_an_unusable_reply_says_what_is_wrong(process, expert, rationales, chat, reply, message):
    chat(reply)
    response = draft(client_for(expert), process, rationales)
    html = response.content.decode()
    assert "The chat model's draft is not a usable rule" in html
    assert message.replace("'", "&#x27;").replace('"', "&quot;") in html
    assert "What it replied" in html
    assert not Rule.objects.exists()


def test_a_failing_model_or_a_missing_package_is_reported(
    process, expert, rationales, settings, monkeypatch
):
    settings.ORCHCAP_CHAT_MODEL = "tests.rules.fake_chat:broken"
    response = draft(client_for(expert), process, rationales)
    assert "the chat model failed" in response.content.decode()
    settings.ORCHCAP_CHAT_MODEL = "tests.rules.fake_chat:nothing_here"
    with pytest.raises(drafting.DraftFailed, match="cannot import it"):
        drafting.chat_model()
    # A provider name goes to LangChain's init_chat_model (the `llm` extra); without LangChain
    # installed, or without the provider's package, the message says what to install.
    settings.ORCHCAP_CHAT_MODEL = "ollama:llama3.1"
    with pytest.raises(drafting.DraftFailed, match=r"ORCHCAP_CHAT_MODEL=ollama:llama3\.1"):
        drafting.chat_model()


def test_drafts_through_the_api(process, expert, staff, rationales, chat):
    chat(json.dumps(GOOD_RULE), "not json at all")
    client = client_for(expert)
    url = f"/api/v1/processes/{process.slug}/rules/draft"
    body = {"label": "reject", "cases": [c.pk for c in rationales]}
    ok = client.post(url, body, content_type="application/json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["condition"] == GOOD_RULE["condition"]
    assert ok.json()["provenance"]["model"] == "tests.rules.fake_chat:model"
    assert not Rule.objects.exists()
    unknown = client.post(url, {**body, "label": "maybe"}, content_type="application/json")
    assert unknown.status_code == 422
    assert "unknown decision 'maybe'" in unknown.json()["detail"]
    assert client_for(staff).post(url, body, content_type="application/json").status_code == 403


def test_an_invalid_api_reply_is_a_502_with_the_reason(process, expert, rationales, chat):
    chat("no rule today")
    response = client_for(expert).post(
        f"/api/v1/processes/{process.slug}/rules/draft",
        {"label": "reject", "cases": [rationales[0].pk]},
        content_type="application/json",
    )
    assert response.status_code == 502
    assert response.json()["detail"] == ("the reply holds no JSON object. Its reply: no rule today")
