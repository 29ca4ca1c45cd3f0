import stat
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client

from apps.cases import demo as cases_demo
from apps.cases.models import Case
from apps.people.demo import seed_demo_organisation
from apps.people.models import Membership, Team

User = get_user_model()


def _logins_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-logins.txt"


def test_seed_demo_creates_two_teams_and_one_user_per_role_with_working_logins_and_analyses(
    db, capsys, monkeypatch
):
    # The whole command, on a tenth of the invoices: their number is not what this test is
    # about (tests/cases/test_demo.py checks the full seed), and 3,000 took most of its time.
    monkeypatch.setattr(cases_demo, "AP_CASES", 300)
    _logins_file().unlink(missing_ok=True)
    call_command("seed_demo")
    printed = capsys.readouterr().out
    assert Team.objects.count() == 2
    lines = _logins_file().read_text().splitlines()
    roles = [line.split()[0] for line in lines]
    assert sorted(roles) == ["admin", "expert", "expert", "manager", "staff"]
    for line in lines:
        role, username, password = line.split()
        assert line in printed
        assert Client().login(username=username, password=password)
        assert Membership.objects.filter(user__username=username, role=role).exists()
    assert stat.S_IMODE(_logins_file().stat().st_mode) == 0o600
    # The seed ends with ANALYZE: the planner's estimate of what it wrote (-1, never analysed,
    # without it). Checked on this seed: each whole seed takes a minute or two.
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'cases_case'")
        (estimated_rows,) = cursor.fetchone()
    assert estimated_rows == Case.objects.count() > 0


# The organisation part of the seed only: the whole command also loads the demo processes, trains
# their models and sets their autonomy (tests/cases/test_demo.py covers those), which takes
# tens of seconds each time.


def test_seeding_the_organisation_twice_changes_nothing_and_keeps_passwords(db):
    _logins_file().unlink(missing_ok=True)
    assert seed_demo_organisation().new_logins
    before = _logins_file().read_text()
    counts = (User.objects.count(), Team.objects.count(), Membership.objects.count())
    assert seed_demo_organisation().new_logins == []
    assert _logins_file().read_text() == before
    assert (User.objects.count(), Team.objects.count(), Membership.objects.count()) == counts


def test_demo_admin_opens_the_django_admin(db):
    _logins_file().unlink(missing_ok=True)
    seed_demo_organisation()
    _, username, password = next(
        line.split()
        for line in _logins_file().read_text().splitlines()
        if line.startswith("admin ")
    )
    client = Client()
    assert client.login(username=username, password=password)
    assert client.get("/admin/").status_code == 200
