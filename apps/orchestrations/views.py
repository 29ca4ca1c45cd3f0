"""Orchestration pages: the list per team (with a form to add one) and an orchestration's page
(versions, stage log, diff against live, stage buttons, rollback, new draft from a version)."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.connectors.selectors import deliveries_of_run, managed_teams
from apps.core.api import reason_of
from apps.core.http import HtmxHttpRequest
from apps.orchestrations import people, selectors, services, site, sla
from apps.orchestrations.errors import StageConflict
from apps.orchestrations.evidence import deploy_evidence
from apps.orchestrations.forms import NewVersionForm, OrchestrationForm, RollbackForm, StageForm
from apps.orchestrations.models import Orchestration, Outcome, RunStep, Stage
from apps.orchestrations.selectors_overview import SLA_WINDOW, with_figures
from apps.orchestrations.services import NEXT_STAGES
from apps.rules.language import describe_action

RUNS_PER_PAGE = 50


@require_http_methods(["GET", "POST"])
@login_required
def orchestration_list(request: HtmxHttpRequest) -> HttpResponse:
    if not selectors.can_view_orchestrations(user=request.user):
        raise PermissionDenied("Orchestrations are for a team's experts, managers and admins.")
    processes = selectors.managed_processes(user=request.user).order_by("team__name", "name")
    form = OrchestrationForm(request.POST or None, processes=processes)
    status = 200
    if request.method == "POST":
        if not processes.exists():
            raise PermissionDenied("Only a team's managers and admins add orchestrations.")
        if form.is_valid():
            try:
                orchestration = services.create_orchestration(
                    process=form.cleaned_data["process"],
                    slug=form.cleaned_data["slug"],
                    name=form.cleaned_data["name"],
                    owner=request.user,
                )
            except ValidationError as exc:
                form.add_error(None, reason_of(exc))
            else:
                messages.success(request, "Orchestration added. Create its first version below.")
                return redirect("orchestration_detail", orchestration_slug=orchestration.slug)
        status = 422
    context = {
        # With today's figures, what waits for people and what fails (three queries for all).
        "orchestrations": with_figures(list(selectors.orchestrations_for(user=request.user))),
        "sla_window_days": SLA_WINDOW.days,
        "form": form if processes.exists() else None,
    }
    return render(request, "orchestrations/list.html", context, status=status)


def _managed(request: HtmxHttpRequest, slug: str) -> Orchestration:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    if not selectors.can_manage(user=request.user, orchestration=orchestration):
        raise PermissionDenied("Only the team's managers and admins change orchestrations.")
    return orchestration


@require_http_methods(["GET"])
@login_required
def orchestration_detail(request: HtmxHttpRequest, orchestration_slug: str) -> HttpResponse:
    """The versions, the stage log and a diff (`?from=&to=`, by default the newest version
    against the live one); htmx swaps only the diff."""
    orchestration = selectors.orchestration_for(user=request.user, slug=orchestration_slug)
    template = "orchestrations/detail.html"
    if request.htmx and request.htmx.target == "version-diff":
        template = "orchestrations/detail.html#version-diff"
    return render(request, template, _detail_context(request, orchestration))


def _detail_context(request: HtmxHttpRequest, orchestration: Orchestration) -> dict:
    versions = list(selectors.versions_of(orchestration=orchestration))
    live = next((v for v in versions if v.stage == Stage.LIVE), None)
    by_number = {v.number: v for v in versions}
    old = by_number.get(_int(request.GET.get("from"))) or live
    new = by_number.get(_int(request.GET.get("to"))) or (versions[0] if versions else None)
    diff = services.diff_versions(old=old, new=new) if old and new and old != new else None
    for version in versions:
        version.next_stages = [s for s in Stage.values if s in NEXT_STAGES[version.stage]]
        version.can_roll_back = version.stage != Stage.DRAFT and (
            live is None or version.number < live.number
        )
    return {
        "orchestration": orchestration,
        "versions": versions,
        "live": live,
        "diff": diff,
        "diff_from": old,
        "diff_to": new,
        "log": selectors.stage_log(orchestration=orchestration),
        "can_manage": selectors.can_manage(user=request.user, orchestration=orchestration),
        # How the shadow and canary candidates compared with experts' outcomes (evidence.py);
        # not for the diff fragment, which doesn't show it.
        "evidence": []
        if request.htmx and request.htmx.target == "version-diff"
        else deploy_evidence(versions=versions),
        **_runs_context(request, orchestration),
        **_site_context(request, orchestration),
    }


def _site_context(request: HtmxHttpRequest, orchestration: Orchestration, error: str = "") -> dict:
    """The site the orchestration is pinned to, how many nodes carry it, its site changes and
    (for organisation admins) the form to change it, with `error` beside the field it is about."""
    on_reason = error.startswith("reason:")
    return {
        "can_set_site": site.can_set_site(user=request.user),
        "site_nodes": site.nodes_at_site(site=orchestration.site),
        "site_log": site.site_log(orchestration=orchestration),
        "site_error": "" if on_reason else error,
        "site_reason_error": error if on_reason else "",
    }


@require_POST
@login_required
def orchestration_site(request: HtmxHttpRequest, orchestration_slug: str) -> HttpResponse:
    """Pin to a site (organisation admins; 403 for anyone else). htmx swaps the site section;
    an invalid site re-renders it (or the page) with the reason, 422."""
    orchestration = selectors.orchestration_for(user=request.user, slug=orchestration_slug)
    if not site.can_set_site(user=request.user):
        raise PermissionDenied(
            "Only an organisation admin pins an orchestration to a site: it decides which "
            "machines see the process's items."
        )
    typed = {
        "site_value": request.POST.get("site", ""),
        "site_reason": request.POST.get("reason", ""),
    }
    try:
        orchestration = site.set_site(
            orchestration=orchestration,
            site=typed["site_value"],
            actor=request.user,
            reason=typed["site_reason"],
        )
    except ValidationError as exc:
        if request.htmx:
            context = {
                "orchestration": orchestration,
                **typed,
                **_site_context(request, orchestration, reason_of(exc)),
            }
            return render(request, "orchestrations/detail.html#site", context, status=422)
        context = _detail_context(request, orchestration)
        context.update(typed, **_site_context(request, orchestration, reason_of(exc)))
        return render(request, "orchestrations/detail.html", context, status=422)
    pinned = f"pinned to site {orchestration.site}" if orchestration.site else "not pinned"
    if request.htmx:
        context = {"orchestration": orchestration, **_site_context(request, orchestration)}
        context["site_saved"] = f"Saved: {pinned}."
        return render(request, "orchestrations/detail.html#site", context)
    messages.success(request, f"{orchestration.name} is {pinned}.")
    return _back(orchestration)


def _runs_context(request: HtmxHttpRequest, orchestration: Orchestration) -> dict:
    """The runs explorer: filters by external id, outcome and version, newest first, paged by
    `before` (the last id of the page)."""
    external_id = request.GET.get("external_id", "").strip()[:200]
    outcome = request.GET.get("outcome", "")
    outcome = outcome if outcome in Outcome.values else ""
    version = _int(request.GET.get("version"))
    runs = list(
        selectors.runs_of(
            orchestration=orchestration, external_id=external_id or None,
            outcome=outcome or None, version=version, before_id=_int(request.GET.get("before")),
        )[: RUNS_PER_PAGE + 1]
    )  # fmt: skip
    more = len(runs) > RUNS_PER_PAGE
    runs = runs[:RUNS_PER_PAGE]
    filters = {"external_id": external_id, "outcome": outcome, "version": version}
    return {
        "runs": runs,
        "run_filters": filters,
        "outcomes": Outcome.choices,
        "older_than": runs[-1].pk if more else None,
        "run_query": urlencode({k: v for k, v in filters.items() if v}),
    }


def _step_summary(step: RunStep) -> str:
    """One sentence for a trace step, from what the step recorded (not today's components)."""
    data = step.data
    match step.kind:
        case "received":
            return f"Taken by version {data.get('version')} ({data.get('stage')})."
        case "exception_check":
            if data.get("filter") is None:
                return "No exception filter: every item is an exception."
            return "The exception filter " + (
                "matched: an exception." if data.get("exception") else "did not match."
            )
        case "rules_evaluated":
            hit = data.get("hit")
            count = len(data.get("rules") or [])
            if hit:
                return (
                    f"{count} pinned rule(s) checked; rule #{hit['rule']} v{hit['version']} acted."
                )
            return f"{count} pinned rule(s) checked; none acted."
        case "model":
            return (
                f"Model version {data.get('model_version')} predicted {data.get('label')} "
                f"at confidence {data.get('confidence')}."
            )
        case "autonomy":
            verdict = "the model decides" if data.get("decides") else "an expert decides"
            audit = ""
            if "audited" in data:
                drawn = "audited." if data["audited"] else "not audited."
                audit = (
                    f" Audit draw {data['audit_draw']} against rate {data['audit_rate']}: {drawn}"
                )
            return (
                f"Level {data.get('level')}, threshold {data.get('threshold')}, confidence "
                f"{data.get('confidence')}: {verdict}.{audit}"
            )
        case "decided":
            return f"Decided {data.get('label')} by {data.get('by')}."
        case "route":
            due = f", due by {data['due_by'][:16]}" if data.get("due_by") else ""
            return f"Routed to {data.get('to') or 'the review queue'}{due}."
        case "standard":
            return "Standard: handled by the process the usual way."
        case "shadow":
            return (
                f"Shadow version {data.get('version')} would have given {data.get('outcome')}"
                + (f" ({data.get('label')})" if data.get("label") else "")
                + "; it acted on nothing."
            )
        case "challenger":
            champion = data.get("champion") or {}
            side = "at or above" if data.get("confident") else "below"
            return (
                f"Challenger model v{data.get('model_version')} would have said "
                f"{data.get('label')} at confidence {data.get('confidence')} ({side} the "
                f"threshold {data.get('threshold')}); the live model said "
                f"{champion.get('label') or 'nothing'}. It acted on nothing."
            )
        case "sla_breached":
            return sla.step_summary(data)
    return people.step_summary(step.kind, data)


@require_http_methods(["GET"])
@login_required
def orchestration_run(
    request: HtmxHttpRequest, orchestration_slug: str, run_id: int
) -> HttpResponse:
    """One run and its trace: why it was decided, routed or standard."""
    orchestration = selectors.orchestration_for(user=request.user, slug=orchestration_slug)
    run = selectors.run_of(orchestration=orchestration, run_id=run_id)
    steps = list(run.steps.all())
    for step in steps:
        step.summary = _step_summary(step)
        step.rules = step.data.get("rules") if step.kind == "rules_evaluated" else None
        for rule in step.rules or []:
            rule["action_text"] = describe_action(rule["action"]) if rule.get("action") else ""
    context = {
        "orchestration": orchestration,
        "run": run,
        "steps": steps,
        # The connector events sent for this run and their attempts (connectors' delivery log).
        "deliveries": deliveries_of_run(run_id=run.pk),
        "can_manage_connectors": managed_teams(user=request.user)
        .filter(pk=orchestration.team_id)
        .exists(),
    }
    return render(request, "orchestrations/run.html", context)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def _back(orchestration: Orchestration) -> HttpResponse:
    return redirect("orchestration_detail", orchestration_slug=orchestration.slug)


@require_POST
@login_required
def orchestration_new_version(request: HtmxHttpRequest, orchestration_slug: str) -> HttpResponse:
    """A new draft, copying the components of `from_version` when given."""
    orchestration = _managed(request, orchestration_slug)
    form = NewVersionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a version to start from.")
        return _back(orchestration)
    base = None
    if form.cleaned_data["from_version"]:
        base = orchestration.versions.filter(number=form.cleaned_data["from_version"]).first()
    try:
        version = services.create_version(
            orchestration=orchestration, actor=request.user, values={}, base=base
        )
    except ValidationError as exc:
        messages.error(request, f"No new version: {reason_of(exc)}")
    else:
        messages.success(request, f"Draft version {version.number} created.")
    return _back(orchestration)


@require_POST
@login_required
def orchestration_stage(
    request: HtmxHttpRequest, orchestration_slug: str, number: int
) -> HttpResponse:
    orchestration = _managed(request, orchestration_slug)
    version = selectors.version_of(orchestration=orchestration, number=number)
    form = StageForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Stage not changed: " + form.errors.as_text())
        return _back(orchestration)
    try:
        services.change_stage(
            version=version,
            stage=form.cleaned_data["stage"],
            actor=request.user,
            reason=form.cleaned_data["reason"],
            canary_share=form.cleaned_data["canary_share"],
        )
    except (ValidationError, StageConflict) as exc:
        reason = reason_of(exc) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, f"Stage not changed: {reason}")
    else:
        messages.success(request, f"Version {number} is now {form.cleaned_data['stage']}.")
    return _back(orchestration)


@require_POST
@login_required
def orchestration_rollback(request: HtmxHttpRequest, orchestration_slug: str) -> HttpResponse:
    orchestration = _managed(request, orchestration_slug)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not rolled back: say which version and why.")
        return _back(orchestration)
    try:
        services.rollback(
            orchestration=orchestration,
            to_number=form.cleaned_data["to"],
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
    except (ValidationError, StageConflict) as exc:
        reason = reason_of(exc) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, f"Not rolled back: {reason}")
    else:
        messages.success(request, f"Version {form.cleaned_data['to']} is live again.")
    return _back(orchestration)
