"""SLA figures the capital metrics read: met, missed, pending, breached and attainment."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.cases.models import Case
from apps.cases.selectors_sla import sla_figures
from apps.cases.services.sla import set_due
from tests.factories import make_cases, make_process


def test_met_missed_pending_and_breached_are_counted_over_cases_with_a_due_time(team):
    process = make_process(team)
    on_time, late, overdue, pending, no_sla = make_cases(process, 5)
    now = timezone.now()
    with transaction.atomic():
        set_due(
            due={
                on_time.pk: now - timedelta(hours=2),
                late.pk: now - timedelta(hours=2),
                overdue.pk: now - timedelta(minutes=5),
                pending.pk: now + timedelta(hours=1),
            }
        )
    Case.objects.filter(pk=on_time.pk).update(status="decided", decided_at=now - timedelta(hours=3))
    Case.objects.filter(pk=late.pk).update(
        status="decided", decided_at=now - timedelta(hours=1), sla_breached_at=now
    )
    Case.objects.filter(pk=overdue.pk).update(sla_breached_at=now)

    figures = sla_figures(cases=Case.objects.filter(process=process), now=now)

    assert (figures.with_due, figures.met, figures.missed, figures.pending) == (4, 1, 2, 1)
    assert figures.breached == 2
    assert figures.attainment == pytest.approx(1 / 3)
    assert sla_figures(cases=Case.objects.filter(pk=no_sla.pk)).attainment is None
