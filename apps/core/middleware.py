"""Request guards shared by every page and the API: answers in the caller's language (JSON under
/api/, a plain page elsewhere) for what would otherwise surface as a 500 or Django's HTML, and the
Content-Security-Policy header on every HTML page."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
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
    """Pages (not the API, whose parser refuses the same in JSON): a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 page, and a NUL character (which PostgreSQL can't store)
    never reaches a view or the CSRF check. A path with one is a 404 (no page is named so); in a
    form or query value (or name) it is removed and the rest kept as
    typed, the fields named in `request.nul_removed` for NulNoticeMiddleware to tell the person:
    a refusal here would lose everything they typed on the page, for a character no one means to
    type (it comes with a paste). A cookie with one is dropped (e.g. a forged session key)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            return self.get_response(request)
        refusal = self._refuse_or_clean(request)
        return refusal or self.get_response(request)

    def _refuse_or_clean(self, request: HttpRequest) -> HttpResponse | None:
        if NUL in request.path_info:
            return _plain_page(404, "Not found", "No page has this address.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.content_type or ""
        length = declared_length(request)
        # Multipart bodies carry files, which don't count against the limit (Django's rule).
        if limit is not None and length > limit and content_type != "multipart/form-data":
            return self._too_large()
        if any(NUL in name or NUL in value for name, value in request.COOKIES.items()):
            request.COOKIES = {
                name: value
                for name, value in request.COOKIES.items()
                if NUL not in name and NUL not in value
            }
        removed: list[str] = []
        if _has_nul(request.GET):
            request.GET = _without_nul(request.GET, removed)
            request.META["QUERY_STRING"] = request.GET.urlencode()
        if request.method == "POST" and content_type in _FORM_TYPES:
            try:
                # Uploaded files' names need nothing: Django's parser drops non-printables.
                if _has_nul(request.POST):
                    request.POST = _without_nul(request.POST, removed)
            except RequestDataTooBig:
                return self._too_large()
            except (TooManyFieldsSent, TooManyFilesSent) as exc:
                return _plain_page(400, "Bad request", str(exc))
        request.nul_removed = list(dict.fromkeys(removed))
        return None

    @staticmethod
    def _too_large() -> HttpResponse:
        limit = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "DATA_UPLOAD_MAX_MEMORY_SIZE")
        return _plain_page(413, "Too large", f"The request was refused: {limit}.")

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig) and not is_api(request):
            return self._too_large()
        return None


def _has_nul(values: QueryDict) -> bool:
    return any(NUL in key or any(NUL in item for item in items) for key, items in values.lists())


def _without_nul(values: QueryDict, removed: list[str]) -> QueryDict:
    """A mutable-then-frozen copy of `values` with every NUL removed; the names it was removed
    from are added to `removed`."""
    clean = QueryDict(mutable=True)
    for key, items in values.lists():
        name = key.replace(NUL, "")
        if NUL in key or any(NUL in item for item in items):
            removed.append(name)
        clean.setlist(name, [*clean.getlist(name), *(item.replace(NUL, "") for item in items)])
    clean._mutable = False
    return clean


def nul_notice(fields: list[str]) -> str:
    names = ", ".join(f"“{field}”" for field in fields)
    return (
        f"A NUL character (invisible, usually from a paste) was removed from {names}; "
        "everything else was kept as typed."
    )


class NulNoticeMiddleware:
    """Tells the person which fields FormGuardMiddleware removed a NUL character from. Sits after
    MessageMiddleware: a page or redirect shows it as a message (a toast); an htmx fragment
    carries it as an out-of-band toast, since the page around it doesn't reload to show
    messages."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fields = getattr(request, "nul_removed", None)
        if not fields:
            return self.get_response(request)
        notice = nul_notice(fields)
        if request.headers.get("HX-Request") != "true":
            messages.warning(request, notice, fail_silently=True)
            return self.get_response(request)
        response = self.get_response(request)
        if _swaps_html(response):
            response.content += (
                '<div id="toasts" hx-swap-oob="beforeend"><div class="toast toast-warning" '
                f'role="status"><span>{escape(notice)}</span><button type="button" '
                'class="toast-close" aria-label="Dismiss">&times;</button></div></div>'
            ).encode()
        else:
            # A redirect, a 204 or a refusal swaps nothing: the next page shows it.
            messages.warning(request, notice, fail_silently=True)
        return response


def _swaps_html(response: HttpResponse) -> bool:
    return (
        not response.streaming
        and response.get("Content-Type", "").startswith("text/html")
        and response.status_code in (200, 409, 422)
        and response.get("HX-Reswap") != "none"
        and not any(response.has_header(h) for h in ("HX-Redirect", "HX-Refresh", "HX-Location"))
    )


class ContentSecurityPolicyMiddleware:
    """Content-Security-Policy on every HTML answer (Django 5.2 has none built in)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
