from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.cases import selectors as case_selectors
from apps.core.http import HtmxHttpRequest
from apps.rules import selectors
from apps.rules.forms import RuleForm
from apps.rules.models import Rule
from apps.rules.services import authoring, backtest, induction, rationales


@require_http_methods(["GET", "POST"])
@login_required
def rule_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    can_author = selectors.can_author(user=request.user, process=process)
    form = RuleForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not can_author:
            raise PermissionDenied("Only the team's experts, managers and admins write rules.")
        if form.is_valid():
            try:
                rule = authoring.create_rule(
                    process=process,
                    owner=request.user,
                    name=form.cleaned_data["name"],
                    priority=form.cleaned_data["priority"],
                    condition=form.cleaned_data["condition"],
                    action=form.cleaned_data["action"],
                    provenance=form.cleaned_data.get("provenance") or None,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(
                    request, f"Rule “{rule.name}” saved, disabled: backtest it, then enable it."
                )
                return redirect("rule_list", slug=process.slug)
        status = 422
    context = {
        "process": process,
        "rules": selectors.rules_of(process=process),
        "form": form,
        "can_author": can_author,
    }
    return render(request, "rules/rule_list.html", context, status=status)


def _rule_for_author(request: HtmxHttpRequest, slug: str, rule_id: int) -> Rule:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_author(user=request.user, process=process):
        raise PermissionDenied("Only the team's experts, managers and admins change rules.")
    return get_object_or_404(
        Rule.objects.select_related("current", "process__schema"), pk=rule_id, process=process
    )


@require_POST
@login_required
def rule_backtest(request: HtmxHttpRequest, slug: str, rule_id: int) -> HttpResponse:
    rule = _rule_for_author(request, slug, rule_id)
    version = backtest.backtest_rule(rule=rule)
    stats = version.backtest
    precision = f", precision {stats['precision']:.0%}" if stats["precision"] is not None else ""
    messages.success(
        request,
        f"“{rule.name}” covers {stats['covered']} of {stats['decided_cases']} decided cases{precision}.",
    )
    return redirect("rule_list", slug=slug)


@require_POST
@login_required
def rule_toggle(request: HtmxHttpRequest, slug: str, rule_id: int) -> HttpResponse:
    rule = _rule_for_author(request, slug, rule_id)
    try:
        if rule.enabled:
            authoring.disable_rule(rule=rule)
        else:
            authoring.enable_rule(rule=rule)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("rule_list", slug=slug)


@require_POST
@login_required
def rule_induce(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Propose candidate rules; each can be accepted as a new (disabled) rule with its provenance."""
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_author(user=request.user, process=process):
        raise PermissionDenied("Only the team's experts, managers and admins write rules.")
    try:
        candidates = induction.induce_rules(process=process)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("rule_list", slug=slug)
    rows = [
        {
            "candidate": c,
            "form": RuleForm(
                initial={
                    "name": f"Induced: {c.action['decide']} ({index})",
                    "priority": 100,
                    "condition": c.condition,
                    "action": c.action,
                    "provenance": {
                        "source": "induced",
                        "support": c.support,
                        "precision": round(c.precision, 4),
                    },
                }
            ),
        }
        for index, c in enumerate(candidates, start=1)
    ]
    return render(request, "rules/candidates.html", {"process": process, "rows": rows})


@require_GET
@login_required
def rationale_summary(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The common reasons experts give for each decision (every team member may read them)."""
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    groups = rationales.rationale_groups(process=process)
    return render(request, "rules/rationales.html", {"process": process, "groups": groups})
