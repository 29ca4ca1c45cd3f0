"""Skills API: a person's levels and evidence, their plans, and the framework. A person's data is
visible to them, their team's managers and organisation admins; to anyone else it is 404."""

import json
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from ninja import Router, Status
from ninja.errors import HttpError

from apps.core.api import validation_errors
from apps.people.selectors import is_org_admin
from apps.skills import framework_io, matrix, selectors, services
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
    TransitionIn,
)
from apps.skills.schemas_matrix import (
    ImportErrorOut,
    ImportOut,
    ImportProblemOut,
    MatrixCellOut,
    MatrixEvidenceOut,
    MatrixPersonOut,
    MatrixPlanOut,
    MatrixSkillOut,
    ProcessSpofOut,
    SkillSpofOut,
    SpofsOut,
    TeamSkillsOut,
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
    summary="The skill framework as one document (areas, skills with levels, evidence rules and "
    "prerequisites, roles): what POST imports",
)
def framework(request: HttpRequest) -> dict:
    return framework_io.export_framework()


@router.post(
    "/skills/framework",
    response={200: ImportOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ImportErrorOut},
    summary="Import a framework document (organisation admins): all or nothing, every problem "
    "listed with its path",
    # The body is read here, not by ninja, so that every problem is reported with its path in one
    # 422 (a schema would stop at the first); it is the document GET answers.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/FrameworkOut"}}
            },
        }
    },
)
def import_framework(request: HttpRequest) -> Status:
    if not is_org_admin(user=request.user):
        raise HttpError(403, "Only organisation admins import the skill framework.")
    try:
        document = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        raise HttpError(400, "The body is not JSON.") from None
    try:
        summary = framework_io.import_framework(document=document)
    except framework_io.FrameworkImportError as exc:
        return Status(
            422,
            ImportErrorOut(
                detail=f"Nothing was imported: {len(exc.problems)} problem(s).",
                errors=[ImportProblemOut(path=p.path, message=p.message) for p in exc.problems],
            ),
        )
    return Status(
        200,
        ImportOut(
            detail=str(summary), created=summary.created, updated=summary.updated,
            rules_removed=summary.rules_removed,
        ),
    )  # fmt: skip


@router.get(
    "/teams/{slug}/skills",
    response={200: TeamSkillsOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="A team's skills matrix (managers and admins of the team): people by skills with "
    "levels and evidence, single points of failure, open plans",
)
def team_skills(request: HttpRequest, slug: str, min_rank: int = 2) -> TeamSkillsOut:
    try:
        team = matrix.team_matrix_for(viewer=request.user, slug=slug)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from exc
    data = matrix.team_matrix(team=team, min_rank=max(1, min(min_rank, 20)))

    def level(lv: Any) -> LevelOut | None:
        return LevelOut(rank=lv.rank, name=lv.name) if lv is not None else None

    return TeamSkillsOut(
        team=team.slug,
        min_rank=data.min_rank,
        skills=[
            MatrixSkillOut(
                slug=s.slug, name=s.name, area=s.area.slug,
                levels=[LevelOut(rank=lv.rank, name=lv.name) for lv in s.levels.all()],
            )
            for s in data.skills
        ],
        people=[
            MatrixPersonOut(
                username=row.person.username,
                name=row.person.get_full_name(),
                skills=[
                    MatrixCellOut(
                        skill=cell.skill.slug, level=level(cell.level), since=cell.since,
                        evidence=[
                            MatrixEvidenceOut(
                                description=e.description, count=e.count, value=e.value,
                                met=e.met,
                            )
                            for e in cell.evidence
                        ],
                    )
                    for cell in row.cells
                ],
            )
            for row in data.rows
        ],
        single_points_of_failure=SpofsOut(
            skills=[
                SkillSpofOut(skill=s.skill.slug, holder=s.holder.username, level=level(s.level))
                for s in data.skill_spofs
            ],
            processes=[
                ProcessSpofOut(
                    process=p.slug, name=p.name, expert=p.expert, decisions=p.decisions,
                    last_at=p.last_at,
                )
                for p in data.process_spofs
            ],
            uncovered=[s.slug for s in data.uncovered],
        ),
        plans=[
            MatrixPlanOut(
                id=p.plan.pk, person=p.plan.person.username, target_role=p.plan.target_role.slug,
                state=p.plan.state, waits_for_agreement=p.waits_for_agreement,
                review_requested=p.review_requested,
            )
            for p in data.plans
        ],
    )  # fmt: skip
