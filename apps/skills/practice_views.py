"""Pages: practice on gold cases (any member of the process's team), a process's gold cases and
practice setting (its team's managers and admins), and the gold box on a decided case's page.

The practice pane is built like the review pane (same ids, classes and keys: static/js/review.js)
and answers at once with feedback instead of the next case."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.cases.forms import DecisionForm
from apps.cases.models import Case, CaseStatus, Process
from apps.cases.selectors import process_for_member, processes_for
from apps.core.http import HtmxHttpRequest
from apps.skills import gold as gold_services
from apps.skills import practice
from apps.skills.models import GoldCase, GoldServe, PracticeAttempt
from apps.skills.practice_forms import GoldMarkForm, PracticeSettingForm

GOLD_PANEL = "skills/gold_panel.html"


def _options(process: Process) -> list[dict[str, object]]:
    return [{"key": index + 1, **option} for index, option in enumerate(process.schema.decisions)]


def _field_groups(case: Case) -> list[tuple[str, list[dict[str, object]]]]:
    at_fault = set(case.exception_fields)
    groups: dict[str, list[dict[str, object]]] = {}
    for spec in case.schema_version.fields:
        groups.setdefault(spec.get("group") or "", []).append(
            {
                "spec": spec,
                "value": case.fields.get(spec["name"]),
                "at_fault": spec["name"] in at_fault,
            }
        )
    return list(groups.items())


def _pane(
    request: HtmxHttpRequest,
    process: Process,
    gold: GoldCase | None,
    *,
    form: DecisionForm | None = None,
    attempt: PracticeAttempt | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, object] = {
        "process": process,
        "gold": gold,
        "options": _options(process),
        "accuracy": next(
            (a for a in practice.practice_overview(person=request.user) if a.process == process),
            None,
        ),
    }
    if gold is not None:
        case = gold.case
        context["case"] = case
        context["field_groups"] = _field_groups(case)
        context["form"] = form or DecisionForm(
            field_names=[s["name"] for s in case.schema_version.fields]
        )
    if attempt is not None:
        context["feedback"] = practice.feedback(attempt=attempt)
    template = "skills/practice.html#practice-pane" if request.htmx else "skills/practice.html"
    return render(request, template, context, status=status)


@require_GET
@login_required
def practice_home(request: HtmxHttpRequest) -> HttpResponse:
    context = {
        "overview": practice.practice_overview(person=request.user),
        "attempts": practice.recent_attempts(person=request.user),
        # Managers and admins choose the gold cases of their teams' processes.
        "managed": [
            process
            for process in processes_for(user=request.user).order_by("name")
            if gold_services.can_manage_gold(user=request.user, process=process)
        ],
    }
    return render(request, "skills/practice_home.html", context)


@require_GET
@login_required
def practice_queue(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = process_for_member(user=request.user, slug=slug)
    after = request.GET.get("after", "")
    gold = practice.next_gold(
        person=request.user, process=process, after=int(after) if after.isdigit() else None
    )
    return _pane(request, process, gold)


@require_POST
@login_required
def practice_answer(request: HtmxHttpRequest, slug: str, gold_id: int) -> HttpResponse:
    process = process_for_member(user=request.user, slug=slug)
    try:
        gold = practice.gold_to_practise(person=request.user, process=process, gold_id=gold_id)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("practice_queue", slug=process.slug)
    form = DecisionForm(
        request.POST, field_names=[s["name"] for s in gold.case.schema_version.fields]
    )
    if form.is_valid():
        try:
            attempt = practice.record_attempt(
                gold=gold,
                person=request.user,
                label=form.cleaned_data["label"],
                reason_code=form.cleaned_data["reason_code"],
                rationale=form.cleaned_data["rationale"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return _pane(request, process, gold, form=form, attempt=attempt)
    return _pane(request, process, gold, form=form, status=422)


# --- gold cases (managers) -------------------------------------------------------------------------


def _managed_process(request: HtmxHttpRequest, slug: str) -> Process:
    process = process_for_member(user=request.user, slug=slug)
    gold_services.require_gold_manager(user=request.user, process=process)
    return process


def _gold_page(
    request: HtmxHttpRequest,
    process: Process,
    *,
    mark_form: GoldMarkForm | None = None,
    setting_form: PracticeSettingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    setting = gold_services.practice_setting(process=process)
    context = {
        "process": process,
        "golds": gold_services.gold_cases(process=process),
        "unmarked": gold_services.gold_cases(process=process, active_only=False).filter(
            unmarked_at__isnull=False
        ),
        "people": practice.people_accuracy(process=process),
        "mark_form": mark_form or GoldMarkForm(),
        "setting_form": setting_form
        or PracticeSettingForm(
            initial={"gold_share": setting.gold_share, "new_below": setting.new_below}
        ),
    }
    return render(request, "skills/gold.html", context, status=status)


@require_GET
@login_required
def gold_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    return _gold_page(request, _managed_process(request, slug))


@require_POST
@login_required
def gold_mark(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = _managed_process(request, slug)
    form = GoldMarkForm(request.POST)
    if form.is_valid():
        try:
            case = gold_services.decided_case_of(
                process=process, reference=form.cleaned_data["case"]
            )
            gold = gold_services.mark_gold(
                case=case, by=request.user, rationale=form.cleaned_data["rationale"]
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, f"Case {case.external_id or case.pk} is gold: {gold.label}.")
            return _back(request, process)
    return _gold_page(request, process, mark_form=form, status=422)


def _back(request: HtmxHttpRequest, process: Process) -> HttpResponse:
    """Back where the manager came from: a case's page (the gold box) or the gold page."""
    back = request.POST.get("next", "")
    if back.startswith("/cases/"):
        return redirect(back)
    return redirect("gold_list", slug=process.slug)


@require_POST
@login_required
def gold_unmark(request: HtmxHttpRequest, slug: str, case_id: int) -> HttpResponse:
    process = _managed_process(request, slug)
    try:
        gold = gold_services.gold_for_manager(user=request.user, process=process, case_id=case_id)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back(request, process)
    gold_services.unmark_gold(gold=gold, by=request.user)
    messages.success(request, f"Case {gold.case.external_id or gold.case_id} is no longer gold.")
    return _back(request, process)


@require_POST
@login_required
def practice_setting(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = _managed_process(request, slug)
    form = PracticeSettingForm(request.POST)
    if form.is_valid():
        try:
            gold_services.set_practice_setting(
                process=process, by=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, "Practice setting saved.")
            return redirect("gold_list", slug=process.slug)
    return _gold_page(request, process, setting_form=form, status=422)


# --- the gold box on a decided case (a case panel) -------------------------------------------------


def gold_panel(case: Case, user: AbstractBaseUser) -> dict[str, object] | None:
    """For the team's managers and admins on a decided case: whether it is gold, and the button
    to mark or unmark it. Nothing for anyone else, nor on an open case (the review pane)."""
    if case.status != CaseStatus.DECIDED or not gold_services.can_manage_gold(
        user=user, process=case.process
    ):
        return None
    if GoldServe.objects.filter(
        person=user, gold__case=case, answered_at__isnull=True, skipped_at__isnull=True
    ).exists():
        return None  # served to them in their review queue as a normal case: keep it so
    gold = GoldCase.objects.filter(case=case, unmarked_at__isnull=True).first()
    return {"gold": gold, "case": case, "process": case.process}
