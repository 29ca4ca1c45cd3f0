from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from apps.people import services


class ApiTokenAuth(HttpBearer):
    """`Authorization: Bearer <personal API token>`; the token's owner becomes request.user."""

    def authenticate(self, request: HttpRequest, token: str) -> object | None:
        user = services.authenticate_api_token(raw=token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """A logged-in browser's session (the OpenAPI docs page). The CSRF check comes after we know
    who is calling, so an anonymous caller gets 401 (not ninja's "CSRF check Failed") and a
    session without its token gets a 403 that says what is missing. Tokens need no CSRF."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)

    def __call__(self, request: HttpRequest) -> object | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(
                403,
                "CSRF check failed: a logged-in browser must send the X-CSRFToken header "
                "(scripts should use an API token instead)",
            )
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> object | None:
        return None  # __call__ decides


# Scripts use tokens; a logged-in browser (the OpenAPI docs page) uses its session.
api_auth = [ApiTokenAuth(), SessionAuth()]
