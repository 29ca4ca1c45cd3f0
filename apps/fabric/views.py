"""Fleet pages for organisation admins: nodes, enrolment tokens, approvals, a node's page; and
"My machines", where a machine's owner switches and schedules the machines they lend."""

import hmac
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.core import one_time, registry
from apps.core.http import HtmxHttpRequest
from apps.fabric import metrics as fabric_metrics
from apps.fabric import ownership, selectors
from apps.fabric.errors import NodeConflict
from apps.fabric.forms import AvailabilityForm, EnrollmentTokenForm, NodeSettingsForm
from apps.fabric.models import ComputeNode, FabricTask, FabricTaskState
from apps.fabric.services import dispatch, enrollment, nodes


def _require_admin(request: HtmxHttpRequest) -> None:
    if not selectors.can_manage_fabric(user=request.user):
        raise PermissionDenied("Only organisation admins manage the compute fabric.")


def _require_fleet(request: HtmxHttpRequest) -> selectors.Scope:
    """The teams whose nodes the user manages (None: all, an organisation admin); 403 for
    someone who is neither an organisation admin nor a team's admin."""
    scope = selectors.fleet_scope(user=request.user)
    if scope == frozenset():
        raise PermissionDenied("Only admins manage compute nodes.")
    return scope


def _node_rows(scope: selectors.Scope) -> list[dict[str, object]]:
    now = timezone.now()
    return [
        {
            "node": node,
            "chips": selectors.capability_summary(node=node),
            "decision": selectors.work_decision(node=node, now=now),
            "overdue": selectors.heartbeat_overdue(node=node, now=now),
        }
        for node in selectors.fleet(scope=scope)
    ]


def _fleet_page(
    request: HtmxHttpRequest,
    scope: selectors.Scope,
    *,
    token_form: EnrollmentTokenForm | None = None,
    new_token: str | None = None,
    status: int = 200,
) -> HttpResponse:
    whole_fleet = scope is None
    context = {
        "rows": _node_rows(scope),
        "pending": [
            {"node": node, "capabilities": selectors.capability_rows(node=node)}
            for node in selectors.approval_queue(scope=scope)
        ],
        "tokens": selectors.open_enrollment_tokens(scope=scope),
        "token_form": token_form or EnrollmentTokenForm(scope=scope),
        "new_token": new_token,
        "server_url": request.build_absolute_uri("/").rstrip("/"),
        "counts": selectors.fleet_counts(scope=scope),
        # Tasks and node-hours are the organisation's: for organisation admins only.
        "whole_fleet": whole_fleet,
        "task_counts": selectors.task_counts() if whole_fleet else {},
        "pending_tasks": selectors.task_list(state=FabricTaskState.PENDING, limit=10)
        if whole_fleet
        else [],
        "hours": _node_hours() if whole_fleet else [],
    }
    return render(request, "fabric/fleet.html", context, status=status)


def _node_hours() -> list[dict[str, object]]:
    """Node-hours by class and by owner, last 30 days and all time, for the fleet page."""
    recent = selectors.node_hours(since=timezone.now() - timedelta(days=30))
    total = selectors.node_hours()
    tables = []
    for key, title in (("by_class", "By class"), ("by_owner", "By owner")):
        last = {row["key"]: row for row in recent[key]}
        rows = [
            {**row, "recent_hours": last.get(row["key"], {}).get("hours", 0.0)}
            for row in total[key]
        ]
        tables.append({"title": title, "rows": rows})
    return tables


@require_GET
@login_required
def fleet(request: HtmxHttpRequest) -> HttpResponse:
    scope = _require_fleet(request)
    if request.htmx:
        # The node table refreshes itself; only its rows come back.
        return render(request, "fabric/fleet.html#node-rows", {"rows": _node_rows(scope)})
    new_token = one_time.pop_secret(request, key=_ENROLLMENT_ONE_TIME_KEY)
    response = _fleet_page(request, scope, new_token=new_token)
    return one_time.keep_out_of_caches(response) if new_token else response


_ENROLLMENT_ONE_TIME_KEY = "enrollment_token"


@require_POST
@login_required
def token_create(request: HtmxHttpRequest) -> HttpResponse:
    scope = _require_fleet(request)
    form = EnrollmentTokenForm(request.POST, scope=scope)
    if not form.is_valid():
        return _fleet_page(request, scope, token_form=form, status=422)
    data = form.cleaned_data
    try:
        _, raw = enrollment.create_enrollment_token(
            created_by=request.user,
            expires_in=enrollment.parse_duration(data["expires"]),
            team=data["team"],
            labels=data["labels"],
            auto_approve=data["auto_approve"],
            note=data["note"],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return _fleet_page(request, scope, token_form=form, status=422)
    # POST-redirect-GET: a reload must not create a second token. The raw token crosses the
    # redirect in the session (never a URL) and the fleet page pops it: shown once.
    one_time.stash_secret(request, key=_ENROLLMENT_ONE_TIME_KEY, secret=raw)
    return redirect("fabric_fleet")


@require_POST
@login_required
def token_revoke(request: HtmxHttpRequest, token_id: int) -> HttpResponse:
    scope = _require_fleet(request)
    token = get_object_or_404(selectors.open_enrollment_tokens(scope=scope), pk=token_id)
    enrollment.revoke_enrollment_token(token=token)
    messages.success(request, f"Enrolment token {token.prefix}… revoked.")
    return redirect("fabric_fleet")


def _node_page(
    request: HtmxHttpRequest,
    node: ComputeNode,
    *,
    availability_form: AvailabilityForm | None = None,
    settings_form: NodeSettingsForm | None = None,
    conflict: str | None = None,
    status: int = 200,
) -> HttpResponse:
    scope = selectors.fleet_scope(user=request.user)
    context = {
        "node": node,
        "capabilities": selectors.capability_rows(node=node),
        "decision": selectors.work_decision(node=node),
        "availability_text": selectors.describe_availability(node=node),
        "reclaimed": bool((node.availability or {}).get("reclaim")),
        "overdue": selectors.heartbeat_overdue(node=node),
        "events": selectors.node_history(node=node),
        "open_tasks": selectors.node_open_tasks(node=node),
        "recent_tasks": selectors.node_recent_tasks(node=node),
        "availability_form": availability_form or AvailabilityForm.for_node(node),
        "settings_form": settings_form or NodeSettingsForm.for_node(node, scope=scope),
        "whole_fleet": scope is None,
        "conflict": conflict,
    }
    return render(request, "fabric/node.html", context, status=status)


@require_GET
@login_required
def node_detail(request: HtmxHttpRequest, node_id: int) -> HttpResponse:
    _require_fleet(request)
    return _node_page(request, selectors.managed_node(user=request.user, node_id=node_id))


_ACTIONS: dict[str, tuple[Callable[..., ComputeNode], str]] = {
    "approve": (nodes.approve_node, "{} approved."),
    "reject": (nodes.reject_node, "{} rejected; its credential no longer works."),
    "drain": (nodes.drain_node, "{} is draining: it finishes its work and takes no more."),
    "resume": (nodes.resume_node, "{} takes work again."),
    "reclaim": (nodes.reclaim_node, "{} is reclaimed: no new work until released."),
    "release": (nodes.release_node, "{} is released back to its usual hours."),
    "retire": (nodes.retire_node, "{} is retired."),
    "revoke": (nodes.revoke_node, "{}'s credential is revoked; the node is retired."),
}


@require_POST
@login_required
def node_action(request: HtmxHttpRequest, node_id: int, action: str) -> HttpResponse:
    _require_fleet(request)
    if action not in _ACTIONS:
        raise Http404("No such action")
    node = selectors.managed_node(user=request.user, node_id=node_id)
    service, done = _ACTIONS[action]
    try:
        node = service(node=node, actor=request.user)
    except NodeConflict as exc:
        node.refresh_from_db()
        return _node_page(request, node, conflict=str(exc), status=409)
    messages.success(request, done.format(node.name))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("fabric_node", args=[node.pk])
    return redirect(target)


@require_POST
@login_required
def node_availability(request: HtmxHttpRequest, node_id: int) -> HttpResponse:
    _require_fleet(request)
    node = selectors.managed_node(user=request.user, node_id=node_id)
    form = AvailabilityForm(request.POST)
    if form.is_valid():
        try:
            node = nodes.update_availability(
                node=node,
                actor=request.user,
                windows=form.cleaned_data["windows"],
                idle_minutes=form.cleaned_data["idle_minutes"],
                node_timezone=form.cleaned_data["timezone"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except NodeConflict as exc:
            return _node_page(request, node, availability_form=form, conflict=str(exc), status=409)
        else:
            messages.success(request, f"{node.name}: {selectors.describe_availability(node=node)}.")
            return redirect("fabric_node", node_id=node.pk)
    return _node_page(request, node, availability_form=form, status=422)


@require_POST
@login_required
def node_settings(request: HtmxHttpRequest, node_id: int) -> HttpResponse:
    scope = _require_fleet(request)
    node = selectors.managed_node(user=request.user, node_id=node_id)
    form = NodeSettingsForm(request.POST, scope=scope)
    if form.is_valid():
        try:
            node = nodes.update_node_settings(node=node, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        except NodeConflict as exc:
            return _node_page(request, node, settings_form=form, conflict=str(exc), status=409)
        else:
            messages.success(request, f"{node.name} saved.")
            return redirect("fabric_node", node_id=node.pk)
    return _node_page(request, node, settings_form=form, status=422)


@require_POST
@login_required
def node_probe(request: HtmxHttpRequest, node_id: int) -> HttpResponse:
    """An admin checks a node end to end: a 0-second probe sent to this very node."""
    _require_admin(request)
    node = get_object_or_404(ComputeNode, pk=node_id)
    try:
        task = dispatch.probe_node(node=node, submitted_by=request.user)
    except NodeConflict as exc:
        return _node_page(request, node, conflict=str(exc), status=409)
    messages.success(request, f"Probe #{task.pk} sent to {node.name}.")
    return redirect("fabric_task", task_id=task.pk)


# --- my machines (owners) ---------------------------------------------------------------------
#
# A machine's owner (e.g. staff lending a workstation after hours) may reclaim and release it and
# set its hours; approving, draining, retiring, revoking, settings and probes stay with admins.
# Every view looks the node up through ownership.owned_node: anyone else's answers 404.

_OWNER_ACTIONS: dict[str, tuple[Callable[..., ComputeNode], str]] = {
    "reclaim": (nodes.reclaim_node, "{} is yours again: no new work from now on, until you release it."),
    "release": (nodes.release_node, "{} is released: it works in its usual hours again."),
}  # fmt: skip


def _card_form_id(node: ComputeNode) -> str:
    # Several nodes' forms share one page: the same field names, but ids unique per node.
    return f"id_node{node.pk}_%s"


def _my_cards(
    owned: list[ComputeNode],
    *,
    forms: dict[int, AvailabilityForm] | None = None,
    notes: dict[int, tuple[str, str]] | None = None,
) -> list[dict[str, object]]:
    """One card per node: state, whether it takes work and why, what runs there, its hours."""
    now = timezone.now()
    forms, notes = forms or {}, notes or {}
    running = ownership.open_tasks_by_node(nodes=owned)
    recent = ownership.hours_by_node(nodes=owned, since=now - timedelta(days=30))
    total = ownership.hours_by_node(nodes=owned)
    return [
        {
            "node": node,
            "target": f"#node-{node.pk}",  # the card's element, which its htmx forms swap
            "decision": selectors.work_decision(node=node, now=now),
            "availability_text": selectors.describe_availability(node=node),
            "reclaimed": bool((node.availability or {}).get("reclaim")),
            "overdue": selectors.heartbeat_overdue(node=node, now=now),
            "open_tasks": running[node.pk],
            "recent_hours": recent[node.pk]["hours"],
            "hours": total[node.pk]["hours"],
            "tasks": total[node.pk]["tasks"],
            "events": selectors.node_history(node=node, limit=5),
            "availability_form": forms.get(node.pk)
            or AvailabilityForm.for_node(node, auto_id=_card_form_id(node)),
            "note": notes.get(node.pk),
        }
        for node in owned
    ]


def _my_nodes_page(
    request: HtmxHttpRequest,
    *,
    forms: dict[int, AvailabilityForm] | None = None,
    notes: dict[int, tuple[str, str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "cards": _my_cards(ownership.owned_nodes(user=request.user), forms=forms, notes=notes),
        "can_manage": selectors.can_manage_fabric(user=request.user),
    }
    return render(request, "fabric/my_nodes.html", context, status=status)


def _my_node_answer(
    request: HtmxHttpRequest,
    node: ComputeNode,
    *,
    form: AvailabilityForm | None = None,
    note: tuple[str, str],
    status: int = 200,
) -> HttpResponse:
    """htmx gets the node's card back (with the note, or the form's errors); a plain POST gets a
    redirect after success and the whole page otherwise."""
    if request.htmx:
        forms = {node.pk: form} if form is not None else None
        context = {
            "card": _my_cards([node], forms=forms, notes={node.pk: note})[0],
            "can_manage": selectors.can_manage_fabric(user=request.user),
        }
        return render(request, "fabric/my_nodes.html#node-card", context, status=status)
    if status < 300:
        messages.success(request, note[1])
        return redirect(f"{reverse('fabric_my_nodes')}#node-{node.pk}")
    forms = {node.pk: form} if form is not None else None
    return _my_nodes_page(request, forms=forms, notes={node.pk: note}, status=status)


@require_GET
@login_required
def my_nodes(request: HtmxHttpRequest) -> HttpResponse:
    """The machines the signed-in user owns (none: a page that says so)."""
    return _my_nodes_page(request)


@require_POST
@login_required
def my_node_action(request: HtmxHttpRequest, node_id: int, action: str) -> HttpResponse:
    if action not in _OWNER_ACTIONS:
        raise Http404("No such action")
    node = ownership.owned_node(user=request.user, node_id=node_id)
    service, done = _OWNER_ACTIONS[action]
    try:
        node = service(node=node, actor=request.user)
    except NodeConflict as exc:
        node.refresh_from_db()
        return _my_node_answer(request, node, note=("conflict", str(exc)), status=409)
    return _my_node_answer(request, node, note=("done", done.format(node.name)))


@require_POST
@login_required
def my_node_availability(request: HtmxHttpRequest, node_id: int) -> HttpResponse:
    node = ownership.owned_node(user=request.user, node_id=node_id)
    form = AvailabilityForm(request.POST, auto_id=_card_form_id(node))
    if form.is_valid():
        try:
            node = nodes.update_availability(
                node=node,
                actor=request.user,
                windows=form.cleaned_data["windows"],
                idle_minutes=form.cleaned_data["idle_minutes"],
                node_timezone=form.cleaned_data["timezone"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except NodeConflict as exc:
            return _my_node_answer(
                request, node, form=form, note=("conflict", str(exc)), status=409
            )
        else:
            text = f"{node.name}: {selectors.describe_availability(node=node)}."
            return _my_node_answer(request, node, note=("done", text))
    return _my_node_answer(
        request, node, form=form, note=("error", "Not saved: see below."), status=422
    )


# --- tasks ------------------------------------------------------------------------------------


@require_GET
@login_required
def task_list(request: HtmxHttpRequest) -> HttpResponse:
    _require_admin(request)
    state = request.GET.get("state") or None
    if state is not None and state not in FabricTaskState.values:
        state = None
    context = {
        "tasks": selectors.task_list(state=state, limit=200),
        "state": state,
        "states": FabricTaskState.choices,
        "counts": selectors.task_counts(),
    }
    template = "fabric/task_list.html#task-rows" if request.htmx else "fabric/task_list.html"
    return render(request, template, context)


@require_GET
@login_required
def task_detail(request: HtmxHttpRequest, task_id: int) -> HttpResponse:
    _require_admin(request)
    task = get_object_or_404(FabricTask.objects.select_related("node", "created_by"), pk=task_id)
    placement = task.placement or {}
    context = {
        "task": task,
        "placement": placement,
        "hidden_rejections": max(
            0, int(placement.get("rejected_count") or 0) - len(placement.get("rejected") or [])
        ),
        "attempts": selectors.task_attempts(task=task),
        "result_json": json.dumps(task.result, indent=2, ensure_ascii=False)
        if task.result is not None
        else "",
        "payload_json": json.dumps(task.payload, indent=2, ensure_ascii=False),
    }
    return render(request, "fabric/task.html", context)


# --- metrics ----------------------------------------------------------------------------------


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With ORCHCAP_METRICS_TOKEN set, only `Authorization: Bearer
    <token>` may read it; without one it is open while DEBUG is on and refused when it is off
    (production must choose a token rather than publish by accident)."""
    token = settings.ORCHCAP_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            response = HttpResponse("a metrics token is required\n", status=401,
                                    content_type="text/plain")  # fmt: skip
            response["WWW-Authenticate"] = 'Bearer realm="orchcap metrics"'
            return response
    elif not settings.DEBUG:
        return HttpResponse(
            "set ORCHCAP_METRICS_TOKEN to publish /metrics\n", status=403, content_type="text/plain"
        )
    body = fabric_metrics.render(fabric_metrics.snapshot()) + registry.metrics_expositions()
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
