class CaseConflict(Exception):
    """The request is valid but the case's state forbids it now (HTTP 409); the message says why."""
