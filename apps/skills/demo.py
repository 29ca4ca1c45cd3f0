"""The default skill framework, from the seed's roles and paths, and the demo's plans.

`seed_skills()` creates what is missing (areas, skills and levels by slug and rank, the rules of a
level that has none, roles and their requirements) and leaves what an admin edited alone, so it
can run on every `seed_demo`. Paths (docs/skills.md):

- domain expert → knowledge author → rule author → AI trainer → orchestration designer
- process owner → orchestration designer
- system administrator → fabric operator → intelligence coordinator
- data analyst → data steward → AI trainer
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.skills import services
from apps.skills.models import (
    CareerRole,
    LevelMatch,
    Plan,
    PlanState,
    RoleRequirement,
    Skill,
    SkillArea,
    SkillLevel,
)

SCALE = ("Aware", "Practising", "Proficient", "Can teach")
MANUAL: dict[str, Any] = {"kind": "skills.manual"}
# Practice on gold cases (apps/skills/practice.py): 10 answers, 8 in 10 right, over 90 days.
PRACTICE: dict[str, Any] = {
    "kind": "skills.practice_accuracy", "min_count": 10, "min_value": 0.8, "period_days": 90,
}  # fmt: skip


def _r(kind: str, count: int, value: float | None = None, days: int | None = None, **params: Any):  # type: ignore[no-untyped-def]
    return {
        "kind": kind,
        "min_count": count,
        "min_value": value,
        "period_days": days,
        "params": params,
    }


AREAS = [
    ("knowledge", "Knowledge capture", "Deciding exception cases and explaining the decisions."),
    ("automation", "Rules and models", "Turning decisions into rules and classifiers."),
    (
        "orchestration",
        "Orchestration",
        "Deploying pipelines that combine rules, models and people.",
    ),
    ("infrastructure", "Infrastructure", "Running the compute fabric on the machines you own."),
    ("data", "Data", "Knowing where data lives and what it means."),
]

# skill slug: (area, name, description, prerequisites, [(match, [rules]) per level, by rank])
SKILLS: dict[str, tuple[str, str, str, list[str], list[tuple[str, list[dict]]]]] = {
    "deciding-cases": (
        "knowledge",
        "Deciding exception cases",
        "Labels that agree with the final decision, with other experts and with adjudicators.",
        [],
        [
            (LevelMatch.ANY, [_r("cases.decisions_agree", 5), MANUAL, PRACTICE]),
            (LevelMatch.ALL, [_r("cases.decisions_agree", 50, 0.8, 90)]),
            (
                LevelMatch.ALL,
                [_r("cases.decisions_agree", 200, 0.9, 90), _r("cases.peer_kappa", 20, 0.6, 90)],
            ),
            (
                LevelMatch.ALL,
                [
                    _r("cases.decisions_agree", 500, 0.95, 90),
                    _r("cases.adjudications_upheld", 5, 0.7),
                ],
            ),
        ],
    ),
    "writing-rationales": (
        "knowledge",
        "Writing rationales others reuse",
        "Rationales clear enough that rules are drafted from them.",
        ["deciding-cases"],
        [
            (LevelMatch.ANY, [_r("cases.decisions_agree", 20), MANUAL]),
            (LevelMatch.ALL, [_r("rules.rationales_reused", 1)]),
            (LevelMatch.ALL, [_r("rules.rationales_reused", 10)]),
            (LevelMatch.ALL, [_r("rules.rationales_reused", 30)]),
        ],
    ),
    "authoring-rules": (
        "automation",
        "Authoring rules",
        "Rules that pass their backtests and stay enabled.",
        ["deciding-cases", "writing-rationales"],
        [
            (LevelMatch.ANY, [_r("rules.rules_authored", 1, enabled_only=False), MANUAL]),
            (LevelMatch.ALL, [_r("rules.rules_authored", 1, min_precision=0.9)]),
            (LevelMatch.ALL, [_r("rules.rules_authored", 3, min_precision=0.95)]),
            (LevelMatch.ALL, [_r("rules.rules_authored", 10, min_precision=0.95)]),
        ],
    ),
    "training-models": (
        "automation",
        "Training models",
        "Classifiers trained and promoted, label errors found and resolved.",
        ["deciding-cases", "authoring-rules"],
        [
            (LevelMatch.ANY, [_r("classifiers.models_trained", 1), MANUAL]),
            (LevelMatch.ALL, [_r("classifiers.models_trained", 1, promoted=True)]),
            (
                LevelMatch.ALL,
                [
                    _r("classifiers.models_trained", 3, 0.8, promoted=True),
                    _r("classifiers.label_errors_resolved", 5),
                ],
            ),
            (
                LevelMatch.ALL,
                [
                    _r("classifiers.models_trained", 5, 0.85, promoted=True),
                    _r("classifiers.label_errors_resolved", 20),
                ],
            ),
        ],
    ),
    "designing-orchestrations": (
        "orchestration",
        "Designing orchestrations",
        "Orchestrations taken live.",
        ["authoring-rules", "training-models"],
        [
            (LevelMatch.ANY, [MANUAL]),
            (LevelMatch.ALL, [_r("orchestrations.designed_live", 1)]),
            (LevelMatch.ALL, [_r("orchestrations.designed_live", 3)]),
            (LevelMatch.ALL, [_r("orchestrations.designed_live", 5)]),
        ],
    ),
    "operating-fabric": (
        "infrastructure",
        "Operating the compute fabric",
        "Machines enrolled or approved, and kept healthy.",
        [],
        [
            (LevelMatch.ANY, [_r("fabric.nodes_uptime", 1), MANUAL]),
            (LevelMatch.ALL, [_r("fabric.nodes_uptime", 1, 0.9, 30)]),
            (LevelMatch.ALL, [_r("fabric.nodes_uptime", 3, 0.95, 30)]),
            (LevelMatch.ALL, [_r("fabric.nodes_uptime", 10, 0.99, 30)]),
        ],
    ),
    "analysing-data": (
        "data",
        "Analysing data",
        "Reading the organisation's data; evidenced by approved courses until the data catalog "
        "records the work.",
        [],
        [(LevelMatch.ALL, [MANUAL]), (LevelMatch.ALL, [{**MANUAL, "min_count": 2}])],
    ),
    "stewarding-data": (
        "data",
        "Stewarding data",
        "Sources catalogued and mappings approved (evidence kinds arrive with the data catalog; "
        "approved courses count meanwhile).",
        ["analysing-data"],
        [(LevelMatch.ALL, [MANUAL]), (LevelMatch.ALL, [{**MANUAL, "min_count": 2}])],
    ),
}

# role slug: (name, description, {skill: rank}, leads to)
ROLES: dict[str, tuple[str, str, dict[str, int], list[str]]] = {
    "domain-expert": ("Domain expert", "Decides the exception cases of a process.",
                      {"deciding-cases": 2}, ["knowledge-author"]),
    "knowledge-author": ("Knowledge author", "Decides with agreement; writes rationales others reuse.",
                         {"deciding-cases": 3, "writing-rationales": 2}, ["rule-author"]),
    "rule-author": ("Rule author", "Writes rules that pass backtests and stay enabled.",
                    {"deciding-cases": 2, "authoring-rules": 3}, ["ai-trainer"]),
    "ai-trainer": ("AI trainer", "Trains and promotes models; resolves label errors.",
                   {"authoring-rules": 2, "training-models": 3}, ["orchestration-designer"]),
    "orchestration-designer": ("Orchestration designer", "Takes orchestrations live.",
                               {"authoring-rules": 2, "training-models": 2,
                                "designing-orchestrations": 3}, []),
    "process-owner": ("Process owner", "Owns a process and knows its exceptions.",
                      {"deciding-cases": 2}, ["orchestration-designer"]),
    "system-administrator": ("System administrator", "Keeps the organisation's machines running.",
                             {"operating-fabric": 1}, ["fabric-operator"]),
    "fabric-operator": ("Fabric operator", "Enrols machines into the fabric and keeps them healthy.",
                        {"operating-fabric": 3}, ["intelligence-coordinator"]),
    "intelligence-coordinator": ("Intelligence coordinator",
                                 "Places models and orchestrations on the fabric.",
                                 {"operating-fabric": 3, "training-models": 2,
                                  "designing-orchestrations": 2}, []),
    "data-analyst": ("Data analyst", "Analyses the organisation's data.",
                     {"analysing-data": 2}, ["data-steward"]),
    "data-steward": ("Data steward", "Catalogues sources and approves mappings.",
                     {"analysing-data": 2, "stewarding-data": 2}, ["ai-trainer"]),
}  # fmt: skip


# Kinds added to the default framework after it was first seeded: seed_skills adds their rules to
# a level whose rules are still exactly the seed's others (untouched by an admin).
NEW_KINDS = {"skills.practice_accuracy"}


def _signature(kind: str, count: int, value: float | None, days: int | None) -> tuple:
    return (kind, count, value, days)


def _add_new_kinds(level: SkillLevel, rules: list[dict]) -> int:
    new = [r for r in rules if r["kind"] in NEW_KINDS]
    if not new or level.rules.filter(kind__in=NEW_KINDS).exists():
        return 0
    seeded = sorted(
        _signature(r["kind"], r.get("min_count", 1), r.get("min_value"), r.get("period_days"))
        for r in rules
        if r["kind"] not in NEW_KINDS
    )
    present = sorted(
        _signature(r.kind, r.min_count, r.min_value, r.period_days) for r in level.rules.all()
    )
    if present != seeded:
        return 0  # edited by an admin: left alone
    for rule in new:
        services.add_rule(
            level=level, kind=rule["kind"], params=rule.get("params"),
            min_count=rule.get("min_count", 1), min_value=rule.get("min_value"),
            period_days=rule.get("period_days"),
        )  # fmt: skip
    return len(new)


@transaction.atomic
def seed_skills() -> str:
    """Create whatever is missing of the default framework; returns a line saying what."""
    created = 0
    for position, (slug, name, description) in enumerate(AREAS):
        _, new = SkillArea.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "position": position}
        )
        created += new
    areas = {area.slug: area for area in SkillArea.objects.all()}
    for position, (slug, (area, name, description, _, levels)) in enumerate(SKILLS.items()):
        skill, new = Skill.objects.get_or_create(
            slug=slug,
            defaults={
                "area": areas[area], "name": name, "description": description,
                "position": position,
            },
        )  # fmt: skip
        created += new
        for rank, (match, rules) in enumerate(levels, start=1):
            level, new = SkillLevel.objects.get_or_create(
                skill=skill, rank=rank, defaults={"name": SCALE[rank - 1], "match": match}
            )
            created += new
            if level.rules.exists():
                # An admin's rules are theirs; a level still as seeded gets kinds added since.
                created += _add_new_kinds(level, rules)
                continue
            for rule in rules:
                services.add_rule(
                    level=level, kind=rule["kind"], params=rule.get("params"),
                    min_count=rule.get("min_count", 1), min_value=rule.get("min_value"),
                    period_days=rule.get("period_days"),
                )  # fmt: skip
    skills = {skill.slug: skill for skill in Skill.objects.all()}
    for slug, (*_, prerequisites, _levels) in SKILLS.items():
        if not skills[slug].prerequisites.exists():
            skills[slug].prerequisites.set([skills[p] for p in prerequisites])
    for position, (slug, (name, description, requirements, _)) in enumerate(ROLES.items()):
        role, new = CareerRole.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "position": position}
        )
        created += new
        if new:
            for skill_slug, rank in requirements.items():
                RoleRequirement.objects.create(role=role, skill=skills[skill_slug], rank=rank)
    roles = {role.slug: role for role in CareerRole.objects.all()}
    for slug, (*_, leads_to) in ROLES.items():
        if not roles[slug].leads_to.exists():
            roles[slug].leads_to.set([roles[r] for r in leads_to])
    return f"Skills: default framework present ({created} rows created)."


def seed_skills_demo() -> str:
    """The framework, `sam`'s plan (data analyst → AI trainer, agreed with `maya`, active), and
    everyone's evidence measured from the demo's records."""
    line = seed_skills()
    users = {u.username: u for u in get_user_model().objects.filter(username__in=["sam", "maya"])}
    trainer = CareerRole.objects.get(slug="ai-trainer")
    if len(users) == 2 and not Plan.objects.filter(person=users["sam"]).exists():
        plan = services.create_plan(
            person=users["sam"], target_role=trainer, by=users["sam"],
            note="From data analyst to AI trainer, through data steward.",
        )  # fmt: skip
        services.transition_plan(plan=plan, to=PlanState.AGREED, actor=users["maya"])
        services.transition_plan(plan=plan, to=PlanState.ACTIVE, actor=users["sam"])
    from apps.skills.practice_demo import seed_practice_demo

    line = f"{line} {seed_practice_demo()} {seed_routing_demo()}"
    refreshed = services.refresh_everyone()
    granted = sum(r.granted for r in refreshed)
    return f"{line} Levels measured for {len(refreshed)} people ({granted} granted)."


# The demo process a manager finds routed by expertise on /skills/routing/ (its shadow
# predictions give the cases label regions), and how many of its open cases are routed at once.
ROUTED_DEMO_PROCESS = "ap-invoice-exceptions"
ROUTED_DEMO_CASES = 12


def seed_routing_demo() -> str:
    """The first time only: the demo's AP process switched to routing by expertise with the
    default knobs, its experts' profiles measured, and up to ROUTED_DEMO_CASES of its open cases
    that nobody has labelled or been handed routed, so that the routing page shows whom the
    strategy picked and why. Once it has routed a case, a strategy a manager sets is left alone
    (the policy row itself exists early: measuring a decision's profiles makes it)."""
    from apps.cases.models import Case, CaseStatus, Process
    from apps.skills.models import RoutedCase, RoutingStrategy
    from apps.skills.routing import route_cases, update_policy
    from apps.skills.routing_profiles import refresh_process

    process = Process.objects.select_related("schema").filter(slug=ROUTED_DEMO_PROCESS).first()
    if process is None or RoutedCase.objects.filter(process=process).exists():
        return "Routing: nothing to set up."
    refresh_process(process=process)
    update_policy(process=process, strategy=RoutingStrategy.EXPERTISE)
    fresh = Case.objects.filter(
        process=process, status=CaseStatus.OPEN, label_count=0, routed_to__isnull=True
    ).order_by("-priority", "created_at")
    routed = route_cases(
        process_id=process.pk, case_ids=list(fresh.values_list("pk", flat=True)[:ROUTED_DEMO_CASES])
    )
    return f"Routing: {process.name} routed by expertise ({routed} open cases routed)."
