"""Items by file upload: choose a file → the page checks every row and previews it (row-level
errors by line; nothing recorded) → send, all or nothing, through the same service as the items
API. Between the check and the send the checked items travel signed in the form (no upload is
kept on the server); a signature that doesn't match, or is older than an hour, is refused."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.cases.services.intake import BatchInvalid
from apps.cases.services.upload.importing import file_size
from apps.core.api import reason_of
from apps.core.http import HtmxHttpRequest
from apps.orchestrations import inbound, selectors
from apps.orchestrations.models import Orchestration, Stage
from apps.orchestrations.upload import PREVIEW_ROWS, read_items

SIGNED_MAX_AGE = 3600
SHOWN_ERRORS = 200


class ItemFileForm(forms.Form):
    file = forms.FileField(
        label="CSV, JSONL or JSON file",
        error_messages={"required": "Choose a CSV, JSONL or JSON file to send."},
    )
    file_format = forms.ChoiceField(
        label="Format",
        choices=[("auto", "From the file name"), ("csv", "CSV"), ("jsonl", "JSONL"),
                 ("json", "JSON (like the API)")],
        initial="auto",
    )  # fmt: skip


def _salt(orchestration: Orchestration, request: HtmxHttpRequest) -> str:
    # Checked items are good for this orchestration and this person only.
    return f"orchestrations.upload:{orchestration.pk}:{request.user.pk}"


def _context(orchestration: Orchestration, **extra: object) -> dict:
    live = orchestration.versions.filter(stage=Stage.LIVE).first()
    return {
        "orchestration": orchestration,
        "live": live,
        "fields": orchestration.process.schema.fields,
        "max_items": inbound.MAX_ITEMS,
        "max_size": file_size(settings.ORCHCAP_UPLOAD_INLINE_BYTES),
        **extra,
    }


@require_http_methods(["GET", "POST"])
@login_required
def orchestration_upload(request: HtmxHttpRequest, orchestration_slug: str) -> HttpResponse:
    """Whoever may send the orchestration items through the API (its team's experts, managers
    and admins) may send a file of them."""
    orchestration = selectors.orchestration_for(user=request.user, slug=orchestration_slug)
    if request.method == "POST" and request.POST.get("action") == "send":
        return _send(request, orchestration)
    form = ItemFileForm(request.POST or None, request.FILES or None)
    if request.method == "GET" or not form.is_valid():
        status = 422 if form.errors else 200
        return render(request, "orchestrations/upload.html", _context(orchestration, form=form),
                      status=status)  # fmt: skip
    try:
        checked = read_items(
            orchestration=orchestration,
            upload=form.cleaned_data["file"],
            file_format=form.cleaned_data["file_format"],
        )
    except ValidationError as exc:
        form.add_error("file", reason_of(exc))
        return render(request, "orchestrations/upload.html", _context(orchestration, form=form),
                      status=422)  # fmt: skip
    names = [spec["name"] for spec in orchestration.process.schema.fields]
    preview = [
        {"line": line, "external_id": item.get("external_id") if isinstance(item, dict) else None,
         "values": [(item.get("fields") or {}).get(n) if isinstance(item, dict) else None
                    for n in names]}
        for item, line in zip(checked.items[:PREVIEW_ROWS], checked.lines, strict=False)
    ]  # fmt: skip
    context = _context(
        orchestration,
        form=ItemFileForm(),
        checked=checked,
        file_name=form.cleaned_data["file"].name,
        preview=preview,
        errors=checked.errors[:SHOWN_ERRORS],
        more_errors=max(len(checked.errors) - SHOWN_ERRORS, 0),
        signed=signing.dumps(checked.items, salt=_salt(orchestration, request), compress=True)
        if checked.valid
        else "",
    )
    return render(
        request, "orchestrations/upload.html", context, status=200 if checked.valid else 422
    )


def _send(request: HtmxHttpRequest, orchestration: Orchestration) -> HttpResponse:
    try:
        items = signing.loads(
            request.POST.get("items", ""),
            salt=_salt(orchestration, request),
            max_age=SIGNED_MAX_AGE,
        )
    except signing.BadSignature:
        messages.error(request, "That check has expired or was changed; choose the file again.")
        return render(request, "orchestrations/upload.html",
                      _context(orchestration, form=ItemFileForm()), status=422)  # fmt: skip
    try:
        received, _ = inbound.receive_items(orchestration=orchestration, items=items)
    except (BatchInvalid, ValidationError) as exc:
        # The process's schema or the orchestration changed since the check.
        messages.error(request, f"Nothing was sent: {reason_of(exc)}. Choose the file again.")
        return render(request, "orchestrations/upload.html",
                      _context(orchestration, form=ItemFileForm()), status=422)  # fmt: skip
    created = sum(received.created)
    messages.success(
        request,
        f"Sent {len(received.runs)} items: {created} new runs, "
        f"{len(received.runs) - created} already received.",
    )
    pairs = list(zip(received.runs, received.created, strict=True))
    return render(request, "orchestrations/upload.html",
                  _context(orchestration, form=ItemFileForm(), sent=pairs))  # fmt: skip
