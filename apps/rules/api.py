"""Rules API: author rules (experts, managers, admins of the team), backtest, enable/disable."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.errors import HttpError

from apps.cases import selectors as case_selectors
from apps.cases.models import Process
from apps.core.api import validation_errors
from apps.rules import selectors
from apps.rules.models import Rule
from apps.rules.schemas import CandidateOut, ErrorOut, InductionOut, RuleIn, RuleOut, RuleRevisionIn
from apps.rules.services import authoring, backtest, induction

router = Router(tags=["rules"])
_ERRORS = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _process(request: HttpRequest, slug: str, *, author: bool = False) -> Process:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if author and not selectors.can_author(user=request.user, process=process):
        raise HttpError(403, "Only the team's experts, managers and admins write rules.")
    return process


def _out(rule: Rule) -> RuleOut:
    version = rule.current
    return RuleOut(
        id=rule.pk,
        name=rule.name,
        description=rule.description,
        owner=rule.owner.username,
        priority=rule.priority,
        enabled=rule.enabled,
        version=version.version,
        condition=version.condition,
        action=version.action,
        sentence=version.sentence,
        backtest=version.backtest,
        backtested_at=version.backtested_at,
        provenance=rule.provenance,
    )


@router.get(
    "/processes/{slug}/rules",
    response={200: list[RuleOut], **_ERRORS},
    summary="The process's rules by priority",
)
def list_rules(request: HttpRequest, slug: str) -> list[RuleOut]:
    return [_out(rule) for rule in selectors.rules_of(process=_process(request, slug))]


@router.post(
    "/processes/{slug}/rules",
    response={201: RuleOut, **_ERRORS},
    summary="Write a rule (created disabled)",
)
@validation_errors
def create_rule(request: HttpRequest, slug: str, payload: RuleIn) -> Status:
    process = _process(request, slug, author=True)
    rule = authoring.create_rule(
        process=process,
        owner=request.user,
        name=payload.name,
        description=payload.description,
        priority=payload.priority,
        condition=payload.condition,
        action=payload.action,
        provenance=payload.provenance,
    )
    return Status(201, _out(rule))


@router.post(
    "/processes/{slug}/rules/induce",
    response={200: InductionOut, **_ERRORS},
    summary="Propose candidate rules from the decided cases (a shallow decision tree)",
)
@validation_errors
def induce_rules(request: HttpRequest, slug: str) -> InductionOut:
    process = _process(request, slug, author=True)
    candidates = induction.induce_rules(process=process)
    return InductionOut(
        candidates=[
            CandidateOut(
                condition=c.condition,
                action=c.action,
                sentence=c.sentence,
                support=c.support,
                correct=c.correct,
                precision=round(c.precision, 4),
            )
            for c in candidates
        ]
    )


def _rule(request: HttpRequest, slug: str, rule_id: int, *, author: bool = False) -> Rule:
    process = _process(request, slug, author=author)
    return get_object_or_404(
        Rule.objects.select_related("current", "owner", "process__schema"),
        pk=rule_id,
        process=process,
    )


@router.put(
    "/processes/{slug}/rules/{rule_id}",
    response={200: RuleOut, **_ERRORS},
    summary="A new version of a rule (disables it until backtested)",
)
@validation_errors
def revise_rule(request: HttpRequest, slug: str, rule_id: int, payload: RuleRevisionIn) -> RuleOut:
    rule = _rule(request, slug, rule_id, author=True)
    authoring.revise_rule(
        rule=rule, author=request.user, condition=payload.condition, action=payload.action
    )
    rule.refresh_from_db()
    return _out(rule)


@router.post(
    "/processes/{slug}/rules/{rule_id}/backtest",
    response={200: RuleOut, **_ERRORS},
    summary="Backtest the current version against decided cases",
)
def backtest_rule(request: HttpRequest, slug: str, rule_id: int) -> RuleOut:
    rule = _rule(request, slug, rule_id, author=True)
    backtest.backtest_rule(rule=rule)
    return _out(rule)


@router.post(
    "/processes/{slug}/rules/{rule_id}/enable",
    response={200: RuleOut, **_ERRORS},
    summary="Enable a backtested rule",
)
@validation_errors
def enable_rule(request: HttpRequest, slug: str, rule_id: int) -> RuleOut:
    return _out(authoring.enable_rule(rule=_rule(request, slug, rule_id, author=True)))


@router.post(
    "/processes/{slug}/rules/{rule_id}/disable",
    response={200: RuleOut, **_ERRORS},
    summary="Disable a rule",
)
def disable_rule(request: HttpRequest, slug: str, rule_id: int) -> RuleOut:
    return _out(authoring.disable_rule(rule=_rule(request, slug, rule_id, author=True)))
