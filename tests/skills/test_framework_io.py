"""The skill framework exported as JSON and imported back: a round trip through an empty framework
gives the same document, an import with problems lists every one with its path and keeps nothing,
and a re-import of the same document changes nothing. Pages and API."""

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.cases.services.decisions import record_decision
from apps.skills import framework_io, services
from apps.skills.demo import seed_skills
from apps.skills.models import (
    CareerRole,
    Evidence,
    EvidenceRule,
    RoleRequirement,
    Skill,
    SkillArea,
    SkillLevel,
)
from tests.api.conftest import token_client
from tests.conftest import client_for
from tests.factories import make_cases, make_process

MODELS = (SkillArea, Skill, SkillLevel, EvidenceRule, CareerRole, RoleRequirement)


@pytest.fixture
def exported(db):
    seed_skills()
    return framework_io.export_framework()


def _empty_the_framework():
    RoleRequirement.objects.all().delete()
    CareerRole.objects.all().delete()
    Skill.objects.all().delete()
    SkillArea.objects.all().delete()
    assert not any(model.objects.exists() for model in MODELS)


def _counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def test_export_then_import_into_an_empty_framework_then_export_is_the_same_document(exported):
    assert exported["format"] == "orchcap.skill-framework"
    assert len(exported["areas"]) == 5
    assert len(exported["roles"]) == 11
    deciding = next(s for s in exported["skills"] if s["slug"] == "deciding-cases")
    assert [level["name"] for level in deciding["levels"]] == [
        "Aware", "Practising", "Proficient", "Can teach",
    ]  # fmt: skip
    assert deciding["levels"][1]["rules"] == [
        {"kind": "cases.decisions_agree", "params": {}, "min_count": 50, "min_value": 0.8,
         "period_days": 90}
    ]  # fmt: skip
    training = next(s for s in exported["skills"] if s["slug"] == "training-models")
    assert training["prerequisites"] == ["deciding-cases", "authoring-rules"]
    counts = _counts()
    # Through JSON text, as a file would carry it.
    document = json.loads(json.dumps(exported))
    _empty_the_framework()
    summary = framework_io.import_framework(document=document)
    assert summary.created == {"areas": 5, "skills": 8, "levels": 28, "rules": counts[
        "EvidenceRule"], "roles": 11}  # fmt: skip
    assert framework_io.export_framework() == exported
    assert _counts() == counts


def test_importing_the_same_document_again_changes_nothing_and_keeps_the_evidence(
    exported, team, expert
):
    process = make_process(team)
    for case in make_cases(process, 5):
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    services.refresh_person(person=expert)
    evidence = set(Evidence.objects.values_list("pk", flat=True))
    summary = framework_io.import_framework(document=copy.deepcopy(exported))
    assert summary.created == dict.fromkeys(summary.created, 0)
    assert summary.updated == dict.fromkeys(summary.updated, 0)
    assert summary.rules_removed == 0
    assert set(Evidence.objects.values_list("pk", flat=True)) == evidence


def test_an_import_updates_by_slug_and_replaces_a_levels_rules(exported):
    document = copy.deepcopy(exported)
    deciding = next(s for s in document["skills"] if s["slug"] == "deciding-cases")
    deciding["name"] = "Deciding cases"
    deciding["levels"][1]["rules"][0]["min_count"] = 40
    document["areas"].append({"slug": "catalog", "name": "Catalog", "description": ""})
    summary = framework_io.import_framework(document=document)
    assert summary.created["areas"] == 1
    assert summary.created["rules"] == 1
    assert summary.updated["skills"] == 1
    assert summary.rules_removed == 1
    skill = Skill.objects.get(slug="deciding-cases")
    assert skill.name == "Deciding cases"
    assert list(skill.levels.get(rank=2).rules.values_list("min_count", flat=True)) == [40]
    assert framework_io.export_framework()["skills"][0]["levels"][1]["rules"][0]["min_count"] == 40


def _broken(exported):
    document = copy.deepcopy(exported)
    document["areas"].append({"slug": "new-area", "name": "New area"})
    skills = document["skills"]
    skills[0]["levels"][1]["rules"][0]["kind"] = "cases.nothing_like_it"
    skills[0]["levels"][2]["rules"][1]["min_value"] = "high"
    skills[1]["area"] = "nowhere"
    skills[2]["prerequisites"].append("flying")
    skills[3]["levels"][0]["rules"][0]["params"] = {"process": "no-such-process"}
    skills[4]["slug"] = skills[0]["slug"]
    document["roles"][0]["requires"] = {"deciding-cases": 9}
    document["roles"][1]["leads_to"] = [document["roles"][1]["slug"]]
    document["colour"] = "red"
    return document


EXPECTED_PATHS = [
    "colour",
    "skills[4].slug",
    "skills[0].levels[2].rules[1].min_value",
    "skills[1].area",
    "skills[2].prerequisites[2]",
    "roles[0].requires.deciding-cases",
    "roles[1].leads_to[0]",
    # Found by the evidence kinds as the rules are written (then rolled back).
    "skills[0].levels[1].rules[0]",
    "skills[3].levels[0].rules[0]",
]


def test_an_import_with_problems_lists_each_with_its_path_and_keeps_nothing(exported):
    before = _counts()
    with pytest.raises(framework_io.FrameworkImportError) as caught:
        framework_io.import_framework(document=_broken(exported))
    problems = {p.path: p.message for p in caught.value.problems}
    assert sorted(problems) == sorted(EXPECTED_PATHS)
    assert "no evidence kind 'cases.nothing_like_it'" in problems["skills[0].levels[1].rules[0]"]
    assert "no process 'no-such-process'" in problems["skills[3].levels[0].rules[0]"]
    assert "has no level 9" in problems["roles[0].requires.deciding-cases"]
    # Nothing half-written: not the new area, not the rules of the levels before the problems.
    assert _counts() == before
    assert not SkillArea.objects.filter(slug="new-area").exists()
    assert framework_io.export_framework() == exported


def test_an_import_never_deletes_a_level(exported):
    document = copy.deepcopy(exported)
    document["skills"][0]["levels"].pop()
    with pytest.raises(framework_io.FrameworkImportError) as caught:
        framework_io.import_framework(document=document)
    assert [p.path for p in caught.value.problems] == ["skills[0].levels"]
    assert "never deletes a level" in caught.value.problems[0].message


@pytest.mark.parametrize("document", [[], "framework", None, {"version": 2}])
def test_a_document_that_is_not_a_framework_is_refused(db, document):
    with pytest.raises(framework_io.FrameworkImportError):
        framework_io.import_framework(document=document)


# --- the pages ----------------------------------------------------------------------------------


def test_an_admin_downloads_the_framework_as_json_and_others_get_403(exported, admin, manager):
    response = client_for(admin).get("/skills/framework/export")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="skill-framework.json"'
    assert json.loads(response.content) == exported
    assert client_for(manager).get("/skills/framework/export").status_code == 403
    assert client_for(manager).get("/skills/framework/import").status_code == 403
    assert (
        'href="/skills/framework/export"'
        in client_for(admin).get("/skills/framework/").content.decode()
    )


def test_an_admin_imports_a_file_on_the_page(exported, admin):
    _empty_the_framework()
    upload = SimpleUploadedFile("f.json", json.dumps(exported).encode(), "application/json")
    response = client_for(admin).post("/skills/framework/import", {"file": upload})
    assert response.status_code == 302
    assert response["Location"] == "/skills/framework/"
    assert framework_io.export_framework() == exported


def test_the_import_page_lists_every_problem_with_422_and_keeps_nothing(exported, admin):
    before = _counts()
    response = client_for(admin).post(
        "/skills/framework/import", {"text": json.dumps(_broken(exported))}
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert f"Nothing was imported: {len(EXPECTED_PATHS)} problems" in page
    for path in EXPECTED_PATHS:
        assert f"<code>{path}</code>" in page
    assert _counts() == before
    not_json = client_for(admin).post("/skills/framework/import", {"text": "{oops"})
    assert not_json.status_code == 422
    assert "This is not JSON" in not_json.content.decode()


# --- the API ------------------------------------------------------------------------------------


def test_the_api_exports_to_everyone_signed_in_and_imports_for_admins_only(
    exported, admin, expert, manager
):
    assert token_client(expert).get("/api/v1/skills/framework").json() == exported
    for user in (expert, manager):
        response = token_client(user).post(
            "/api/v1/skills/framework", json.dumps(exported), content_type="application/json"
        )
        assert response.status_code == 403
    _empty_the_framework()
    response = token_client(admin).post(
        "/api/v1/skills/framework", json.dumps(exported), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["created"]["skills"] == 8
    assert token_client(admin).get("/api/v1/skills/framework").json() == exported


def test_a_bad_import_by_api_is_422_with_every_path_and_keeps_nothing(exported, admin):
    before = _counts()
    client = token_client(admin)
    response = client.post(
        "/api/v1/skills/framework", json.dumps(_broken(exported)), content_type="application/json"
    )
    assert response.status_code == 422
    body = response.json()
    assert sorted(e["path"] for e in body["errors"]) == sorted(EXPECTED_PATHS)
    assert body["detail"] == f"Nothing was imported: {len(EXPECTED_PATHS)} problem(s)."
    assert _counts() == before
    not_json = client.post("/api/v1/skills/framework", "{oops", content_type="application/json")
    assert not_json.status_code == 400
