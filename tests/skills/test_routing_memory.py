"""Routing keeps each process's expertise profiles in memory between decisions and reads again only
the people whose stats changed since (routing.py, "Profiles in memory"): whatever wrote the change
(the ORM, bulk SQL, another session), the next decision sees it; a transaction's own changes that
roll back are never kept; decisions equal those made on freshly read profiles."""

import threading

import psycopg
import pytest
from django.db import transaction
from django.utils import timezone

from apps.cases.models import Case
from apps.people.models import Role
from apps.skills.models import ExpertiseStat, ProfileChange
from apps.skills.routing import _KNOWN, Scoring, choose, decide_for, decision_inputs
from apps.skills.routing_profiles import Counts, policy_for, refresh_process, segment_keys
from tests.factories import make_member, make_process
from tests.processes import child_database_url
from tests.skills.routing_helpers import FIELDS, open_case


def _stat(process, person, decisions: int, agreed: int, dimension="process", key="") -> None:
    ExpertiseStat.objects.create(
        process=process, person=person, dimension=dimension, key=key, decisions=decisions,
        agreed=agreed, median_seconds=30.0 if dimension == "process" else None,
        refreshed_at=timezone.now(),
    )  # fmt: skip


@pytest.fixture
def process(team):
    return make_process(team, slug="memory", fields=FIELDS, priority_field="")


def _assignee(case) -> int:
    return decide_for(case=case, policy=policy_for(process=case.process)).assignee_id


def test_a_change_by_the_orm_is_seen_by_the_next_decision(process, expert, second_expert):
    _stat(process, expert, 40, 36)
    _stat(process, second_expert, 40, 20)
    case = open_case(process)
    assert _assignee(case) == expert.pk
    ExpertiseStat.objects.filter(person=second_expert).update(agreed=40)  # an UPDATE
    assert _assignee(case) == second_expert.pk
    ExpertiseStat.objects.filter(person=second_expert).delete()  # a DELETE
    assert _assignee(case) == expert.pk
    _stat(process, second_expert, 40, 40, "segment", "po_status=missing")  # an INSERT
    inputs = decision_inputs(case=case)
    assert inputs.profiles[second_expert.pk].segments == {"po_status=missing": Counts(40, 40)}
    assert inputs.profiles[expert.pk].process == Counts(40, 36)


def test_a_whole_refresh_replaces_every_profile(process, expert, second_expert):
    _stat(process, expert, 40, 36)
    _stat(process, second_expert, 40, 20)
    case = open_case(process)
    assert set(decision_inputs(case=case).profiles) == {expert.pk, second_expert.pk}
    refresh_process(process=process)  # nobody decided anything: no stats left
    assert decision_inputs(case=case).profiles == {}
    changed = ProfileChange.objects.filter(process_id=process.pk)
    assert set(changed.values_list("person_id", flat=True)) == {expert.pk, second_expert.pk}


def test_changes_rolled_back_are_not_kept(process, expert, second_expert):
    _stat(process, expert, 40, 36)
    _stat(process, second_expert, 40, 20)
    case = open_case(process)
    assert _assignee(case) == expert.pk

    def change_then_fail() -> None:
        with transaction.atomic():
            ExpertiseStat.objects.filter(person=second_expert).update(agreed=40)
            assert _assignee(case) == second_expert.pk  # its own change, seen
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert _assignee(case) == expert.pk
    assert decision_inputs(case=case).profiles[second_expert.pk].process == Counts(40, 20)


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_by_another_session_is_seen_even_one_running_at_a_read(
    team, expert, second_expert
):
    process = make_process(team, slug="memory-sessions", fields=FIELDS, priority_field="")
    _stat(process, expert, 40, 36)
    _stat(process, second_expert, 40, 20)
    case = open_case(process)
    assert _assignee(case) == expert.pk
    with psycopg.connect(child_database_url()) as other:
        # Another session changes second_expert's stats and holds its transaction open...
        other.execute(
            "UPDATE skills_expertisestat SET agreed = 40 WHERE person_id = %s", [second_expert.pk]
        )
        # ...while decisions are read: they can't see it, and keep what they had.
        assert _assignee(case) == expert.pk
        assert _assignee(case) == expert.pk
        other.commit()
    # Committed after those reads: the next decision sees it.
    assert _assignee(case) == second_expert.pk
    with psycopg.connect(child_database_url(), autocommit=True) as other:
        other.execute("DELETE FROM skills_expertisestat WHERE person_id = %s", [second_expert.pk])
    assert _assignee(case) == expert.pk
    # Nothing changed since: the next decisions take the profiles kept in memory.
    kept = decision_inputs(case=case).profiles
    assert decision_inputs(case=case).profiles is kept
    assert set(kept) == {expert.pk}


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_process_both_land(team, expert, second_expert):
    # Two sessions change different people of one process at once: the change rows are taken
    # in (process, person) order, and each change is seen by the next decision.
    process = make_process(team, slug="memory-writers", fields=FIELDS, priority_field="")
    third = make_member(team, Role.EXPERT, "third")
    for person in (expert, second_expert, third):
        _stat(process, person, 40, 20)
    case = open_case(process)
    decide_for(case=case, policy=policy_for(process=process))
    errors: list[BaseException] = []

    def write(person_id: int, agreed: int) -> None:
        try:
            with psycopg.connect(child_database_url()) as other:
                other.execute(
                    "UPDATE skills_expertisestat SET agreed = %s WHERE person_id = %s",
                    [agreed, person_id],
                )
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=write, args=(second_expert.pk, 39)),
        threading.Thread(target=write, args=(third.pk, 40)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    profiles = decision_inputs(case=case).profiles
    assert profiles[second_expert.pk].process == Counts(40, 39)
    assert profiles[third.pk].process == Counts(40, 40)
    assert _assignee(case) == third.pk


def test_decisions_from_memory_equal_decisions_on_fresh_profiles(process, team, expert):
    people = [expert] + [make_member(team, Role.EXPERT, f"memory-{i}") for i in range(12)]
    for i, person in enumerate(people):
        _stat(process, person, 10 + 7 * i, 5 + (11 * i) % (10 + 7 * i))
        _stat(process, person, 3 + i, (2 * i) % (3 + i), "segment", "po_status=missing")
        _stat(process, person, 4 + i, i % 4, "segment", "po_status=matched")
        _stat(process, person, 5, i % 6, "label", "approve")
    policy = policy_for(process=process)
    policy.learning_share = 0.3
    policy.expert_min_decisions = 40
    policy.save()
    Case.objects.filter(process=process).delete()
    cases = [open_case(process, po) for po in ("missing", "matched") * 10]
    Case.objects.filter(pk__in=[c.pk for c in cases[:6]]).update(routed_to=people[3])
    for case in cases:
        _KNOWN.clear()
        fresh = decision_inputs(case=case)  # read whole
        remembered = decide_for(case=case, policy=policy)  # from memory, Scoring kept
        # The slow path: every profile read anew, scored from scratch.
        segments = segment_keys(case.fields, process, policy.bounds)
        scored = choose(
            pool=fresh.pool, profiles=fresh.profiles, loads=fresh.loads, policy=policy,
            region=fresh.region, segments=segments, random_key=case.random_key,
        )  # fmt: skip
        assert remembered == scored
    scoring = Scoring(pool=fresh.pool, profiles=fresh.profiles, policy=policy)
    assert scoring.accuracies("", ["po_status=missing"]) is scoring.accuracies(
        "", ["po_status=missing"]
    )  # worked out once
