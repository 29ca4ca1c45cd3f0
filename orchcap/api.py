from apps.autonomy.api import router as autonomy_router
from apps.capital.api_metrics import router as capital_metrics_router
from apps.capital.api_roadmap import router as capital_roadmap_router
from apps.cases.api import router as cases_router
from apps.classifiers.api import router as classifiers_router
from apps.connectors.api import router as connectors_router
from apps.core.api import OrchcapAPI
from apps.fabric.api import router as fabric_router
from apps.notifications.api import router as notifications_router
from apps.orchestrations.api import router as orchestrations_router
from apps.orchestrations.api_evidence import router as orchestration_evidence_router
from apps.people.api import router as people_router
from apps.people.auth import api_auth
from apps.rules.api import router as rules_router
from apps.skills.api import router as skills_router
from apps.skills.practice_api import router as skills_practice_router
from apps.skills.routing_api import router as skills_routing_router

# OrchcapAPI: every answer JSON (a 500 too, with an id for the log), NUL characters and absurd
# nesting refused up front, and the common error answers declared on every operation.
api = OrchcapAPI(
    title="orchcap API",
    version="1",
    description="Send `Authorization: Bearer <token>` with a personal API token (the “API tokens” page).",
    auth=api_auth,
    urls_namespace="api",
    docs_url="/docs",
)
api.add_router("/", people_router)
api.add_router("/", notifications_router)
api.add_router("/", cases_router)
api.add_router("/", rules_router)
api.add_router("/", classifiers_router)
api.add_router("/", autonomy_router)
api.add_router("/", fabric_router)
api.add_router("/", connectors_router)
api.add_router("/", orchestrations_router)
api.add_router("/", capital_metrics_router)
api.add_router("/", capital_roadmap_router)
api.add_router("/", orchestration_evidence_router)
api.add_router("/", skills_router)
api.add_router("/", skills_practice_router)
api.add_router("/", skills_routing_router)
