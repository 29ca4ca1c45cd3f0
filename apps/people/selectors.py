from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import Http404

from apps.people.models import TEAM_MANAGER_ROLES, ApiToken, Invitation, Membership, Role, Team

AnyUser = AbstractBaseUser | AnonymousUser


def teams_for(*, user: AnyUser) -> QuerySet[Team]:
    """The teams `user` belongs to (any role), ordered by name."""
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).distinct().order_by("name")


def roles_by_team(*, user: AnyUser) -> dict[str, set[str]]:
    """{team slug: {roles}} for `user`; empty for anonymous users."""
    if not user.is_authenticated:
        return {}
    result: dict[str, set[str]] = {}
    for slug, role in Membership.objects.filter(user=user).values_list("team__slug", "role"):
        result.setdefault(slug, set()).add(role)
    return result


def roles_of(*, user: AnyUser, team: Team | None = None) -> set[str]:
    """Roles `user` holds in `team`, or in any team when `team` is None."""
    if not user.is_authenticated:
        return set()
    memberships = Membership.objects.filter(user=user)
    if team is not None:
        memberships = memberships.filter(team=team)
    return set(memberships.values_list("role", flat=True))


def team_for_member(*, user: AnyUser, slug: str) -> Team:
    """The team `slug` if `user` belongs to it or administers the organisation; 404 otherwise,
    so outsiders learn nothing."""
    teams = Team.objects.all() if is_org_admin(user=user) else teams_for(user=user)
    team = teams.filter(slug=slug).first()
    if team is None:
        raise Http404("No such team")
    return team


def team_member(*, team: Team, user_id: int) -> AbstractBaseUser:
    """The user `user_id` if they hold any role in `team`; Http404 otherwise.

    A member has one Membership row per role, so the lookup is an EXISTS rather than a join: a
    join through memberships yields the user once per role (two roles, two rows).
    """
    from django.contrib.auth import get_user_model

    holds_a_role = Membership.objects.filter(team=team, user=OuterRef("pk"))
    user = get_user_model().objects.filter(Exists(holds_a_role), pk=user_id).first()
    if user is None:
        raise Http404("No such member")
    return user


def can_manage_team(*, user: AnyUser, team: Team) -> bool:
    """Managers and admins of `team` manage its members, and so do organisation admins."""
    return is_org_admin(user=user) or bool(roles_of(user=user, team=team) & TEAM_MANAGER_ROLES)


def can_grant_admin_role(*, user: AnyUser, team: Team) -> bool:
    """Who may make someone an admin of `team` (or take that role away): its admins and
    organisation admins, never a manager."""
    return is_org_admin(user=user) or Role.ADMIN in roles_of(user=user, team=team)


def is_org_admin(*, user: AnyUser) -> bool:
    """Organisation administrators are Django superusers (nothing else): they see every team and
    the whole compute fabric, and only they open the Django admin. A team's admin role grants
    nothing outside that team."""
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def administered_teams(*, user: AnyUser) -> QuerySet[Team]:
    """The teams where `user` holds the admin role, by name (none for anonymous users)."""
    if not user.is_authenticated or not user.is_active:
        return Team.objects.none()
    return Team.objects.filter(
        pk__in=Membership.objects.filter(user=user, role=Role.ADMIN).values("team_id")
    ).order_by("name")


def team_members(*, team: Team) -> list[dict[str, object]]:
    """Members of `team` with their roles, ordered by username: [{"user": u, "roles": [...]}]."""
    rows: dict[int, dict[str, object]] = {}
    memberships = (
        Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    )
    order = {role.value: index for index, role in enumerate(Role)}
    for membership in memberships:
        row = rows.setdefault(membership.user_id, {"user": membership.user, "roles": []})
        row["roles"].append(membership.role)  # type: ignore[union-attr]
    for row in rows.values():
        row["roles"].sort(key=order.__getitem__)  # type: ignore[union-attr]
    return list(rows.values())


def teams_with_members(*, user: AnyUser) -> QuerySet[Team]:
    """The user's teams with memberships (and their users) prefetched, for overview pages."""
    return teams_for(user=user).prefetch_related(
        Prefetch(
            "memberships",
            queryset=Membership.objects.select_related("user").order_by("user__username"),
        )
    )


def active_api_tokens(*, user: AnyUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True)


def open_invitations(*, team: Team) -> QuerySet[Invitation]:
    from django.utils import timezone

    return Invitation.objects.filter(
        team=team, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("created_by")
