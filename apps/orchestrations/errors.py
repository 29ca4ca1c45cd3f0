class StageConflict(Exception):
    """A stage change or rollback the version's current state does not allow (answered 409)."""
