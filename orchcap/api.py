from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError

from apps.autonomy.api import router as autonomy_router
from apps.cases.api import router as cases_router
from apps.classifiers.api import router as classifiers_router
from apps.fabric.api import router as fabric_router
from apps.people.api import router as people_router
from apps.people.auth import api_auth
from apps.rules.api import router as rules_router

api = NinjaAPI(
    title="orchcap API",
    version="1",
    description="Send `Authorization: Bearer <token>` with a personal API token (the “API tokens” page).",
    auth=api_auth,
    urls_namespace="api",
    docs_url="/docs",
)
api.add_router("/", people_router)
api.add_router("/", cases_router)
api.add_router("/", rules_router)
api.add_router("/", classifiers_router)
api.add_router("/", autonomy_router)
api.add_router("/", fabric_router)


@api.exception_handler(NinjaValidationError)
def request_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    """A malformed body or query: one readable `detail` line plus the structured errors."""
    parts = []
    for error in exc.errors:
        where = ".".join(
            str(p) for p in error.get("loc", ()) if p not in ("body", "payload", "query")
        )
        parts.append(
            f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))
        )
    return api.create_response(
        request, {"detail": "; ".join(parts), "errors": exc.errors}, status=422
    )
