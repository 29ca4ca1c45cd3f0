from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from apps.cases import selectors
from apps.cases.models import Process
from apps.cases.services.export import FORMATS, export_filename, stream_export
from apps.core.http import HtmxHttpRequest


def export_response(*, process: Process, fmt: str) -> StreamingHttpResponse:
    """The export of `process` as a download; `fmt` must be a key of FORMATS (checked by callers)."""
    response = StreamingHttpResponse(
        stream_export(process=process, fmt=fmt), content_type=FORMATS[fmt]
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{export_filename(process=process, fmt=fmt)}"'
    )
    # Exports are always fresh and may hold business data: keep them out of shared caches.
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def process_export(request: HtmxHttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    fmt = request.GET.get("format", "csv")
    if fmt not in FORMATS:
        return HttpResponse(
            f"Unknown export format {fmt!r}: choose {' or '.join(FORMATS)}.",
            status=422,
            content_type="text/plain; charset=utf-8",
        )
    return export_response(process=process, fmt=fmt)
