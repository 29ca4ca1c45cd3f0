"""The hourly refresh in bulk (`refresh_everyone`: each rule measured for everyone at once, levels
settled for everyone from one read) gives exactly what `refresh_person` gives person by person;
every kind's bulk measurement equals its measurement of one person; the incremental refresh a
decision queues measures only the rules that decision can change."""

from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from apps.cases.models import Case
from apps.cases.services.decisions import adjudicate_case, record_decision
from apps.cases.services.second_look import request_second_look
from apps.core.evidence_kinds import evidence_kind, evidence_kinds
from apps.skills import gold as gold_services
from apps.skills import practice, services
from apps.skills.models import Evidence, LevelEvent, LevelMatch, PersonSkill
from apps.skills.practice import measure_practice_accuracy
from apps.skills.tasks import refresh_decision_evidence
from tests.factories import make_cases, make_process
from tests.skills.test_evidence_kinds import _model_version, _node, make_disputes


@pytest.fixture
def scenario(team, expert, second_expert, manager, staff, admin):
    """Four cases of a process with overlap 2 (test_evidence_kinds.make_disputes: A both approve;
    B erin approve, eli reject, maya settles reject; C erin only; D both reject), two more cases
    eli decides alone in a second process, a second look maya asked for, sam's approved course
    and practice, a model maya trained and promoted, a node the admin runs.

    The framework: Deciding (all-time agreement ≥ 2 labels, or a course; then ≥ 3 labels with
    agreement ≥ 0.6 over 90 days; then a kappa and an upheld dispute), a skill scoped to the
    second process, and Training whose second level has no rules (never granted)."""
    _double, (a, _b, _c, d) = make_disputes(team, expert, second_expert, manager)
    single = make_process(team, slug="single")
    e, f = make_cases(single, 2)
    for case in (e, f):
        record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    request_second_look(case=e, by=manager)
    record_decision(case=e, expert=expert, label="reject", reason_code="duplicate")
    adjudicate_case(case=e, adjudicator=manager, label="reject", reason_code="duplicate")
    golds = [
        gold_services.mark_gold(case=Case.objects.get(pk=case.pk), by=manager) for case in (a, d)
    ]
    for gold in golds:
        practice.record_attempt(gold=gold, person=staff, label="approve")
    _model_version(single, manager, 1, 0.8, promoted=True)
    now = timezone.now()
    _node("gpu-1", admin, [(now - timedelta(hours=10), "online")])

    area = services.create_area(slug="knowledge", name="Knowledge")
    deciding = services.create_skill(area=area, slug="deciding", name="Deciding")
    aware = services.add_level(skill=deciding, name="Aware", match=LevelMatch.ANY)
    services.add_rule(level=aware, kind="cases.decisions_agree", min_count=2)
    services.add_rule(level=aware, kind="skills.manual")
    practising = services.add_level(skill=deciding, name="Practising")
    services.add_rule(
        level=practising, kind="cases.decisions_agree", min_count=3, min_value=0.6,
        period_days=90,
    )  # fmt: skip
    services.add_rule(level=practising, kind="skills.practice_accuracy", min_count=0)
    proficient = services.add_level(skill=deciding, name="Proficient")
    services.add_rule(level=proficient, kind="cases.peer_kappa", min_count=1, period_days=90)
    services.add_rule(level=proficient, kind="cases.adjudications_upheld", min_count=1)
    scoped = services.create_skill(area=area, slug="single", name="Single process")
    services.add_rule(
        level=services.add_level(skill=scoped, name="Aware"), kind="cases.decisions_agree",
        params={"process": "single"}, min_count=2, period_days=90,
    )  # fmt: skip
    training = services.create_skill(area=area, slug="training", name="Training")
    first = services.add_level(skill=training, name="Trained", match=LevelMatch.ANY)
    services.add_rule(level=first, kind="classifiers.models_trained", params={"promoted": True})
    services.add_rule(level=first, kind="classifiers.label_errors_resolved")
    services.add_rule(level=first, kind="fabric.nodes_uptime", min_value=0.9, period_days=30)
    services.add_level(skill=training, name="Teaches")  # no rules: never granted
    course = services.submit_manual_evidence(
        person=staff, skill=deciding, kind="course", title="Deciding 101"
    )
    services.review_manual_evidence(evidence=course, reviewer=manager, approve=True)
    for model in (Evidence, LevelEvent, PersonSkill):  # the approval refreshed sam
        model.objects.all().delete()
    return now


def _stored() -> tuple[list, list, list]:
    evidence = sorted(
        Evidence.objects.values_list(
            "person_id", "rule_id", "count", "value", "met", "since", "until", "refs",
            "computed_at",
        )
    )  # fmt: skip
    levels = sorted(PersonSkill.objects.values_list("person_id", "skill_id", "level_id", "since"))
    history = list(
        LevelEvent.objects.order_by("pk").values_list(
            "person_id", "skill_id", "level_id", "kind", "detail", "at"
        )
    )
    return evidence, levels, history


def _run(refresh, times) -> tuple[list, tuple[list, list, list]]:  # type: ignore[no-untyped-def]
    for model in (Evidence, LevelEvent, PersonSkill):
        model.objects.all().delete()
    results = [refresh(now) for now in times]
    return results, _stored()


def test_refresh_everyone_stores_exactly_what_refresh_person_does_for_each(scenario):
    # Now, then 100 days on (the 90-day rules decay: levels lost), then again (nothing changes).
    times = [scenario + timedelta(seconds=1), scenario + timedelta(days=100)]
    times.append(times[-1])

    def one_by_one(now):  # type: ignore[no-untyped-def]
        return [services.refresh_person(person=p, now=now) for p in services.people_with_skills()]

    each, by_person = _run(one_by_one, times)
    bulk, everyone = _run(lambda now: services.refresh_everyone(now=now), times)

    assert everyone == by_person
    assert bulk == each
    evidence, levels, history = everyone
    # What the scenario must exercise for the comparison to mean something.
    assert len({row[0] for row in evidence}) == 5  # erin, eli, maya, sam, the admin
    assert [(r.granted, r.lost) for r in bulk[2]] == [(0, 0)] * 5
    kinds = [row[3] for row in history]
    assert kinds.count("lost") >= 2
    assert {row[2] for row in levels} - {None}  # some levels still held after the decay
    held_now = {(row[0], row[1]): row[2] for row in levels}
    assert None in held_now.values()  # and some lost for good


def test_every_kind_measures_many_people_as_it_measures_each(scenario):
    people = services.people_with_skills()
    until = scenario + timedelta(seconds=1)
    for kind in evidence_kinds():
        params = {p.name: p.default for p in kind.params if p.default is not None}
        if kind.key == "skills.manual":
            params["skill"] = "deciding"
        for since in (None, scenario - timedelta(days=1)):
            many = kind.measure_people(people=people, params=params, since=since, until=until)
            for person in people:
                one = kind.measure(person=person, params=params, since=since, until=until)
                assert many[person.pk] == one, (kind.key, person.username)
    counted = evidence_kind("cases.decisions_agree").measure_people(
        people=people, params={}, since=None, until=until
    )
    assert sorted(m.count for m in counted.values()) == [0, 0, 0, 4, 5]


def test_practice_accuracy_in_bulk_equals_the_practice_modules_measure(scenario, staff):
    kind = evidence_kind("skills.practice_accuracy")
    until = scenario + timedelta(seconds=1)
    bulk = kind.measure_many(people=[staff.pk], params={}, since=None, until=until)
    alone = measure_practice_accuracy(person=staff, params={}, since=None, until=until)
    assert bulk[staff.pk] == alone
    assert (alone.count, alone.value, len(alone.refs)) == (2, 0.5, 2)  # A right, D wrong


def test_refresh_everyone_keeps_evidence_a_decision_refreshed_while_it_measured(scenario, expert):
    later = scenario + timedelta(minutes=1)
    services.refresh_person(person=expert, now=later)
    services.refresh_everyone(now=scenario)  # measured before erin's own refresh
    mine = Evidence.objects.filter(person=expert)
    assert set(mine.values_list("computed_at", flat=True)) == {later}
    others = Evidence.objects.exclude(person=expert)
    assert set(others.values_list("computed_at", flat=True)) == {scenario}


def test_a_decision_measures_again_only_the_rules_its_case_can_change(
    scenario, team, second_expert
):
    services.refresh_everyone(now=scenario)
    [case] = make_cases(make_process(team, slug="third"), 1)  # no rule is scoped to it
    record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    refresh_decision_evidence.apply(args=[case.pk]).get()
    fresh = Evidence.objects.filter(person=second_expert, computed_at__gt=scenario)
    # Agreement (all time, 90 days); not the rule scoped to "single", nor the kappa or the
    # adjudications: nobody else labelled the case and nobody settled it.
    assert sorted(fresh.values_list("rule__kind", "rule__params")) == [
        ("cases.decisions_agree", {}),
        ("cases.decisions_agree", {}),
    ]
    stale = Evidence.objects.get(person=second_expert, rule__params={"process": "single"})
    assert stale.computed_at == scenario


def test_a_case_two_people_labelled_and_an_adjudicator_settled_concerns_every_decision_kind(
    scenario,
):
    double = Case.objects.filter(process__slug="double").annotate(labels=Count("decisions"))
    disputed = double.get(decisions__source="adjudication")  # B
    change = services.case_change(case_id=disputed.pk)
    assert change.process_slug == "double"
    assert change.kinds == {
        "cases.decisions_agree", "cases.peer_kappa", "cases.adjudications_upheld",
    }  # fmt: skip
    alone = double.get(labels=1)  # C: erin's label only
    assert services.case_change(case_id=alone.pk).kinds == {"cases.decisions_agree"}
    both = Case.objects.get(process__slug="double", final_label="approve")  # A
    assert services.case_change(case_id=both.pk).kinds == {
        "cases.decisions_agree", "cases.peer_kappa",
    }  # fmt: skip
    # A case that is gone changes only what always can.
    gone = services.case_change(case_id=10**9)
    assert (gone.process_slug, gone.kinds) == ("", {"cases.decisions_agree"})


def test_a_kind_measures_several_periods_at_once_as_it_measures_each(scenario):
    # Half the labels ten days back: the 1-day period holds some of each person's, not all.
    from apps.cases.models import Decision

    old = list(Decision.objects.order_by("pk").values_list("pk", flat=True)[::2])
    Decision.objects.filter(pk__in=old).update(decided_at=scenario - timedelta(days=10))
    people = services.people_with_skills()
    until = scenario + timedelta(seconds=1)
    periods = [None, scenario - timedelta(days=1), scenario - timedelta(days=30)]
    kinds = [kind for kind in evidence_kinds() if kind.measure_periods is not None]
    assert [kind.key for kind in kinds] == ["cases.decisions_agree"]
    for kind in kinds:
        for params in ({}, {"label": "approve"}, {"process": "single"}):
            together = kind.measure_people_periods(
                people=people, params=params, periods=periods, until=until
            )
            for since, measured in zip(periods, together, strict=True):
                alone = kind.measure_people(people=people, params=params, since=since, until=until)
                assert measured == alone, (params, since)
            for person in people:  # one person's periods: one statement of their own
                theirs = kind.measure_people_periods(
                    people=[person], params=params, periods=periods, until=until
                )
                assert theirs == [{person.pk: m[person.pk]} for m in together], person.username
    counts = [
        sorted(m.count for m in measured.values())
        for measured in evidence_kind("cases.decisions_agree").measure_people_periods(
            people=people, params={}, periods=periods[:2], until=until
        )
    ]
    assert counts[0] != counts[1]  # the periods differ


def test_a_refresh_sees_a_framework_changed_behind_the_services_back(scenario, expert):
    # The framework is kept per process between refreshes: a queryset update (no signal, no
    # service) must still reach the next one.
    from apps.skills.models import EvidenceRule

    services.refresh_person(person=expert, now=scenario)
    assert PersonSkill.objects.filter(person=expert, level__isnull=False).exists()
    EvidenceRule.objects.update(min_count=10_000)
    refreshed = services.refresh_person(person=expert, now=scenario)
    assert refreshed.lost > 0
    assert not PersonSkill.objects.filter(person=expert, level__isnull=False).exists()
    assert not Evidence.objects.filter(person=expert, met=True).exists()


def test_a_kind_skips_only_people_it_would_count_nothing_for(scenario):
    # `involves` lets a refresh skip a kind for a person: it must hold for everyone the kind
    # counts something for, whatever the parameters and period.
    from django.contrib.auth import get_user_model

    from apps.core.evidence_kinds import Measurement, involved

    people = list(get_user_model().objects.order_by("pk"))
    until = scenario + timedelta(seconds=1)
    asking = [kind for kind in evidence_kinds() if kind.involves is not None]
    who = involved(asking, people)
    measured_someone = set()
    for kind in asking:
        params = {p.name: p.default for p in kind.params if p.default is not None}
        if kind.key == "skills.manual":
            params["skill"] = "deciding"
        for since in (None, scenario - timedelta(days=1)):
            for person in people:
                one = kind.measure(person=person, params=params, since=since, until=until)
                if person.pk not in who[kind.key]:
                    assert one == Measurement(count=0), (kind.key, person.username)
                elif one.count:
                    measured_someone.add(kind.key)
        assert len(who[kind.key]) < len(people), kind.key  # someone is skipped
    # The scenario has something to count for these (the others: tests/skills/test_evidence_kinds).
    assert measured_someone >= {
        "skills.manual", "skills.practice_accuracy", "classifiers.models_trained",
        "classifiers.label_errors_resolved", "fabric.nodes_uptime",
    }  # fmt: skip


def test_a_persons_refresh_stores_each_rule_as_its_kind_measures_it(scenario):
    # refresh_person skips kinds a person is not involved in, and measures a kind's rules
    # together: each stored row must still be the rule's own measurement of that person.
    from apps.skills.models import EvidenceRule

    now = scenario + timedelta(seconds=1)
    for person in services.people_with_skills():
        services.refresh_person(person=person, now=now)
        for rule in EvidenceRule.objects.all():
            kind = evidence_kind(rule.kind)
            params = {p.name: p.default for p in kind.params if p.default is not None}
            since = now - timedelta(days=rule.period_days) if rule.period_days else None
            one = kind.measure(person=person, params=params | rule.params, since=since, until=now)
            row = Evidence.objects.get(person=person, rule=rule)
            stored = (row.count, row.value, [(r["label"], r["url"]) for r in row.refs])
            assert stored == (one.count, one.value, [(r.label, r.url) for r in one.refs]), (
                person.username,
                rule.kind,
            )


def test_one_persons_label_queries_built_once_measure_what_the_bulk_one_does(scenario):
    # peer_kappa and adjudications_upheld build one person's query once per shape (process set
    # or not, a period or not) and run it again with each person's values.
    people = services.people_with_skills()
    until = scenario + timedelta(seconds=1)
    counted = 0
    for key in ("cases.peer_kappa", "cases.adjudications_upheld"):
        kind = evidence_kind(key)
        for params in ({}, {"process": "double"}, {"process": "single"}):
            for since in (None, scenario - timedelta(days=1)):
                many = kind.measure_people(people=people, params=params, since=since, until=until)
                for person in people:
                    one = kind.measure(person=person, params=params, since=since, until=until)
                    assert one == many[person.pk], (key, params, since, person.username)
                    counted += one.count
    assert counted > 0


def test_a_query_built_once_refuses_a_value_that_is_not_its_own_parameter(db):
    # A value the ORM folds into the SQL text (or transforms) can't be given to the next run.
    from apps.core.evidence_kinds import built_once

    rows = built_once(
        ("test", "text"),
        lambda text: Case.objects.filter(external_id=text).values_list("pk"),
        text="x",
    )
    assert rows == []
    with pytest.raises(ValueError, match="not a parameter of its own"):
        built_once(
            ("test", "contains"),
            lambda text: Case.objects.filter(external_id__contains=text).values_list("pk"),
            text="x",
        )
