"""Connector pages: the list per team (with a form to add one), a connector's page with its
settings, delivery log and dead-letter list; redeliver, replay, rotate, enable/disable."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.connectors import selectors
from apps.connectors.errors import DeliveryConflict
from apps.connectors.forms import ConnectorForm, ConnectorSettingsForm, ReplayForm
from apps.connectors.models import Connector, DeliveryState
from apps.connectors.services import connectors, deliveries
from apps.core.http import HtmxHttpRequest

LOG_SIZE = 50


def _form_errors(form: object, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@require_http_methods(["GET", "POST"])
@login_required
def connector_list(request: HtmxHttpRequest) -> HttpResponse:
    teams = selectors.managed_teams(user=request.user)
    if not teams.exists():
        raise PermissionDenied("Connectors are managed by a team's managers and admins.")
    form = ConnectorForm(request.POST or None, teams=teams)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                connector = connectors.create_connector(
                    team=form.cleaned_data["team"],
                    name=form.cleaned_data["name"],
                    url=form.cleaned_data["url"],
                    event_types=form.cleaned_data["event_types"],
                    description=form.cleaned_data["description"],
                    owner=request.user,
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Connector added. Its signing secret (shown once): {connector.secret}",
                )
                return redirect("connector_detail", connector_id=connector.pk)
        status = 422
    context = {"connectors": selectors.connectors_for(user=request.user), "form": form}
    return render(request, "connectors/list.html", context, status=status)


def _detail(
    request: HtmxHttpRequest,
    connector: Connector,
    *,
    settings_form: ConnectorSettingsForm | None = None,
    replay_form: ReplayForm | None = None,
    status: int = 200,
) -> HttpResponse:
    state = request.GET.get("state") or None
    if state not in DeliveryState.values:
        state = None
    context = {
        "connector": connector,
        "deliveries": selectors.delivery_log(connector=connector, state=state, limit=LOG_SIZE),
        "dead": selectors.delivery_log(connector=connector, state="dead", limit=LOG_SIZE),
        "state": state,
        "states": DeliveryState.choices,
        "settings_form": settings_form
        or ConnectorSettingsForm(
            initial={
                "name": connector.name,
                "url": connector.url,
                "event_types": connector.event_types,
                "description": connector.description,
            }
        ),
        "replay_form": replay_form or ReplayForm(),
    }
    template = "connectors/detail.html"
    if request.htmx and request.method == "GET" and request.htmx.target == "delivery-log":
        template = "connectors/detail.html#delivery-log"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def connector_detail(request: HtmxHttpRequest, connector_id: int) -> HttpResponse:
    """The connector, its delivery log (htmx-filtered by state) and dead letters; POST saves
    its settings."""
    connector = selectors.connector_for(user=request.user, connector_id=connector_id)
    if request.method == "GET":
        return _detail(request, connector)
    form = ConnectorSettingsForm(request.POST)
    if form.is_valid():
        try:
            connectors.update_connector(connector=connector, values=form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Connector saved.")
            return redirect("connector_detail", connector_id=connector.pk)
    connector = selectors.connector_for(user=request.user, connector_id=connector_id)
    return _detail(request, connector, settings_form=form, status=422)


@require_POST
@login_required
def connector_rotate_secret(request: HtmxHttpRequest, connector_id: int) -> HttpResponse:
    connector = selectors.connector_for(user=request.user, connector_id=connector_id)
    connector = connectors.rotate_secret(connector=connector)
    messages.success(
        request,
        f"New signing secret (shown once): {connector.secret}. The previous one keeps signing "
        f"until {connector.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC."
        if connector.previous_secret_expires_at
        else f"New signing secret (shown once): {connector.secret}.",
    )
    return redirect("connector_detail", connector_id=connector.pk)


@require_POST
@login_required
def connector_enabled(request: HtmxHttpRequest, connector_id: int) -> HttpResponse:
    connector = selectors.connector_for(user=request.user, connector_id=connector_id)
    enabled = request.POST.get("enabled") == "true"
    connectors.update_connector(connector=connector, values={"enabled": enabled})
    messages.success(request, "Connector enabled." if enabled else "Connector disabled.")
    return redirect("connector_detail", connector_id=connector.pk)


@require_POST
@login_required
def connector_replay(request: HtmxHttpRequest, connector_id: int) -> HttpResponse:
    connector = selectors.connector_for(user=request.user, connector_id=connector_id)
    form = ReplayForm(request.POST)
    if form.is_valid():
        try:
            count = deliveries.replay(
                connector=connector,
                since=form.cleaned_data["since"],
                until=form.cleaned_data["until"],
                only_dead=form.cleaned_data["only_dead"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        except DeliveryConflict as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"{count} deliver{'y' if count == 1 else 'ies'} queued again."
            )
            return redirect("connector_detail", connector_id=connector.pk)
    return _detail(request, connector, replay_form=form, status=422)


@require_POST
@login_required
def delivery_redeliver(request: HtmxHttpRequest, delivery_id: int) -> HttpResponse:
    delivery = selectors.delivery_for(user=request.user, delivery_id=delivery_id)
    try:
        deliveries.redeliver(delivery=delivery)
    except DeliveryConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Delivery {delivery.webhook_id} queued again.")
    return redirect("connector_detail", connector_id=delivery.connector_id)
