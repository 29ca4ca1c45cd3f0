"""Small builders for test data, one per model."""

import itertools

from django.contrib.auth import get_user_model

from apps.people import services
from apps.people.models import Team

User = get_user_model()
_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-9"


def make_user(username: str | None = None, **fields: object) -> object:
    username = username or f"user{next(_seq)}"
    return User.objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.test", **fields
    )


def make_team(slug: str | None = None, name: str | None = None) -> Team:
    number = next(_seq)
    return services.create_team(slug=slug or f"team-{number}", name=name or f"Team {number}")


def make_member(team: Team, role: str, username: str | None = None) -> object:
    user = make_user(username)
    services.add_member(team=team, user=user, role=role)
    return user
