from collections import Counter

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core import one_time, registry
from apps.core.http import HtmxHttpRequest
from apps.people import selectors, services
from apps.people.forms import (
    AcceptInvitationForm,
    AddMemberForm,
    ApiTokenForm,
    InviteForm,
    MemberRolesForm,
)
from apps.people.models import ApiToken, Invitation, Role, Team

User = get_user_model()


@require_GET
@login_required
def home(request: HtmxHttpRequest) -> HttpResponse:
    roles_by_team = selectors.roles_by_team(user=request.user)
    all_roles = sorted(set().union(*roles_by_team.values())) if roles_by_team else []
    is_org_admin = selectors.is_org_admin(user=request.user)
    teams = list(selectors.teams_with_members(user=request.user))
    for team in teams:
        team.my_roles = sorted(roles_by_team.get(team.slug, set()))
        team.role_counts = Counter(m.role for m in team.memberships.all())
    return render(
        request,
        "people/home.html",
        {
            "teams": teams,
            "all_roles": all_roles,
            "is_org_admin": is_org_admin,
            # Organisation admins reach every team's page, member or not.
            "all_teams": Team.objects.order_by("name") if is_org_admin else [],
            "managed_teams": [t for t in teams if set(t.my_roles) & {Role.MANAGER, Role.ADMIN}],
            "token_count": selectors.active_api_tokens(user=request.user).count(),
            # Work from other apps (review queues, adjudication, …), registered by those apps.
            "sections": registry.home_sections(request.user),
        },
    )


def _team_page(
    request: HtmxHttpRequest,
    team: Team,
    *,
    status: int = 200,
    add_form: AddMemberForm | None = None,
    invite_form: InviteForm | None = None,
    new_invite_link: str | None = None,
) -> HttpResponse:
    can_manage = selectors.can_manage_team(user=request.user, team=team)
    context = {
        "team": team,
        "members": selectors.team_members(team=team),
        "my_roles": sorted(selectors.roles_of(user=request.user, team=team)),
        "can_manage": can_manage,
        "can_grant_admin": selectors.can_grant_admin_role(user=request.user, team=team),
        "roles": Role.choices,
        "add_form": add_form or AddMemberForm(),
        "invite_form": invite_form or InviteForm(),
        "invitations": selectors.open_invitations(team=team) if can_manage else [],
        "new_invite_link": new_invite_link,
    }
    return render(request, "people/team.html", context, status=status)


@require_GET
@login_required
def team_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    team = selectors.team_for_member(user=request.user, slug=slug)
    raw = one_time.pop_secret(request, key=_invitation_key(team))
    if raw is None:
        return _team_page(request, team)
    link = request.build_absolute_uri(reverse("accept_invitation", args=[raw]))
    return one_time.keep_out_of_caches(_team_page(request, team, new_invite_link=link))


def _invitation_key(team: Team) -> str:
    return f"invitation:{team.pk}"


def _managed_team(request: HtmxHttpRequest, slug: str) -> Team:
    team = selectors.team_for_member(user=request.user, slug=slug)
    if not selectors.can_manage_team(user=request.user, team=team):
        raise PermissionDenied("Only the team's managers and admins can do this.")
    return team


@require_POST
@login_required
def team_member_add(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    team = _managed_team(request, slug)
    form = AddMemberForm(request.POST)
    if not form.is_valid():
        return _team_page(request, team, status=422, add_form=form)
    user = form.cleaned_data["identifier"]
    try:
        services.add_member(
            team=team, user=user, role=form.cleaned_data["role"], actor=request.user
        )
    except ValidationError as exc:
        form.add_error("role", exc)
        return _team_page(request, team, status=422, add_form=form)
    messages.success(request, f"{user.username} is now {form.cleaned_data['role']} in {team.name}.")
    return redirect("team_detail", slug=team.slug)


@require_POST
@login_required
def team_member_roles(request: HtmxHttpRequest, slug: str, user_id: int) -> HttpResponse:
    team = _managed_team(request, slug)
    member = selectors.team_member(team=team, user_id=user_id)
    form = MemberRolesForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.set_member_roles(
                team=team, user=member, roles=set(form.cleaned_data["roles"]), actor=request.user
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = "Choose valid roles."
    if request.htmx:
        rows = selectors.team_members(team=team)
        row = next((row for row in rows if row["user"].pk == member.pk), None)
        if row is None:  # removed from the team meanwhile
            raise Http404("No such member")
        context = {
            "team": team,
            "row": row,
            "can_manage": True,
            "can_grant_admin": selectors.can_grant_admin_role(user=request.user, team=team),
            "roles": Role.choices,
            "row_error": error,
        }
        return render(request, "people/team.html#member-row", context, status=422 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Roles of {member.username} updated.")
    return redirect("team_detail", slug=team.slug)


@require_POST
@login_required
def team_member_remove(request: HtmxHttpRequest, slug: str, user_id: int) -> HttpResponse:
    team = _managed_team(request, slug)
    member = selectors.team_member(team=team, user_id=user_id)
    try:
        services.remove_member(team=team, user=member, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{member.username} was removed from {team.name}.")
    return redirect("team_detail", slug=team.slug)


@require_POST
@login_required
def team_invite(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    team = _managed_team(request, slug)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, team, status=422, invite_form=form)
    try:
        _, raw = services.create_invitation(
            team=team,
            role=form.cleaned_data["role"],
            email=form.cleaned_data["email"],
            created_by=request.user,
            days=form.cleaned_data["days"],
        )
    except ValidationError as exc:
        form.add_error("role", exc)
        return _team_page(request, team, status=422, invite_form=form)
    # Only its hash is stored: the link crosses the redirect in the session and is shown once.
    one_time.stash_secret(request, key=_invitation_key(team), secret=raw)
    return redirect(f"{reverse('team_detail', args=[team.slug])}#invite")


@require_POST
@login_required
def team_invitation_revoke(request: HtmxHttpRequest, slug: str, invitation_id: int) -> HttpResponse:
    team = _managed_team(request, slug)
    invitation = get_object_or_404(Invitation, pk=invitation_id, team=team)
    services.revoke_invitation(invitation=invitation)
    messages.success(request, "Invitation revoked.")
    return redirect("team_detail", slug=team.slug)


@require_http_methods(["GET", "POST"])
def accept_invitation(request: HtmxHttpRequest, token: str) -> HttpResponse:
    invitation = services.usable_invitation(raw=token)
    if invitation is None:
        raise Http404("This invitation link is invalid, used or expired.")
    form = AcceptInvitationForm(request.POST or None, initial={"email": invitation.email})
    if request.method == "POST" and form.is_valid():
        try:
            user = services.accept_invitation(
                invitation=invitation,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                email=form.cleaned_data["email"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error("password1", exc.messages)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Welcome! You joined {invitation.team.name} as {invitation.role}."
            )
            return redirect("home")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "people/accept_invitation.html",
        {"form": form, "invitation": invitation},
        status=status,
    )


_API_ONE_TIME_KEY = "api_token"


@require_http_methods(["GET", "POST"])
@login_required
def api_tokens(request: HtmxHttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            _, raw = services.create_api_token(user=request.user, name=form.cleaned_data["name"])
            # POST-redirect-GET: a reload shows the list, it does not create a second token.
            one_time.stash_secret(request, key=_API_ONE_TIME_KEY, secret=raw)
            return redirect("api_tokens")
        new_token, status = None, 422
    else:
        new_token, status = one_time.pop_secret(request, key=_API_ONE_TIME_KEY), 200
    context = {
        "form": form,
        "tokens": selectors.active_api_tokens(user=request.user),
        "new_token": new_token,
    }
    response = render(request, "people/api_tokens.html", context, status=status)
    return one_time.keep_out_of_caches(response) if new_token else response


@require_POST
@login_required
def api_token_revoke(request: HtmxHttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    services.revoke_api_token(token=token)
    messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
    return redirect("api_tokens")


def login_locked_out(
    request: HtmxHttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, object] | None = None,
) -> HttpResponse:
    """The login page with the throttle's message, 429 (django-axes' AXES_LOCKOUT_CALLABLE): the
    username or the address reached ORCHCAP_LOGIN_FAILURE_LIMIT failed logins."""
    minutes = settings.ORCHCAP_LOGIN_COOLOFF_MINUTES
    form = AuthenticationForm(request, initial={"username": (credentials or {}).get("username")})
    context = {
        "form": form,
        "next": request.POST.get("next", ""),
        "lockout_message": (
            f"Too many failed attempts; try again in {minutes} minute{'s' if minutes != 1 else ''}"
            " or ask an administrator to unlock your account."
        ),
    }
    return render(request, "registration/login.html", context, status=429)
