"""The demo organisation `up` loads into an empty database (later apps add their demo data here)."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from apps.people import services
from apps.people.models import Role, Team

User = get_user_model()

DEMO_TEAMS = [
    ("ap", "Accounts Payable", "Invoice matching and payment exceptions."),
    ("claims", "Claims", "Insurance claim triage and exceptions."),
]
# (role, username, full name, {team slug: roles})
DEMO_USERS = [
    ("expert", "erin", "Erin Expert", {"ap": [Role.EXPERT], "claims": [Role.EXPERT]}),
    ("expert", "eli", "Eli Expert", {"ap": [Role.EXPERT], "claims": [Role.EXPERT]}),
    ("manager", "maya", "Maya Manager", {"ap": [Role.MANAGER], "claims": [Role.MANAGER]}),
    ("staff", "sam", "Sam Staff", {"ap": [Role.STAFF]}),
    ("admin", "ada", "Ada Admin", {"ap": [Role.ADMIN], "claims": [Role.ADMIN]}),
]


@dataclass(frozen=True)
class SeedResult:
    new_logins: list[str]
    logins_file: Path


def logins_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-logins.txt"


@transaction.atomic
def seed_demo_organisation() -> SeedResult:
    """Create what is missing of the demo organisation; existing users keep their passwords."""
    teams = {}
    for slug, name, description in DEMO_TEAMS:
        teams[slug], _ = Team.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description}
        )
    new_logins = []
    for role, username, full_name, memberships in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            first, last = full_name.split(" ", 1)
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=username, password=password, first_name=first, last_name=last,
                email=f"{username}@demo.orchcap.invalid",
            )  # fmt: skip
            if role == "admin":  # the organisation admin (see docs/people.md)
                user.is_superuser = user.is_staff = True
                user.save(update_fields=["is_superuser", "is_staff"])
            new_logins.append(f"{role} {username} {password}")
        for slug, roles in memberships.items():
            for member_role in roles:
                services.add_member(team=teams[slug], user=user, role=member_role)
    path = logins_file()
    if new_logins:
        _append_private(path, new_logins)
    return SeedResult(new_logins=new_logins, logins_file=path)


def _append_private(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(path, 0o600)  # the file may predate us with looser bits
    with os.fdopen(fd, "a") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
