"""Celery: the periodic recompute of everyone's evidence and levels (CELERY_BEAT_SCHEDULE)."""

from celery import shared_task
from django.contrib.auth import get_user_model

from apps.skills import services


@shared_task(acks_late=True)
def refresh_skills() -> int:
    """Measure every evidence rule for every team member; returns the level changes made. The
    expertise profiles routing reads are measured again in the same hourly run (their quartile
    cut points too; between runs each decision keeps its people's profiles current)."""
    from apps.skills.routing_profiles import refresh_everything

    refresh_everything()
    return sum(r.granted + r.lost for r in services.refresh_everyone())


@shared_task(acks_late=True)
def route_new_cases(process_id: int, case_ids: list[int]) -> int:
    """Route a batch of new cases by measured expertise (apps/skills/routing.py)."""
    from apps.skills.routing import route_cases

    return route_cases(process_id=process_id, case_ids=case_ids)


@shared_task(acks_late=True)
def refresh_expertise() -> int:
    """Every process's expertise profiles measured again (quartile cut points too)."""
    from apps.skills.routing_profiles import refresh_everything

    return refresh_everything()


@shared_task(acks_late=True)
def refresh_decision_evidence(case_id: int) -> int:
    """The decision-based evidence (and levels) of everyone who labelled `case_id`, at once after
    a label settled or left it (only the rules that case can change: services.case_change);
    returns the level changes made."""
    from apps.cases.models import Decision

    change = services.case_change(case_id=case_id)
    people = get_user_model().objects.filter(
        pk__in=Decision.objects.filter(case_id=case_id).values("expert_id")
    )
    return sum(
        r.granted + r.lost
        for r in (services.refresh_person_kinds(person=p, change=change) for p in people)
    )
