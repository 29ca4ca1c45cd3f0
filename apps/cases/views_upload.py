"""Case intake from CSV/JSONL files: upload → column mapping with a preview → import → job page."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.cases.errors import CaseConflict
from apps.cases.models import ImportJob, Process
from apps.cases.selectors import process_for_member
from apps.cases.services import upload
from apps.core import csv
from apps.core.http import HtmxHttpRequest
from apps.people.models import Role
from apps.people.selectors import roles_of

UPLOAD_ROLES = frozenset({Role.EXPERT, Role.MANAGER, Role.ADMIN})
SHOWN_ERRORS = 200


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV or JSONL file",
        error_messages={"required": "Choose a CSV or JSONL file to upload."},
    )
    file_format = forms.ChoiceField(
        label="Format",
        choices=[("auto", "From the file name"), ("csv", "CSV"), ("jsonl", "JSONL")],
        initial="auto",
    )


class MappingForm(forms.Form):
    """One select per file column; the field names are positional because column names are free."""

    def __init__(
        self,
        data: object = None,
        *,
        columns: list[str],
        targets: list,
        initial_mapping: dict[str, str],
    ) -> None:
        super().__init__(data)
        self.columns = columns
        for index, column in enumerate(columns):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=column,
                choices=targets,
                required=False,
                initial=initial_mapping.get(column, upload.IGNORE),
            )

    def chosen(self) -> dict[str, str]:
        """The mapping as selected (even if not valid yet), for the preview."""
        if not self.is_bound:
            return {
                column: self.fields[f"col_{i}"].initial for i, column in enumerate(self.columns)
            }
        return {
            column: str(self.data.get(f"col_{i}", upload.IGNORE))  # type: ignore[union-attr]
            for i, column in enumerate(self.columns)
        }

    def rows(self, examples: dict[str, list[str]]) -> list[tuple[str, forms.BoundField, list[str]]]:
        return [
            (column, self[f"col_{i}"], examples.get(column, []))
            for i, column in enumerate(self.columns)
        ]


def _process_for_upload(request: HtmxHttpRequest, slug: str) -> Process:
    process = process_for_member(user=request.user, slug=slug)
    if not roles_of(user=request.user, team=process.team) & UPLOAD_ROLES:
        raise PermissionDenied(
            "Only the team's experts, managers and admins can import cases into a process."
        )
    return process


def _job(process: Process, job_id: int) -> ImportJob:
    return get_object_or_404(ImportJob.objects.select_related("process__schema"), pk=job_id,
                             process=process)  # fmt: skip


@require_http_methods(["GET", "POST"])
@login_required
def process_upload(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    process = _process_for_upload(request, slug)
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if request.method == "POST" and form.is_valid():
        try:
            job = upload.store_upload(
                process=process,
                user=request.user,
                upload=form.cleaned_data["file"],
                file_format=form.cleaned_data["file_format"],
            )
        except ValidationError as exc:
            form.add_error("file", exc)
        else:
            return redirect("upload_mapping", slug=process.slug, job_id=job.pk)
    return render(
        request,
        "cases/upload.html",
        {
            "process": process,
            "form": form,
            "max_size": upload.file_size(settings.ORCHCAP_UPLOAD_MAX_BYTES),
            "inline_size": upload.file_size(settings.ORCHCAP_UPLOAD_INLINE_BYTES),
            "recent_jobs": process.import_jobs.exclude(mapping={}).select_related("created_by")[:5],
        },
        status=422 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@login_required
def upload_mapping(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    process = _process_for_upload(request, slug)
    job = _job(process, job_id)
    if not upload.awaiting_mapping(job):
        return redirect("import_job", slug=process.slug, job_id=job.pk)
    try:
        inspection = upload.inspect_job(job=job)
    except (ValidationError, OSError) as exc:
        # The file passed at upload; this means it was removed or changed on disk since.
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(
            request, f"The uploaded file can no longer be read ({message}); upload it again."
        )
        upload.discard_upload(job=job)
        return redirect("process_upload", slug=process.slug)
    form = MappingForm(
        request.POST if request.method == "POST" else None,
        columns=inspection.columns,
        targets=upload.mapping_targets(process=process),
        initial_mapping=job.mapping
        or upload.propose_mapping(process=process, columns=inspection.columns),
    )
    action = request.POST.get("action", "preview")
    errors = job.errors if job.state == ImportJob.State.FAILED else []
    if request.method == "POST" and action == "import" and form.is_valid():
        try:
            job = upload.start_import(job=job, mapping=form.chosen())
        except ValidationError as exc:
            form.add_error(None, exc)
        except CaseConflict as exc:
            messages.error(request, str(exc))
            return redirect("import_job", slug=process.slug, job_id=job.pk)
        else:
            if job.state == ImportJob.State.FAILED:
                errors = job.errors
            else:
                if job.state == ImportJob.State.DONE:
                    messages.success(request, f"Imported {job.processed_rows} rows.")
                return redirect("import_job", slug=process.slug, job_id=job.pk)
    elif request.method == "POST" and action == "import":
        form.add_error(None, "Choose a target from the list for every column.")
    inline = job.file.size <= settings.ORCHCAP_UPLOAD_INLINE_BYTES
    preview = upload.preview_rows(process=process, records=inspection.sample, mapping=form.chosen())
    context = {
        "process": process,
        "job": job,
        "form": form,
        "inspection": inspection,
        "mapping_rows": form.rows(inspection.column_examples()),
        "headers": upload.preview_headers(process=process),
        "preview": preview,
        # The import is all or nothing: its button waits until no row needs fixing.
        "check": upload.check_rows(job=job, mapping=form.chosen()),
        "inline": inline,
        "size": upload.file_size(job.file.size),
        "errors": errors[:SHOWN_ERRORS],
        "more_errors": max(len(errors) - SHOWN_ERRORS, 0),
    }
    failed = bool(form.errors) or (request.method == "POST" and action == "import")
    template = "cases/upload_mapping.html"
    if request.htmx and action == "preview":
        template += "#preview"
    return render(request, template, context, status=422 if failed else 200)


@require_POST
@login_required
def upload_discard(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    process = _process_for_upload(request, slug)
    job = _job(process, job_id)
    try:
        upload.discard_upload(job=job)
    except CaseConflict as exc:
        messages.error(request, str(exc))
        return redirect("import_job", slug=process.slug, job_id=job.pk)
    messages.success(request, "The upload was discarded.")
    return redirect("process_upload", slug=process.slug)


@require_GET
@login_required
def import_job(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    process = _process_for_upload(request, slug)
    job = _job(process, job_id)
    if job.state == ImportJob.State.PENDING and not job.mapping:
        return redirect("upload_mapping", slug=process.slug, job_id=job.pk)
    active = job.state in (ImportJob.State.PENDING, ImportJob.State.RUNNING)
    context = {
        "process": process,
        "job": job,
        "active": active,
        "percent": round(100 * job.processed_rows / job.total_rows) if job.total_rows else 0,
        "already_present": max(job.processed_rows - job.created_cases, 0),
        "errors": job.errors[:SHOWN_ERRORS],
        "more_errors": max(len(job.errors) - SHOWN_ERRORS, 0),
    }
    template = "cases/import_job.html#job-status" if request.htmx else "cases/import_job.html"
    return render(request, template, context)


@require_GET
@login_required
def import_job_errors(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    process = _process_for_upload(request, slug)
    job = _job(process, job_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    writer = csv.writer(response)  # cells quote uploaded values: kept from running as formulas
    writer.writerow(["line", "column", "field", "message"])
    for error in job.errors:
        writer.writerow([error.get(key) for key in ("line", "column", "field", "message")])
    return response
