"""Skills API: a person's levels and evidence, their plans, and the framework. A person's data is
visible to them, their team's managers and organisation admins; to anyone else it is 404."""

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Router, Status

from apps.core.api import validation_errors
from apps.core.evidence_kinds import evidence_kinds
from apps.skills import selectors, services
from apps.skills.models import CareerRole, Plan
from apps.skills.schemas import (
    ErrorOut,
    EvidenceOut,
    FrameworkOut,
    LevelOut,
    PersonSkillOut,
    PersonSkillsOut,
    PlanEventOut,
    PlanIn,
    PlanOut,
    RoleOut,
    RuleOut,
    SkillLevelOut,
    SkillOut,
    TransitionIn,
)

router = Router(tags=["skills"])
_ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


@router.get(
    "/people/{username}/skills",
    response={200: PersonSkillsOut, **_ERRORS},
    summary="A person's skill levels, the evidence behind each and what is missing",
)
def person_skills(request: HttpRequest, username: str) -> PersonSkillsOut:
    person = selectors.person_for(viewer=request.user, username=username)
    skills = []
    for area in selectors.person_skills(person=person):
        for view in area.skills:
            evidence = [
                EvidenceOut(
                    rule_id=rule.rule.pk,
                    level_rank=level.level.rank,
                    kind=rule.rule.kind,
                    description=rule.description,
                    count=rule.evidence.count if rule.evidence else 0,
                    value=rule.evidence.value if rule.evidence else None,
                    met=bool(rule.evidence and rule.evidence.met),
                    missing=rule.missing,
                    since=rule.evidence.since if rule.evidence else None,
                    until=rule.evidence.until if rule.evidence else None,
                    refs=rule.evidence.refs if rule.evidence else [],
                )
                for level in view.levels
                for rule in level.rules
            ]
            nxt = view.next_level
            skills.append(
                PersonSkillOut(
                    skill=view.skill.slug,
                    name=view.skill.name,
                    area=area.area.slug,
                    level=LevelOut(rank=view.level.rank, name=view.level.name)
                    if view.level
                    else None,
                    since=view.since,  # type: ignore[arg-type]
                    next_level=LevelOut(rank=nxt.level.rank, name=nxt.level.name) if nxt else None,
                    missing=[r.missing for r in nxt.rules if r.missing] if nxt else [],
                    evidence=evidence,
                )
            )
    return PersonSkillsOut(username=person.username, skills=skills)


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.pk, person=plan.person.username, target_role=plan.target_role.slug,
        state=plan.state, proposed_by=getattr(plan.proposed_by, "username", None),
        agreed_by=getattr(plan.agreed_by, "username", None), note=plan.note,
        created_at=plan.created_at,
        events=[
            PlanEventOut(
                from_state=e.from_state, to_state=e.to_state,
                actor=getattr(e.actor, "username", None), note=e.note, at=e.at,
            )
            for e in plan.events.select_related("actor")
        ],
    )  # fmt: skip


@router.get(
    "/people/{username}/plans",
    response={200: list[PlanOut], **_ERRORS},
    summary="A person's plans, newest first",
)
def person_plans(request: HttpRequest, username: str) -> list[PlanOut]:
    person = selectors.person_for(viewer=request.user, username=username)
    return [plan_out(plan) for plan in selectors.plans_of(person=person)]


@router.post(
    "/people/{username}/plans",
    response={201: PlanOut, **_ERRORS},
    summary="Start a draft plan towards a target role (the person, or a manager proposing it)",
)
@validation_errors
def create_plan(request: HttpRequest, username: str, body: PlanIn) -> Status:
    person = selectors.person_for(viewer=request.user, username=username)
    role = CareerRole.objects.filter(slug=body.target_role).first()
    if role is None:
        raise ValidationError(f"There is no role {body.target_role!r}.")
    plan = services.create_plan(person=person, target_role=role, by=request.user, note=body.note)
    return Status(201, plan_out(plan))


@router.get("/skills/plans/{plan_id}", response={200: PlanOut, **_ERRORS}, summary="One plan")
def get_plan(request: HttpRequest, plan_id: int) -> PlanOut:
    return plan_out(selectors.plan_for(viewer=request.user, plan_id=plan_id))


@router.post(
    "/skills/plans/{plan_id}/transition",
    response={200: PlanOut, **_ERRORS},
    summary="Move a plan one step: draft → agreed → active → done (422 says why not)",
)
@validation_errors
def transition_plan(request: HttpRequest, plan_id: int, body: TransitionIn) -> PlanOut:
    plan = selectors.plan_for(viewer=request.user, plan_id=plan_id)
    plan = services.transition_plan(plan=plan, to=body.to, actor=request.user, note=body.note)
    return plan_out(selectors.plan_for(viewer=request.user, plan_id=plan.pk))


@router.get(
    "/skills/framework",
    response={200: FrameworkOut, 401: ErrorOut},
    summary="The skill framework: skills with levels and evidence rules, roles, evidence kinds",
)
def framework(request: HttpRequest) -> FrameworkOut:
    skills = [
        SkillOut(
            slug=skill.slug,
            name=skill.name,
            area=area.slug,
            description=skill.description,
            prerequisites=[p.slug for p in skill.prerequisites.all()],
            levels=[
                SkillLevelOut(
                    rank=level.rank,
                    name=level.name,
                    match=level.match,
                    rules=[
                        RuleOut(
                            id=r.pk,
                            kind=r.kind,
                            params=r.params,
                            min_count=r.min_count,
                            min_value=r.min_value,
                            period_days=r.period_days,
                        )
                        for r in level.rules.all()
                    ],
                )
                for level in skill.levels.all()
            ],
        )
        for area in selectors.framework()
        for skill in area.skills.all()
    ]
    roles = [
        RoleOut(
            slug=role.slug,
            name=role.name,
            description=role.description,
            requires={req.skill.slug: req.rank for req in role.requirements.all()},
            leads_to=[r.slug for r in role.leads_to.all()],
        )
        for role in selectors.roles()
    ]
    return FrameworkOut(skills=skills, roles=roles, kinds=[k.key for k in evidence_kinds()])
