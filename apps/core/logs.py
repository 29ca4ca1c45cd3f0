"""Logging filters named in settings.LOGGING."""

import logging


class NoTracebackUnder500(logging.Filter):
    """django.request logs an ordinary 403 (PermissionDenied) with its traceback; a refusal is not
    a fault, so 4xx records keep their WARNING line and lose the traceback. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
