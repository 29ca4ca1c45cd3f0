"""Skill evidence from decisions (registered for `skills`, see apps/core/evidence_kinds.py).

- `cases.decisions_agree`: the person's labels on decided cases and the share equal to the final
  label (an overturned label, after a disagreement or a second look, counts against).
- `cases.peer_kappa`: Cohen's kappa between the person's labels and the other experts' labels on
  the cases both labelled (overlap ≥ 2 or second looks), whatever the case's status.
- `cases.adjudications_upheld`: disputes the person took part in that an adjudicator settled, and
  the share settled with the person's label.

Only labels the person gave (review, API, import) count: not adjudications or the model's. Each
kind measures a list of people at once (one grouped query, whatever their number): the hourly
refresh passes everyone, a single refresh one person.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from apps.cases import agreement
from apps.cases.models import CaseStatus, Decision, DecisionSource
from apps.core.evidence_kinds import (
    MAX_REFS,
    PROCESS,
    EvidenceKind,
    Measurement,
    Param,
    Ref,
    between,
    built_once,
    built_sql,
    group_by_first,
    latest_per_person,
    register_evidence_kind,
    shares_per_person,
    url_maker,
)

LABEL_SOURCES = (DecisionSource.REVIEW, DecisionSource.API, DecisionSource.IMPORT)
LABEL = Param("label", "text", "a decision label (empty: every label)")


def _labels(
    people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> QuerySet[Decision]:
    rows = Decision.objects.filter(
        expert_id__in=people,
        retracted_at__isnull=True,
        source__in=LABEL_SOURCES,
        **between("decided_at", since, until),
    )
    if params.get("process"):
        rows = rows.filter(case__process__slug=params["process"])
    return rows


def _latest_label_per_case(rows: QuerySet[Decision]) -> QuerySet:
    """(person, case, label) for each case a person labelled in `rows`, their latest label there
    (a case labelled twice, by review and import say, counts once)."""
    return (
        rows.order_by("expert_id", "case_id", "-decided_at", "-pk")
        .distinct("expert_id", "case_id")
        .values_list("expert_id", "case_id", "label")
    )


def _latest_labels_where(
    kind: str,
    condition: Callable[[], Exists],
    people: list[int],
    params: dict[str, Any],
    since: datetime | None,
    until: datetime,
) -> list[tuple[int, int, str]]:
    """_latest_label_per_case of the labels meeting `condition`; one person's query is built
    once per shape (evidence_kinds.built_once): a refresh of one person measures it each time."""

    def build(
        people: list[int], process: str | None, since: datetime | None, until: datetime
    ) -> QuerySet:
        rows = _labels(people, {"process": process}, since, until).filter(condition())
        return _latest_label_per_case(rows)

    if len(people) != 1:
        return list(build(people, params.get("process"), since, until))
    values: dict[str, Any] = {"person": people[0], "until": until}
    if params.get("process"):
        values["process"] = params["process"]
    if since is not None:
        values["since"] = since
    return built_once(  # type: ignore[return-value]
        (kind, *values),
        lambda person, until, process=None, since=None: build([person], process, since, until),
        **values,
    )


def _case_refs() -> Callable[[int, str], Ref]:
    case_url = url_maker("case_detail", "case_id")
    return lambda case_id, text: Ref(f"case {case_id}: {text}", case_url(case_id))


def decisions_agree(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    (measured,) = decisions_agree_periods(
        people=people, params=params, periods=[since], until=until
    )
    return measured


def _agreement_rows(
    people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> QuerySet[Decision]:
    rows = _labels(people, params, since, until).filter(case__status=CaseStatus.DECIDED)
    rows = rows.exclude(case__final_label="")
    if params.get("label"):
        # "This label or not": the labels that said it and the cases that ended with it.
        rows = rows.filter(Q(label=params["label"]) | Q(case__final_label=params["label"]))
    return rows


def decisions_agree_periods(
    *, people: list[int], params: dict[str, Any], periods: list[datetime | None], until: datetime
) -> list[dict[int, Measurement]]:
    """decisions_agree for each `since` in `periods`, over the rows of the widest: one GROUP BY
    with a count per period, and one read of the links. A period's latest links are the widest
    one's that fall in it (both newest first), so they are read once with their times."""
    widest = None if None in periods else min(p for p in periods if p is not None)
    if len(people) == 1:
        totals, latest = _one_person_agreement(people[0], params, periods, widest, until)
    else:
        rows = _agreement_rows(people, params, widest, until)
        totals = shares_per_person(
            rows,
            person="expert_id",
            hit=Q(label=F("case__final_label")),
            periods=[
                Q() if since in (None, widest) else Q(decided_at__gte=since) for since in periods
            ],
        )
        latest = latest_per_person(
            rows,
            people=[expert for expert, _ in totals],
            person="expert_id",
            order_by=[F("decided_at").desc(), F("pk").desc()],
            fields=("case_id", "label", "case__final_label", "decided_at"),
        )
    case_ref = _case_refs()
    measured: list[dict[int, Measurement]] = []
    for i, since in enumerate(periods):
        bounded = since is not None and since != widest  # narrower than the rows read
        one: dict[int, Measurement] = {}
        for expert, counts in totals:
            total, agreed = counts[i]
            if not total:
                continue
            one[expert] = Measurement(
                count=total,
                value=agreed / total,
                refs=[
                    case_ref(case_id, "agreed" if label == final else "overturned")
                    for case_id, label, final, at in latest[expert]
                    if not bounded or datetime.fromisoformat(at) >= since
                ],
            )
        measured.append(one)
    return measured


def _one_person_agreement(
    person: int,
    params: dict[str, Any],
    periods: list[datetime | None],
    widest: datetime | None,
    until: datetime,
) -> tuple[list[tuple[int, list[tuple[int, int]]]], dict[int, list[tuple]]]:
    """What shares_per_person and latest_per_person give decisions_agree_periods, for one
    person in one statement: their labels (a thousand at most, usually) read once, counted per
    period and their latest taken from the same rows. A decision's refresh and a "measure
    again" click are one person's; the bulk path would be two queries, each built by the ORM."""

    def build(person: int, until: datetime, since=None, process=None, label=None) -> QuerySet:  # type: ignore[no-untyped-def]
        rows = _agreement_rows([person], {"process": process, "label": label}, since, until)
        return rows.order_by().values(
            c=F("case_id"), l=F("label"), f=F("case__final_label"), at=F("decided_at"), i=F("pk")
        )

    # Built once per shape (evidence_kinds.built_sql): building it cost more than running it.
    values: dict[str, Any] = {"person": person, "until": until}
    if widest is not None:
        values["since"] = widest
    for name in ("process", "label"):
        if params.get(name):
            values[name] = params[name]
    inner, inner_params = built_sql(("cases.decisions_agree", *values), build, **values)
    counts, bounds = [], []
    for since in periods:
        if since in (None, widest):
            counts.append("count(*), count(*) FILTER (WHERE r.l = r.f)")
        else:
            counts.append(
                "count(*) FILTER (WHERE r.at >= %s), count(*) FILTER (WHERE r.at >= %s AND r.l = r.f)"
            )
            bounds += [since, since]
    # The ORM's SQL and fixed text; every value is a parameter.
    sql = f"""
        WITH r AS MATERIALIZED ({inner})
        SELECT count(*), {", ".join(counts)},
            (SELECT coalesce(json_agg(json_build_array(t.c, t.l, t.f, t.at)
                                      ORDER BY t.at DESC, t.i DESC), '[]')
             FROM (SELECT * FROM r ORDER BY r.at DESC, r.i DESC LIMIT %s) t)
        FROM r
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*inner_params, *bounds, MAX_REFS])
        rows_read, *figures, refs = cursor.fetchone()
    if not rows_read:  # shares_per_person has no row for them
        return [], {}
    pairs = [(figures[2 * i], figures[2 * i + 1]) for i in range(len(periods))]
    return [(person, pairs)], {person: [tuple(ref) for ref in refs]}


def _peer_labels() -> QuerySet[Decision]:
    return Decision.objects.filter(retracted_at__isnull=True, source__in=LABEL_SOURCES)


def peer_kappa(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    # Only the cases someone else labelled too: a semi-join, so that a person's thousands of
    # single-label cases are never read.
    def labelled_by_others() -> Exists:
        others = _peer_labels().filter(case_id=OuterRef("case_id"))
        return Exists(others.exclude(expert_id=OuterRef("expert_id")))

    mine = _latest_labels_where(
        "cases.peer_kappa", labelled_by_others, people, params, since, until
    )
    theirs: dict[int, list[tuple[int, str]]] = defaultdict(list)
    shared_cases = {case_id for _, case_id, _ in mine}
    for case_id, expert, label in (
        _peer_labels().filter(case_id__in=shared_cases).values_list("case_id", "expert_id", "label")
    ):
        theirs[case_id].append((expert, label))
    case_ref = _case_refs()
    measured: dict[int, Measurement] = {}
    for person, cases in group_by_first(mine).items():
        pairs = [
            (label, other)
            for case_id, label in cases
            for expert, other in theirs[case_id]
            if expert != person
        ]
        shared = sorted(case_id for case_id, _ in cases)
        measured[person] = Measurement(
            count=len(shared),
            value=agreement.cohens_kappa(pairs),
            refs=[case_ref(case_id, "labelled by others too") for case_id in shared[-MAX_REFS:]],
        )
    return measured


def adjudications_upheld(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    settled = Decision.objects.filter(source=DecisionSource.ADJUDICATION, retracted_at__isnull=True)
    mine = _latest_labels_where(
        "cases.adjudications_upheld",
        lambda: Exists(settled.filter(case_id=OuterRef("case_id"))),
        people,
        params,
        since,
        until,
    )
    # The latest adjudication of each case is its outcome.
    outcome = dict(
        settled.filter(case_id__in={case_id for _, case_id, _ in mine})
        .order_by("case_id", "-decided_at", "-pk")
        .distinct("case_id")
        .values_list("case_id", "label")
    )
    case_ref = _case_refs()
    measured: dict[int, Measurement] = {}
    for person, cases in group_by_first(mine).items():
        upheld = {case_id for case_id, label in cases if outcome[case_id] == label}
        disputes = sorted(case_id for case_id, _ in cases)
        measured[person] = Measurement(
            count=len(disputes),
            value=len(upheld) / len(disputes),
            refs=[
                case_ref(case_id, "upheld" if case_id in upheld else "not upheld")
                for case_id in disputes[-MAX_REFS:]
            ],
        )
    return measured


def _labelled_by_two() -> Exists:
    # Retracted labels too: undoing one can take a pair away.
    labels = Decision.objects.filter(source__in=LABEL_SOURCES)
    another = labels.filter(case_id=OuterRef("case_id")).exclude(expert_id=OuterRef("expert_id"))
    return Exists(labels.filter(case_id=OuterRef("pk")).filter(Exists(another)))


def _adjudicated() -> Exists:
    # A retracted adjudication too: undoing it takes a settled dispute away.
    return Exists(
        Decision.objects.filter(case_id=OuterRef("pk"), source=DecisionSource.ADJUDICATION)
    )


register_evidence_kind(
    EvidenceKind(
        key="cases.decisions_agree",
        label="Decisions on decided cases, agreeing with the final label",
        value_label="agreement",
        measure_many=decisions_agree,
        measure_periods=decisions_agree_periods,
        params=(PROCESS, LABEL),
        todo="decide {n} more cases",
        owner="cases",
    )
)
register_evidence_kind(
    EvidenceKind(
        key="cases.peer_kappa",
        label="Cases labelled by other experts too (Cohen's kappa with them)",
        value_label="kappa",
        measure_many=peer_kappa,
        changed_by_case=_labelled_by_two,
        params=(PROCESS,),
        todo="label {n} more cases that other experts label too",
        owner="cases",
    )
)
register_evidence_kind(
    EvidenceKind(
        key="cases.adjudications_upheld",
        label="Disputes settled by an adjudicator, upheld with your label",
        value_label="upheld",
        measure_many=adjudications_upheld,
        changed_by_case=_adjudicated,
        params=(PROCESS,),
        todo="take part in {n} more settled disputes",
        owner="cases",
    )
)
