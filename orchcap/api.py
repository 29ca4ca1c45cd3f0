from ninja import NinjaAPI

from apps.cases.api import router as cases_router
from apps.people.api import router as people_router
from apps.people.auth import api_auth

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
