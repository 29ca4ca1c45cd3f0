"""The process quality page (agreement) and the adjudication queue (settling disagreements)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.cases import selectors, selectors_quality
from apps.cases.errors import CaseConflict
from apps.cases.forms import AdjudicationForm
from apps.cases.models import Case, CaseStatus, Process
from apps.cases.services.decisions import adjudicate_case
from apps.core.display import readable_code
from apps.core.http import HtmxHttpRequest

# Landis & Koch (1977): the usual words for kappa-like values, shown next to the overall figure.
_STRENGTH = [
    (0.0, "worse than chance"),
    (0.2, "slight"),
    (0.4, "fair"),
    (0.6, "moderate"),
    (0.8, "substantial"),
]


def strength_of(value: float | None) -> str:
    if value is None:
        return ""
    for upper, word in _STRENGTH:
        if value <= upper:
            return word
    return "almost perfect"


@require_GET
@login_required
def process_quality(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    labels = selectors.visible_decisions(
        user=request.user, process=process, decisions=selectors.review_decisions(process=process)
    )
    stats = selectors_quality.process_agreement(process=process, labels=labels)
    context = {
        "process": process,
        "stats": stats,
        "strength": strength_of(stats.overall),
        "queue_size": selectors_quality.adjudication_size(process=process),
        "can_adjudicate": selectors.can_adjudicate(user=request.user, process=process),
        "can_manage": selectors.can_manage_process(user=request.user, process=process),
    }
    return render(request, "cases/quality.html", context)


def _adjudicable_process(request: HtmxHttpRequest, slug: str) -> Process:
    process = selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_adjudicate(user=request.user, process=process):
        if process.adjudicators.exists():
            reason = "Only the adjudicators named for this process settle its disagreements."
        else:
            reason = "Only the team's managers settle this process's disagreements."
        raise PermissionDenied(reason)
    return process


def _case_ref(case: Case) -> str:
    return case.external_id or f"#{case.pk}"


def _field_rows(case: Case) -> list[dict[str, object]]:
    """The case's fields in schema order, the ones at fault flagged, then any not in the schema."""
    at_fault = set(case.exception_fields or [])
    rows = [
        {
            "name": spec["name"],
            "label": spec.get("label") or spec["name"],
            "value": case.fields.get(spec["name"]),
            "type": spec["type"],
            "currency": spec.get("currency", ""),
            "at_fault": spec["name"] in at_fault,
        }
        for spec in case.schema_version.fields
    ]
    known = {spec["name"] for spec in case.schema_version.fields}
    rows.extend(
        {
            "name": name,
            "label": name,
            "value": value,
            "type": "",
            "currency": "",
            "at_fault": name in at_fault,
        }
        for name, value in case.fields.items()
        if name not in known
    )
    return rows


def _decision_options(process: Process) -> list[dict[str, object]]:
    return process.schema.decisions if process.schema else []


def _queue_page(
    request: HtmxHttpRequest,
    process: Process,
    *,
    case: Case | None = None,
    status: int = 200,
    error: str = "",
    conflict: str = "",
    notice: str = "",
    draft: dict[str, str] | None = None,
    form: AdjudicationForm | None = None,
) -> HttpResponse:
    if case is None:
        case = selectors_quality.next_case_to_adjudicate(process=process)
    decisions = []
    if case is not None:
        labels = {
            spec["name"]: spec.get("label") or spec["name"] for spec in case.schema_version.fields
        }
        for decision in selectors_quality.competing_decisions(case=case):
            decision.key_factor_labels = [labels.get(name, name) for name in decision.key_factors]
            decisions.append(decision)
    context = {
        "process": process,
        "case": case,
        "case_ref": _case_ref(case) if case else "",
        "field_rows": _field_rows(case) if case else [],
        "decisions": decisions,
        "options": _decision_options(process),
        "form": form,
        "queue_size": selectors_quality.adjudication_size(process=process),
        "settlements": selectors_quality.recent_settlements(process=process),
        "error": error,
        "conflict": conflict,
        "notice": notice,
        "draft": draft or {},
    }
    template = (
        "cases/adjudication.html#adjudication-pane" if request.htmx else "cases/adjudication.html"
    )
    return render(request, template, context, status=status)


@require_GET
@login_required
def adjudication_queue(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = _adjudicable_process(request, slug)
    return _queue_page(request, process)


def _conflict_message(case: Case) -> str:
    case.refresh_from_db()
    settlement = selectors_quality.settlement_of(case=case)
    if case.status == CaseStatus.DECIDED and settlement is not None:
        when = timezone.localtime(settlement.decided_at).strftime("%Y-%m-%d %H:%M")
        return (
            f"Case {_case_ref(case)} was already settled by {settlement.expert.username} as "
            f"“{readable_code(settlement.label)}” at {when}; your decision was not recorded."
        )
    if case.status == CaseStatus.DECIDED:
        return (
            f"Case {_case_ref(case)} is already decided (“{readable_code(case.final_label)}”); "
            "your decision was not recorded."
        )
    return (
        f"Case {_case_ref(case)} no longer awaits adjudication (a label was withdrawn, so it "
        "went back to review); your decision was not recorded."
    )


@require_POST
@login_required
def adjudication_settle(request: HtmxHttpRequest, slug: str, case_id: int) -> HttpResponse:
    process = _adjudicable_process(request, slug)
    case = get_object_or_404(
        Case.objects.select_related("schema_version"), pk=case_id, process=process
    )
    draft = {
        "label": request.POST.get("label", "").strip(),
        "reason_code": request.POST.get("reason_code", "").strip(),
        "rationale": request.POST.get("rationale", "").strip(),
    }
    form = AdjudicationForm(request.POST, decisions=_decision_options(process))
    try:
        if not form.is_valid():
            raise ValidationError("The decision was not recorded: see below.")
        adjudicate_case(case=case, adjudicator=request.user, **form.cleaned_data)
    except ValidationError as exc:
        if case.status != CaseStatus.ADJUDICATION:
            # Bad input on a case someone else settled meanwhile: the conflict matters more.
            return _queue_page(
                request, process, status=409, conflict=_conflict_message(case), draft=draft
            )
        return _queue_page(
            request,
            process,
            case=case,
            status=422,
            error=" ".join(exc.messages),
            draft=draft,
            form=form,
        )
    except CaseConflict:
        return _queue_page(
            request, process, status=409, conflict=_conflict_message(case), draft=draft
        )
    notice = f"Settled case {_case_ref(case)} as “{readable_code(draft['label'])}” (by {request.user.username})."
    if request.htmx:
        return _queue_page(request, process, notice=notice)
    messages.success(request, notice)
    return redirect("adjudication_queue", slug=process.slug)
