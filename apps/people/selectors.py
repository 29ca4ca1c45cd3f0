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
    """The team `slug` if `user` belongs to it; 404 otherwise, so outsiders learn nothing."""
    team = teams_for(user=user).filter(slug=slug).first()
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
    return bool(roles_of(user=user, team=team) & TEAM_MANAGER_ROLES)


def is_org_admin(*, user: AnyUser) -> bool:
    """Superusers and anyone holding the admin role in some team administer the organisation."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser or Membership.objects.filter(user=user, role=Role.ADMIN).exists())


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
