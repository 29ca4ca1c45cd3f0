class EnrollmentRefused(Exception):
    """An enrolment token that can't be used: unknown or used (403), expired (410)."""

    def __init__(self, reason: str, *, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NodeRefused(Exception):
    """A node credential that is valid but may no longer be used (revoked, retired): 403."""


class NodeConflict(Exception):
    """The request is valid but the node's state forbids it now (HTTP 409); the message says why."""
