"""Helpers shared by the apps' ninja routers."""

import functools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser


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


# --- request bodies -----------------------------------------------------------------------------

# Deeper JSON is refused before anything walks it: every payload orchcap takes (case fields, rule
# conditions, task payloads) fits well within this, and a body of a million "[" would otherwise
# exhaust the recursion of whatever reads it next.
MAX_JSON_DEPTH = 64
NUL = "\x00"


class BodyRefused(HttpError):
    """A body orchcap can't read at all: not JSON, or nested too deeply (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def nul_error(loc: tuple[str | int, ...]) -> NinjaValidationError:
    """PostgreSQL stores no NUL character in text: refuse it up front, naming where it was."""
    return NinjaValidationError(
        [{"type": "nul_character", "loc": loc, "msg": "must not contain a NUL (\\u0000) character"}]
    )


def _check_tree(data: Any) -> None:
    # Iterative, so the check itself can't exhaust the stack on what it exists to refuse.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                raise nul_error(("body", *loc))
        elif isinstance(value, dict | list):
            if len(loc) >= MAX_JSON_DEPTH:
                raise BodyRefused(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and NUL in key:
                    raise nul_error(("body", *loc, key))
                stack.append((item, (*loc, key)))


def load_json(raw: bytes | str) -> Any:
    """The JSON document of a request body. Raises BodyRefused (400) when it isn't JSON or is nested
    deeper than MAX_JSON_DEPTH, and a ninja ValidationError (422) naming the key whose value holds
    a NUL character."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BodyRefused(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyRefused(f"the body is not valid JSON: {exc}") from None
    if isinstance(data, dict | list):
        _check_tree(data)
    elif isinstance(data, str) and NUL in data:
        raise nul_error(("body",))
    return data


class StrictParser(Parser):
    """ninja's parser, refusing what PostgreSQL or the stack would choke on later (NUL characters,
    absurd nesting) with a 4xx that says so."""

    def parse_body(self, request: HttpRequest) -> Any:
        return load_json(request.body)

    def parse_querydict(
        self, data: MultiValueDict, list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        where = "query" if data is request.GET else "form"
        for key, values in data.lists():
            if NUL in key or any(isinstance(v, str) and NUL in v for v in values):
                raise nul_error((where, key.replace(NUL, "")))
        return super().parse_querydict(data, list_fields, request)


# --- the API's errors ---------------------------------------------------------------------------

NOT_FOUND = "Not Found"
logger = logging.getLogger("orchcap.api")


def internal_error(request: HttpRequest, exc: BaseException | None) -> JsonResponse:
    """500 as JSON with an id to quote; the traceback goes to the log under that id, never to the
    caller (whatever DEBUG says)."""
    error_id = str(uuid.uuid4())
    logger.error(
        "internal error %s on %s %s",
        error_id,
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
    )
    return JsonResponse({"detail": "internal error", "id": error_id}, status=500)


def too_large(limit: int, setting: str) -> str:
    return f"the body is larger than {limit:,} bytes ({setting})"


class OrchcapAPI(NinjaAPI):
    """NinjaAPI whose every answer is JSON with a `detail` line, and whose OpenAPI schema lists the
    error answers each operation can really give (see document_errors)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("parser", StrictParser())
        super().__init__(**kwargs)
        self.add_exception_handler(Exception, self._internal_error)
        self.add_exception_handler(Http404, self._not_found)
        self.add_exception_handler(HttpError, self._http_error)
        self.add_exception_handler(RequestDataTooBig, self._too_big)
        self.add_exception_handler(NinjaValidationError, self._invalid)

    def _internal_error(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        return internal_error(request, exc)

    def _not_found(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        # One body for "no such thing" and "not yours": outsiders learn nothing.
        return self.create_response(request, {"detail": NOT_FOUND}, status=404)

    def _http_error(self, request: HttpRequest, exc: HttpError) -> HttpResponse:
        cause = exc.__cause__
        if isinstance(cause, HttpError | NinjaValidationError | RequestDataTooBig):
            # ninja wraps whatever the parser raises in a bare 400 "Cannot parse request body";
            # answer with what the parser said instead.
            return self.on_exception(request, cause)
        if exc.status_code == 404:
            return self._not_found(request, exc)
        return self.create_response(request, {"detail": str(exc)}, status=exc.status_code)

    def _too_big(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        detail = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "DATA_UPLOAD_MAX_MEMORY_SIZE")
        return self.create_response(request, {"detail": detail}, status=413)

    def _invalid(self, request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        """A malformed body or query: one readable `detail` line plus the structured errors."""
        parts, errors = [], []
        for error in exc.errors:
            where = ".".join(
                str(p)
                for p in error.get("loc", ())
                if p not in ("body", "payload", "query", "path", "form")
            )
            msg = str(error.get("msg", "invalid"))
            parts.append(f"{where}: {msg}" if where else msg)
            # `path` and `message` as every other 422 item has them (e.g. a schema's problems).
            errors.append({**error, "path": where, "message": msg})
        return self.create_response(
            request, {"detail": "; ".join(parts), "errors": errors}, status=422
        )

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        document_errors(schema)
        return schema


# --- the OpenAPI schema -------------------------------------------------------------------------

_ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "Why, in one line."}},
    "required": ["detail"],
}
_INVALID_SCHEMA = {
    "title": "Invalid",
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "Every problem, in one line."},
        "errors": {"type": "array", "items": {"type": "object"}},
        "rows": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["detail"],
}
_WHY = {
    400: "The body is not JSON, or is nested too deeply",
    401: "No credentials, or wrong or revoked ones",
    403: "Not allowed: the caller's role, a refused node, or a session request without its CSRF "
    "token",
    404: "No such resource, or not the caller's to see",
    413: "The body is larger than the server accepts",
    422: "The request is well-formed but its content is wrong (a NUL character included)",
}
_WRITES = {"post", "put", "patch"}


def _error_response(code: int, ref: str) -> dict[str, Any]:
    return {
        "description": _WHY[code],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def document_errors(schema: dict[str, Any]) -> None:
    """Declare on every operation the error answers the API layer itself can give, so the schema
    is true: 401 where credentials are needed; 403 on writes (CSRF for sessions) and wherever a
    role decides; 404 where the path names something; 400 where a JSON body is parsed; 413 where a
    body is read; 422 where the request carries input. What an operation declares is kept."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", _ERROR_SCHEMA)
    components.setdefault("Invalid", _INVALID_SCHEMA)
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            params = operation.get("parameters", [])
            writes = method.lower() in _WRITES
            needed: dict[int, str] = {}
            if operation.get("security", schema.get("security")):
                needed[401] = "Error"
            if writes:
                needed[403] = "Error"
            if any(p.get("in") == "path" for p in params):
                needed[404] = "Error"
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                needed[400] = "Error"
            if body:
                needed[413] = "Error"
            if body or params:
                needed[422] = "Invalid"
            for code, ref in needed.items():
                if code not in responses and str(code) not in responses:
                    responses[code] = _error_response(code, ref)


def declared_length(request: HttpRequest) -> int:
    """The body size the client announced (0 when absent or unreadable)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def read_raw_body(request: HttpRequest, *, limit: int, setting: str) -> bytes:
    """A raw (non-JSON) body of up to `limit` bytes, read from the stream so that the smaller
    DATA_UPLOAD_MAX_MEMORY_SIZE meant for parsed bodies doesn't apply; HttpError 413 beyond it."""
    if declared_length(request) > limit:
        raise HttpError(413, too_large(limit, setting))
    content = request.read(limit + 1)
    if len(content) > limit:
        raise HttpError(413, too_large(limit, setting))
    return content
