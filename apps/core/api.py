"""Helpers shared by the apps' ninja routers."""

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, JsonResponse


def reason_of(exc: ValidationError) -> str:
    """One line; model validation errors keep the name of the field they are about."""
    if hasattr(exc, "error_dict"):
        return "; ".join(
            " ".join(messages) if field == NON_FIELD_ERRORS else f"{field}: {' '.join(messages)}"
            for field, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def validation_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer a service's ValidationError with 422 {"detail": reason}. (Routers can't register
    exception handlers, and the project-wide API in orchcap/api.py stays wiring only.)"""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except ValidationError as exc:
            return JsonResponse({"detail": reason_of(exc)}, status=422)

    return wrapper
