"""Keeping a page's work when its session ends or its CSRF token goes stale.

An htmx request that finds no session must not follow the redirect to the login page (htmx would
swap the whole login page into the fragment it meant to refresh): it gets a 401 the page's script
(static/js/orchcap.js) understands. A CSRF failure on an htmx request says so in a header, so the
script fetches a fresh token from `session_token` and sends the request again. /api/ keeps its
own JSON errors (orchcap/api.py).
"""

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import resolve_url
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.middleware import is_api

LOGIN_REQUIRED_HEADER = "HX-Login-Required"
CSRF_FAILED_HEADER = "HX-CSRF-Failed"


def _is_page_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and not is_api(request)


class HtmxLoginRequiredMiddleware:
    """Turn "redirect to the login page" into 401 + HX-Login-Required for htmx requests."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code not in (301, 302) or not _is_page_htmx(request):
            return response
        login = resolve_url(settings.LOGIN_URL)
        if urlsplit(response.get("Location", "")).path != urlsplit(login).path:
            return response
        refused = HttpResponse(
            "Your session ended: log in again to carry on.",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        refused[LOGIN_REQUIRED_HEADER] = login
        refused["HX-Reswap"] = "none"
        return refused


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a short 403 the page's script recognises for htmx, Django's page else."""
    if not _is_page_htmx(request):
        return django_csrf_failure(request, reason=reason)
    response = HttpResponse(
        "This page's security token is out of date.",
        status=403,
        content_type="text/plain; charset=utf-8",
    )
    response[CSRF_FAILED_HEADER] = "true"
    response["HX-Reswap"] = "none"
    return response


@never_cache
@require_GET
def session_token(request: HttpRequest) -> JsonResponse:
    """Who is logged in and the current CSRF token, for a page that must send a request again
    after logging in (which rotates the token) or after another tab did."""
    user = request.user
    return JsonResponse(
        {
            "authenticated": user.is_authenticated,
            "username": user.get_username() if user.is_authenticated else "",
            "csrf_token": get_token(request),
        }
    )
