from axes.backends import AxesStandaloneBackend
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from apps.people.models import Membership, Role


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


class AdminRoleBackend(ModelBackend):
    """Holders of the admin role administer the organisation: every permission in the Django admin."""

    def authenticate(self, request, username=None, password=None, **kwargs):  # type: ignore[no-untyped-def]
        return None  # permissions only; ModelBackend does the logging in

    def has_perm(self, user_obj, perm, obj=None):  # type: ignore[no-untyped-def]
        if not user_obj.is_active or not user_obj.is_authenticated:
            return False
        if not hasattr(user_obj, "_orchcap_is_admin"):
            user_obj._orchcap_is_admin = Membership.objects.filter(
                user=user_obj, role=Role.ADMIN
            ).exists()
        return user_obj._orchcap_is_admin

    def has_module_perms(self, user_obj, app_label):  # type: ignore[no-untyped-def]
        return self.has_perm(user_obj, f"{app_label}.*")
