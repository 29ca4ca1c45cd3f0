"""What one routing decision reads, in its one prepared statement (routing.decision_inputs): the
pool by candidate_pool's rule, the case's region (its latest shadow prediction), the process's
profiles (every stat row of its people, none of another process) and loads counted on open
routed cases in any process. Profiles kept in memory between decisions: test_routing_memory.py."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.autonomy.models import ShadowPrediction
from apps.cases.models import Case, CaseStatus
from apps.classifiers.models import ModelArtifact, ModelVersion
from apps.people.models import Role
from apps.skills.models import ExpertiseStat
from apps.skills.routing import (
    _PREPARED,
    candidate_pool,
    decide_for,
    decision_inputs,
)
from apps.skills.routing_profiles import Counts, policy_for
from tests.factories import make_member, make_process, make_user
from tests.skills.routing_helpers import FIELDS, open_case


def _stat(process, person, dimension: str, key: str, decisions: int, agreed: int) -> None:
    ExpertiseStat.objects.create(
        process=process, person=person, dimension=dimension, key=key, decisions=decisions,
        agreed=agreed, median_seconds=30.0 if dimension == "process" else None,
        refreshed_at=timezone.now(),
    )  # fmt: skip


def _predict(case, label: str, at) -> None:
    content = f"model {case.process_id} {label}".encode()
    digest = hashlib.sha256(content).hexdigest()
    artifact = ModelArtifact.objects.create(sha256=digest, content=content, size=len(content))
    version = ModelVersion.objects.create(
        process=case.process, version=ModelVersion.objects.filter(process=case.process).count() + 1,
        algorithm="logistic_regression", labels=["approve", "reject"],
        schema_version=case.process.schema, snapshot_size=0, snapshot_hash="0" * 64,
        snapshot_ids=b"", metrics={}, artifact=artifact, artifact_sha256=digest,
        trained_at=at,
    )  # fmt: skip
    ShadowPrediction.objects.create(
        process=case.process, case=case, model_version=version, label=label, confidence=0.9,
        created_at=at,
    )  # fmt: skip


@pytest.fixture
def process(team):
    return make_process(team, slug="inputs", fields=FIELDS, priority_field="")


def test_the_pool_is_the_active_experts_narrowed_to_named_reviewers(
    team, process, expert, second_expert, manager
):
    gone = make_member(team, Role.EXPERT, "gone")
    gone.is_active = False
    gone.save()
    make_user("stranger")
    case = open_case(process)
    inputs = decision_inputs(case=case)
    assert inputs.pool == sorted([expert.pk, second_expert.pk]) == candidate_pool(process=process)
    process.reviewers.set([second_expert, manager])
    inputs = decision_inputs(case=case)
    assert inputs.pool == [second_expert.pk] == candidate_pool(process=process)
    assert decide_for(case=case, policy=policy_for(process=process)).assignee_id == second_expert.pk


def test_the_profiles_are_the_processs_and_the_region_is_the_latest_prediction(
    process, expert, second_expert
):
    _stat(process, expert, "process", "", 40, 30)
    _stat(process, expert, "label", "approve", 20, 19)
    _stat(process, expert, "label", "reject", 20, 11)
    _stat(process, expert, "segment", "po_status=missing", 25, 20)
    _stat(process, expert, "segment", "po_status=matched", 15, 10)
    _stat(process, expert, "segment", "amount=q1", 15, 10)
    other = make_process(process.team, slug="elsewhere", fields=FIELDS, priority_field="")
    _stat(other, second_expert, "process", "", 99, 99)  # another process: no profile here
    case = open_case(process)
    now = timezone.now()
    _predict(case, "approve", now - timedelta(hours=1))
    _predict(case, "reject", now)  # the latest prediction is the region
    inputs = decision_inputs(case=case)
    assert inputs.region == "reject"
    assert set(inputs.profiles) == {expert.pk}
    profile = inputs.profiles[expert.pk]
    assert (profile.process, profile.median_seconds) == (Counts(40, 30), 30.0)
    assert profile.labels == {"approve": Counts(20, 19), "reject": Counts(20, 11)}
    assert profile.segments == {
        "po_status=missing": Counts(25, 20),
        "po_status=matched": Counts(15, 10),
        "amount=q1": Counts(15, 10),
    }
    choice = decide_for(case=case, policy=policy_for(process=process))
    assert choice.region == "reject"
    # expert: base (30 + 10·mean) / 50 with mean 30/40, then the region and segment parts
    base = (30 + 10 * 0.75) / 50
    parts = [(11 + 10 * base) / 30, (20 + 10 * base) / 35]
    by_id = {c.person_id: c for c in choice.candidates}
    assert by_id[expert.pk].expected_accuracy == pytest.approx(sum(parts) / 2, abs=1e-12)
    assert by_id[second_expert.pk].expected_accuracy == pytest.approx(0.75, abs=1e-12)


def test_loads_count_open_cases_routed_to_each_person_in_any_process(
    process, expert, second_expert
):
    other = make_process(process.team, slug="elsewhere", fields=FIELDS, priority_field="")
    mine = [open_case(process) for _ in range(2)] + [open_case(other)]
    Case.objects.filter(pk__in=[c.pk for c in mine]).update(routed_to=expert)
    closed = open_case(other)
    Case.objects.filter(pk=closed.pk).update(routed_to=second_expert, status=CaseStatus.DECIDED)
    inputs = decision_inputs(case=open_case(process))
    assert inputs.loads == {expert.pk: 3}
    Case.objects.filter(pk=mine[0].pk).update(status=CaseStatus.DECIDED)
    Case.objects.filter(pk=mine[1].pk).update(routed_to=second_expert)
    inputs = decision_inputs(case=open_case(process))
    assert inputs.loads == {expert.pk: 1, second_expert.pk: 1}


def test_the_prepared_statement_survives_a_rolled_back_transaction(process, expert):
    case = open_case(process)
    policy = policy_for(process=process)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    _PREPARED.pop(connection.connection, None)

    def decide_then_fail() -> None:
        with transaction.atomic():
            assert decide_for(case=case, policy=policy).assignee_id == expert.pk  # prepares
            raise RuntimeError

    with pytest.raises(RuntimeError):
        decide_then_fail()
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        assert ("skills_routing_inputs_team",) in cursor.fetchall()
    assert decide_for(case=case, policy=policy).assignee_id == expert.pk  # only executes
    assert decide_for(case=case, policy=policy, pool=[expert.pk]).assignee_id == expert.pk
