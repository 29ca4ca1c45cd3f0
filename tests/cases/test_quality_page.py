"""The process quality page and the agreement selector behind it, on a scenario with known values."""

import pytest
from django.urls import reverse

from apps.cases.models import Case, Process
from apps.cases.selectors_quality import process_agreement
from apps.cases.services.decisions import adjudicate_case, record_decision
from apps.cases.services.intake import import_decisions
from apps.people.models import Role
from tests.conftest import client_for
from tests.factories import make_cases, make_member, make_process

CODES = {"approve": "ok", "reject": "fraud", "request_info": ""}


def label(case: Case, expert, decision: str) -> None:
    record_decision(case=case, expert=expert, label=decision, reason_code=CODES[decision])


@pytest.fixture
def third_expert(team):
    return make_member(team, Role.EXPERT, "tom")


@pytest.fixture
def scenario(double_process, expert, second_expert, third_expert, manager):
    """Overlap 2; erin labels first on every case.

    erin & eli:  (approve, approve) (approve, approve) (reject, reject) (approve, reject)
    erin & tom:  (reject, reject) (approve, request_info)
    The two disagreements are settled by maya: reject and request_info. One more case has a
    single imported label by erin, decided by history (not compared, but a final decision).
    """
    cases = make_cases(double_process, 7)
    plan = [
        (second_expert, "approve", "approve"),
        (second_expert, "approve", "approve"),
        (second_expert, "reject", "reject"),
        (second_expert, "approve", "reject"),
        (third_expert, "reject", "reject"),
        (third_expert, "approve", "request_info"),
    ]
    for case, (other, first, second) in zip(cases, plan, strict=False):
        label(case, expert, first)
        label(case, other, second)
    adjudicate_case(case=cases[3], adjudicator=manager, label="reject", reason_code="fraud")
    adjudicate_case(case=cases[5], adjudicator=manager, label="request_info")
    import_decisions(
        process=double_process,
        rows=[
            {
                "external_id": cases[6].external_id,
                "label": "approve",
                "reason_code": "ok",
                "expert": "erin",
                "decided_at": "2025-01-01T09:00:00Z",
            }
        ],
    )
    return double_process


def test_agreement_of_two_experts_per_case_is_cohens_kappa_computed_by_hand(
    scenario, django_assert_num_queries
):
    process = Process.objects.select_related("schema").get(pk=scenario.pk)
    with django_assert_num_queries(3):
        stats = process_agreement(process=process)

    # First vs second label: 4 of 6 agree (p_o = 4/6). First rater: approve 4, reject 2; second:
    # approve 2, reject 3, request_info 1; p_e = (4*2 + 2*3) / 36 = 14/36.
    # kappa = (24/36 - 14/36) / (22/36) = 10/22.
    assert stats.method == "cohen"
    assert stats.overall == pytest.approx(10 / 22)
    assert stats.percent == pytest.approx(4 / 6)
    assert stats.cases_compared == 6
    assert stats.labels_compared == 12
    assert stats.labels_total == 13  # adjudications are not counted as labels


def test_per_label_agreement_is_one_against_the_rest(scenario):
    stats = process_agreement(process=scenario)
    by_label = {row.label: row for row in stats.per_label}
    assert list(by_label) == ["approve", "reject", "request_info"]
    # approve yes/no pairs: TT TT FF TF FF TF -> p_o 4/6, p_e (4*2 + 2*4)/36 -> kappa 8/20.
    assert by_label["approve"].value == pytest.approx(0.4)
    assert (by_label["approve"].uses, by_label["approve"].cases) == (6, 4)
    # reject: FF FF TT FT TT FF -> p_o 5/6, p_e (2*3 + 4*3)/36 -> kappa 12/18.
    assert by_label["reject"].value == pytest.approx(2 / 3)
    assert (by_label["reject"].uses, by_label["reject"].cases) == (5, 3)
    # request_info: only the second rater ever used it -> p_o 5/6 = p_e 30/36 -> kappa 0.
    assert by_label["request_info"].value == pytest.approx(0.0)
    assert (by_label["request_info"].uses, by_label["request_info"].cases) == (1, 1)


def test_per_pair_agreement_counts_the_cases_both_labelled(scenario):
    stats = process_agreement(process=scenario)
    pairs = {(row.expert_a, row.expert_b): row for row in stats.pairs}
    assert set(pairs) == {("eli", "erin"), ("erin", "tom")}
    # eli & erin: 3 of 4 agree; erin approve 3 reject 1, eli approve 2 reject 2 -> p_e 0.5.
    assert (pairs["eli", "erin"].cases, pairs["eli", "erin"].agreed) == (4, 3)
    assert pairs["eli", "erin"].kappa == pytest.approx(0.5)
    # erin & tom: 1 of 2 agree; p_e = (1*1)/4 -> (0.5 - 0.25) / 0.75.
    assert (pairs["erin", "tom"].cases, pairs["erin", "tom"].agreed) == (2, 1)
    assert pairs["erin", "tom"].kappa == pytest.approx(1 / 3)


def test_each_experts_agreement_with_final_decisions(scenario):
    stats = process_agreement(process=scenario)
    experts = {row.expert: row for row in stats.experts}
    assert set(experts) == {"eli", "erin", "tom"}
    # erin was overruled on both adjudicated cases; her imported single label is its own final.
    erin = experts["erin"]
    assert (erin.matches, erin.compared) == (5, 7)
    assert (erin.shared_matches, erin.shared_compared) == (4, 6)
    assert erin.share == pytest.approx(5 / 7)
    assert (experts["eli"].matches, experts["eli"].compared) == (4, 4)
    assert (experts["tom"].matches, experts["tom"].compared) == (2, 2)


def test_three_labels_per_case_use_fleiss_then_krippendorff_once_counts_differ(
    team, expert, second_expert, third_expert
):
    process = make_process(team, slug="triple", overlap=3)
    cases = make_cases(process, 4)
    for case, labels in zip(
        cases[:3],
        [("approve",) * 3, ("approve", "approve", "reject"), ("reject",) * 3],
        strict=True,
    ):
        for who, decision in zip([expert, second_expert, third_expert], labels, strict=True):
            label(case, who, decision)
    # Fleiss: P_i = 1, 1/3, 1 -> P̄ = 7/9; p_approve 5/9, p_reject 4/9 -> P̄_e = 41/81;
    # kappa = (63/81 - 41/81) / (40/81) = 0.55.
    stats = process_agreement(process=process)
    assert stats.method == "fleiss"
    assert stats.overall == pytest.approx(0.55)

    # A fourth case with two of its three labels (approve, reject): counts differ, so alpha.
    # Coincidences: o_aa = 3 + 1, o_rr = 3, o_ar = o_ra = 1 + 1; n_a = 6, n_r = 5, n = 11;
    # alpha = 1 - (n - 1) * 4 / (2 * 6 * 5) = 1 - 40/60 = 1/3.
    label(cases[3], expert, "approve")
    label(cases[3], second_expert, "reject")
    stats = process_agreement(process=process)
    assert stats.method == "krippendorff"
    assert stats.overall == pytest.approx(1 / 3)
    assert stats.cases_compared == 4


def test_a_process_without_labels_has_no_measures(process):
    stats = process_agreement(process=process)
    assert stats.overall is None
    assert stats.percent is None
    assert stats.cases_compared == 0
    assert stats.pairs == []
    assert all(row.value is None and row.uses == 0 for row in stats.per_label)


@pytest.mark.parametrize("persona", ["expert", "manager", "staff", "admin"])
def test_every_team_member_sees_the_quality_page(request, process, persona):
    user = request.getfixturevalue(persona)
    response = client_for(user).get(reverse("process_quality", args=[process.slug]))
    assert response.status_code == 200
    assert b"Quality: Invoices" in response.content


def test_outsider_gets_404(process, outsider):
    response = client_for(outsider).get(reverse("process_quality", args=[process.slug]))
    assert response.status_code == 404


def test_anonymous_visitor_is_sent_to_log_in(client, process):
    response = client.get(reverse("process_quality", args=[process.slug]))
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_quality_page_shows_measures_counts_and_explanations(scenario, manager):
    response = client_for(manager).get(reverse("process_quality", args=[scenario.slug]))
    html = response.content.decode()
    assert "Cohen&#x27;s kappa" in html
    assert "0.455" in html  # 10/22, overall
    assert "moderate" in html
    assert "0.500" in html  # eli & erin
    assert "0.333" in html  # erin & tom
    assert "eli &amp; erin" in html
    assert "corrected for chance" in html
    # erin against final decisions, on the cases others labelled too (her single-label case
    # is counted, not compared: its final decision is her own label).
    assert "4 of 6 (67%)" in html
    assert "5 of 7" not in html
    assert "<strong>6</strong> cases with two or more labels" in html


def test_quality_page_shows_not_enough_variation_for_undefined_measures(double_process, expert):
    (case,) = make_cases(double_process, 1)
    label(case, expert, "approve")
    label(case, make_member(double_process.team, Role.EXPERT, "tom"), "approve")
    response = client_for(expert).get(reverse("process_quality", args=[double_process.slug]))
    assert "not enough variation" in response.content.decode()


def test_with_one_label_per_case_agreement_is_not_measured_and_says_how_to_turn_it_on(
    process, expert, manager
):
    cases = make_cases(process, 5)
    for case in cases:
        label(case, expert, "approve")
    url = reverse("process_quality", args=[process.slug])
    as_manager = client_for(manager).get(url).content.decode()
    # No trivial "5 of 5 (100%)": each expert's label is the final decision.
    assert "(100%)" not in as_manager
    assert 'id="overall"' not in as_manager
    assert "Agreement is not measured" in as_manager
    assert "Each case of this process gets one label (overlap 1)" in as_manager
    edit_url = reverse("process_edit", args=[process.slug])
    assert f'<a href="{edit_url}">raise the overlap</a>' in as_manager
    as_expert = client_for(expert).get(url).content.decode()
    assert "Agreement is not measured" in as_expert
    assert edit_url not in as_expert
    assert "ask a manager to raise the overlap" in as_expert


def test_quality_page_links_adjudicators_to_the_queue_with_its_size(
    double_process, expert, second_expert, manager
):
    (case,) = make_cases(double_process, 1)
    label(case, expert, "approve")
    label(case, second_expert, "reject")
    queue_url = reverse("adjudication_queue", args=[double_process.slug])
    quality_url = reverse("process_quality", args=[double_process.slug])

    as_manager = client_for(manager).get(quality_url).content.decode()
    assert f'href="{queue_url}"' in as_manager
    assert "<strong>1</strong> case awaiting a final decision" in as_manager

    # Experts see the size but not a link they couldn't follow.
    as_expert = client_for(expert).get(quality_url).content.decode()
    assert f'href="{queue_url}"' not in as_expert
    assert "<strong>1</strong> case awaiting a final decision" in as_expert
