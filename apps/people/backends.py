from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' check, first in AUTHENTICATION_BACKENDS: a throttled login is refused before
    any backend checks the password.

    Every login over HTTP passes its request. A call without one is our own code (a management
    command, a test client's `login()`): there is no client to throttle, so it passes through to
    the next backend instead of raising as axes does.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: object,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
