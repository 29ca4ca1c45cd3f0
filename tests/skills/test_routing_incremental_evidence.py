"""The incremental evidence refresh a decision triggers: only decision-based rules measured again,
with the same levels as a full refresh."""

from datetime import timedelta

from django.utils import timezone

from apps.cases.services.decisions import record_decision
from apps.skills import services
from apps.skills.demo import seed_skills
from apps.skills.models import Evidence, LevelEvent, PersonSkill
from tests.factories import make_cases, make_process


def test_a_decision_refreshes_decision_rules_only_and_grants_the_same_level(team, expert):
    seed_skills()
    process = make_process(team)
    cases = make_cases(process, 6)
    for case in cases[:4]:
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    earlier = timezone.now() - timedelta(minutes=5)
    services.refresh_person(person=expert, now=earlier)
    assert not LevelEvent.objects.filter(person=expert).exists()  # 4 of the 5 Aware asks
    for case in cases[4:]:
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")

    done = services.refresh_person_kinds(person=expert)

    fresh = Evidence.objects.filter(person=expert, computed_at__gt=earlier)
    assert fresh.exists()
    assert {e.rule.kind.split(".")[0] for e in fresh.select_related("rule")} == {"cases"}
    assert done.rules == fresh.count()
    held = {
        p.skill.slug: p.level.name
        for p in PersonSkill.objects.filter(person=expert, level__isnull=False).select_related(
            "skill", "level"
        )
    }
    assert held == {"deciding-cases": "Aware"}
    # the full refresh agrees and changes nothing more
    assert services.refresh_person(person=expert).granted == 0
