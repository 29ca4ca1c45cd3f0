"""The roadmap part of the demo (`seed_demo` calls it after the autonomy demo, before the
orchestration demo): each demo team's manager names the owner of the team's demo process and
records a first reality assessment, and Accounts Payable picks its first battle, the candidate
its own data ranks first. Nothing is typed in but names and a reason: every figure (volume,
minutes, backlog, decisions, agreement, the estimate of value) is measured from the demo's cases
and decisions, and the phase entries are computed from them."""

from django.contrib.auth import get_user_model

from apps.capital import services_roadmap as services
from apps.capital.models import Assessment
from apps.capital.selectors_battle import ranking
from apps.cases.models import Process
from apps.people.models import Team

MANAGER = "maya"
# The team that has picked its first battle in the demo; the other has not yet.
BATTLE_TEAM = "ap"


def seed_roadmap_demo() -> str:
    """Idempotent: a team that already has a recorded assessment is left alone."""
    manager = get_user_model().objects.filter(username=MANAGER).first()
    if manager is None:
        return "Demo roadmaps skipped: the demo organisation is incomplete"
    lines = []
    for team in Team.objects.filter(
        slug__in=["ap", "claims"], memberships__user=manager
    ).distinct():
        if Assessment.objects.filter(team=team).exists():
            lines.append(f"Demo roadmap of {team.slug} already present")
            continue
        for process in Process.objects.filter(team=team, is_synthetic=True):
            services.set_process_owner(process=process, owner=manager, by=manager)
        assessment = services.record_assessment(
            team=team, by=manager, note="First look at the team's reality, from orchcap's data."
        )
        line = f"Demo roadmap of {team.slug}: assessment v{assessment.version} recorded"
        if team.slug == BATTLE_TEAM:
            best = next(iter(ranking(team=team)), None)
            if best is not None:
                choice = services.choose_battle(
                    team=team,
                    candidate_key=best.key,
                    reason=f"Ranked first on our own data ({best.total:.2f}): the most hand work "
                    "and decisions enough to learn from.",
                    by=manager,
                )
                line += (
                    f", first battle {choice.name} (up to "
                    f"{choice.estimated_hours_per_week:.1f} h a week by hand)"
                )
        entries = services.advance_roadmap(team=team)
        lines.append(f"{line}, phase {entries[-1].phase}")
    return "\n".join(lines) or "Demo roadmaps skipped: no demo team"
