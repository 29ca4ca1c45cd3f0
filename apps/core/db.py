"""Row locks and lost lock races, the same way in every app.

The lock order rule (docs/architecture.md): a transaction that locks or updates several rows of a
table locks them in primary-key order, first, in one statement (`lock_in_order`), before it writes
them; background work that would only wait for a foreground write skips the rows it finds locked
(`skip_locked=True`) and does them later. Two transactions that take their locks in the same
order can wait for each other but never deadlock.

What is left (a lock taken implicitly, a unique key two inserts want, a serializable snapshot
that went stale) is rare and harmless to run again: `retry_on_conflict` reruns the whole
transaction a bounded number of times when PostgreSQL aborts it with a deadlock or a
serialization failure.
"""

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model, QuerySet
from psycopg import errors

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATE class 40 (transaction rollback): the transaction was aborted whole and may simply run
# again. Django re-raises psycopg's error as its own OperationalError with psycopg's as the cause.
CONFLICTS = (errors.DeadlockDetected, errors.SerializationFailure)


def is_conflict(exc: BaseException) -> bool:
    """True when `exc` (or what it was raised from) is a deadlock or a serialization failure."""
    seen: BaseException | None = exc
    for _ in range(5):  # Django wraps once; a service may wrap again
        if seen is None:
            return False
        if isinstance(seen, CONFLICTS):
            return True
        seen = seen.__cause__
    return False


def retry_on_conflict(
    *, attempts: int = 4, backoff: float = 0.05, using: str = DEFAULT_DB_ALIAS
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated function in its own `transaction.atomic`, and run it again, up to
    `attempts` times in all, when PostgreSQL aborts it for a deadlock or a serialization failure.

    Between attempts it sleeps `backoff` seconds doubled each time, with jitter (±50 %), so the
    transactions that collided don't collide again in step; each retry is logged as a warning.
    The function must be safe to run again from the start: everything it wrote was rolled back,
    its `transaction.on_commit` callbacks with it, but objects it changed in memory were not.
    Called inside an outer atomic block (the caller's transaction was aborted, not just this
    part) it runs once and lets the error through.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            tries = 1 if connections[using].in_atomic_block else attempts
            for attempt in range(1, tries + 1):
                try:
                    with transaction.atomic(using=using):
                        return func(*args, **kwargs)
                except Exception as exc:
                    if attempt == tries or not is_conflict(exc):
                        raise
                    delay = backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                    log.warning(
                        "%s: %s; running the transaction again (attempt %d of %d) in %.0f ms",
                        func.__qualname__,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        attempt + 1,
                        tries,
                        delay * 1000,
                    )
                    time.sleep(delay)
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper

    return decorate


def lock_in_order(
    queryset: QuerySet[Model], *, skip_locked: bool = False, no_key: bool = True
) -> list[int]:
    """Lock the rows of `queryset` in primary-key order and return their ids (in that order).

    Precondition: inside `transaction.atomic`. With `skip_locked`, rows another transaction holds
    are left out instead of waited for (background work yields to foreground writes). `no_key`
    (FOR NO KEY UPDATE) is the lock an UPDATE of non-key columns takes: it still lets other
    transactions insert rows that refer to these (a decision, an event); pass False to block that.
    """
    return list(
        queryset.order_by("pk")
        .select_for_update(skip_locked=skip_locked, no_key=no_key, of=("self",))
        .values_list("pk", flat=True)
    )
