"""`manage.py create_enrollment_token` prints just the token; bad arguments are one line, exit 2."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.fabric.models import EnrollmentToken
from apps.fabric.services import enrollment
from tests.fabric.conftest import enroll
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


def test_the_first_organisation_admin_owns_the_token_by_default(team, admin, team_admin):
    call_command("create_enrollment_token", stdout=StringIO())
    assert EnrollmentToken.objects.get().created_by == admin


def test_a_node_enrolled_with_it_is_owned_so_its_owner_has_a_my_machines_page(admin, client):
    out = StringIO()
    call_command("create_enrollment_token", "--auto-approve", stdout=out)
    enrolled = enroll(out.getvalue().strip(), name="night-desk-7")
    assert enrolled.node.owner == admin
    client.force_login(admin)
    assert "night-desk-7" in client.get("/fabric/mine/").content.decode()


def test_a_team_admin_may_own_tokens_of_their_team_only(team, team_admin, other_team):
    call_command("create_enrollment_token", "--owner", "tara", "--team", "ap", stdout=StringIO())
    assert EnrollmentToken.objects.get().created_by == team_admin
    with pytest.raises(CommandError, match="not an admin of team 'claims'") as caught:
        call_command("create_enrollment_token", "--owner", "tara", "--team", "claims")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="pass the --team they administer"):
        call_command("create_enrollment_token", "--owner", "tara")
    assert EnrollmentToken.objects.count() == 1


def test_an_unknown_owner_is_refused_with_exit_code_2(admin):
    with pytest.raises(CommandError, match="no active user 'ghost'") as caught:
        call_command("create_enrollment_token", "--owner", "ghost")
    assert caught.value.returncode == 2
    assert not EnrollmentToken.objects.exists()


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
