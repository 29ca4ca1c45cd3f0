"""The cases intake's `?orchestration=<slug>`: a process's rows sent through one of its
orchestrations instead of straight into the review queue. Orchestrations sit above cases, so the
handler is registered from their AppConfig.ready() (cases never imports them)."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from apps.cases.models import Process

# (user, process, orchestration slug, rows) → (HTTP status, answer body); raises ValidationError
# or BatchInvalid (nothing recorded), Http404 when the caller can't see the orchestration.
OrchestratedIntake = Callable[..., tuple[int, dict[str, Any]]]
_handler: list[OrchestratedIntake] = []


def register_orchestrated_intake(handler: OrchestratedIntake) -> None:
    _handler[:] = [handler]


def intake_through_orchestration(
    *, user: AbstractBaseUser, process: Process, orchestration: str, rows: list[object]
) -> tuple[int, dict[str, Any]]:
    if not _handler:
        raise ValidationError("orchestration: orchestrations are not installed")
    return _handler[0](user=user, process=process, slug=orchestration, rows=rows)
