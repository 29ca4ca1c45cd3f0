from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from pgvector.django import CosineDistance

from apps.cases.embeddings import get_embeddings
from apps.cases.models import Case, CaseStatus
from apps.cases.schema import render_case_text
from apps.core.db import lock_in_order


def case_text(case: Case) -> str:
    return render_case_text(
        case.schema_version.fields, case.fields, case.exception_reason, case.exception_fields
    )


@dataclass(frozen=True)
class Embedded:
    embedded: int
    busy: list[int]  # held by another transaction right now: not written, to try again later


def embed_cases(*, case_ids: list[int]) -> Embedded:
    """Compute and store embeddings for these cases (batched).

    Background work that must not fight foreground writes: the vectors are computed before any
    lock is taken, then only the rows nobody holds are locked (in id order, SKIP LOCKED) and
    written. A case an intake or a decisions import holds right now is returned in `busy`
    instead of waited for, so this task never takes part in a deadlock and never delays them.
    """
    cases = list(Case.objects.filter(pk__in=case_ids).select_related("schema_version"))
    if not cases:
        return Embedded(embedded=0, busy=[])
    vectors = get_embeddings().embed_documents([case_text(case) for case in cases])
    for case, vector in zip(cases, vectors, strict=True):
        case.embedding = vector
    with transaction.atomic():
        free = set(
            lock_in_order(Case.objects.filter(pk__in=[c.pk for c in cases]), skip_locked=True)
        )
        writable = [case for case in cases if case.pk in free]
        Case.objects.bulk_update(writable, ["embedding"], batch_size=500)
    busy = sorted(case.pk for case in cases if case.pk not in free)
    return Embedded(embedded=len(writable), busy=busy)


def similar_cases(*, case: Case, k: int = 5, decided_only: bool = True) -> QuerySet[Case]:
    """The k nearest cases of the same process by cosine distance (HNSW), annotated `distance`.

    Connections run with hnsw.iterative_scan=relaxed_order (settings), so the filters still yield
    k rows; near-ties may come slightly out of order, which callers that show a ranking re-sort."""
    vector = case.embedding
    if vector is None:
        vector = get_embeddings().embed_query(case_text(case))
    neighbours = Case.objects.filter(process_id=case.process_id, embedding__isnull=False).exclude(
        pk=case.pk
    )
    if decided_only:
        neighbours = neighbours.filter(status=CaseStatus.DECIDED)
    return neighbours.annotate(distance=CosineDistance("embedding", vector)).order_by("distance")[
        :k
    ]
