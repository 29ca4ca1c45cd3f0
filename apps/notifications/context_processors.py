from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from apps.notifications import selectors


class Bell:
    """The bell's unread count, counted only when a page shows it (one query on a partial
    index); JSON answers and fragments without the header cost nothing."""

    def __init__(self, user: AbstractBaseUser) -> None:
        self.user = user

    @cached_property
    def unread(self) -> int:
        return selectors.unread_count(user=self.user)

    @property
    def shown(self) -> str:
        return f"{selectors.BELL_CAP}+" if self.unread > selectors.BELL_CAP else str(self.unread)


def bell(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"bell": Bell(user)}
