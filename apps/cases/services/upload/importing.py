"""Storing uploads and importing them: the upload limits, the pending job, and the import that
validates every row before writing all the cases in one transaction."""

import time
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from apps.cases.errors import CaseConflict
from apps.cases.models import IMPORT_KIND, ImportJob, Process
from apps.cases.services.intake import BatchInvalid, create_cases
from apps.cases.services.upload.mapping import (
    _check_rows,
    _chunks,
    _flat_errors,
    _SeenIds,
    clean_mapping,
)
from apps.cases.services.upload.reading import (
    MAX_STORED_ERRORS,
    PROGRESS_EVERY_SECONDS,
    FileProblem,
    RecordReader,
    _is_inline,
    inspect_file,
    inspect_job,
    resolve_format,
)
from apps.core import outbox

# --- storing and importing ----------------------------------------------------------------------


def file_size(size: int) -> str:
    """A byte count as people read it: "740 bytes", "1.8 KB", "12 MB" (never "0.0018 MB")."""
    if size < 1024:
        return f"{size} byte{'' if size == 1 else 's'}"
    value, unit = size / 1024, "KB"
    for larger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"


def awaiting_mapping(job: ImportJob) -> bool:
    """An upload waits for its mapping until one is confirmed; a failed import wrote nothing, so it
    can be mapped again and retried."""
    return job.state == ImportJob.State.FAILED or (
        job.state == ImportJob.State.PENDING and not job.mapping
    )


def store_upload(
    *, process: Process, user: AbstractBaseUser, upload: UploadedFile, file_format: str
) -> ImportJob:
    """Keep an uploaded file as a pending ImportJob, waiting for its column mapping.

    Raises ValidationError, storing nothing, for a file above ORCHCAP_UPLOAD_MAX_BYTES, an empty
    file, an unknown format, or one whose first rows (all rows, for a file small enough to import
    in the request) can't be read; FileProblem names the line.
    """
    limit = settings.ORCHCAP_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(
            f"The file is {file_size(upload.size)}; the upload limit is {file_size(limit)}."
        )
    if not upload.size:
        raise ValidationError("The file is empty.")
    resolved = resolve_format(name=upload.name or "", file_format=file_format)
    upload.seek(0)
    inspect_file(
        upload, file_format=resolved, whole=upload.size <= settings.ORCHCAP_UPLOAD_INLINE_BYTES
    )
    upload.seek(0)
    job = ImportJob(process=process, created_by=user, file_format=resolved, mapping={})
    job.file.save(PurePath(upload.name or f"upload.{resolved}").name, upload, save=False)
    job.save()
    return job


def discard_upload(*, job: ImportJob) -> None:
    """Delete an upload that waits for its mapping (and its file)."""
    if not awaiting_mapping(job):
        raise CaseConflict("This import has started; it can no longer be discarded.")
    job.file.delete(save=False)
    job.delete()


def start_import(*, job: ImportJob, mapping: dict[str, str]) -> ImportJob:
    """Confirm the mapping and import: in the request for a small file (returns the job done or
    failed), else by the run_import_job task after commit (returns it pending).

    Raises ValidationError for a bad mapping and CaseConflict if the import has already started.
    """
    columns = inspect_job(job=job).columns
    clean = clean_mapping(process=job.process, columns=columns, mapping=mapping)
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().select_related("process").get(pk=job.pk)
        if not awaiting_mapping(locked):
            raise CaseConflict("This import has already started.")
        locked.mapping = clean
        locked.state = ImportJob.State.PENDING
        locked.errors = []
        locked.total_rows = locked.processed_rows = locked.created_cases = 0
        locked.finished_at = None
        # Recorded as sent now, so the job sweeper leaves an inline import to this request.
        locked.enqueued_at = timezone.now()
        locked.save()
        if not _is_inline(locked):
            # Published after commit; with the broker down the job stays pending (shown so) and
            # the job sweeper sends it again (apps/core/outbox.py).
            outbox.enqueue(kind=IMPORT_KIND, job_id=locked.pk)
            locked.refresh_from_db()
            return locked
    return run_import(job=locked)


class _Progress:
    """Progress counters the job page can read while the import's transaction is still open.

    Outside a transaction they are plain updates. Inside one they go through a second connection
    (autocommit), and skip a locked job row rather than wait for it: progress is best effort, and
    waiting on our own transaction would never end.
    """

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._side = None
        # An import done within PROGRESS_EVERY_SECONDS never reports (nor opens a connection).
        self._last = time.monotonic()

    def set(self, *, force: bool = False, **values: object) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_EVERY_SECONDS:
            return
        self._last = now
        # Progress is also the worker's heartbeat: a job silent too long lost its worker.
        values = {**values, "heartbeat_at": timezone.now()}
        if not transaction.get_connection().in_atomic_block:
            ImportJob.objects.filter(pk=self.job_id).update(**values)
            return
        if self._side is None:
            self._side = connections.create_connection(DEFAULT_DB_ALIAS)
        table = ImportJob._meta.db_table
        quote = self._side.ops.quote_name
        assignments = ", ".join(f"{quote(name)} = %s" for name in values)
        with self._side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(table)} SET {assignments} WHERE id IN "  # noqa: S608 (names are ours)
                f"(SELECT id FROM {quote(table)} WHERE id = %s FOR UPDATE SKIP LOCKED)",
                [*values.values(), self.job_id],
            )

    def close(self) -> None:
        if self._side is not None:
            self._side.close()


class _Superseded(Exception):
    """Another run of the same job finished first; ours rolls back."""


def _validate_file(job: ImportJob, progress: _Progress) -> tuple[int, list[dict]]:
    """Check every row; returns (rows read, line-level errors, capped at MAX_STORED_ERRORS)."""
    errors: list[dict] = []
    invalid_rows = listed_rows = count = 0
    seen = _SeenIds()
    with job.file.storage.open(job.file.name, "rb") as handle:
        try:
            for chunk in _chunks(RecordReader(handle, file_format=job.file_format), job.mapping):
                checked = _check_rows(
                    process=job.process,
                    lines=[line for line, _, _ in chunk],
                    rows=[row for _, row, _ in chunk],
                    problems=[problems for _, _, problems in chunk],
                    seen=seen,
                )
                for (line, _, _), (_, row_errors) in zip(chunk, checked, strict=True):
                    if not row_errors:
                        continue
                    invalid_rows += 1
                    if len(errors) < MAX_STORED_ERRORS:
                        listed_rows += 1
                        errors.extend(_flat_errors(line, row_errors, job.mapping))
                count += len(chunk)
                progress.set(processed_rows=count)
        except FileProblem as problem:
            return count, [*errors, problem.as_error()]
    if count == 0:
        return 0, [FileProblem(None, "The file has no rows to import.").as_error()]
    if invalid_rows > listed_rows:
        errors.append(
            {
                "line": None,
                "column": "",
                "field": "",
                "message": f"{invalid_rows} rows have errors; the first {listed_rows} are listed.",
            }
        )
    return count, errors


def _write(job: ImportJob, total: int, progress: _Progress) -> None:
    """Create every case in one transaction; the job becomes done in the same transaction."""
    written = created = 0
    with transaction.atomic(), job.file.storage.open(job.file.name, "rb") as handle:
        records = RecordReader(handle, file_format=job.file_format)
        for chunk in _chunks(records, job.mapping):
            try:
                result = create_cases(process=job.process, rows=[row for _, row, _ in chunk])
            except BatchInvalid as exc:
                # Only if the data changed since the check (a schema edit); report by line.
                raise _WriteRejected(
                    [
                        entry
                        for error in exc.rows
                        for entry in _flat_errors(
                            chunk[error["row"]][0], error["errors"], job.mapping
                        )
                    ]
                ) from None
            written += len(chunk)
            created += result.created_count
            progress.set(processed_rows=written, created_cases=created)
        # Conditional on the claim's attempt: a run the sweeper took over (its worker was
        # thought lost) rolls back instead of importing twice.
        finished = ImportJob.objects.filter(
            pk=job.pk, state=ImportJob.State.RUNNING, dispatch_attempts=job.dispatch_attempts
        ).update(
            state=ImportJob.State.DONE,
            total_rows=total,
            processed_rows=written,
            created_cases=created,
            errors=[],
            finished_at=timezone.now(),
        )
        if not finished:
            raise _Superseded


class _WriteRejected(Exception):
    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s)")


def _fail(job: ImportJob, *, total: int, errors: list[dict]) -> None:
    ImportJob.objects.filter(
        pk=job.pk, state=ImportJob.State.RUNNING, dispatch_attempts=job.dispatch_attempts
    ).update(
        state=ImportJob.State.FAILED,
        total_rows=total,
        processed_rows=0,
        created_cases=0,
        errors=errors,
        finished_at=timezone.now(),
    )


def run_import(*, job: ImportJob) -> ImportJob:
    """Validate every row of the job's file with its mapping, then write all the cases, or none.

    Precondition: the mapping is confirmed (start_import). Only a pending job is claimed, so a
    message that arrives twice imports once; a run lost with its worker is made pending again by
    the job sweeper (its writes commit together with state "done", so it wrote nothing).
    While checking, processed_rows counts rows checked with total_rows 0; while writing,
    processed_rows/total_rows is the share written. Returns the job, done or failed.
    """
    State = ImportJob.State
    claimed = (
        ImportJob.objects.filter(pk=job.pk, state=State.PENDING)
        .exclude(mapping={})
        .update(
            state=State.RUNNING,
            heartbeat_at=timezone.now(),
            total_rows=0,
            processed_rows=0,
            created_cases=0,
            errors=[],
            finished_at=None,
        )
    )
    if claimed:
        job.refresh_from_db()
        progress = _Progress(job.pk)
        total = 0
        try:
            total, errors = _validate_file(job, progress)
            if errors:
                _fail(job, total=total, errors=errors)
            else:
                progress.set(force=True, total_rows=total, processed_rows=0)
                _write(job, total, progress)
        except FileProblem as problem:  # the file changed between the check and the write
            _fail(job, total=total, errors=[problem.as_error()])
        except _WriteRejected as exc:
            _fail(job, total=total, errors=exc.errors[:MAX_STORED_ERRORS])
        except _Superseded:
            pass
        except Exception:
            _fail(
                job,
                total=total,
                errors=[
                    {
                        "line": None,
                        "column": "",
                        "field": "",
                        "message": "The import stopped on an unexpected error; nothing was written.",
                    }
                ],
            )
            raise
        finally:
            progress.close()
    job.refresh_from_db()
    return job
