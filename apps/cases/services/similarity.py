from django.db.models import QuerySet
from pgvector.django import CosineDistance

from apps.cases.embeddings import get_embeddings
from apps.cases.models import Case, CaseStatus
from apps.cases.schema import render_case_text


def case_text(case: Case) -> str:
    return render_case_text(
        case.schema_version.fields, case.fields, case.exception_reason, case.exception_fields
    )


def embed_cases(*, case_ids: list[int]) -> int:
    """Compute and store embeddings for these cases (batched); returns how many were embedded."""
    cases = list(Case.objects.filter(pk__in=case_ids).select_related("schema_version"))
    if not cases:
        return 0
    vectors = get_embeddings().embed_documents([case_text(case) for case in cases])
    for case, vector in zip(cases, vectors, strict=True):
        case.embedding = vector
    Case.objects.bulk_update(cases, ["embedding"], batch_size=500)
    return len(cases)


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
