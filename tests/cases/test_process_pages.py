from django.urls import reverse

from apps.cases.models import Process
from tests.conftest import client_for
from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS, make_cases, schema_form_data


def _form(fields=INVOICE_FIELDS, decisions=INVOICE_DECISIONS, **overrides):
    data = {
        "team": "",
        "name": "Supplier onboarding",
        "slug": "",
        "description": "New vendor checks",
        "minutes_per_case": "4",
        "overlap": "2",
        "priority_field": "amount",
        "priority_descending": "on",
        **schema_form_data(fields, decisions),
    }
    data.update(overrides)
    return data


def test_manager_creates_a_process_from_the_form(manager, team):
    response = client_for(manager).post(reverse("process_create"), _form(team=str(team.pk)))
    assert response.status_code == 302
    process = Process.objects.get(slug="supplier-onboarding")
    assert (process.overlap, process.schema.version, process.team) == (2, 1, team)
    assert [f["name"] for f in process.schema.fields] == [f["name"] for f in INVOICE_FIELDS]


def test_unknown_field_type_is_named_next_to_the_type(manager, team):
    fields = [{"name": "amount", "type": "currency"}]
    response = client_for(manager).post(
        reverse("process_create"), _form(team=str(team.pk), fields=fields)
    )
    assert response.status_code == 422
    row = response.context["editor"].field_rows.forms[0]
    assert "must be one of number, money" in row.errors["type"][0]
    assert 'id="id_fields-0-type_error"' in response.content.decode()


def test_experts_cannot_create_processes(expert):
    assert client_for(expert).get(reverse("process_create")).status_code == 403


def test_manager_cannot_create_for_another_team(manager, other_team):
    response = client_for(manager).post(reverse("process_create"), _form(team=str(other_team.pk)))
    assert response.status_code == 422
    assert not Process.objects.exists()


def test_editing_the_schema_makes_a_new_version_and_old_cases_keep_theirs(manager, process):
    (case,) = make_cases(process, 1)
    fields = [*INVOICE_FIELDS, {"name": "cost_center", "type": "text"}]
    response = client_for(manager).post(
        reverse("process_edit", args=[process.slug]),
        _form(name=process.name, overlap="1", fields=fields),
    )
    assert response.status_code == 302
    process.refresh_from_db()
    assert process.schema.version == 2
    case.refresh_from_db()
    assert case.schema_version.version == 1
    assert "cost_center" not in [f["name"] for f in case.schema_version.fields]


def test_experts_cannot_edit_processes(expert, process):
    assert client_for(expert).get(reverse("process_edit", args=[process.slug])).status_code == 403


def test_process_list_shows_counts_for_members_only(expert, outsider, process):
    make_cases(process, 3)
    response = client_for(expert).get(reverse("process_list"))
    assert response.status_code == 200
    assert response.context["processes"][0].open_count == 3
    assert b"Review" in response.content
    assert list(client_for(outsider).get(reverse("process_list")).context["processes"]) == []


def test_manager_names_reviewers_and_adjudicators_on_the_edit_page(
    manager, expert, second_expert, process
):
    response = client_for(manager).post(
        reverse("process_edit", args=[process.slug]),
        _form(
            name=process.name,
            overlap="1",
            reviewers=[str(second_expert.pk)],
            adjudicators=[str(expert.pk)],
        ),
    )
    assert response.status_code == 302
    assert list(process.reviewers.all()) == [second_expert]
    assert list(process.adjudicators.all()) == [expert]
    assert client_for(expert).get(reverse("review", args=[process.slug])).status_code == 403


def test_a_non_expert_cannot_be_named_reviewer(manager, staff, process):
    response = client_for(manager).post(
        reverse("process_edit", args=[process.slug]),
        _form(name=process.name, overlap="1", reviewers=[str(staff.pk)]),
    )
    assert response.status_code == 422
    assert not process.reviewers.exists()


def test_a_rejected_edit_leaves_schema_and_settings_untouched(manager, staff, process):
    fields = [*INVOICE_FIELDS, {"name": "cost_center", "type": "text"}]
    response = client_for(manager).post(
        reverse("process_edit", args=[process.slug]),
        _form(name="Renamed", overlap="1", fields=fields, reviewers=[str(staff.pk)]),
    )
    assert response.status_code == 422
    process.refresh_from_db()
    assert process.schema.version == 1
    assert process.name != "Renamed"
