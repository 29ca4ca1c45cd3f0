"""The common reasons behind each decision: experts' rationales grouped by TF-IDF and k-means."""

from dataclasses import dataclass

from apps.cases.models import Decision, DecisionSource, Process
from apps.cases.selectors import AnyUser, visible_decisions

MAX_RATIONALES = 2000  # the most recent per decision label
DRAFT_RATIONALES = 20  # how many of a group's typical rationales a chat model reads for a draft


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
    largest first. Labels with fewer than 4 rationales come back as a single group."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    result: dict[str, list[RationaleGroup]] = {}
    for label in process.schema.labels:
        labelled = Decision.objects.filter(
            case__process=process, label=label, retracted_at__isnull=True
        )
        rows = list(
            visible_decisions(user=viewer, process=process, decisions=labelled)
            .exclude(rationale="")
            .exclude(source=DecisionSource.ADJUDICATION)
            .order_by("-decided_at")
            .values_list("case_id", "rationale")[:MAX_RATIONALES]
        )
        if not rows:
            continue
        texts = [text for _, text in rows]
        try:
            matrix = TfidfVectorizer(
                stop_words="english", max_features=5000, ngram_range=(1, 2)
            ).fit(texts)
        except ValueError:  # only stop words: nothing to group by
            continue
        vectors = matrix.transform(texts)
        terms = matrix.get_feature_names_out()
        groups = min(max_groups, max(1, len(rows) // 4))
        model = KMeans(n_clusters=groups, n_init=4, random_state=0).fit(vectors)
        found = []
        for cluster in range(groups):
            members = [i for i, c in enumerate(model.labels_) if c == cluster]
            if not members:
                continue
            centre = model.cluster_centers_[cluster]
            top = [str(terms[i]) for i in centre.argsort()[::-1][:5] if centre[i] > 0]
            # Most typical first: closest to the group's centre.
            typical = sorted(members, key=lambda i: -float(vectors[i].dot(centre)[0]))
            found.append(
                RationaleGroup(
                    terms=top,
                    size=len(members),
                    examples=[rows[i] for i in typical[:3]],
                    case_ids=[rows[i][0] for i in typical[:DRAFT_RATIONALES]],
                )
            )
        result[label] = sorted(found, key=lambda g: -g.size)
    return result
