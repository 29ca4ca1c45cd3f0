from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.autonomy import selectors
from apps.autonomy.forms import DemoteForm, PromoteForm, SettingsForm, ShadowForm
from apps.autonomy.models import LEVEL_HELP, Level
from apps.autonomy.services import gate, levels, shadow
from apps.cases import selectors as case_selectors
from apps.cases.models import Process
from apps.core.charts import Series, chart
from apps.core.http import HtmxHttpRequest


def _viewable(request: HtmxHttpRequest, slug: str) -> Process:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_view_autonomy(user=request.user, process=process):
        raise PermissionDenied("Only the team's experts, managers and admins see autonomy levels.")
    return process


def _managed(request: HtmxHttpRequest, slug: str) -> Process:
    process = _viewable(request, slug)
    if not selectors.can_manage_autonomy(user=request.user, process=process):
        raise PermissionDenied("Only the team's managers and admins change autonomy levels.")
    return process


@require_GET
@login_required
def autonomy_overview(request: HtmxHttpRequest) -> HttpResponse:
    processes = list(selectors.autonomy_processes(user=request.user))
    if not processes:
        raise PermissionDenied(
            "Autonomy levels are for the experts, managers and admins of a team."
        )
    rows = []
    for process in processes:
        autonomy = selectors.autonomy_of(process=process)
        upcoming = selectors.next_level(autonomy=autonomy)
        rows.append(
            {
                "process": process,
                "autonomy": autonomy,
                "next_level": upcoming,
                "next_name": Level(upcoming).label if upcoming is not None else "",
                "evidence": gate.evaluate(process=process, target=upcoming) if upcoming else None,
            }
        )
    return render(request, "autonomy/overview.html", {"rows": rows})


def _chart(sweep: list[dict]) -> dict[str, object]:
    """Precision and coverage against the confidence threshold (0.5 … 1.0): the design system's
    chart component (Chart.js, with the numbers as a table)."""
    points = [p for p in sweep if p["threshold"] >= 0.5]
    return chart(
        element_id="sweep-chart",
        title="Precision and coverage by confidence threshold",
        labels=[f"{p['threshold']:g}" for p in points],
        series=[
            Series("Precision", [p["precision"] for p in points]),
            Series("Coverage", [p["coverage"] for p in points]),
        ],
        decimals=3,
        label_heading="Threshold",
    )


def _page(
    request: HtmxHttpRequest,
    process: Process,
    *,
    settings_form: SettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    autonomy = selectors.autonomy_of(process=process)
    upcoming = selectors.next_level(autonomy=autonomy)
    evidence = gate.evaluate(process=process, target=upcoming) if upcoming else None
    # Any higher level whose gate passes can be promoted to, not only the next one (checked on
    # the same measurements: measuring again per level cost a third of the page).
    promotable = [
        level
        for level in Level
        if evidence is not None
        and level > autonomy.level
        and gate.passes_at(autonomy=autonomy, evidence=evidence, target=level)
    ]
    can_manage = selectors.can_manage_autonomy(user=request.user, process=process)
    labels = process.schema.labels
    if settings_form is None:
        settings_form = SettingsForm(initial=SettingsForm.initial_for(autonomy), labels=labels)
    context = {
        "process": process,
        "autonomy": autonomy,
        "levels": [
            {"value": level.value, "name": level.label, "help": LEVEL_HELP[level]}
            for level in Level
        ],
        "next_level": upcoming,
        "next_name": Level(upcoming).label if upcoming is not None else "",
        "evidence": evidence,
        "chart": _chart(evidence["sweep"]) if evidence and evidence["sweep"] else None,
        "audits": shadow.audit_status(autonomy=autonomy)
        if autonomy.level == Level.DECIDE
        else None,
        "history": selectors.autonomy_history(process=process),
        "routes": selectors.recent_routes(process=process),
        "can_manage": can_manage,
        "settings_form": settings_form,
        "promotable": [{"value": lvl.value, "name": lvl.label} for lvl in promotable],
        "shadow_choices": [lvl for lvl in Level if lvl > autonomy.level],
        "demote_choices": [lvl for lvl in Level if lvl < autonomy.level],
    }
    return render(request, "autonomy/process.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def autonomy_process(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The process's level, the gate's evidence and history; POST changes the settings."""
    if request.method == "GET":
        return _page(request, _viewable(request, slug))
    process = _managed(request, slug)
    form = SettingsForm(request.POST, labels=process.schema.labels)
    if form.is_valid():
        try:
            levels.update_autonomy_settings(
                process=process, actor=request.user, values=form.values()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Autonomy settings saved.")
            return redirect("autonomy_process", slug=process.slug)
    return _page(request, process, settings_form=form, status=422)


def _act(request: HtmxHttpRequest, slug: str, form_class: type, action: object) -> HttpResponse:
    process = _managed(request, slug)
    form = form_class(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in form.errors.items())
        messages.error(request, errors)
        return redirect("autonomy_process", slug=process.slug)
    try:
        message = action(process, form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, message)
    return redirect("autonomy_process", slug=process.slug)


@require_POST
@login_required
def autonomy_shadow(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    def start(process: Process, data: dict) -> str:
        levels.start_shadow(process=process, target=data["target"], actor=request.user)
        return (
            f"Shadow mode towards level {data['target']} ({Level(data['target']).label}) started; "
            "open cases are being predicted."
        )

    return _act(request, slug, ShadowForm, start)


@require_POST
@login_required
def autonomy_stop_shadow(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = _managed(request, slug)
    try:
        levels.stop_shadow(process=process, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Shadow mode stopped.")
    return redirect("autonomy_process", slug=process.slug)


@require_POST
@login_required
def autonomy_promote(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    def promote(process: Process, data: dict) -> str:
        levels.promote_autonomy(
            process=process, level=data["level"], actor=request.user, reason=data["reason"]
        )
        return f"{process.name} is now at level {data['level']} ({Level(data['level']).label})."

    return _act(request, slug, PromoteForm, promote)


@require_POST
@login_required
def autonomy_demote(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    def demote(process: Process, data: dict) -> str:
        levels.demote_autonomy(
            process=process, level=data["level"], actor=request.user, reason=data["reason"]
        )
        return f"{process.name} is now at level {data['level']} ({Level(data['level']).label})."

    return _act(request, slug, DemoteForm, demote)


@require_POST
@login_required
def autonomy_backfill(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Predict the open cases with the promoted model now (small processes; big ones use the task)."""
    process = _managed(request, slug)
    made = shadow.backfill_open_cases(process=process, limit=5000)
    messages.success(
        request, f"{made} open case{'s' if made != 1 else ''} predicted in shadow mode."
    )
    return redirect("autonomy_process", slug=process.slug)
