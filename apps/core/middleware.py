"""Request guards shared by every page and the API: answers in the caller's language (JSON under
/api/, a plain page elsewhere) for what would otherwise surface as a 500 or Django's HTML, and the
Content-Security-Policy header on every HTML page."""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

from apps.core.api import NOT_FOUND, NUL, declared_length, internal_error, too_large

API_PREFIX = "/api/"
# The UI loads its scripts and styles from static files only (htmx needs no eval; its indicator
# styles are off in base.html), so nothing inline has to be allowed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[HttpRequest], HttpResponse]


def _plain_page(status: int, title: str, message: str) -> HttpResponse:
    # Deliberately no template: this answers before sessions and users exist on the request.
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title></head><body><h1>{escape(title)}</h1><p>{escape(message)}</p>"
        '<p><a href="/">Back to your home page</a></p></body></html>'
    )
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class ApiErrorsMiddleware:
    """Under /api/ every error answer is JSON: Django's HTML 404 for a path no route matches (e.g.
    /api/v1/fabric/tasks/abc), its 405s and 500s become `{"detail": …}`. A NUL character in the
    path is a 404 (no resource is named so) before anything queries the database with it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api(request):
            return self.get_response(request)
        if NUL in request.path_info:
            return JsonResponse({"detail": NOT_FOUND}, status=404)
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        if response.status_code == 404:
            return JsonResponse({"detail": NOT_FOUND}, status=404)
        if response.status_code >= 500:
            # The traceback was logged by django.request; this line ties the id to it.
            return internal_error(request, None)
        json_response = JsonResponse(
            {"detail": response.reason_phrase or "error"}, status=response.status_code
        )
        if response.has_header("Allow"):
            json_response["Allow"] = response["Allow"]
        return json_response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_api(request):
            return internal_error(request, exception)
        return None


class FormGuardMiddleware:
    """Pages (not the API, whose parser does the same for JSON): a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 page, and a form or query value with a NUL character (which
    PostgreSQL can't store) a 422 naming the field, before any view or the CSRF check reads it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            return self.get_response(request)
        refusal = self._refusal(request)
        return refusal or self.get_response(request)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.content_type or ""
        length = declared_length(request)
        # Multipart bodies carry files, which don't count against the limit (Django's rule).
        if limit is not None and length > limit and content_type != "multipart/form-data":
            return self._too_large()
        data = [request.GET]
        if request.method == "POST" and content_type in _FORM_TYPES:
            try:
                data.append(request.POST)
            except RequestDataTooBig:
                return self._too_large()
            except (TooManyFieldsSent, TooManyFilesSent) as exc:
                return _plain_page(400, "Bad request", str(exc))
        for values in data:
            for key, items in values.lists():
                if NUL in key or any(NUL in item for item in items):
                    field = key.replace(NUL, "")
                    return _plain_page(
                        422,
                        "Invalid input",
                        f"The field “{field}” contains a NUL character, which can't be stored. "
                        "Remove it and send the form again.",
                    )
        return None

    @staticmethod
    def _too_large() -> HttpResponse:
        limit = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "DATA_UPLOAD_MAX_MEMORY_SIZE")
        return _plain_page(413, "Too large", f"The request was refused: {limit}.")

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig) and not is_api(request):
            return self._too_large()
        return None


class ContentSecurityPolicyMiddleware:
    """Content-Security-Policy on every HTML answer (Django 5.2 has none built in)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
