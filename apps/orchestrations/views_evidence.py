"""The champion/challenger page: the live version's model against a challenger model on the same
items, over a period, with the owner's actions (set or stop the challenger, promote it to a
draft version)."""

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.api import reason_of
from apps.core.http import HtmxHttpRequest
from apps.orchestrations import challenger, evidence, selectors
from apps.orchestrations.errors import StageConflict
from apps.orchestrations.forms import ChallengerForm, ComparisonPeriodForm, PromoteChallengerForm
from apps.orchestrations.models import Orchestration


def _period(form: ComparisonPeriodForm) -> tuple[datetime, datetime]:
    """Whole days in the server's zone: from the start of `since` to the end of `until`."""
    today = timezone.localdate()
    until_day = form.cleaned_data.get("until") or today
    since_day = form.cleaned_data.get("since") or until_day - timedelta(
        days=evidence.DEFAULT_DAYS - 1
    )
    zone = timezone.get_current_timezone()
    since = datetime.combine(since_day, time.min, tzinfo=zone)
    until = datetime.combine(until_day + timedelta(days=1), time.min, tzinfo=zone)
    return evidence.clean_period(since, until)


@require_http_methods(["GET"])
@login_required
def orchestration_challenger(request: HtmxHttpRequest, orchestration_slug: str) -> HttpResponse:
    """The comparison over `?since=&until=` (dates; default the last 30 days) for `?model=` (an
    earlier challenger; default the current one). A bad period re-renders with its error (422)."""
    orchestration = selectors.orchestration_for(user=request.user, slug=orchestration_slug)
    form = ComparisonPeriodForm(request.GET)  # every field optional: an empty query is valid
    comparison, status = None, 200
    if form.is_valid():
        try:
            since, until = _period(form)
        except ValidationError as exc:
            form.add_error(None, reason_of(exc))
            status = 422
        else:
            comparison = evidence.challenger_comparison(
                orchestration=orchestration, since=since, until=until,
                model_version=form.cleaned_data.get("model"),
            )  # fmt: skip
    else:
        status = 422
    live = selectors.live_version(orchestration=orchestration)
    context = {
        "orchestration": orchestration,
        "live": live,
        "form": form,
        "comparison": comparison,
        "models": orchestration.process.model_versions.order_by("-version"),
        "earlier": evidence.challenger_models(orchestration=orchestration),
        "log": challenger.challenger_log(orchestration=orchestration),
        "can_manage": selectors.can_manage(user=request.user, orchestration=orchestration),
    }
    return render(request, "orchestrations/challenger.html", context, status=status)


def _managed(request: HtmxHttpRequest, slug: str) -> Orchestration:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    if not selectors.can_manage(user=request.user, orchestration=orchestration):
        raise PermissionDenied("Only the team's managers and admins change orchestrations.")
    return orchestration


def _back(orchestration: Orchestration) -> HttpResponse:
    return redirect("orchestration_challenger", orchestration_slug=orchestration.slug)


@require_POST
@login_required
def orchestration_challenger_set(request: HtmxHttpRequest, orchestration_slug: str) -> HttpResponse:
    orchestration = _managed(request, orchestration_slug)
    form = ChallengerForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Challenger not changed: " + form.errors.as_text())
        return _back(orchestration)
    number = form.cleaned_data["model_version"]
    try:
        challenger.set_challenger(
            orchestration=orchestration, model_version=number, actor=request.user,
            reason=form.cleaned_data["reason"],
        )  # fmt: skip
    except ValidationError as exc:
        messages.error(request, f"Challenger not changed: {reason_of(exc)}")
    else:
        messages.success(
            request,
            f"Model version {number} now challenges the live version."
            if number
            else "The challenger is stopped.",
        )
    return _back(orchestration)


@require_POST
@login_required
def orchestration_challenger_promote(
    request: HtmxHttpRequest, orchestration_slug: str
) -> HttpResponse:
    """A new draft with the challenger as model; the comparison of the last 30 days is logged
    with it."""
    orchestration = _managed(request, orchestration_slug)
    form = PromoteChallengerForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not promoted: say why.")
        return _back(orchestration)
    since, until = evidence.clean_period(None, None)
    seen = evidence.challenger_comparison(orchestration=orchestration, since=since, until=until)
    try:
        draft = challenger.promote_challenger(
            orchestration=orchestration, actor=request.user, reason=form.cleaned_data["reason"],
            evidence=evidence.as_data(seen),
        )  # fmt: skip
    except (ValidationError, StageConflict) as exc:
        reason = reason_of(exc) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, f"Not promoted: {reason}")
        return _back(orchestration)
    messages.success(
        request,
        f"Draft version {draft.number} pins the challenger (model v{draft.model_version.version}"
        f", level {draft.autonomy_level}). Put it in shadow or canary to gather evidence.",
    )
    return redirect("orchestration_detail", orchestration_slug=orchestration.slug)
