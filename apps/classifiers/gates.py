"""What the autonomy app tells classifiers: whether a process's suggestions are held back (and why)
and who may open its autonomy page. Classifiers cannot import autonomy, which depends on it, so
autonomy installs these from its ready(); until then suggestions show and no one sees the link."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from apps.cases.models import Process


@dataclass(frozen=True)
class HeldBack:
    """The process's autonomy level is below the one from which experts see suggestions."""

    level: int
    level_name: str
    required: int
    required_name: str


def _never_held_back(process: Process) -> HeldBack | None:
    return None


def _no_autonomy_page(user: AbstractBaseUser | AnonymousUser, process: Process) -> bool:
    return False


_held_back: Callable[[Process], HeldBack | None] = _never_held_back
_may_view_autonomy: Callable[[AbstractBaseUser | AnonymousUser, Process], bool] = _no_autonomy_page


def set_autonomy_hooks(
    *,
    held_back: Callable[[Process], HeldBack | None],
    may_view_autonomy: Callable[[AbstractBaseUser | AnonymousUser, Process], bool],
) -> None:
    global _held_back, _may_view_autonomy
    _held_back = held_back
    _may_view_autonomy = may_view_autonomy


def suggestions_held_back(*, process: Process) -> HeldBack | None:
    """Why experts don't see `process`'s suggestions, or None when they do."""
    return _held_back(process)


def may_view_autonomy(*, user: AbstractBaseUser | AnonymousUser, process: Process) -> bool:
    """Whether `user` may open `process`'s autonomy page (so may be shown a link to it)."""
    return _may_view_autonomy(user, process)
