"""Evidence kinds: how a person's work in one app is measured as evidence of a skill.

The `skills` app (top floor) grants skill levels by evidence rules stored as data: a kind and its
parameters. The kinds themselves belong to the app that owns the records they count, which
registers them here from a module named `skill_evidence.py` (found by `autodiscover()`, the way
Django's admin finds `admin.py`). A new app (a data catalog, say) adds its kinds by shipping its own
`skill_evidence.py`: neither `skills` nor this module changes.

A kind's `measure(person, params, since, until)` returns a `Measurement`: how many qualifying rows
(`count`), a figure when the kind has one (an agreement share, a kappa, a precision, an uptime),
and links to the rows it counted. An evidence rule then compares those with its thresholds
(`min_count`, `min_value`, `period_days`), which are the same for every kind.

The hourly refresh measures each rule for everyone at once: a kind that can gives a bulk
`measure_many(people, params, since, until) -> {person id: Measurement}` (one grouped query for
everyone) and its `measure` is then that for one person, so both can never disagree. A kind
without one is measured person by person (`EvidenceKind.measure_people`).
"""

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, OrderBy, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import JSONObject
from django.urls import reverse

# How many rows an evidence item links to (the count says how many there were in all).
MAX_REFS = 10


@dataclass(frozen=True)
class Param:
    """A parameter of a kind: `process` (a process slug), `text`, `float` (0 to 1) or `bool`."""

    name: str
    type: str
    help: str = ""
    default: Any = None


@dataclass(frozen=True)
class Ref:
    label: str
    url: str


@dataclass
class Measurement:
    count: int
    value: float | None = None
    refs: list[Ref] = field(default_factory=list)


# measure(*, person, params, since, until) -> Measurement
Measure = Callable[..., Measurement]
# measure_many(*, people: list[int], params, since, until) -> {person id: Measurement}; a person
# left out counted nothing (Measurement(count=0)).
MeasureMany = Callable[..., dict[int, Measurement]]
# measure_periods(*, people: list[int], params, periods: list[datetime | None], until) -> one
# {person id: Measurement} per period, in order: measure_many for several `since` at once.
MeasurePeriods = Callable[..., list[dict[int, Measurement]]]


@dataclass(frozen=True)
class EvidenceKind:
    key: str  # "<app label>.<name>", stored in evidence rules
    label: str  # what is counted, e.g. "Decisions that agree with the final label"
    # What the figure is, e.g. "agreement" ("" when the kind has no figure, only a count).
    value_label: str
    # One of the two at least; with only measure_many, measure is measure_many for one person.
    measure: Measure | None = None
    params: tuple[Param, ...] = ()
    # A verb phrase for "what's missing": "decide {n} more cases" is built from it: {n} and {v}.
    todo: str = "{n} more"
    owner: str = ""
    measure_many: MeasureMany | None = None
    # changed_by_case() -> a boolean expression on a case row (an Exists over OuterRef("pk")):
    # whether a label given or undone on that case can change anyone's measurement (None: it
    # always can). Lets a decision's refresh skip a costly kind; every kind's is read in one query,
    # whose SQL is built once per process: the expression holds no value that changes (a time).
    changed_by_case: Callable[[], Any] | None = None
    # Optional: several periods in one pass over the rows (the default framework asks
    # decisions_agree all-time and over 90 days: one scan instead of two).
    measure_periods: MeasurePeriods | None = None
    # involves() -> a boolean expression on a user row (an Exists over OuterRef("pk")): whether
    # the person has any row the kind could count, whatever the parameters and period. False
    # must mean the kind measures nothing for them (Measurement(count=0)); None: always measured.
    # Built once per process like changed_by_case: no value that changes.
    # Most people have no rules, models or nodes: one query asks every kind's (`involved`), and a
    # person's refresh skips the kinds that can't count anything for them.
    involves: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        if self.measure is None:
            if self.measure_many is None:
                raise TypeError(f"{self.key} needs measure or measure_many.")
            object.__setattr__(self, "measure", _one_of_many(self.measure_many))

    def measure_people(
        self,
        *,
        people: Sequence[AbstractBaseUser],
        params: dict[str, Any],
        since: datetime | None,
        until: datetime,
    ) -> dict[int, Measurement]:
        """Everyone in `people` measured, by person id (each has a Measurement): in one go with
        measure_many, else person by person."""
        if self.measure_many is not None:
            ids = [person.pk for person in people]
            many = self.measure_many(people=ids, params=params, since=since, until=until)
            return {pk: many.get(pk) or Measurement(count=0) for pk in ids}
        assert self.measure is not None
        return {
            person.pk: self.measure(person=person, params=params, since=since, until=until)
            for person in people
        }

    def measure_people_periods(
        self,
        *,
        people: Sequence[AbstractBaseUser],
        params: dict[str, Any],
        periods: list[datetime | None],
        until: datetime,
    ) -> list[dict[int, Measurement]]:
        """measure_people for each of `periods` (their `since`), in order: in one go with
        measure_periods, else period by period."""
        if self.measure_periods is None or len(periods) < 2:
            return [
                self.measure_people(people=people, params=params, since=since, until=until)
                for since in periods
            ]
        ids = [person.pk for person in people]
        many = self.measure_periods(people=ids, params=params, periods=periods, until=until)
        return [{pk: one.get(pk) or Measurement(count=0) for pk in ids} for one in many]

    def clean_params(self, raw: dict[str, Any] | None) -> dict[str, Any]:
        """The parameters, typed and defaulted; ValidationError naming an unknown or bad one."""
        raw = dict(raw or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValidationError(f"{self.key} takes no parameter {', '.join(unknown)}.")
        clean: dict[str, Any] = {}
        for param in self.params:
            value = raw.get(param.name, param.default)
            if value in (None, ""):
                if param.default is not None:
                    clean[param.name] = param.default
                continue
            clean[param.name] = _typed(self.key, param, value)
        return clean


def involved(
    kinds: Sequence[EvidenceKind], people: Sequence[AbstractBaseUser]
) -> dict[str, set[int]]:
    """For each of `kinds` with `involves`, the ids among `people` it can count anything for:
    every kind's question in one query (none when no kind asks), built once (`built_once`:
    building it cost 8 ms, running it 0.5 ms)."""
    from django.contrib.auth import get_user_model

    asking = [kind for kind in kinds if kind.involves is not None]
    found: dict[str, set[int]] = {kind.key: set() for kind in asking}
    if not asking or not people:
        return found

    def build(ids: list[int]) -> QuerySet:
        asks = {
            f"k{i}": ExpressionWrapper(kind.involves(), output_field=BooleanField())  # type: ignore[misc]
            for i, kind in enumerate(asking)
        }
        within = RawSQL("SELECT unnest(%s::int[])", [ids])
        users = get_user_model().objects.filter(pk__in=within)
        return users.annotate(**asks).values_list("pk", *asks)

    key = ("involved", *(kind.key for kind in asking))
    for pk, *flags in built_once(key, build, ids=[person.pk for person in people]):
        for kind, flag in zip(asking, flags, strict=True):
            if flag:
                found[kind.key].add(pk)
    return found


# built_once()'s queries: SQL, parameters, and which value each parameter slot takes (None: its own).
_built: dict[Hashable, tuple[str, list[Any], list[str | None]]] = {}


def built_once(key: Hashable, build: Callable[..., QuerySet], **values: Any) -> list[tuple]:
    """The rows of `build(**values)` (a values_list queryset), its SQL built by the ORM once per
    `key` (`built_sql`); the rows must need no conversion from the database (ids, texts,
    booleans)."""
    sql, params = built_sql(key, build, **values)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def built_sql(key: Hashable, build: Callable[..., QuerySet], **values: Any) -> tuple[str, list]:
    """The SQL and parameters of `build(**values)`, built by the ORM once per `key` with
    stand-ins for `values` and given theirs: building a queryset with subqueries cost one
    person's measurement several ms, running it a fraction. `key` says everything else that
    shapes the SQL (which parameters are set, how many ids); `values` are ints, texts,
    datetimes or lists of ints (an array parameter)."""
    if key not in _built:
        stand_ins = {name: _stand_in(i, value) for i, (name, value) in enumerate(values.items())}
        sql, params = build(**stand_ins).query.sql_with_params()
        slots = [
            next((n for n, v in stand_ins.items() if type(p) is type(v) and p == v), None)
            for p in params
        ]
        if not set(stand_ins) <= set(slots):  # it would run with the stand-in: never
            raise ValueError(f"{key}: a value is not a parameter of its own")
        _built[key] = (sql, list(params), slots)
    sql, params, slots = _built[key]
    return sql, [p if n is None else values[n] for p, n in zip(params, slots, strict=True)]


def _stand_in(i: int, value: Any) -> Any:
    if isinstance(value, datetime):
        return datetime(1901, 2, 3, 4, 5, i, 678_901, tzinfo=UTC)
    if isinstance(value, int):
        return -987_654_000 - i
    if isinstance(value, str):
        return f"\x1fstand-in {i}"
    if isinstance(value, list):
        return [-987_654_000 - i]
    raise TypeError(
        f"built_once takes ints, texts, datetimes and lists, not {type(value).__name__}"
    )


def _one_of_many(measure_many: MeasureMany) -> Measure:
    def measure(
        *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
    ) -> Measurement:
        many = measure_many(people=[person.pk], params=params, since=since, until=until)
        return many.get(person.pk) or Measurement(count=0)

    return measure


def _typed(key: str, param: Param, value: Any) -> Any:
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"true", "1", "yes"}:
            return True
        if str(value).lower() in {"false", "0", "no"}:
            return False
        raise ValidationError(f"{key}: {param.name} must be true or false.")
    if param.type == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{key}: {param.name} must be a number.") from None
        if not 0 <= number <= 1:
            raise ValidationError(f"{key}: {param.name} must be between 0 and 1.")
        return number
    if not isinstance(value, str) or len(value) > 100:
        raise ValidationError(f"{key}: {param.name} must be a short text.")
    if param.type == "process":
        from apps.cases.models import Process

        if not Process.objects.filter(slug=value).exists():
            raise ValidationError(f"{key}: there is no process {value!r}.")
    return value


_kinds: dict[str, EvidenceKind] = {}


def register_evidence_kind(kind: EvidenceKind) -> None:
    _kinds[kind.key] = kind


def evidence_kind(key: str) -> EvidenceKind | None:
    return _kinds.get(key)


def evidence_kinds() -> list[EvidenceKind]:
    return sorted(_kinds.values(), key=lambda k: k.key)


def autodiscover() -> None:
    """Import every installed app's `skill_evidence` module (each registers its kinds)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("skill_evidence")


def between(field: str, since: datetime | None, until: datetime) -> dict[str, datetime]:
    """Lookups keeping `field` in [since, until) (since None: from the beginning)."""
    bounds = {f"{field}__lt": until}
    if since is not None:
        bounds[f"{field}__gte"] = since
    return bounds


# --- helpers the kinds share ---------------------------------------------------------------------

PROCESS = Param("process", "process", "a process slug (empty: every process)")


def share_per_person(rows: QuerySet, *, person: str, hit: Q) -> list[tuple[int, int, int]]:
    """(person, rows, rows matching `hit`) for each person with rows: one GROUP BY."""
    return [
        (who, total, hits)
        for who, [(total, hits)] in shares_per_person(rows, person=person, hit=hit, periods=[Q()])
    ]


def shares_per_person(
    rows: QuerySet, *, person: str, hit: Q, periods: list[Q]
) -> list[tuple[int, list[tuple[int, int]]]]:
    """share_per_person for several subsets of `rows` at once (`periods`: each a filter, Q()
    for all): (person, [(rows, hits) for each period]) for each person with rows, one GROUP BY."""
    counts: dict[str, Count] = {}
    for i, period in enumerate(periods):
        counts[f"rows{i}"] = Count("pk", filter=period or None)
        counts[f"hits{i}"] = Count("pk", filter=period & hit)
    grouped = rows.order_by().values(person).annotate(**counts)
    return [
        (row[person], [(row[f"rows{i}"], row[f"hits{i}"]) for i in range(len(periods))])
        for row in grouped.values(person, *counts)
    ]


def latest_per_person(
    rows: QuerySet,
    *,
    people: Iterable[int],
    person: str,
    order_by: Sequence[OrderBy | str],
    fields: Sequence[str],
    limit: int = MAX_REFS,
) -> dict[int, list[tuple]]:
    """The first `limit` of `rows` for each of `people` (`person`: the field naming them), in
    `order_by`, as `fields` tuples: the rows a measurement links to. One query: for each person a
    correlated `ORDER BY … LIMIT` that walks an index on (person, time) and stops early, where a
    window over everyone's rows would sort them all (0.09 s against 2.8 s over 1M decisions)."""
    from django.contrib.auth import get_user_model

    people = list(people)
    if not people:
        return {}
    columns = JSONObject(**{f"f{i}": name for i, name in enumerate(fields)})
    inner = rows.filter(**{person: OuterRef("pk")}).order_by(*order_by).values_list(columns)
    latest = (
        get_user_model()
        .objects.filter(pk__in=people)
        .annotate(refs=ArraySubquery(inner[:limit]))
        .values_list("pk", "refs")
    )
    return {
        pk: [tuple(row[f"f{i}"] for i in range(len(fields))) for row in refs] for pk, refs in latest
    }


def url_maker(name: str, kwarg: str) -> Callable[[object], str]:
    """`reverse(name, kwargs={kwarg: value})` for many values, reversed once: a reverse costs
    0.1 ms and a bulk measurement links to 10 rows for each of 1,000 people. Only for values that
    need no quoting (ids, slugs)."""
    marker = "987654321987"
    return reverse(name, kwargs={kwarg: marker}).replace(marker, "{}").format


def group_by_first(rows: Iterable[tuple]) -> dict[int, list[tuple]]:
    """(key, *rest) rows as {key: [rest, …]}, in the rows' order (a person's, a node's)."""
    grouped: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row[1:])
    return grouped
