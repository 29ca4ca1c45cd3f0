"""Do precedents share the case's decision? (issue 11, "Precedents that mislead")

On processes generated from the demo's documented policies (apps/cases/demo.py, with its 8 %
noise), each run takes a fresh seed: DECIDED cases form the decided history (the pool, newest
first) and QUERIES later cases are looked up in it. For each query the top 5 precedents are
ranked by

- the weighted field closeness of apps/cases/precedents.py (what the review pane shows), with
  weights from the decided cases' label information (no model), and with the importance of a
  model trained on the pool the way orchcap trains one (apps/classifiers/learning.py, importance
  as apps/classifiers/importance.py computes it);
- plain nearest neighbours on the raw fields: the same per-field similarities, every field
  weighing the same (the baseline);
- the cosine of the case embeddings (apps/cases/embeddings.py, the default hashing embeddings:
  what the pane ranked by before), an exact search as pgvector's would be at full recall.

The figure is the share of those top-5 precedents whose final label equals the query's final
label. Also: that share per closeness band (does "close" mean what it says?), how often the pane
says "no close precedent", and the ranking time for one case against a pool of PRECEDENT_POOL
(beside the bare embedding search over the same pool).

Runs in a subprocess (Django settings for the classifiers' imports, a throwaway data dir; no
database is touched). `bench/run.py precedents` runs only this part; every run also writes its
figures to bench/precedents.json.
"""

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

from measure import REPEATS, figure, run_in_child

ROOT = Path(__file__).resolve().parent.parent
DECIDED = 2000
QUERIES = 300
EXTRA = 4000  # later cases, searched for the rare ones (e.g. claims above the 25,000 EUR limit)
K = 5
MINIMUM = 0.7  # ORCHCAP_PRECEDENT_MIN_SIMILARITY's default
SEARCHES = 7  # timed searches per run (their median)


def bench_precedents(data: Path) -> list[dict[str, object]]:
    """Run the precedent benchmarks in a subprocess; their results."""
    results = run_in_child(__file__, data)
    # Kept beside results.json, which only a full run rewrites: the figures docs/cases.md quotes.
    (ROOT / "bench" / "precedents.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


# --- the child side ------------------------------------------------------------------------------


def _claims(seed: int, count: int) -> tuple[list[dict], list[tuple[dict, str, str]]]:
    """Claims as the demo generates them. The intake flags them all alike ("Manual check"): the
    exception reason does not give the policy's answer away, the fields must."""
    from datetime import date

    from apps.cases import demo

    rng = random.Random(seed)
    claims = demo._generate_claims(rng, count, date(2026, 6, 1))
    rows = []
    for fields in claims:
        label = demo._noisy(rng, demo.claim_rule(fields), demo.CLAIMS_DECISIONS)[0]
        rows.append((fields, "Manual check required", label))
    return demo.CLAIMS_FIELDS, rows


_claims.rare = lambda fields: fields["claimed_amount"] > 25_000  # type: ignore[attr-defined]


def _invoices(seed: int, count: int) -> tuple[list[dict], list[tuple[dict, str, str]]]:
    """Invoices as the demo generates them, with the demo's exception reasons."""
    from apps.cases import demo

    cases = demo.synthetic_invoice_cases(count, seed=seed)
    return demo.AP_FIELDS, [(fields, reason, label) for fields, reason, _, _, label in cases]


# No PO above the 10,000 EUR limit (rule 4a): rare, and decided by the amount.
_invoices.rare = lambda fields: (  # type: ignore[attr-defined]
    fields["po_match"] == "missing" and fields["amount"] > 10_000
)


def _model_weights(specs: list[dict], pool: list[tuple[dict, str, str]]) -> dict[str, float]:
    from apps.classifiers.features import CaseInput
    from apps.classifiers.importance import SAMPLE, field_importance
    from apps.classifiers.learning import fit_classifier

    rows = [CaseInput(fields, reason, []) for fields, reason, _ in pool]
    trained = fit_classifier(specs, rows, [label for _, _, label in pool], min_decisions=20)
    return field_importance(rows=rows[:SAMPLE], pipeline=trained.pipeline)


def _share(hits: list[list[bool]]) -> float:
    flat = [hit for row in hits for hit in row]
    return sum(flat) / len(flat) if flat else 0.0


def _run(name: str, make, seed: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import numpy as np

    from apps.cases.embeddings import HashingEmbeddings
    from apps.cases.precedents import Comparison, Example, Metric
    from apps.cases.schema import render_case_text
    from apps.cases.selectors_precedents import band

    specs, rows = make(seed, DECIDED + QUERIES + EXTRA)
    pool_rows = rows[:DECIDED][::-1]  # the pool: newest first
    # The queries: the next QUERIES cases, and the rare ones that matter most (make's `rare`).
    queries = rows[DECIDED : DECIDED + QUERIES]
    rare = [row for row in rows[DECIDED + QUERIES :] if make.rare(row[0])]
    pool = [Example(fields, reason, label) for fields, reason, label in pool_rows]
    names = [s["name"] for s in specs] + ["exception_reason"]
    started = time.perf_counter()
    learnt = Metric(specs, pool)
    learn_ms = (time.perf_counter() - started) * 1000
    comparisons = {
        "weighted": Comparison(specs, pool, metric=learnt),
        "model": Comparison(specs, pool, _model_weights(specs, pool_rows)),
        "plain": Comparison(
            specs, pool, dict.fromkeys(names, 1.0), source="equal", by_decisions=False
        ),
    }
    hits: dict[str, list[list[bool]]] = {key: [] for key in [*comparisons, "embedding"]}
    rare_hits: dict[str, list[list[bool]]] = {key: [] for key in [*comparisons, "embedding"]}
    bands: dict[str, list[bool]] = {"close": [], "loose": [], "far": []}
    no_close = 0
    minimum = MINIMUM
    for fields, reason, label in queries:
        for key, comparison in comparisons.items():
            matches = comparison.nearest(fields, reason, k=K)
            hits[key].append([pool[m.index].label == label for m in matches])
            if key == "weighted":
                for m in matches:
                    bands[band(m.closeness, minimum)].append(pool[m.index].label == label)
                no_close += all(m.closeness < minimum for m in matches)
    for fields, reason, label in rare:
        for key, comparison in comparisons.items():
            matches = comparison.nearest(fields, reason, k=K)
            rare_hits[key].append([pool[m.index].label == label for m in matches])
    embeddings = HashingEmbeddings()
    labelled = [{**s, "label": s.get("label") or s["name"]} for s in specs]
    pool_vectors = np.array(
        embeddings.embed_documents([render_case_text(labelled, f, r, []) for f, r, _ in pool_rows])
    )
    query_vectors = np.array(
        embeddings.embed_documents([render_case_text(labelled, f, r, []) for f, r, _ in queries])
    )
    rare_vectors = np.array(
        embeddings.embed_documents([render_case_text(labelled, f, r, []) for f, r, _ in rare])
    ).reshape(len(rare), -1)
    for vectors, group, found in ((query_vectors, queries, hits), (rare_vectors, rare, rare_hits)):
        for row, (_, _, label) in zip(vectors @ pool_vectors.T, group, strict=True):
            top = np.argsort(-row, kind="stable")[:K]
            found["embedding"].append([pool[i].label == label for i in top])
    # One review pane's search with the process's metric at hand (the selector caches it), the
    # pool encoded again as after a new decision; the median of SEARCHES cases. The same-run
    # baseline: the bare embedding search (the cosine top 5 over the same pool's vectors).
    rank, embedding_rank = [], []
    for (fields, reason, _), vector in zip(queries[:SEARCHES], query_vectors, strict=False):
        started = time.perf_counter()
        Comparison(specs, pool, metric=learnt).nearest(fields, reason, k=K)
        rank.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        np.argsort(-(pool_vectors @ vector), kind="stable")[:K]
        embedding_rank.append((time.perf_counter() - started) * 1000)
    rank_ms, embedding_rank_ms = statistics.median(rank), statistics.median(embedding_rank)
    result = {key: _share(value) for key, value in hits.items()}
    result.update({f"rare_{key}": _share(value) for key, value in rare_hits.items()})
    result["rare_count"] = len(rare)
    result["learn_ms"] = learn_ms
    result.update({f"band_{key}": (sum(v) / len(v) if v else None) for key, v in bands.items()})
    result["no_close_share"] = no_close / len(queries)
    result["rank_ms"] = rank_ms
    result["embedding_rank_ms"] = embedding_rank_ms
    print(
        f"  precedents {name} seed {seed}: "
        + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
        ),
        flush=True,
    )
    return result


def child(out: Path) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    sys.path.insert(0, str(ROOT))
    django.setup()
    results: list[dict[str, object]] = []
    for name, make in (("claims", _claims), ("invoices", _invoices)):
        runs = [_run(name, make, seed) for seed in range(1, REPEATS + 1)]

        def series(key: str, runs: list[dict[str, object]] = runs) -> list[float]:
            return [float(run[key]) for run in runs if run[key] is not None]  # type: ignore[arg-type]

        for prefix, what in (("", "top5"), ("rare_", "top5_rare")):
            plain = (
                f"precedents_same_label_{what}_{name}_plain_nn_raw_fields",
                series(f"{prefix}plain"),
            )
            for method, key in (
                ("weighted", "weighted"),
                ("model_weighted", "model"),
                ("embedding_cosine", "embedding"),
            ):
                results.append(
                    figure(
                        f"precedents_same_label_{what}_{name}_{method}",
                        series(prefix + key),
                        "share",
                        0.75,
                        "higher",
                        baseline=plain,
                    )
                )
        for key in ("close", "loose", "far"):
            values = series(f"band_{key}")
            if values:
                results.append(
                    figure(
                        f"precedents_same_label_{name}_{key}_band",
                        values,
                        "share",
                        {"close": 0.75, "loose": 0.5, "far": 0.0}[key],
                        "higher",
                    )
                )
        results += [
            figure(
                f"precedents_no_close_precedent_{name}",
                series("no_close_share"),
                "share",
                0.2,
                "lower",
            ),
            figure(
                f"precedents_learn_metric_{name}_pool_{DECIDED}",
                series("learn_ms"),
                "ms",
                500.0,
                "lower",
            ),
            figure(
                f"precedents_rank_one_case_{name}_pool_{DECIDED}",
                series("rank_ms"),
                "ms",
                20.0,
                "lower",
                baseline=(
                    f"precedents_embedding_top5_one_case_{name}_pool_{DECIDED}",
                    series("embedding_rank_ms"),
                ),
            ),
        ]
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    child(Path(sys.argv[1]))
