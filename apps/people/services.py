import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.db import lock_in_order
from apps.people import selectors
from apps.people.models import TEAM_MANAGER_ROLES, ApiToken, Invitation, Membership, Role, Team

User = get_user_model()


def hash_secret(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_team(*, slug: str, name: str, description: str = "") -> Team:
    """Create a team; raises ValidationError when the slug or name is taken or invalid."""
    team = Team(slug=slug, name=name, description=description)
    team.full_clean()
    team.save()
    return team


def ensure_may_change_admin_role(
    *, team: Team, actor: AbstractUser | None, before: set[str], after: set[str]
) -> None:
    """Granting or taking away a team's admin role is for that team's admins and organisation
    admins: a manager can't make anyone (or themself) an admin. `actor` None is the system
    itself (seed, migrations). The role is the team's only: it opens neither other teams nor the
    Django admin (organisation admins are superusers, see selectors.is_org_admin)."""
    if actor is None or Role.ADMIN not in (before ^ after):
        return
    if not selectors.can_grant_admin_role(user=actor, team=team):
        raise ValidationError("Only an admin can grant or take away the admin role.")


def add_member(
    *, team: Team, user: AbstractUser, role: str, actor: AbstractUser | None = None
) -> Membership:
    """Give `user` `role` in `team` (idempotent); returns the membership."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    ensure_may_change_admin_role(team=team, actor=actor, before=set(), after={role})
    membership, _ = Membership.objects.get_or_create(team=team, user=user, role=role)
    return membership


def _ensure_team_keeps_a_manager(*, team: Team, user: AbstractUser, new_roles: set[str]) -> None:
    if new_roles & TEAM_MANAGER_ROLES:
        return
    others = Membership.objects.filter(team=team, role__in=TEAM_MANAGER_ROLES).exclude(user=user)
    if not others.exists():
        raise ValidationError(
            f"{team.name} needs at least one manager or admin; give that role to someone else first."
        )


@transaction.atomic
def set_member_roles(
    *, team: Team, user: AbstractUser, roles: set[str], actor: AbstractUser | None = None
) -> None:
    """Replace `user`'s roles in `team` with `roles` (at least one; use remove_member to remove)."""
    unknown = roles - set(Role.values)
    if unknown:
        raise ValidationError(f"Unknown role(s): {', '.join(sorted(unknown))}.")
    if not roles:
        raise ValidationError("Choose at least one role (or remove the member).")
    # Lock the team's memberships so two managers can't each demote the other at once (in id
    # order, and the memberships only: the model's ordering joins teams and users).
    lock_in_order(Membership.objects.filter(team=team))
    current = set(Membership.objects.filter(team=team, user=user).values_list("role", flat=True))
    ensure_may_change_admin_role(team=team, actor=actor, before=current, after=roles)
    _ensure_team_keeps_a_manager(team=team, user=user, new_roles=roles)
    Membership.objects.filter(team=team, user=user).exclude(role__in=roles).delete()
    for role in roles:
        Membership.objects.get_or_create(team=team, user=user, role=role)


@transaction.atomic
def remove_member(*, team: Team, user: AbstractUser, actor: AbstractUser | None = None) -> None:
    lock_in_order(Membership.objects.filter(team=team))
    current = set(Membership.objects.filter(team=team, user=user).values_list("role", flat=True))
    ensure_may_change_admin_role(team=team, actor=actor, before=current, after=set())
    _ensure_team_keeps_a_manager(team=team, user=user, new_roles=set())
    Membership.objects.filter(team=team, user=user).delete()


def create_api_token(*, user: AbstractUser, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns it with the raw token, which is never stored."""
    name = name.strip()
    if not name:
        raise ValidationError("Give the token a name, e.g. the script or machine that uses it.")
    raw = settings.ORCHCAP_API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:80], prefix=raw[:10], token_hash=hash_secret(raw)
    )
    return token, raw


def revoke_api_token(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def authenticate_api_token(*, raw: str) -> AbstractUser | None:
    """The active user owning the unrevoked token `raw`, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_secret(raw.strip()), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Recording every request would turn reads into writes; a minute's precision is enough.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def create_invitation(
    *, team: Team, role: str, email: str = "", created_by: AbstractUser, days: int = 7
) -> tuple[Invitation, str]:
    """An invitation link token (returned raw, stored hashed) valid for `days` days."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    ensure_may_change_admin_role(team=team, actor=created_by, before=set(), after={role})
    raw = secrets.token_urlsafe(24)
    invitation = Invitation.objects.create(
        team=team,
        role=role,
        email=email,
        token_hash=hash_secret(raw),
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=days),
    )
    return invitation, raw


def usable_invitation(*, raw: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("team")
        .filter(
            token_hash=hash_secret(raw),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )


@transaction.atomic
def accept_invitation(
    *, invitation: Invitation, username: str, password: str, email: str = ""
) -> AbstractUser:
    """Create the invited person's account and membership; the invitation can't be used again."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise ValidationError("This invitation has already been used.")
    if invitation.expires_at <= timezone.now():
        raise ValidationError("This invitation has expired; ask for a new one.")
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "That username is taken."})
    user = User(username=username, email=email or invitation.email)
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    add_member(team=invitation.team, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return user


def revoke_invitation(*, invitation: Invitation) -> None:
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
