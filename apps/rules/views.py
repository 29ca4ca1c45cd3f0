import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from apps.cases import selectors as case_selectors
from apps.core.http import HtmxHttpRequest
from apps.rules import builder, selectors
from apps.rules.forms import RuleForm
from apps.rules.models import Rule
from apps.rules.services import authoring, backtest, drafting, induction, rationales, rejections
from apps.rules.views_builder import builder_context, sign
from apps.rules.views_builder import process_for_author as _process_for_author


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
    rules = list(selectors.rules_of(process=process))
    flags = selectors.rule_set_flags(process=process)
    for rule in rules:
        rule.flags = flags.get(rule.pk, [])  # type: ignore[attr-defined]
    context = {
        "process": process,
        "rules": rules,
        "flags": flags,
        "form": form,
        "can_author": can_author,
        "flag_sample": selectors.FLAG_SAMPLE,
    }
    if can_author:
        context.update(builder_context(request, process, builder.empty_state()))
    return render(request, "rules/rule_list.html", context, status=status)


def _rule_for_author(request: HtmxHttpRequest, slug: str, rule_id: int) -> Rule:
    process = _process_for_author(request, slug)
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


def _candidate_row(candidate: induction.Candidate, index: int) -> dict:
    provenance = {
        "source": "induced",
        "method": candidate.method,
        "support": candidate.support,
        "precision": round(candidate.precision, 4),
    }
    name = f"Induced: {candidate.action['decide']} ({index})"
    # A rule list is ordered: accepted in turn, its rules keep that order under first-match.
    priority = 100 + index if candidate.method == "rule_list" else 100
    seed = {
        "condition": candidate.condition,
        "action": candidate.action,
        "name": name,
        "priority": priority,
        "provenance": provenance,
    }
    return {
        "candidate": candidate,
        "id": candidate.fingerprint[:16],
        "sentence": candidate.sentence,
        "seed": sign(seed),
        "condition": json.dumps(candidate.condition),
        "action": json.dumps(candidate.action),
        "evidence": json.dumps({k: v for k, v in provenance.items() if k != "source"}),
        "form": RuleForm(
            initial={
                "name": name,
                "priority": priority,
                "condition": candidate.condition,
                "action": candidate.action,
                "provenance": provenance,
            }
        ),
    }


@require_http_methods(["GET", "POST"])
@login_required
def rule_induce(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Propose candidate rules (GET or POST, `method` tree or rule_list); each can be accepted as a
    new (disabled) rule with its provenance, edited in the builder first, or rejected with a reason."""
    process = _process_for_author(request, slug)
    method = (request.POST if request.method == "POST" else request.GET).get("method", "tree")
    try:
        candidates = induction.induce_rules(process=process, method=method)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("rule_list", slug=slug)
    context = {
        "process": process,
        "rows": [_candidate_row(c, index) for index, c in enumerate(candidates, start=1)],
        "method": method,
        "methods": [("tree", "decision tree"), ("rule_list", "rule list")],
        "rejections": selectors.rejections_of(process=process)[:100],
    }
    return render(request, "rules/candidates.html", context)


@require_POST
@login_required
def candidate_reject(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Reject a proposed rule with a reason. With htmx the candidate's row is replaced in place
    (or, without a reason, its reject form comes back with the error)."""
    process = _process_for_author(request, slug)
    data = request.POST
    method = data.get("method", "tree")
    try:
        condition = json.loads(data.get("condition", ""))
        action = json.loads(data.get("action", ""))
        evidence = json.loads(data.get("evidence") or "{}")
    except json.JSONDecodeError:
        condition = action = evidence = None
    error, rejection = "", None
    try:
        if condition is None:
            raise ValidationError("the candidate's condition and action must be JSON")
        rejection = rejections.reject_candidate(
            process=process,
            rejected_by=request.user,
            condition=condition,
            action=action,
            reason=data.get("reason", ""),
            evidence=evidence if isinstance(evidence, dict) else {},
        )
    except ValidationError as exc:
        error = " ".join(exc.messages)
    except rejections.AlreadyRejected as exc:
        rejection = exc.rejection
    if not request.htmx:
        if error:
            messages.error(request, f"Not rejected: {error}")
        else:
            messages.success(request, "Rejected: induction will not propose this rule again.")
        return redirect(f"{reverse('rule_induce', args=[slug])}?method={method}")
    row = {key: data.get(key, "") for key in ("id", "sentence", "condition", "action", "evidence")}
    context = {"process": process, "method": method, "row": row, "error": error}
    if rejection is None:
        response = render(
            request, "rules/candidates.html#reject-form", {**context, "reason": data.get("reason", "")},
            status=422,
        )  # fmt: skip
        return reswap(retarget(response, f"#reject-{row['id']}"), "outerHTML")
    context["rejection"] = rejection
    return render(request, "rules/candidates.html#rejected-row", context)


@require_GET
@login_required
def rationale_summary(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The common reasons experts give for each decision (every team member may read them)."""
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    groups = rationales.rationale_groups(process=process, viewer=request.user)
    context = {
        "process": process,
        "groups": groups,
        "chat_model": drafting.chat_model_name(),
        "drafting_off": drafting.OFF_MESSAGE,
        "can_author": selectors.can_author(user=request.user, process=process),
    }
    return render(request, "rules/rationales.html", context)
