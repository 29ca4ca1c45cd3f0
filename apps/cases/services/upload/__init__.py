"""Intake of cases from uploaded CSV or JSONL files.

An upload is kept as a pending ImportJob (its file in the default storage) while the uploader maps
columns to schema fields and looks at a preview. Importing reads the file twice: first every row is
validated (nothing is held in memory but errors and the external ids seen), then, only if all rows
are valid, all cases are written in one transaction, so a file is imported whole or not at all.
Small files are imported in the request; bigger ones by the `run_import_job` Celery task.

Problems are reported by file line: bad encoding, a CSV row with the wrong number of cells and an
invalid JSON line stop the reading; schema violations are collected for every row.
"""

from apps.cases.services.upload.importing import (
    awaiting_mapping,
    discard_upload,
    file_size,
    run_import,
    start_import,
    store_upload,
)
from apps.cases.services.upload.mapping import (
    RowCheck,
    check_rows,
    mapping_targets,
    preview_headers,
    preview_rows,
    propose_mapping,
)
from apps.cases.services.upload.reading import IGNORE, inspect_job

__all__ = [
    "IGNORE",
    "RowCheck",
    "awaiting_mapping",
    "check_rows",
    "discard_upload",
    "file_size",
    "inspect_job",
    "mapping_targets",
    "preview_headers",
    "preview_rows",
    "propose_mapping",
    "run_import",
    "start_import",
    "store_upload",
]
