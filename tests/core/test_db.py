"""retry_on_conflict against real PostgreSQL errors: a real deadlock between two connections, and
errors raised by the server with the SQLSTATE a deadlock or a serialization failure has."""

import logging
import threading

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection

from apps.core.db import retry_on_conflict
from tests.factories import make_team
from tests.processes import child_database_url

RAISE = "DO $$ BEGIN RAISE EXCEPTION 'raised on purpose' USING ERRCODE = '{}'; END $$"


def _rename(team_id: int, suffix: str, cursor) -> None:
    cursor.execute("UPDATE people_team SET name = name || %s WHERE id = %s", [suffix, team_id])


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_deadlocks_with_another_connection_runs_again_and_commits(caplog):
    first, second = make_team("first", "First"), make_team("second", "Second")
    mine_locked, theirs_locked = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def other_connection() -> None:
        try:
            with psycopg.connect(child_database_url()) as conn:
                # It waits longer before checking for deadlocks, so PostgreSQL picks the
                # decorated transaction as the victim.
                conn.execute("SET deadlock_timeout = '20s'")
                _rename(second.pk, "+theirs", conn.cursor())
                theirs_locked.set()
                mine_locked.wait(10)
                _rename(first.pk, "+theirs", conn.cursor())
                conn.commit()
        except BaseException as exc:
            failures.append(exc)

    attempts: list[int] = []

    @retry_on_conflict(attempts=3, backoff=0.01)
    def rename_both() -> str:
        attempts.append(1)
        with connection.cursor() as cursor:
            _rename(first.pk, "+mine", cursor)
            if len(attempts) == 1:  # the opposite order of the other connection: a deadlock
                mine_locked.set()
                theirs_locked.wait(10)
            _rename(second.pk, "+mine", cursor)
        return "done"

    other = threading.Thread(target=other_connection)
    other.start()
    theirs_locked.wait(10)
    with caplog.at_level(logging.WARNING, logger="apps.core.db"):
        assert rename_both() == "done"
    other.join(30)
    assert failures == []
    assert len(attempts) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    # The other connection committed first; the rerun came after it, whole.
    assert (first.name, second.name) == ("First+theirs+mine", "Second+theirs+mine")
    assert "deadlock detected" in caplog.text
    assert "attempt 2 of 3" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_serialization_failure_runs_again_and_nothing_of_the_failed_attempt_stays():
    team = make_team("team", "Team")
    attempts: list[int] = []

    @retry_on_conflict(attempts=3, backoff=0.01)
    def rename() -> None:
        attempts.append(1)
        with connection.cursor() as cursor:
            _rename(team.pk, f"+{len(attempts)}", cursor)
            if len(attempts) == 1:
                cursor.execute(RAISE.format("serialization_failure"))

    rename()
    team.refresh_from_db()
    assert len(attempts) == 2
    assert team.name == "Team+2"


@pytest.mark.django_db(transaction=True)
def test_a_conflict_that_keeps_coming_back_is_raised_after_the_last_attempt(caplog):
    attempts: list[int] = []

    @retry_on_conflict(attempts=3, backoff=0.01)
    def always_deadlocks() -> None:
        attempts.append(1)
        with connection.cursor() as cursor:
            cursor.execute(RAISE.format("deadlock_detected"))

    with pytest.raises(OperationalError, match="raised on purpose"):
        always_deadlocks()
    assert len(attempts) == 3
    assert caplog.text.count("running the transaction again") == 2


@pytest.mark.django_db(transaction=True)
def test_other_database_errors_are_not_run_again():
    attempts: list[int] = []

    @retry_on_conflict(attempts=3, backoff=0.01)
    def violates() -> None:
        attempts.append(1)
        with connection.cursor() as cursor:
            cursor.execute(RAISE.format("unique_violation"))

    with pytest.raises(IntegrityError):
        violates()
    assert len(attempts) == 1


@pytest.mark.django_db
def test_inside_an_outer_transaction_it_runs_once_since_the_whole_transaction_is_lost():
    # pytest-django runs this test inside a transaction: the caller's, which a rerun can't save.
    attempts: list[int] = []

    @retry_on_conflict(attempts=3, backoff=0.01)
    def deadlocks() -> None:
        attempts.append(1)
        with connection.cursor() as cursor:
            cursor.execute(RAISE.format("deadlock_detected"))

    with pytest.raises(OperationalError):
        deadlocks()
    assert len(attempts) == 1
