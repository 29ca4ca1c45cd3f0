"""Pages: a person's skills (theirs, or as their manager), plans, paths, the manager's reviews,
and the framework editor (organisation admins). Someone else's person or plan page is 404."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.evidence_kinds import evidence_kinds
from apps.core.http import HtmxHttpRequest
from apps.people.selectors import is_org_admin
from apps.skills import forms as skill_forms
from apps.skills import selectors, services
from apps.skills.models import (
    CareerRole,
    EvidenceRule,
    PlanState,
    RoleRequirement,
    Skill,
)


def _fail(form: Form, exc: ValidationError) -> None:
    for message in exc.messages:
        form.add_error(None, message)


# --- a person's skills --------------------------------------------------------------------------


def _person_page(
    request: HtmxHttpRequest, person: AbstractBaseUser, status: int = 200, **forms: Any
) -> HttpResponse:
    is_self = request.user.pk == person.pk
    can_manage = selectors.manages(viewer=request.user, person=person)
    areas = selectors.person_skills(person=person)
    context = {
        "person": person,
        "is_self": is_self,
        "can_manage": can_manage,
        "areas": areas,
        "history": selectors.level_history(person=person),
        "manual": selectors.manual_evidence_of(person=person),
        "plans": selectors.plans_of(person=person),
        "manual_form": forms.get("manual_form") or skill_forms.ManualEvidenceForm(),
        "plan_form": forms.get("plan_form") or skill_forms.PlanForm(),
        "has_reviews": can_manage
        or selectors.managed_people_ids(viewer=request.user) - {request.user.pk},
        "is_org_admin": is_org_admin(user=request.user),
    }
    return render(request, "skills/person.html", context, status=status)


@require_GET
@login_required
def my_skills(request: HtmxHttpRequest) -> HttpResponse:
    return _person_page(request, request.user)


@require_GET
@login_required
def person_skills(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    person = selectors.person_for(viewer=request.user, user_id=user_id)
    return _person_page(request, person)


def _back_to(request: HtmxHttpRequest, person: AbstractBaseUser) -> HttpResponse:
    if person.pk == request.user.pk:
        return redirect("my_skills")
    return redirect("person_skills", user_id=person.pk)


@require_POST
@login_required
def person_refresh(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    person = selectors.person_for(viewer=request.user, user_id=user_id)
    result = services.refresh_person(person=person)
    messages.success(
        request, f"Evidence measured again: {result.granted} levels granted, {result.lost} lost."
    )
    return _back_to(request, person)


@require_POST
@login_required
def manual_evidence_add(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    person = selectors.person_for(viewer=request.user, user_id=user_id)
    if person.pk != request.user.pk:
        raise PermissionDenied("People add their own courses and certificates.")
    form = skill_forms.ManualEvidenceForm(request.POST)
    if form.is_valid():
        try:
            services.submit_manual_evidence(person=person, **form.cleaned_data)
        except ValidationError as exc:
            _fail(form, exc)
        else:
            messages.success(request, "Evidence added: it counts once a manager approves it.")
            return _back_to(request, person)
    return _person_page(request, person, status=422, manual_form=form)


@require_POST
@login_required
def plan_create(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    person = selectors.person_for(viewer=request.user, user_id=user_id)
    form = skill_forms.PlanForm(request.POST)
    if form.is_valid():
        try:
            plan = services.create_plan(person=person, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _fail(form, exc)
        else:
            return redirect("skill_plan", plan_id=plan.pk)
    return _person_page(request, person, status=422, plan_form=form)


# --- plans --------------------------------------------------------------------------------------


def _plan_page(
    request: HtmxHttpRequest, plan: Any, status: int = 200, **forms: Any
) -> HttpResponse:
    is_self = request.user.pk == plan.person_id
    can_manage = selectors.manages(viewer=request.user, person=plan.person)
    nxt = services.NEXT_STATE.get(plan.state)
    if nxt == PlanState.AGREED:
        # The other party agrees: a manager to the person's own plan, the person to a proposal.
        may_move = can_manage if plan.proposed_by_id == plan.person_id else is_self
    else:
        may_move = can_manage or (is_self and nxt == PlanState.ACTIVE)
    context = {
        "plan": plan,
        "is_self": is_self,
        "can_manage": can_manage,
        "steps": selectors.role_path(role=plan.target_role, person=plan.person),
        "events": plan.events.select_related("actor"),
        "reviews": plan.reviews.select_related("requested_by", "resolved_by"),
        "next_state": nxt,
        "may_move": may_move,
        "transition_form": forms.get("transition_form") or skill_forms.TransitionForm(),
        "review_form": forms.get("review_form") or skill_forms.ReviewRequestForm(),
        "answer_form": forms.get("answer_form") or skill_forms.ReviewAnswerForm(),
        "may_request_review": is_self and plan.state in (PlanState.AGREED, PlanState.ACTIVE),
    }
    return render(request, "skills/plan.html", context, status=status)


@require_GET
@login_required
def plan_detail(request: HtmxHttpRequest, plan_id: int) -> HttpResponse:
    return _plan_page(request, selectors.plan_for(viewer=request.user, plan_id=plan_id))


@require_POST
@login_required
def plan_transition(request: HtmxHttpRequest, plan_id: int) -> HttpResponse:
    plan = selectors.plan_for(viewer=request.user, plan_id=plan_id)
    form = skill_forms.TransitionForm(request.POST)
    if form.is_valid():
        try:
            services.transition_plan(
                plan=plan, to=form.cleaned_data["to"], actor=request.user,
                note=form.cleaned_data["note"],
            )  # fmt: skip
        except ValidationError as exc:
            _fail(form, exc)
        else:
            messages.success(request, f"The plan is {form.cleaned_data['to']}.")
            return redirect("skill_plan", plan_id=plan.pk)
    return _plan_page(request, plan, status=422, transition_form=form)


@require_POST
@login_required
def plan_review_request(request: HtmxHttpRequest, plan_id: int) -> HttpResponse:
    plan = selectors.plan_for(viewer=request.user, plan_id=plan_id)
    form = skill_forms.ReviewRequestForm(request.POST)
    if form.is_valid():
        try:
            services.request_plan_review(plan=plan, by=request.user, note=form.cleaned_data["note"])
        except ValidationError as exc:
            _fail(form, exc)
        else:
            messages.success(request, "Review requested: your managers see it on their reviews.")
            return redirect("skill_plan", plan_id=plan.pk)
    return _plan_page(request, plan, status=422, review_form=form)


@require_POST
@login_required
def plan_review_answer(request: HtmxHttpRequest, review_id: int) -> HttpResponse:
    review = selectors.plan_review_for(viewer=request.user, review_id=review_id)
    form = skill_forms.ReviewAnswerForm(request.POST)
    if form.is_valid():
        try:
            services.resolve_plan_review(
                review=review, by=request.user, response=form.cleaned_data["response"]
            )
        except ValidationError as exc:
            _fail(form, exc)
        else:
            messages.success(request, "Review answered.")
            return redirect("skill_plan", plan_id=review.plan_id)
    plan = selectors.plan_for(viewer=request.user, plan_id=review.plan_id)
    return _plan_page(request, plan, status=422, answer_form=form)


# --- paths and reviews --------------------------------------------------------------------------


@require_GET
@login_required
def skill_paths(request: HtmxHttpRequest) -> HttpResponse:
    roles = [
        {"role": role, "steps": selectors.role_path(role=role, person=request.user)}
        for role in selectors.roles()
    ]
    return render(
        request,
        "skills/paths.html",
        {
            "roles": roles,
            "areas": selectors.framework(),
            "is_org_admin": is_org_admin(user=request.user),
        },
    )


def _reviews_page(request: HtmxHttpRequest, status: int = 200, error: str = "") -> HttpResponse:
    reviews = selectors.reviews_for(manager=request.user)
    return render(
        request,
        "skills/reviews.html",
        {"reviews": reviews, "error": error, "form": skill_forms.EvidenceReviewForm()},
        status=status,
    )


def _may_review(request: HtmxHttpRequest) -> None:
    if not (
        is_org_admin(user=request.user)
        or selectors.managed_people_ids(viewer=request.user) - {request.user.pk}
    ):
        raise PermissionDenied("Skill reviews are for managers and admins of a team.")


@require_GET
@login_required
def skill_reviews(request: HtmxHttpRequest) -> HttpResponse:
    _may_review(request)
    return _reviews_page(request)


@require_POST
@login_required
def manual_evidence_review(request: HtmxHttpRequest, evidence_id: int) -> HttpResponse:
    # Someone who can't see the person learns nothing (404); the service says who may review.
    evidence = selectors.manual_evidence_for(viewer=request.user, evidence_id=evidence_id)
    form = skill_forms.EvidenceReviewForm(request.POST)
    if not form.is_valid():
        return _reviews_page(request, 422, "Choose approve or reject.")
    try:
        services.review_manual_evidence(
            evidence=evidence, reviewer=request.user,
            approve=form.cleaned_data["decision"] == "approve", note=form.cleaned_data["note"],
        )  # fmt: skip
    except ValidationError as exc:
        return _reviews_page(request, 422, f"{evidence.title}: {' '.join(exc.messages)}")
    messages.success(request, f"{evidence.title}: {form.cleaned_data['decision']}d.")
    return redirect("skill_reviews")


# --- the framework (organisation admins) --------------------------------------------------------


def _admin_only(request: HtmxHttpRequest) -> None:
    if not is_org_admin(user=request.user):
        raise PermissionDenied("Only organisation admins edit the skill framework.")


@require_http_methods(["GET", "POST"])
@login_required
def skills_framework(request: HtmxHttpRequest) -> HttpResponse:
    _admin_only(request)
    area_form = skill_forms.AreaForm(prefix="area")
    skill_form = skill_forms.NewSkillForm(prefix="skill")
    role_form = skill_forms.RoleForm(prefix="role")
    status = 200
    if request.method == "POST":
        what = request.POST.get("add")
        try:
            if what == "area":
                area_form = skill_forms.AreaForm(request.POST, prefix="area")
                if area_form.is_valid():
                    services.create_area(**area_form.cleaned_data)
                    messages.success(request, "Area added.")
                    return redirect("skills_framework")
            elif what == "skill":
                skill_form = skill_forms.NewSkillForm(request.POST, prefix="skill")
                if skill_form.is_valid():
                    skill = services.create_skill(**skill_form.cleaned_data)
                    return redirect("skill_edit", skill_id=skill.pk)
            elif what == "role":
                role_form = skill_forms.RoleForm(request.POST, prefix="role")
                if role_form.is_valid():
                    role = services.create_role(**role_form.cleaned_data)
                    return redirect("career_role_edit", role_id=role.pk)
        except ValidationError as exc:
            target = {"area": area_form, "skill": skill_form, "role": role_form}[what or "area"]
            _fail(target, exc)
        status = 422
    context = {
        "areas": selectors.framework(),
        "roles": selectors.roles(),
        "area_form": area_form,
        "skill_form": skill_form,
        "role_form": role_form,
        "kinds": evidence_kinds(),
    }
    return render(request, "skills/framework.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def skill_edit(request: HtmxHttpRequest, skill_id: int) -> HttpResponse:
    _admin_only(request)
    skill = get_object_or_404(Skill, pk=skill_id)
    initial = {"area": skill.area, "name": skill.name, "description": skill.description,
               "prerequisites": list(skill.prerequisites.all())}  # fmt: skip
    skill_form = skill_forms.SkillForm(initial=initial, skill=skill, prefix="skill")
    level_form = skill_forms.LevelForm(prefix="level")
    rule_form = skill_forms.RuleForm(skill=skill, prefix="rule")
    status = 200
    if request.method == "POST":
        what = request.POST.get("save")
        if what == "skill":
            skill_form = skill_forms.SkillForm(request.POST, skill=skill, prefix="skill")
            form: Form = skill_form
        elif what == "level":
            level_form = skill_forms.LevelForm(request.POST, prefix="level")
            form = level_form
        else:
            rule_form = skill_forms.RuleForm(request.POST, skill=skill, prefix="rule")
            form = rule_form
        if form.is_valid():
            try:
                if what == "skill":
                    services.update_skill(skill=skill, **form.cleaned_data)
                elif what == "level":
                    services.add_level(skill=skill, **form.cleaned_data)
                else:
                    services.add_rule(**form.cleaned_data)
            except ValidationError as exc:
                _fail(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("skill_edit", skill_id=skill.pk)
        status = 422
    processes = selectors.process_names()
    levels = [
        {
            "level": level,
            "rules": [
                (rule, selectors.describe_rule(rule, processes)) for rule in level.rules.all()
            ],
        }
        for level in skill.levels.prefetch_related("rules")
    ]
    context = {
        "skill": skill,
        "levels": levels,
        "skill_form": skill_form,
        "level_form": level_form,
        "rule_form": rule_form,
        "kinds": evidence_kinds(),
    }
    return render(request, "skills/skill_edit.html", context, status=status)


@require_POST
@login_required
def evidence_rule_delete(request: HtmxHttpRequest, rule_id: int) -> HttpResponse:
    _admin_only(request)
    rule = get_object_or_404(EvidenceRule.objects.select_related("level"), pk=rule_id)
    skill_id = rule.level.skill_id
    rule.delete()
    messages.success(request, "Rule removed; levels follow at the next recompute.")
    return redirect("skill_edit", skill_id=skill_id)


@require_http_methods(["GET", "POST"])
@login_required
def career_role_edit(request: HtmxHttpRequest, role_id: int) -> HttpResponse:
    _admin_only(request)
    role = get_object_or_404(CareerRole, pk=role_id)
    initial = {
        "name": role.name,
        "description": role.description,
        "leads_to": list(role.leads_to.all()),
    }
    role_form = skill_forms.RoleEditForm(initial=initial, role=role, prefix="role")
    requirement_form = skill_forms.RequirementForm(prefix="req")
    status = 200
    if request.method == "POST":
        what = request.POST.get("save")
        if what == "remove":
            RoleRequirement.objects.filter(role=role, pk=request.POST.get("requirement")).delete()
            return redirect("career_role_edit", role_id=role.pk)
        if what == "role":
            role_form = skill_forms.RoleEditForm(request.POST, role=role, prefix="role")
            if role_form.is_valid():
                try:
                    services.update_role(role=role, **role_form.cleaned_data)
                except ValidationError as exc:
                    _fail(role_form, exc)
                else:
                    messages.success(request, "Saved.")
                    return redirect("career_role_edit", role_id=role.pk)
        else:
            requirement_form = skill_forms.RequirementForm(request.POST, prefix="req")
            if requirement_form.is_valid():
                try:
                    services.set_requirement(role=role, **requirement_form.cleaned_data)
                except ValidationError as exc:
                    _fail(requirement_form, exc)
                else:
                    return redirect("career_role_edit", role_id=role.pk)
        status = 422
    context = {
        "role": role,
        "steps": selectors.role_path(role=role),
        "requirements": role.requirements.select_related("skill"),
        "role_form": role_form,
        "requirement_form": requirement_form,
    }
    return render(request, "skills/role_edit.html", context, status=status)
