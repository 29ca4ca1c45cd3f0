"""Likely label errors: decided cases whose only label the promoted model confidently doubts, with
a button that reopens one for a second, independent label."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.cases import selectors
from apps.cases.errors import CaseConflict
from apps.cases.models import Case, Process
from apps.cases.services.second_look import can_request_second_look, request_second_look
from apps.classifiers import active, services
from apps.core.http import HtmxHttpRequest

PAGE = "classifiers/label_errors.html"
SHOWN = 200


def _process(request: HtmxHttpRequest, slug: str) -> Process:
    process = selectors.process_for_member(user=request.user, slug=slug)
    if not can_request_second_look(user=request.user, process=process):
        raise PermissionDenied("Only the team's experts, managers and admins can see label doubts.")
    return process


@require_GET
@login_required
def label_errors(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = _process(request, slug)
    context: dict[str, object] = {"process": process, "report": None, "problem": ""}
    try:
        report = active.likely_label_errors(process=process)
    except services.NoPromotedModel as exc:
        context["problem"] = str(exc)
    except services.ArtifactTampered as exc:
        context["problem"] = f"The promoted model could not be loaded: {exc}"
    else:
        context["report"] = report
        context["errors"] = report.errors[:SHOWN]
    return render(request, PAGE, context)


def _model_opinion(case: Case) -> dict[str, object]:
    """The model's view at the time of asking, kept on the case's timeline."""
    version = services.promoted_version(process=case.process)
    if version is None:
        return {}
    try:
        [prediction] = services.predict_cases(version=version, cases=[case])
    except Exception:  # the request stands without the model's view
        return {}
    return {
        "model_version": version.version,
        "model_label": prediction.label,
        "model_confidence": round(prediction.confidence, 4),
    }


@require_POST
@login_required
def second_look(request: HtmxHttpRequest, slug: str, case_id: int) -> HttpResponse:
    process = _process(request, slug)
    case = selectors.case_for_member(user=request.user, case_id=case_id)
    if case.process_id != process.pk:
        raise Http404("No such case in this process")
    try:
        request_second_look(case=case, by=request.user, reason=_model_opinion(case))
    except (CaseConflict, ValidationError) as exc:
        status = 409 if isinstance(exc, CaseConflict) else 422
        text = str(exc) if isinstance(exc, CaseConflict) else " ".join(exc.messages)
        if not request.htmx:
            messages.error(request, text)
            return redirect("label_errors", slug=process.slug)
        return render(
            request, f"{PAGE}#second-look-row", {"case": case, "error": text}, status=status
        )
    message = (
        f"Case {case.external_id or case.pk} is open again for one more independent label; "
        "the queue offers it to another expert."
    )
    if not request.htmx:
        messages.success(request, message)
        return redirect("label_errors", slug=process.slug)
    return render(request, f"{PAGE}#second-look-row", {"case": case, "done": message})
