"""`manage.py create_enrollment_token` prints just the token; bad arguments are one line, exit 2."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.fabric.models import EnrollmentToken
from apps.fabric.services import enrollment
from tests.processes import child_database_url, run_manage


def test_prints_a_token_that_is_stored_hashed_with_its_scope(team):
    out = StringIO()
    call_command("create_enrollment_token", "--auto-approve", "--expires", "2h", "--team", "ap",
                 "--label", "site=branch-3", stdout=out)  # fmt: skip
    raw = out.getvalue().strip()
    assert raw.startswith("oce_")
    token = EnrollmentToken.objects.get()
    assert token.token_hash == enrollment.hash_secret(raw)
    assert token.auto_approve is True
    assert token.team == team
    assert token.labels == {"site": "branch-3"}
    lifetime = (token.expires_at - token.created_at).total_seconds()
    assert 7190 < lifetime < 7210


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_from_a_shell_it_prints_only_the_token():
    result = run_manage("create_enrollment_token", DATABASE_URL=child_database_url())
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("oce_")
    assert EnrollmentToken.objects.get().auto_approve is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expires", "soon"], "expiry must look like 30m, 24h or 7d"),
        (["--expires", "90d"], "between 1 minute and 30 days"),
        (["--team", "nope"], "no team with slug 'nope'"),
        (["--label", "site"], "must look like key=value"),
    ],
)
def test_bad_values_are_refused_with_exit_code_2(args, message, team):
    with pytest.raises(CommandError, match=message) as caught:
        call_command("create_enrollment_token", *args, stdout=StringIO())
    assert caught.value.returncode == 2
    assert not EnrollmentToken.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--team", "nope"], "no team with slug 'nope'"),
        (["--colour", "red"], "unrecognized arguments: --colour red"),
    ],
)
def test_bad_arguments_from_a_shell_are_one_line_and_exit_2(args, message):
    result = run_manage("create_enrollment_token", *args, DATABASE_URL=child_database_url())
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""
    assert not EnrollmentToken.objects.exists()
