"""The htmx rule builder, and rule drafts by a chat model (which open in it)."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.cases import selectors as case_selectors
from apps.cases.models import Process
from apps.core.http import HtmxHttpRequest
from apps.people.models import Membership, Role, Team
from apps.rules import builder, selectors
from apps.rules.models import Rule
from apps.rules.services import authoring, drafting

# Provenance and seeds travel through the page signed, so "drafted by …" or "induced" can't be
# made up by editing the form.
_SALT = "rules.builder"
MAX_PRIORITY = 1_000_000_000


def sign(value: dict) -> str:
    return signing.dumps(value, salt=_SALT, compress=True)


def unsign(text: str) -> dict:
    try:
        value = signing.loads(text, salt=_SALT)
    except signing.BadSignature:
        return {}
    return value if isinstance(value, dict) else {}


def process_for_author(request: HtmxHttpRequest, slug: str) -> Process:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_author(user=request.user, process=process):
        raise PermissionDenied("Only the team's experts, managers and admins write rules.")
    return process


def _routes(process: Process, current: str) -> list[tuple[str, str]]:
    routes = [
        (f"team:{slug}", f"team {name}")
        for slug, name in Team.objects.order_by("name").values_list("slug", "name")
    ]
    routes += [
        (f"expert:{username}", f"expert {username}")
        for username in Membership.objects.filter(team=process.team, role=Role.EXPERT)
        .order_by("user__username")
        .values_list("user__username", flat=True)
    ]
    if current and current not in dict(routes):
        routes.append((current, current))
    return routes


def builder_context(
    request: HtmxHttpRequest, process: Process, state: builder.BuilderState, **extra: object
) -> dict:
    """What the builder partial (templates/rules/builder.html#builder) renders."""
    schema = process.schema
    builder.normalise(state, schema)
    check = builder.check(state, schema)
    rules = list(selectors.rules_of(process=process))
    targets = [("new", "a new rule")] + [
        (str(rule.pk), f"a new version of “{rule.name}” (now v{rule.current.version})")
        for rule in rules
    ]
    if state.target not in dict(targets):
        state.target = "new"
    return {
        "process": process,
        "builder": {
            "state": state,
            "check": check,
            "rows": builder.rows(state, schema, check.error_part),
            "labels": schema.labels,
            "reason_codes": schema.reason_codes(state.decide),
            "action_kinds": builder.ACTION_KINDS,
            "routes": _routes(process, state.route),
            "targets": targets,
            "provenance": sign(state.provenance),
            "provenance_note": state.provenance.get("note", ""),
            "url": reverse("rule_builder", args=[process.slug]),
            **extra,
        },
    }


def _save(
    request: HtmxHttpRequest, process: Process, state: builder.BuilderState
) -> HttpResponse | str:
    """Save the builder's rule; the response (a redirect to the rules) or what prevents it."""
    schema = process.schema
    builder.normalise(state, schema)
    check = builder.check(state, schema)
    if not check.ok:
        return "fix the rule first: " + " ".join(
            e for e in (check.condition_error, check.action_error) if e
        )
    provenance = state.provenance or None
    try:
        if state.target == "new":
            try:
                priority = int(state.priority)
            except ValueError:
                priority = None
            if priority is None or abs(priority) > MAX_PRIORITY:
                raise ValidationError("priority: a whole number, lower runs first")
            rule = authoring.create_rule(
                process=process,
                owner=request.user,
                name=state.name,
                priority=priority,
                condition=check.condition,
                action=check.action,
                provenance=provenance,
            )
            note = f"Rule “{rule.name}” saved, disabled: backtest it, then enable it."
        else:
            rule = get_object_or_404(Rule, pk=state.target, process=process)
            before = rule.current_id
            version = authoring.revise_rule(
                rule=rule,
                author=request.user,
                condition=check.condition,
                action=check.action,
                provenance=provenance,
            )
            if version.pk == before:
                note = f"“{rule.name}” is unchanged (still v{version.version})."
            else:
                note = f"“{rule.name}” v{version.version} saved, disabled: backtest it, then enable it."
    except ValidationError as exc:
        return " ".join(exc.messages)
    messages.success(request, note)
    url = reverse("rule_list", args=[process.slug])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _state_from_seed(process: Process, seed: dict) -> builder.BuilderState:
    priority = seed.get("priority", 100)
    return builder.state_from_rule(
        seed.get("condition"),
        seed.get("action"),
        process.schema,
        name=str(seed.get("name") or ""),
        priority=priority if isinstance(priority, int) else 100,
        provenance=seed.get("provenance") if isinstance(seed.get("provenance"), dict) else None,
    )


@require_http_methods(["GET", "POST"])
@login_required
def rule_builder(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """GET: the builder, empty or (`?rule=<id>`) holding a rule's current version. POST: the
    builder's fields, a button's change applied (`do`), re-rendered; `do=save` saves; `seed`
    (signed, from the candidates page) opens a proposed rule in it."""
    process = process_for_author(request, slug)
    save_error, status = "", 200
    do = request.POST.get("do", "")
    if request.method == "GET":
        rule_id = request.GET.get("rule", "")
        if rule_id.isdigit():
            rule = get_object_or_404(
                Rule.objects.select_related("current"), pk=rule_id, process=process
            )
            state = builder.state_from_rule(
                rule.current.condition,
                rule.current.action,
                process.schema,
                name=rule.name,
                priority=rule.priority,
                target=str(rule.pk),
            )
        else:
            state = builder.empty_state()
    elif "seed" in request.POST:
        state = _state_from_seed(process, unsign(request.POST["seed"]))
    else:
        state = builder.state_from_post(request.POST)
        state.provenance = unsign(request.POST.get("provenance", ""))
        builder.apply(state, do)
        if do == "save":
            saved = _save(request, process, state)
            if isinstance(saved, HttpResponse):
                return saved
            save_error, status = saved, 422
    context = builder_context(request, process, state, save_error=save_error)
    if request.htmx and do == "preview":
        template = "rules/builder.html#preview"
    elif request.htmx and request.method == "POST":
        template = "rules/builder.html#builder"
    else:
        template = "rules/builder.html"
    return render(request, template, context, status=status)


@require_POST
@login_required
def rule_draft(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Ask the chat model for a rule from a rationale group; the draft opens in the builder for an
    expert to check and save (it is never saved here). 409 when no chat model is configured."""
    process = process_for_author(request, slug)
    label = request.POST.get("label", "")
    case_ids = [int(x) for x in request.POST.getlist("cases") if x.isdigit()][:50]
    terms = [t[:60] for t in request.POST.getlist("terms")][:10]
    try:
        draft = drafting.draft_rule(
            process=process, label=label, case_ids=case_ids, viewer=request.user, terms=terms
        )
    except drafting.DraftingOff as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("rationale_summary", slug=slug)
    except drafting.DraftFailed as exc:
        state = builder.empty_state()
        state.decide = label
        context = builder_context(
            request, process, state, draft_error=str(exc), draft_reply=exc.reply
        )
        return render(request, "rules/builder.html", context)
    name = f"Drafted: {label}" + (f" ({', '.join(terms[:3])})" if terms else "")
    state = builder.state_from_rule(
        draft.condition,
        draft.action,
        process.schema,
        name=name[:120],
        provenance=draft.provenance,
    )
    context = builder_context(request, process, state, draft=draft, draft_json=_pretty(draft))
    return render(request, "rules/builder.html", context)


def _pretty(draft: drafting.Draft) -> str:
    return json.dumps({"condition": draft.condition, "action": draft.action}, indent=2)
