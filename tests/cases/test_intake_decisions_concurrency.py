"""The documented flow at full speed: cases sent in batches, then their historical decisions straight
away, while a real Celery worker embeds the new cases. Intake, the decisions import and the
embedding task all write the same case rows; none of them may fail (issue 10, item 1)."""

import logging
import re
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection
from django.test import Client

from apps.cases.models import Case
from tests.factories import make_cases, make_invoice_rows
from tests.processes import child_database_url, start_worker, stop_process

ROUNDS = 20
BATCHES = 2  # per round
BATCH = 100
DECIDED_AT = datetime(2026, 1, 5, tzinfo=UTC).isoformat()
# What the embedding task runs while it writes vectors (Django's bulk_update).
EMBEDDING_UPDATE = 'UPDATE "cases_case" SET "embedding"%'


def _client(user) -> Client:
    # A 500 must come back as a response to count, not as an exception that ends the test.
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _wait_for_embedding_update(timeout: float) -> bool:
    """Wait until the worker is writing vectors: the moment a decisions import meets it."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                [EMBEDDING_UPDATE],
            )
            if cursor.fetchone():
                return True
            time.sleep(0.005)
    return False


def _wait_until_embedded(process, worker, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    embedded = 0
    while time.monotonic() < deadline and worker.poll() is None:
        embedded = Case.objects.filter(process=process, embedding__isnull=False).count()
        if embedded >= count:
            break
        time.sleep(0.02)
    return embedded


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cases_then_decisions_at_once_never_fail_while_the_worker_embeds(process, manager, expert):
    worker = start_worker(DATABASE_URL=child_database_url())
    client = _client(manager)
    cases_url = f"/api/v1/processes/{process.slug}/cases"
    decisions_url = f"/api/v1/processes/{process.slug}/decisions"
    failures: list[str] = []
    decided = 0
    try:
        # The worker is up once it embedded a first case: from then on every round races it.
        warm_up = client.post(
            cases_url, make_invoice_rows(1, seed=99), content_type="application/json"
        )
        assert warm_up.status_code == 201, warm_up.content
        assert _wait_until_embedded(process, worker, 1, timeout=60) == 1, worker.poll()
        for round_ in range(ROUNDS):
            rows = make_invoice_rows(BATCHES * BATCH, seed=round_)
            for start in range(0, len(rows), BATCH):
                if start:
                    # The earlier batch embedded: the worker writes this batch's vectors next.
                    _wait_until_embedded(
                        process, worker, 1 + round_ * len(rows) + start, timeout=30
                    )
                response = client.post(
                    cases_url, rows[start : start + BATCH], content_type="application/json"
                )
                if response.status_code != 201:
                    failures.append(f"round {round_} cases: {response.status_code}")
            # Every other case of the round, sent while the worker writes the last batch's vectors:
            # the documented flow with no pause, timed so that every round meets the worker.
            _wait_for_embedding_update(timeout=10)
            decisions = [
                {"external_id": row["external_id"], "expert": expert.username,
                 "label": "request_info", "decided_at": DECIDED_AT}
                for row in rows[::2]
            ]  # fmt: skip
            response = client.post(decisions_url, decisions, content_type="application/json")
            if response.status_code == 201:
                decided += len(decisions)
            else:
                failures.append(f"round {round_} decisions: {response.status_code}")
        total = 1 + ROUNDS * BATCHES * BATCH
        embedded = _wait_until_embedded(process, worker, total, timeout=60)
    finally:
        output = stop_process(worker)
    assert failures == [], (failures, output[-3000:])
    assert not re.search(r"raised|deadlock", output, re.IGNORECASE), output[-3000:]
    assert embedded == total
    assert Case.objects.filter(process=process, status="decided").count() == decided


@pytest.mark.django_db(transaction=True)
def test_the_embedding_skips_cases_another_transaction_holds_instead_of_waiting(process):
    from apps.cases.services.similarity import embed_cases

    held, free = make_cases(process, 2)
    with psycopg.connect(child_database_url()) as other:
        # A decisions import holds its cases like this until it commits.
        other.execute("SELECT 1 FROM cases_case WHERE id = %s FOR UPDATE", [held.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # waiting for the lock fails the test
            try:
                result = embed_cases(case_ids=[held.pk, free.pk])
            finally:
                cursor.execute("RESET lock_timeout")
    assert (result.embedded, result.busy) == (1, [held.pk])
    assert Case.objects.get(pk=held.pk).embedding is None
    assert Case.objects.get(pk=free.pk).embedding is not None
    assert embed_cases(case_ids=result.busy).busy == []


@pytest.mark.django_db(transaction=True)
def test_two_batches_sharing_external_ids_in_opposite_orders_both_go_through(process, caplog):
    from apps.cases.services.intake import create_cases

    rows = make_invoice_rows(1000, seed=5)
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def send(name: str, batch: list[dict]) -> None:
        try:
            start.wait(10)
            results[name] = create_cases(process=process, rows=batch, embed=False)
        except Exception as exc:
            results[name] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=("forward", rows)),
        threading.Thread(target=send, args=("backward", rows[::-1])),
    ]
    with caplog.at_level(logging.WARNING, logger="apps.core.db"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    forward, backward = results["forward"], results["backward"]
    assert not isinstance(forward, Exception), forward
    assert not isinstance(backward, Exception), backward
    assert forward.created_count + backward.created_count == 1000
    assert Case.objects.filter(process=process).count() == 1000
    # Same key order on both sides: one waited for the other, nobody deadlocked and ran again.
    assert "running the transaction again" not in caplog.text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_worker_embeds_a_held_case_once_it_is_released(process):
    from apps.cases.tasks import embed_cases

    held, free = make_cases(process, 2)
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        with psycopg.connect(child_database_url()) as other:
            other.execute("SELECT 1 FROM cases_case WHERE id = %s FOR UPDATE", [held.pk])
            embed_cases.delay([held.pk, free.pk])
            # The free case doesn't wait for the held one.
            assert _wait_until_embedded(process, worker, 1, timeout=60) == 1, worker.poll()
            assert Case.objects.get(pk=held.pk).embedding is None
        # Released: the task's retry (2 s later) embeds it.
        assert _wait_until_embedded(process, worker, 2, timeout=30) == 2
    finally:
        output = stop_process(worker)
    assert not re.search(r"raised|deadlock", output, re.IGNORECASE), output[-3000:]
