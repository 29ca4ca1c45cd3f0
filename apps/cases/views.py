from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.cases import selectors
from apps.cases.errors import CaseConflict
from apps.cases.forms import DecisionForm, ProcessForm
from apps.cases.models import Case, CaseClaim, CaseStatus, Process
from apps.cases.schema import SchemaInvalid
from apps.cases.schema_editor import SchemaEditor
from apps.cases.selectors_precedents import precedents
from apps.cases.services import decisions as decision_services
from apps.cases.services import processes as process_services
from apps.cases.services import queue as queue_services
from apps.cases.services.similarity import similar_cases
from apps.core.display import readable_code
from apps.core.http import HtmxHttpRequest
from apps.core.registry import case_panels, review_queue_hooks
from apps.people.models import Membership, Role, Team
from apps.people.selectors import roles_of

User = get_user_model()


def _managed_teams(user: object) -> list[Team]:
    return list(
        Team.objects.filter(
            memberships__user=user, memberships__role__in=[Role.MANAGER, Role.ADMIN]
        ).distinct()
    )


def _require_manager(request: HtmxHttpRequest, process: Process) -> None:
    if not selectors.can_manage_process(user=request.user, process=process):
        raise PermissionDenied("Only the team's managers and admins can change this process.")


def _require_reviewer(request: HtmxHttpRequest, process: Process) -> None:
    if not selectors.can_review(user=request.user, process=process):
        raise PermissionDenied("Only the experts who review this process can decide its cases.")


# --- processes ----------------------------------------------------------------------------------


@require_GET
@login_required
def process_list(request: HtmxHttpRequest) -> HttpResponse:
    processes = selectors.processes_for(user=request.user).annotate(
        open_count=Count("cases", filter=Q(cases__status=CaseStatus.OPEN)),
        adjudication_count=Count("cases", filter=Q(cases__status=CaseStatus.ADJUDICATION)),
        decided_count=Count("cases", filter=Q(cases__status=CaseStatus.DECIDED)),
    )
    expert_teams = set(
        Membership.objects.filter(user=request.user, role=Role.EXPERT).values_list(
            "team_id", flat=True
        )
    )
    return render(
        request,
        "cases/process_list.html",
        {
            "processes": processes,
            "expert_teams": expert_teams,
            "can_create": bool(_managed_teams(request.user)),
        },
    )


def _save_process(
    request: HtmxHttpRequest, form: ProcessForm, editor: SchemaEditor, process: Process | None
) -> Process | None:
    """Apply a valid form and schema; returns the process, or None after putting the service's
    errors on the form (schema problems next to their rows)."""
    data = form.cleaned_data
    try:
        if process is None:
            team = next(t for t in _managed_teams(request.user) if str(t.pk) == data["team"])
            return process_services.create_process(
                team=team,
                name=data["name"],
                slug=data["slug"],
                description=data["description"],
                fields=editor.fields,
                decisions=editor.decisions,
                minutes_per_case=data["minutes_per_case"],
                overlap=data["overlap"],
                priority_field=data["priority_field"],
                priority_descending=data["priority_descending"],
                created_by=request.user,
            )
        # Schema, settings and people change together or not at all.
        with transaction.atomic():
            return _update_process(request, process, data, editor)
    except SchemaInvalid as exc:
        editor.show_problems(exc.problems)
        return None
    except ValidationError as exc:
        form.add_error(None, exc)
        return None


def _update_process(
    request: HtmxHttpRequest, process: Process, data: dict, editor: SchemaEditor
) -> Process:
    """Apply an edit form's data; the caller holds the transaction."""
    process_services.update_process_schema(
        process=process,
        fields=editor.fields,
        decisions=editor.decisions,
        changed_by=request.user,
        priority_field=data["priority_field"],
    )
    process.refresh_from_db()
    process = process_services.update_process_settings(
        process=process,
        name=data["name"],
        description=data["description"],
        minutes_per_case=data["minutes_per_case"],
        overlap=data["overlap"],
        priority_field=data["priority_field"],
        priority_descending=data["priority_descending"],
    )
    users = {
        str(u.pk): u
        for u in User.objects.filter(pk__in=[*data["reviewers"], *data["adjudicators"]])
    }
    process_services.set_process_people(
        process=process,
        reviewers=[users[pk] for pk in data["reviewers"]],
        adjudicators=[users[pk] for pk in data["adjudicators"]],
    )
    queue_services.update_queue_settings(
        process=process,
        queue_order=data.get("queue_order") or process.queue_order,
        random_share=(
            process.random_share if data.get("random_share") is None else data["random_share"]
        ),
    )
    return process


def _process_form_page(
    request: HtmxHttpRequest,
    *,
    process: Process | None,
    initial: dict,
    form_options: dict,
    schema: tuple[list[dict], list[dict]],
) -> HttpResponse:
    """The process form with its schema editor: a row edit shows the rows again (just the editor
    for htmx), Download answers the rows as JSON, Save validates everything and reports every
    problem at once."""
    posted = request.method == "POST"
    form = ProcessForm(request.POST if posted else None, initial=initial, **form_options)
    editor = SchemaEditor(
        request.POST if posted else None,
        request.FILES if posted else None,
        fields=schema[0],
        decisions=schema[1],
    )
    context = {"form": form, "editor": editor, "process": process}
    if posted and editor.action == "export":
        response = HttpResponse(editor.export(), content_type="application/json; charset=utf-8")
        name = process.slug if process else "new-process"
        response["Content-Disposition"] = f'attachment; filename="{name}-schema.json"'
        return response
    if posted and editor.is_edit:
        editor.apply_edit()
        # Shown again as typed, without judging the rest of the form yet.
        context["form"] = ProcessForm(initial=form.typed_values(), **form_options)
        _mark_priority_field(context["form"], editor)
        if request.htmx:
            return render(request, "cases/process_form.html#schema-editor", context)
        return render(request, "cases/process_form.html", context)
    if posted:
        form_valid = form.is_valid()
        priority_field = (form.cleaned_data.get("priority_field") or "").strip()
        schema_valid = editor.validate(priority_field=priority_field)
        if form_valid and schema_valid:
            saved = _save_process(request, form, editor, process)
            if saved is not None:
                saved.refresh_from_db()
                verb = "saved" if process else "created"
                messages.success(
                    request, f"Process “{saved.name}” {verb} (schema v{saved.schema.version})."
                )
                return redirect("process_detail", slug=saved.slug)
    _mark_priority_field(form, editor)
    return render(request, "cases/process_form.html", context, status=422 if posted else 200)


def _mark_priority_field(form: ProcessForm, editor: SchemaEditor) -> None:
    """The priority field is checked with the schema (the editor holds its problems): mark its input
    as Django marks a field with errors."""
    if editor.priority_errors:
        form.fields["priority_field"].widget.attrs.update(
            {"aria-invalid": "true", "aria-describedby": "id_priority_field_error"}
        )


# A new process starts with one empty row of each, to fill in or to replace by an import.
_BLANK_SCHEMA = ([{"type": "text"}], [{}])


@require_http_methods(["GET", "POST"])
@login_required
def process_create(request: HtmxHttpRequest) -> HttpResponse:
    teams = _managed_teams(request.user)
    if not teams:
        raise PermissionDenied("Only managers and admins create processes.")
    return _process_form_page(
        request,
        process=None,
        initial={},
        form_options={"teams": [(str(t.pk), t.name) for t in teams]},
        schema=_BLANK_SCHEMA,
    )


@require_http_methods(["GET", "POST"])
@login_required
def process_edit(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    _require_manager(request, process)
    initial = {
        "team": str(process.team_id),
        "name": process.name,
        "slug": process.slug,
        "description": process.description,
        "minutes_per_case": process.minutes_per_case,
        "overlap": process.overlap,
        "priority_field": process.priority_field,
        "priority_descending": process.priority_descending,
        "queue_order": process.queue_order,
        "random_share": process.random_share,
    }
    members = (
        Membership.objects.filter(team=process.team)
        .select_related("user")
        .order_by("user__username")
    )
    experts = sorted(
        {(str(m.user_id), m.user.username) for m in members if m.role == Role.EXPERT},
        key=lambda c: c[1],
    )
    everyone = sorted({(str(m.user_id), m.user.username) for m in members}, key=lambda c: c[1])
    initial["reviewers"] = [str(pk) for pk in process.reviewers.values_list("pk", flat=True)]
    initial["adjudicators"] = [str(pk) for pk in process.adjudicators.values_list("pk", flat=True)]
    return _process_form_page(
        request,
        process=process,
        initial=initial,
        form_options={
            "teams": [(str(process.team_id), process.team.name)],
            "editing": True,
            "experts": experts,
            "members": everyone,
        },
        schema=(process.schema.fields, process.schema.decisions),
    )


@require_GET
@login_required
def process_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    counts = dict(
        process.cases.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    cases = process.cases.order_by("-created_at")
    status_filter = request.GET.get("status", "")
    if status_filter in CaseStatus.values:
        cases = cases.filter(status=status_filter)
    query = request.GET.get("q", "").strip()
    if query:
        cases = cases.filter(external_id__icontains=query)
    page = Paginator(
        # `process` too: rows read through process.cases get their process set, which needs
        # process_id (deferred, it cost a query per row).
        cases.only(
            "pk",
            "process",
            "external_id",
            "status",
            "final_label",
            "created_at",
            "exception_reason",
            "is_synthetic",
            "due_by",
        ),
        25,
    ).get_page(request.GET.get("page"))
    context = {
        "process": process,
        "counts": {status: counts.get(status, 0) for status in CaseStatus.values},
        "page": page,
        "status_filter": status_filter,
        "query": query,
        "statuses": CaseStatus.choices,
        "can_review": selectors.can_review(user=request.user, process=process),
        "can_manage": selectors.can_manage_process(user=request.user, process=process),
        "can_adjudicate": selectors.can_adjudicate(user=request.user, process=process),
        "can_upload": bool(
            roles_of(user=request.user, team=process.team) & {Role.EXPERT, Role.MANAGER, Role.ADMIN}
        ),
    }
    template = (
        "cases/process_detail.html#case-table" if request.htmx else "cases/process_detail.html"
    )
    return render(request, template, context)


# --- the review queue ----------------------------------------------------------------------------


def _review_context(
    request: HtmxHttpRequest,
    process: Process,
    case: Case | None,
    *,
    form: DecisionForm | None = None,
    conflict: str = "",
    notice: str = "",
) -> dict[str, object]:
    context: dict[str, object] = {
        "undo_seconds": decision_services.undo_window().seconds,
        "process": process,
        "case": case,
        "conflict": conflict,
        "notice": notice,
    }
    schema = process.schema
    context["options"] = [
        {"key": index + 1, **option} for index, option in enumerate(schema.decisions)
    ]
    context["remaining"] = process.cases.filter(status=CaseStatus.OPEN).count()
    if case is None:
        return context
    specs = case.schema_version.fields
    at_fault = set(case.exception_fields)
    groups: dict[str, list[dict]] = {}
    for spec in specs:
        groups.setdefault(spec.get("group") or "", []).append(
            {
                "spec": spec,
                "value": case.fields.get(spec["name"]),
                "at_fault": spec["name"] in at_fault,
            }
        )
    context["field_groups"] = list(groups.items())
    context["form"] = form or DecisionForm(field_names=[s["name"] for s in specs])
    context.update(_precedents(case))
    # Other domains' boxes (model suggestion, rules that fire); they never show experts' labels.
    context["panels"] = case_panels(case, request.user)
    claim = CaseClaim.objects.filter(case=case, expert=request.user).first()
    context["claim_expires_at"] = claim.expires_at if claim else None
    return context


def _precedents(case: Case) -> dict[str, object]:
    search = precedents(case=case, k=5)
    return {
        "precedents": [
            {
                "case": row.case,
                "similarity": row.closeness,
                "percent": row.percent,
                "band": row.band,
                "differences": row.differences,
                "decision": row.decision,
            }
            for row in search.rows
        ],
        "precedent_search": search,
    }


def _render_review(
    request: HtmxHttpRequest, context: dict[str, object], status: int = 200
) -> HttpResponse:
    template = "cases/review.html#review-pane" if request.htmx else "cases/review.html"
    return render(request, template, context, status=status)


def _next_case(request: HtmxHttpRequest, process: Process) -> Case | None:
    """The queue's next case, unless a higher app hands out one of its own (skills: a gold case
    for an expert new to the process, shown as a normal case)."""
    for hook in review_queue_hooks():
        case = hook.serve(process, request.user)
        if case is not None:
            return case
    return queue_services.claim_next_case(process=process, expert=request.user)


def _hooked_answer(request: HtmxHttpRequest, process: Process, case: Case, data: dict) -> str:
    """A hook's notice when the case was its own (its answer is not a decision), else ""."""
    for hook in review_queue_hooks():
        notice = hook.answer(process, case, request.user, data)
        if notice is not None:
            return notice
    return ""


@require_GET
@login_required
def review(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    _require_reviewer(request, process)
    case = _next_case(request, process)
    return _render_review(request, _review_context(request, process, case))


def _review_case(request: HtmxHttpRequest, slug: str, case_id: int) -> tuple[Process, Case]:
    process = selectors.process_for_member(user=request.user, slug=slug)
    _require_reviewer(request, process)
    case = selectors.case_for_member(user=request.user, case_id=case_id)
    if case.process_id != process.pk:
        raise PermissionDenied("That case belongs to another process.")
    return process, case


@require_POST
@login_required
def review_decide(request: HtmxHttpRequest, slug: str, case_id: int) -> HttpResponse:
    process, case = _review_case(request, slug, case_id)
    form = DecisionForm(request.POST, field_names=[s["name"] for s in case.schema_version.fields])
    if not form.is_valid():
        return _render_review(
            request, _review_context(request, process, case, form=form), status=422
        )
    try:
        hooked = _hooked_answer(request, process, case, form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, exc)
        return _render_review(
            request, _review_context(request, process, case, form=form), status=422
        )
    if hooked:
        if not request.htmx:
            messages.success(request, hooked)
            return redirect("review", slug=process.slug)
        following = _next_case(request, process)
        return _render_review(request, _review_context(request, process, following, notice=hooked))
    claim = CaseClaim.objects.filter(case=case, expert=request.user).first()
    # Time on the case, measured server-side from when it was handed out (for value metrics).
    seconds = (timezone.now() - claim.claimed_at).total_seconds() if claim else None
    try:
        decision_services.record_decision(
            case=case,
            expert=request.user,
            label=form.cleaned_data["label"],
            reason_code=form.cleaned_data["reason_code"],
            rationale=form.cleaned_data["rationale"],
            key_factors=form.cleaned_data["key_factors"],
            seconds_spent=seconds,
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return _render_review(
            request, _review_context(request, process, case, form=form), status=422
        )
    except CaseConflict as exc:
        # The expert's draft stays in the form so nothing they wrote is lost.
        context = _review_context(request, process, case, form=form, conflict=str(exc))
        return _render_review(request, context, status=409)
    if not request.htmx:
        messages.success(
            request,
            f"Decided {readable_code(form.cleaned_data['label'])} on case {case.external_id or case.pk}.",
        )
        return redirect("review", slug=process.slug)
    following = _next_case(request, process)
    notice = f"Recorded {readable_code(form.cleaned_data['label'])} for case {case.external_id or case.pk}. Press u to undo."
    return _render_review(request, _review_context(request, process, following, notice=notice))


@require_POST
@login_required
def review_skip(request: HtmxHttpRequest, slug: str, case_id: int) -> HttpResponse:
    process, case = _review_case(request, slug, case_id)
    if not any(hook.skip(process, case, request.user) for hook in review_queue_hooks()):
        queue_services.skip_case(case=case, expert=request.user)
    if not request.htmx:
        return redirect("review", slug=process.slug)
    following = _next_case(request, process)
    notice = f"Skipped case {case.external_id or case.pk}; it comes back after the others."
    return _render_review(request, _review_context(request, process, following, notice=notice))


@require_POST
@login_required
def review_renew(request: HtmxHttpRequest, slug: str, case_id: int) -> HttpResponse:
    _, case = _review_case(request, slug, case_id)
    if queue_services.renew_claim(case=case, expert=request.user):
        return HttpResponse(status=204)
    return HttpResponse(
        "Your hold on this case has lapsed; submitting may conflict with another expert.",
        status=409,
    )


@require_POST
@login_required
def review_undo(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    _require_reviewer(request, process)
    try:
        decision = decision_services.undo_last_decision(expert=request.user, process_id=process.pk)
    except CaseConflict as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect("review", slug=process.slug)
        case = queue_services.claim_next_case(process=process, expert=request.user)
        return _render_review(
            request, _review_context(request, process, case, conflict=str(exc)), status=409
        )
    if not request.htmx:
        messages.success(
            request,
            f"Undid your {readable_code(decision.label)} decision; the case is back in your hands.",
        )
        return redirect("review", slug=process.slug)
    case = decision.case
    form = DecisionForm(
        initial={"label": decision.label, "reason_code": decision.reason_code, "rationale": decision.rationale,
                 "key_factors": decision.key_factors},
        field_names=[s["name"] for s in case.schema_version.fields],
    )  # fmt: skip
    notice = f"Undid your {readable_code(decision.label)} decision; change it and submit again."
    return _render_review(
        request, _review_context(request, process, case, form=form, notice=notice)
    )


# --- a case --------------------------------------------------------------------------------------


@require_GET
@login_required
def case_detail(request: HtmxHttpRequest, case_id: int) -> HttpResponse:
    case = selectors.case_for_member(user=request.user, case_id=case_id)
    process = case.process
    at_fault = set(case.exception_fields)
    fields = [
        {"spec": spec, "value": case.fields.get(spec["name"]), "at_fault": spec["name"] in at_fault}
        for spec in case.schema_version.fields
    ]
    show_labels = selectors.may_see_labels(user=request.user, case=case)
    context = {
        "case": case,
        "process": process,
        "fields": fields,
        "show_labels": show_labels,
        "decisions": case.decisions.select_related("expert").order_by("decided_at")
        if show_labels
        else [],
        "timeline": selectors.case_timeline(case=case) if show_labels else [],
        "neighbours": [
            {"case": n, "similarity": 1 - float(n.distance)}
            for n in sorted(
                similar_cases(case=case, k=5, decided_only=False), key=lambda n: n.distance
            )
        ],
        "schema_is_current": case.schema_version_id == process.schema_id,
        # Decided cases only: open ones get their suggestions in the review pane.
        "panels": case_panels(case, request.user) if case.status == CaseStatus.DECIDED else [],
    }
    return render(request, "cases/case_detail.html", context)
