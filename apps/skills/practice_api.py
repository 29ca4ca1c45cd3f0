"""Practice API: a process's gold cases (its team's managers and admins: others in the team 403,
outsiders 404) and a person's practice accuracy (the person, their managers and admins: anyone
else 404, as for their skills)."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from apps.cases.models import Process
from apps.cases.selectors import process_for_member
from apps.core.api import validation_errors
from apps.skills import gold as gold_services
from apps.skills import practice, selectors
from apps.skills.models import GoldCase
from apps.skills.schemas import ErrorOut

router = Router(tags=["skills"])
_ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class GoldOut(Schema):
    case_id: int
    external_id: str | None
    label: str
    reason_code: str
    rationale: str
    marked_by: str | None
    marked_at: datetime
    attempts: int
    right: int


class GoldIn(Schema):
    case_id: int
    rationale: str = ""


class AccuracyOut(Schema):
    process: str
    attempts: int
    right: int
    accuracy: float | None
    gold_cases: int


class PracticeOut(Schema):
    username: str
    processes: list[AccuracyOut]


def _managed(request: HttpRequest, slug: str) -> Process:
    process = process_for_member(user=request.user, slug=slug)
    if not gold_services.can_manage_gold(user=request.user, process=process):
        raise HttpError(403, "Only the team's managers and admins choose gold cases.")
    return process


def _gold_out(gold: GoldCase, attempts: int = 0, right: int = 0) -> GoldOut:
    return GoldOut(
        case_id=gold.case_id,
        external_id=gold.case.external_id,
        label=gold.label,
        reason_code=gold.reason_code,
        rationale=gold.rationale,
        marked_by=getattr(gold.marked_by, "username", None),
        marked_at=gold.marked_at,
        attempts=attempts,
        right=right,
    )


@router.get(
    "/processes/{slug}/gold",
    response={200: list[GoldOut], **_ERRORS},
    summary="A process's gold cases (known answers for practice), newest first",
)
def list_gold(request: HttpRequest, slug: str) -> list[GoldOut]:
    process = _managed(request, slug)
    return [
        _gold_out(g, g.attempt_count, g.right_count)
        for g in gold_services.gold_cases(process=process)
    ]


@router.post(
    "/processes/{slug}/gold",
    response={201: GoldOut, **_ERRORS},
    summary="Mark a decided case gold: its final label is the answer (422 for an open case)",
)
@validation_errors
def mark_gold(request: HttpRequest, slug: str, body: GoldIn) -> Status:
    process = _managed(request, slug)
    case = process.cases.filter(pk=body.case_id).first()
    if case is None:
        raise ValidationError(f"{process.name} has no case {body.case_id}.")
    gold = gold_services.mark_gold(case=case, by=request.user, rationale=body.rationale)
    return Status(201, _gold_out(gold))


@router.delete(
    "/processes/{slug}/gold/{case_id}",
    response={204: None, **_ERRORS},
    summary="Unmark a gold case (its practice answers are kept)",
)
@validation_errors
def unmark_gold(request: HttpRequest, slug: str, case_id: int) -> Status:
    process = _managed(request, slug)
    gold = gold_services.gold_for_manager(user=request.user, process=process, case_id=case_id)
    gold_services.unmark_gold(gold=gold, by=request.user)
    return Status(204, None)


@router.get(
    "/people/{username}/practice",
    response={200: PracticeOut, 401: ErrorOut, 404: ErrorOut},
    summary="A person's accuracy on gold cases, per process (them, their managers, admins)",
)
def person_practice(request: HttpRequest, username: str) -> PracticeOut:
    person: AbstractBaseUser = selectors.person_for(viewer=request.user, username=username)
    return PracticeOut(
        username=person.username,
        processes=[
            AccuracyOut(
                process=row.process.slug,
                attempts=row.attempts,
                right=row.right,
                accuracy=row.share,
                gold_cases=row.golds,
            )
            for row in practice.practice_overview(person=person)
        ],
    )
