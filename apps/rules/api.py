"""Rules API: author rules (experts, managers, admins of the team), backtest, enable/disable."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.errors import HttpError

from apps.cases import selectors as case_selectors
from apps.cases.models import Process
from apps.core.api import validation_errors
from apps.rules import selectors
from apps.rules.models import RejectedCandidate, Rule
from apps.rules.schemas import (
    CandidateOut,
    DraftIn,
    DraftOut,
    ErrorOut,
    InduceIn,
    InductionOut,
    RejectionIn,
    RejectionOut,
    RuleIn,
    RuleOut,
    RuleRevisionIn,
)
from apps.rules.services import authoring, backtest, drafting, induction, rejections

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
    summary="Propose candidate rules from the decided cases (decision tree or rule list)",
)
@validation_errors
def induce_rules(request: HttpRequest, slug: str, payload: InduceIn | None = None) -> InductionOut:
    process = _process(request, slug, author=True)
    method = payload.method if payload else "tree"
    candidates = induction.induce_rules(process=process, method=method)
    return InductionOut(
        method=method,
        candidates=[
            CandidateOut(
                condition=c.condition,
                action=c.action,
                sentence=c.sentence,
                support=c.support,
                correct=c.correct,
                precision=round(c.precision, 4),
                method=c.method,
                fingerprint=c.fingerprint,
            )
            for c in candidates
        ],
    )


def _rejection_out(rejection: RejectedCandidate) -> RejectionOut:
    return RejectionOut(
        id=rejection.pk,
        condition=rejection.condition,
        action=rejection.action,
        sentence=rejection.sentence,
        fingerprint=rejection.fingerprint,
        reason=rejection.reason,
        evidence=rejection.evidence,
        rejected_by=rejection.rejected_by.username if rejection.rejected_by else None,
        rejected_at=rejection.rejected_at,
    )


@router.get(
    "/processes/{slug}/rules/rejections",
    response={200: list[RejectionOut], **_ERRORS},
    summary="Rejected candidate rules, latest first, with who rejected them and why",
)
def list_rejections(request: HttpRequest, slug: str) -> list[RejectionOut]:
    process = _process(request, slug)
    return [_rejection_out(r) for r in selectors.rejections_of(process=process)]


@router.post(
    "/processes/{slug}/rules/rejections",
    response={201: RejectionOut, 409: ErrorOut, **_ERRORS},
    summary="Reject a candidate rule with a reason (induction will not propose it again)",
)
@validation_errors
def reject_candidate(request: HttpRequest, slug: str, payload: RejectionIn) -> Status:
    process = _process(request, slug, author=True)
    try:
        rejection = rejections.reject_candidate(
            process=process,
            rejected_by=request.user,
            condition=payload.condition,
            action=payload.action,
            reason=payload.reason,
            evidence=payload.evidence,
        )
    except rejections.AlreadyRejected as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, _rejection_out(rejection))


@router.post(
    "/processes/{slug}/rules/draft",
    response={200: DraftOut, 409: ErrorOut, 502: ErrorOut, **_ERRORS},
    summary="Ask the configured chat model to draft a rule from cases' rationales (not saved)",
)
@validation_errors
def draft_rule(request: HttpRequest, slug: str, payload: DraftIn) -> DraftOut:
    process = _process(request, slug, author=True)
    try:
        draft = drafting.draft_rule(
            process=process, label=payload.label, case_ids=payload.cases, viewer=request.user
        )
    except drafting.DraftingOff as exc:
        raise HttpError(409, str(exc)) from None
    except drafting.DraftFailed as exc:
        reply = f" Its reply: {exc.reply}" if exc.reply else ""
        raise HttpError(502, f"{exc}.{reply}") from None
    return DraftOut(
        condition=draft.condition,
        action=draft.action,
        sentence=draft.sentence,
        model=draft.model,
        provenance=draft.provenance,
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
