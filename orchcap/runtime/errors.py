class EngineError(Exception):
    """A startup problem the user can fix; its message is one line, printed without a traceback."""


class PgvectorMissing(EngineError):
    pass
