"""The common reasons behind each decision: experts' rationales grouped by TF-IDF and k-means."""

import hashlib
from dataclasses import dataclass

from django.core.cache import cache

from apps.cases.models import Decision, DecisionSource, Process
from apps.cases.selectors import AnyUser, visible_decisions

MAX_RATIONALES = 2000  # the most recent per decision label
DRAFT_RATIONALES = 20  # how many of a group's typical rationales a chat model reads for a draft
# Groups depend only on the rationales they are made of (the cache key is their digest), so a
# cached entry is never stale: a new or retracted decision changes the key. The timeout only
# bounds the memory of groups nobody asks for any more.
CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class RationaleGroup:
    terms: list[str]  # the words that characterise the group, strongest first
    size: int
    examples: list[tuple[int, str]]  # (case id, rationale), the most typical first
    case_ids: list[int]  # the cases of the group's most typical rationales (for a rule draft)


def rationale_groups(
    *, process: Process, viewer: AnyUser, max_groups: int = 5
) -> dict[str, list[RationaleGroup]]:
    """For each decision label of `process`, its experts' rationales that `viewer` may see (the
    blind rule: none from an open case they haven't labelled) in up to `max_groups` groups,
    largest first. Labels with fewer than 4 rationales come back as a single group.

    Grouping costs a few hundred milliseconds per label, so the groups of a given set of
    rationales are computed once and cached (viewers who see the same rationales share them)."""
    rationales = (
        visible_decisions(
            user=viewer,
            process=process,
            decisions=Decision.objects.filter(case__process=process, retracted_at__isnull=True),
        )
        .exclude(rationale="")
        .exclude(source=DecisionSource.ADJUDICATION)
        .order_by("-decided_at", "-pk")
    )
    result: dict[str, list[RationaleGroup]] = {}
    for label in process.schema.labels:
        rows = list(
            rationales.filter(label=label).values_list("pk", "case_id", "rationale")[
                :MAX_RATIONALES
            ]
        )
        if not rows:
            continue
        digest = hashlib.sha256(repr((max_groups, rows)).encode()).hexdigest()
        key = f"rules:rationale-groups:{process.pk}:{digest}"
        groups = cache.get(key)
        if groups is None:
            groups = _group(
                rows=[(case_id, text) for _, case_id, text in rows], max_groups=max_groups
            )
            cache.set(key, groups, CACHE_SECONDS)
        if groups:
            result[label] = groups
    return result


def _group(*, rows: list[tuple[int, str]], max_groups: int) -> list[RationaleGroup]:
    """`rows` ((case id, rationale)) in up to `max_groups` groups, largest first; [] when the
    texts hold only stop words."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer
    from threadpoolctl import threadpool_limits

    texts = [text for _, text in rows]
    vectorizer = TfidfVectorizer(stop_words="english", max_features=5000, ngram_range=(1, 2))
    try:
        vectors = vectorizer.fit_transform(texts)
    except ValueError:  # only stop words: nothing to group by
        return []
    terms = vectorizer.get_feature_names_out()
    groups = min(max_groups, max(1, len(rows) // 4))
    # One thread: k-means' OpenMP threads on a busy machine (web workers side by side on few
    # cores) spin against each other and take ten times as long.
    with threadpool_limits(limits=1):
        model = KMeans(n_clusters=groups, n_init=4, random_state=0).fit(vectors)
    found = []
    for cluster in range(groups):
        members = [i for i, c in enumerate(model.labels_) if c == cluster]
        if not members:
            continue
        centre = model.cluster_centers_[cluster]
        top = [str(terms[i]) for i in centre.argsort()[::-1][:5] if centre[i] > 0]
        # Most typical first: closest to the group's centre (one sparse product for them all).
        closeness = vectors[members] @ centre
        typical = [
            members[i] for i in sorted(range(len(members)), key=lambda i: -float(closeness[i]))
        ]
        found.append(
            RationaleGroup(
                terms=top,
                size=len(members),
                examples=[rows[i] for i in typical[:3]],
                case_ids=[rows[i][0] for i in typical[:DRAFT_RATIONALES]],
            )
        )
    return sorted(found, key=lambda g: -g.size)
