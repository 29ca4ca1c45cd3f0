from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.health import may_see_details, run_checks, supervision


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    supervised = supervision()
    down = [check.name for check in checks if not check.ok]
    degraded = supervised.degraded if supervised else []
    status = "down" if down else "degraded" if degraded else "ok"
    body: dict[str, object] = {"status": status}
    # Anyone may ask whether orchcap is up; only staff or the metrics token learn versions,
    # worker names and what failed.
    if may_see_details(request):
        body["down"] = down
        body["degraded"] = degraded
        body["checks"] = {check.name: {"ok": check.ok, "detail": check.detail} for check in checks}
        if supervised is not None:
            body["supervisor"] = supervised.children
    return JsonResponse(body, status=503 if down else 200)
