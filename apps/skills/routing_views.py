"""The routing page of a process (managers and admins of its team, organisation admins; anyone
else 404, since it shows people's accuracy): the strategy and its knobs, the candidates' measured
profiles, and the replay comparing today's order with routing by expertise."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from apps.cases.models import Process
from apps.core.charts import Series, chart
from apps.core.http import HtmxHttpRequest
from apps.people.selectors import AnyUser, can_manage_team
from apps.skills.models import RoutedCase, RoutingPolicy
from apps.skills.routing import POLICY_FIELDS, pool_rows, update_policy
from apps.skills.routing_profiles import policy_for
from apps.skills.routing_simulation import Simulation, simulate_routing


class RoutingPolicyForm(forms.ModelForm):
    class Meta:
        model = RoutingPolicy
        fields = list(POLICY_FIELDS)


def routing_process_for(*, viewer: AnyUser, slug: str) -> Process:
    """The process whose routing `viewer` may see and set; Http404 otherwise."""
    process = get_object_or_404(Process.objects.select_related("team", "schema"), slug=slug)
    if not can_manage_team(user=viewer, team=process.team):
        raise Http404("No such process")
    return process


def _holdout(request: HtmxHttpRequest) -> float:
    try:
        value = float(request.GET.get("holdout", "0.3"))
    except ValueError:
        return 0.3
    return min(0.95, max(0.05, value))


def _chart(simulation: Simulation) -> dict[str, object] | None:
    if not simulation.people:
        return None
    return chart(
        element_id="routing-chart",
        title="Replayed cases per person",
        labels=[line.username for line in simulation.people],
        series=[
            Series("Today's order", [line.today_cases for line in simulation.people]),
            Series("By expertise", [line.strategy_cases for line in simulation.people]),
        ],
        kind="bar",
        decimals=0,
        label_heading="Person",
    )


@require_http_methods(["GET", "POST"])
@login_required
def routing_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = routing_process_for(viewer=request.user, slug=slug)
    policy = policy_for(process=process)
    status = 200
    form = RoutingPolicyForm(instance=policy)
    if request.method == "POST":
        form = RoutingPolicyForm(request.POST, instance=RoutingPolicy.objects.get(pk=policy.pk))
        if form.is_valid():
            try:
                update_policy(process=process, **{f: form.cleaned_data[f] for f in POLICY_FIELDS})
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                return redirect("skills_routing", slug=process.slug)
        status = 422
    simulation = simulate_routing(process=process, policy=policy, holdout=_holdout(request))
    context = {
        "process": process,
        "policy": policy,
        "form": form,
        "pool": pool_rows(process=process, policy=policy),
        "simulation": simulation,
        "chart": _chart(simulation),
        "routed": RoutedCase.objects.filter(process=process)
        .select_related("assignee", "checker")
        .order_by("-routed_at")[:20],
    }
    return render(request, "skills/routing.html", context, status=status)


@require_http_methods(["GET"])
@login_required
def routing_index(request: HtmxHttpRequest) -> HttpResponse:
    """The processes whose routing the viewer may set, with each one's strategy."""
    processes = [
        p
        for p in Process.objects.select_related("team").order_by("team__name", "name")
        if can_manage_team(user=request.user, team=p.team)
    ]
    strategies = dict(
        RoutingPolicy.objects.filter(process__in=processes).values_list("process_id", "strategy")
    )
    rows = [(p, strategies.get(p.pk, "order")) for p in processes]
    return render(request, "skills/routing_index.html", {"rows": rows})
