from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth

from apps.people import services


class ApiTokenAuth(HttpBearer):
    """`Authorization: Bearer <personal API token>`; the token's owner becomes request.user."""

    def authenticate(self, request: HttpRequest, token: str) -> object | None:
        user = services.authenticate_api_token(raw=token)
        if user is not None:
            request.user = user
        return user


# Scripts use tokens; a logged-in browser (the OpenAPI docs page) uses its session.
api_auth = [ApiTokenAuth(), django_auth]
