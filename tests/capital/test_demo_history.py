"""The demo's capital history is measured from what seed_demo recorded, nothing typed in."""

from io import StringIO

from django.core.management import call_command

from apps.capital.models import MetricSnapshot
from apps.capital.snapshots import today
from apps.cases.models import Case
from apps.people.models import Team


def test_the_demo_has_weeks_of_snapshots_that_agree_with_its_cases(db):
    call_command("seed_demo", stdout=StringIO())
    ap = Team.objects.get(slug="ap")
    days = MetricSnapshot.objects.filter(team=ap, process__isnull=True).count()
    # The demo's decisions reach back about 90 days: so does the history.
    assert days >= 60
    last = MetricSnapshot.objects.get(team=ap, process__isnull=True, day=today())
    waiting = Case.objects.filter(process__team=ap).exclude(status="decided").count()
    assert last.figures["backlog"]["num"] == waiting
    decided = sum(
        row.figures["time_to_decision_hours"]["den"]
        for row in MetricSnapshot.objects.filter(team=ap, process__isnull=True)
    )
    assert decided > 100  # the imported history's decided cases, day by day
    # Running the backfill again changes no figure.
    before = {
        row.pk: row.figures for row in MetricSnapshot.objects.filter(team=ap).exclude(day=today())
    }
    call_command("capital_backfill", "--team", "ap", stdout=StringIO())
    after = {
        row.pk: row.figures for row in MetricSnapshot.objects.filter(team=ap).exclude(day=today())
    }
    assert after == before
