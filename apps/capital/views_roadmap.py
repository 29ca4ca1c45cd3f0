"""Pages of the assessment, the first battle, the roadmap, the printable report and the phase
criteria. A team's members read them (outsiders get 404); its managers and admins (and
organisation admins) change them. Each page takes its forms as POSTs to itself with an `action`
field: success redirects back (POST-redirect-GET), an invalid form comes back with 422."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from apps.capital import selectors_assessment as assessment
from apps.capital import selectors_gaps as gaps
from apps.capital import services_roadmap as services
from apps.capital.forms_roadmap import (
    AnswersForm,
    AssetForm,
    ChooseForm,
    CriterionForm,
    DataSourceForm,
    NamedProcessForm,
    OwnerForm,
    RecordForm,
    WeightsForm,
)
from apps.capital.models import CandidateProcess, DataSource, ListedAsset
from apps.capital.selectors_battle import (
    CRITERIA,
    battle_history,
    current_battle,
    ranking,
    weights_of,
)
from apps.capital.selectors_battle_outcome import battle_outcome
from apps.capital.selectors_roadmap import (
    PHASES,
    criteria_rows,
    current_phase,
    pitfalls,
    roadmap_state,
    timeline,
)
from apps.cases.models import Process
from apps.core.api import reason_of
from apps.core.http import HtmxHttpRequest
from apps.people.models import Team


def _team(request: HtmxHttpRequest, team_slug: str) -> tuple[Team, bool]:
    team = assessment.capital_team(user=request.user, slug=team_slug)
    return team, assessment.can_edit_capital(user=request.user, team=team)


def _editor(request: HtmxHttpRequest, team_slug: str) -> Team:
    team, can_edit = _team(request, team_slug)
    if not can_edit:
        raise PermissionDenied("Only the team's managers and admins change this.")
    return team


def _apply(form: Any, action: Any) -> str | None:
    """Run `action(cleaned_data)` for a valid form; a service's ValidationError becomes a form
    error. Returns the success message, or None when the form must be shown again."""
    if not form.is_valid():
        return None
    try:
        return action(form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, reason_of(exc))
        return None


# --- the assessment -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def assessment_page(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    team, can_edit = _team(request, team_slug)
    figures = assessment.assessment_figures(team=team)
    questions = gaps.gap_questions(team=team, figures=figures)
    data = request.POST if request.method == "POST" else None
    action = request.POST.get("action", "") if data else ""
    forms = {
        "answers": AnswersForm(data if action == "answers" else None, questions=questions),
        "asset": AssetForm(data if action == "asset" else None, prefix="asset"),
        "source": DataSourceForm(data if action == "source" else None, prefix="source"),
        "named": NamedProcessForm(data if action == "named" else None, team=team, prefix="named"),
        "record": RecordForm(data if action == "record" else None, prefix="record"),
        "page_errors": [],
    }
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only the team's managers and admins change the assessment.")
        done = _assessment_action(request, team, action, forms)
        if done is not None:
            messages.success(request, done)
            return redirect("capital_assessment", team_slug=team.slug)
        status = 422
    versions = gaps.assessments_of(team=team)
    since_last = gaps.diff_assessments(versions[0].figures, figures) if versions else None
    context = {
        "team": team,
        "can_edit": can_edit,
        "figures": figures,
        "questions": questions,
        "forms": forms,
        "versions": versions,
        "since_last": since_last,
        "assets": ListedAsset.objects.filter(team=team).select_related("node"),
        "sources": figures["data"]["sources"],
        "source_rows": DataSource.objects.filter(team=team),
        "named": CandidateProcess.objects.filter(team=team, process__isnull=True).select_related(
            "owner"
        ),
        "section": "assessment",
    }
    return render(request, "capital/assessment.html", context, status=status)


def _assessment_action(
    request: HtmxHttpRequest, team: Team, action: str, forms: dict[str, Any]
) -> str | None:
    user = request.user
    if action == "answers":
        return _apply(
            forms["answers"],
            lambda d: (
                f"{services.save_answers(team=team, answers=forms['answers'].answers(), by=user)} answer(s) saved."
            ),
        )
    if action == "asset":
        return _apply(
            forms["asset"],
            lambda d: f"{services.add_asset(team=team, by=user, **d).name} listed.",
        )
    if action == "source":
        return _apply(
            forms["source"],
            lambda d: f"{services.add_data_source(team=team, by=user, **d).name} listed.",
        )
    if action == "named":
        return _apply(
            forms["named"],
            lambda d: f"{services.add_named_process(team=team, by=user, **d).name} named.",
        )
    if action == "record":
        return _apply(
            forms["record"],
            lambda d: (
                f"Assessment v{services.record_assessment(team=team, by=user, note=d['note']).version} recorded."
            ),
        )
    if action == "remove":
        try:
            services.remove_inventory(
                team=team,
                kind=request.POST.get("kind", ""),
                item_id=int(request.POST.get("item", "0") or 0),
            )
        except (ValueError, ValidationError) as exc:
            forms["page_errors"].append(
                reason_of(exc) if isinstance(exc, ValidationError) else "No such item."
            )
            return None
        return "Removed."
    forms["page_errors"].append("Unknown action.")
    return None


@require_http_methods(["GET"])
@login_required
def assessment_version_page(request: HtmxHttpRequest, team_slug: str, number: int) -> HttpResponse:
    """A recorded assessment as it was, and what changed since the version before it."""
    team, can_edit = _team(request, team_slug)
    recorded = gaps.assessment_version(team=team, version=number)
    previous = gaps.assessment_version(team=team, version=number - 1) if number > 1 else None
    context = {
        "team": team,
        "can_edit": can_edit,
        "recorded": recorded,
        "figures": recorded.figures,
        "previous": previous,
        "changes": (gaps.diff_assessments(previous.figures, recorded.figures) if previous else []),
        "answer_changes": (
            gaps.diff_assessments(gaps.answers_of(previous), gaps.answers_of(recorded))
            if previous
            else []
        ),
        "section": "assessment",
    }
    return render(request, "capital/assessment_version.html", context)


# --- the first battle ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def battle_page(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    team, can_edit = _team(request, team_slug)
    candidates = ranking(team=team)
    weights = weights_of(team=team)
    processes = list(Process.objects.filter(team=team).order_by("name"))
    data = request.POST if request.method == "POST" else None
    action = request.POST.get("action", "") if data else ""
    forms = {
        "weights": WeightsForm(data if action == "weights" else None, initial=weights),
        "choose": ChooseForm(data if action == "choose" else None, candidates=candidates),
        "owner": OwnerForm(
            data if action == "owner" else None, team=team, processes=processes, prefix="owner"
        ),
        "page_errors": [],
    }
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only the team's managers and admins pick the first battle.")
        done = _battle_action(request, team, action, forms)
        if done is not None:
            messages.success(request, done)
            return redirect("capital_battle", team_slug=team.slug)
        status = 422
    battle = current_battle(team=team)
    context = {
        "team": team,
        "can_edit": can_edit,
        "candidates": candidates,
        "criteria_names": CRITERIA,
        "weights": weights,
        "forms": forms,
        "battle": battle,
        "outcome": battle_outcome(choice=battle),
        "history": battle_history(team=team),
        "section": "battle",
    }
    return render(request, "capital/battle.html", context, status=status)


def _battle_action(
    request: HtmxHttpRequest, team: Team, action: str, forms: dict[str, Any]
) -> str | None:
    user = request.user
    if action == "weights":
        return _apply(
            forms["weights"],
            lambda d: services.set_weights(team=team, by=user, **d) and "Weights saved.",
        )
    if action == "choose":
        return _apply(
            forms["choose"],
            lambda d: (
                "First battle chosen: "
                + services.choose_battle(
                    team=team, candidate_key=d["candidate"], reason=d["reason"], by=user
                ).name
            ),
        )
    if action == "owner":

        def set_owner(d: dict) -> str:
            process = Process.objects.get(team=team, slug=d["process"])
            services.set_process_owner(process=process, owner=d["owner"], by=user)
            return f"Owner of {process.name} saved."

        return _apply(forms["owner"], set_owner)
    if action == "refresh":
        try:
            services.refresh_battle_estimate(team=team, by=user)
        except ValidationError as exc:
            forms["page_errors"].append(reason_of(exc))
            return None
        return "Estimate refreshed from today's figures."
    forms["page_errors"].append("Unknown action.")
    return None


# --- the roadmap and the report -----------------------------------------------------------------


def roadmap_context(team: Team) -> dict[str, Any]:
    """Everything the roadmap page, the report and the API show. Reads only: the phase entries
    are brought up to date by the hourly capital refresh (snapshots.refresh_recent)."""
    now = timezone.now()
    phases = roadmap_state(team=team, now=now)
    current = current_phase(phases)
    versions = gaps.assessments_of(team=team)
    return {
        "team": team,
        "now": now,
        "phases": phases,
        "current": current,
        "days_in_phase": (now - current.entered_at).days if current.entered_at else None,
        "pitfalls": pitfalls(team=team, phases=phases, now=now),
        "timeline": timeline(team=team, phases=phases),
        "battle": current_battle(team=team),
        "latest_assessment": versions[0] if versions else None,
    }


@require_http_methods(["GET"])
@login_required
def roadmap_page(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    team, can_edit = _team(request, team_slug)
    context = {
        **roadmap_context(team),
        "can_edit": can_edit,
        "can_edit_criteria": assessment.can_edit_criteria(user=request.user),
        "section": "roadmap",
    }
    return render(request, "capital/roadmap.html", context)


@require_http_methods(["GET"])
@login_required
def report_page(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    """One page to print: phase and criteria, pitfalls, the first battle, the assessment."""
    team, can_edit = _team(request, team_slug)
    context = roadmap_context(team)
    figures = assessment.assessment_figures(team=team, now=context["now"])
    context.update(
        {
            "can_edit": can_edit,
            "figures": figures,
            "top": ranking(team=team, now=context["now"], assessed=figures)[:3],
            "section": "report",
        }
    )
    return render(request, "capital/report.html", context)


@require_http_methods(["GET"])
@login_required
def roadmaps_page(request: HtmxHttpRequest) -> HttpResponse:
    """Every team the user may see, with its phase and pitfalls."""
    teams = assessment.capital_teams(user=request.user)
    if not teams:
        raise Http404("No team")
    rows = []
    for team in teams:
        phases = roadmap_state(team=team)
        rows.append(
            {
                "team": team,
                "current": current_phase(phases),
                "pitfalls": pitfalls(team=team, phases=phases),
                "battle": current_battle(team=team),
            }
        )
    return render(request, "capital/roadmaps.html", {"rows": rows})


# --- phase criteria (organisation admins) -------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def criteria_page(request: HtmxHttpRequest) -> HttpResponse:
    if not assessment.capital_teams(user=request.user):
        raise Http404("No team")
    can_edit = assessment.can_edit_criteria(user=request.user)
    form = CriterionForm(
        request.POST if request.method == "POST" and "remove" not in request.POST else None
    )
    page_errors: list[str] = []
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only organisation admins change the phase criteria.")
        if "remove" in request.POST:
            try:
                services.remove_criterion(criterion_id=int(request.POST["remove"]))
            except (ValueError, ValidationError):
                page_errors.append("No such criterion.")
            else:
                messages.success(request, "Criterion removed.")
                return redirect("capital_criteria")
        else:
            done = _apply(
                form,
                lambda d: services.set_criterion(by=request.user, **d) and "Criterion saved.",
            )
            if done:
                messages.success(request, done)
                return redirect("capital_criteria")
        status = 422
    rows = criteria_rows()
    phases = [
        {"spec": spec, "rows": [r for r in rows if r.phase == spec.number]} for spec in PHASES
    ]
    context = {
        "phases": phases,
        "form": form if can_edit else None,
        "can_edit": can_edit,
        "labels": {r.pk: _label(r) for r in rows},
        "page_errors": page_errors,
        "back": reverse("capital_roadmaps"),
    }
    return render(request, "capital/criteria.html", context, status=status)


def _label(row: Any) -> str:
    from apps.capital.criteria import label_of

    return label_of(row.kind, row.threshold)
