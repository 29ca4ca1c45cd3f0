"""Python and SQL evaluation of rule conditions agree, on random conditions and random cases.

Conditions are random trees over a schema with every field type; cases mix good values, missing
keys, JSON nulls and values of the wrong type or shape. Each example loads its cases into a temporary
table with the columns of cases_case and compares the ids each side selects.
"""

import json
import string
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from apps.rules.language import compile_predicate, compile_sql, validate_condition

FIELDS = [
    {"name": "amount", "type": "money", "label": "Amount"},
    {"name": "quantity", "type": "number", "label": "Quantity"},
    {"name": "status", "type": "category", "label": "Status", "choices": ["open", "held", "Élan"]},
    {"name": "po_match", "type": "category", "label": "PO match", "choices": ["ok", "missing"]},
    {"name": "note", "type": "text", "label": "Note"},
    {"name": "due", "type": "date", "label": "Due"},
    {"name": "received_at", "type": "datetime", "label": "Received at"},
    {"name": "urgent", "type": "boolean", "label": "Urgent"},
]
BY_TYPE: dict[str, list[dict]] = {}
for _spec in FIELDS:
    BY_TYPE.setdefault(_spec["type"], []).append(_spec)
NAMES = [spec["name"] for spec in FIELDS]

# --- Values: small shared pools so conditions and cases often meet exactly -----------------------

numbers = st.one_of(
    st.sampled_from(
        [0, 1, -1, 2.5, 10000, 10000.0, 0.1, 0.30000000000000004, 1e23, 99999999999999991611392]
    ),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**30), 10**30),
)
dates = st.one_of(
    st.sampled_from(["2026-01-31", "2026-02-01", "2024-02-29", "0001-01-01", "9999-12-31"]),
    st.dates(min_value=date(2025, 12, 1), max_value=date(2026, 3, 1)).map(date.isoformat),
)
OFFSETS = ["Z", "+00:00", "-00:00", "+05:30", "-14:59", "+14:00", "-03:00"]


@st.composite
def datetimes(draw: st.DrawFn) -> str:
    day = draw(st.sampled_from(["2026-01-31", "2026-02-01", "0001-01-01", "9999-12-31"]))
    hour = draw(st.sampled_from([0, 9, 14, 23]))
    minute = draw(st.sampled_from([0, 30, 59]))
    second = draw(st.sampled_from([0, 59]))
    fraction = draw(st.sampled_from(["", ".1", ".5", ".000001", ".999999", ".100000"]))
    offset = draw(st.sampled_from(OFFSETS))
    return f"{day}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


texts = st.one_of(
    st.text(alphabet="ab\nÉ.", max_size=5),
    st.text(
        alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        max_size=5,
    ),
)
nonempty_texts = texts.filter(bool)

# --- Regular expressions of the supported subset ---------------------------------------------------

atoms = st.one_of(
    st.sampled_from(
        ["a", "b", "É", ".", "\\.", "\\-", "\\d", "\\s", "\\w", "\\D", "\\S", "\\W", "\\n", " "]
    ),
    st.sampled_from(["[ab]", "[^a]", "[a-c]", "[À-ÿ]", "[\\d.]", "[^\\s]", "[\\-b]", "[\\]]"]),
)
quantifiers = st.sampled_from(["", "", "*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "+?"])
pieces = st.builds(lambda a, q: a + q, atoms, quantifiers)
sequences = st.lists(pieces, min_size=1, max_size=4).map("".join)
plain = st.lists(atoms, min_size=1, max_size=3).map("".join)
groups = st.one_of(
    st.lists(sequences, min_size=1, max_size=3).map(lambda alts: "(" + "|".join(alts) + ")"),
    st.builds(lambda inner, q: f"(?:{inner}){q}", plain, quantifiers),
)
branches = st.lists(st.one_of(pieces, groups), min_size=1, max_size=4).map("".join)
patterns = st.builds(
    lambda start, alts, end: start + "|".join(alts) + end,
    st.sampled_from(["", "^"]),
    st.lists(branches, min_size=1, max_size=2),
    st.sampled_from(["", "$"]),
).filter(lambda pattern: len(pattern) <= 200)

# --- Conditions -------------------------------------------------------------------------------------


def scalar(kind: str, spec: dict) -> st.SearchStrategy:
    if kind in ("number", "money"):
        return numbers
    if kind == "date":
        return dates
    if kind == "datetime":
        return datetimes()
    if kind == "boolean":
        return st.booleans()
    if kind == "category":
        return st.sampled_from(spec["choices"])
    return nonempty_texts


def order_key(value: object) -> object:
    if isinstance(value, str) and "T" in value:
        return datetime.fromisoformat(value)
    if isinstance(value, str):
        return value
    return Decimal(repr(value))


@st.composite
def comparisons(draw: st.DrawFn) -> dict:
    subject = draw(st.sampled_from([*NAMES, "exception.reason", "exception.fields"]))
    if subject == "exception.fields":
        op = draw(st.sampled_from(["contains", "is_null"]))
        if op == "is_null":
            return {"field": subject, "op": op}
        return {"field": subject, "op": op, "value": draw(st.sampled_from(NAMES))}
    if subject == "exception.reason":
        spec = {"name": subject, "type": "text"}
    else:
        spec = next(s for s in FIELDS if s["name"] == subject)
    kind = spec["type"]
    ops = {
        "number": ["eq", "ne", "lt", "le", "gt", "ge", "between", "in", "not_in", "is_null"],
        "date": ["eq", "ne", "lt", "le", "gt", "ge", "between", "is_null"],
        "category": ["eq", "ne", "in", "not_in", "contains", "startswith", "matches", "is_null"],
        "boolean": ["eq", "ne", "is_null"],
    }
    ops["money"] = ops["number"]
    ops["datetime"] = ops["date"]
    ops["text"] = ops["category"]
    op = draw(st.sampled_from(ops[kind]))
    if op == "is_null":
        return {"field": subject, "op": op}
    if op in ("in", "not_in"):
        value: object = draw(st.lists(scalar(kind, spec), min_size=1, max_size=4))
    elif op == "between":
        value = sorted([draw(scalar(kind, spec)), draw(scalar(kind, spec))], key=order_key)
    elif op in ("contains", "startswith"):
        value = draw(nonempty_texts)
    elif op == "matches":
        value = draw(patterns)
    else:
        value = draw(scalar(kind, spec))
    return {"field": subject, "op": op, "value": value}


conditions = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"any": c}),
        children.map(lambda c: {"not": c}),
    ),
    max_leaves=10,
)

# --- Cases ------------------------------------------------------------------------------------------

WRONG = {
    "number": st.sampled_from(["5", "", True, [1], {"a": 1}]),
    "date": st.sampled_from(
        ["2026-02-30", "2026-1-31", "20260131", "2026-01-31T00:00:00", "0000-01-01", 20260131, ""]
    ),
    "datetime": st.sampled_from(
        [
            "2026-01-31T24:00:00+00:00",
            "2026-01-31 09:00:00+00:00",
            "2026-01-31T09:00:00",
            "2026-01-31T09:00:60Z",
            "2026-01-31T09:00:00+15:00",
            "2026-01-31T09:00:00.1234567Z",
            "2026-01-31",
            "",
        ]
    ),
    "boolean": st.sampled_from(["true", 1, 0, "", None]),
    "category": st.sampled_from(["", "other", 5, False]),
    "text": st.sampled_from(["", 5, 2.5, True, ["a"]]),
}
WRONG["money"] = WRONG["number"]


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict, str, object]:
    fields: dict = {}
    for spec in FIELDS:
        kind = spec["type"]
        choice = draw(st.sampled_from(["good", "good", "good", "absent", "null", "wrong"]))
        if choice == "good":
            fields[spec["name"]] = draw(scalar(kind, spec) if kind != "text" else texts)
        elif choice == "null":
            fields[spec["name"]] = None
        elif choice == "wrong":
            fields[spec["name"]] = draw(WRONG[kind])
    reason = draw(st.one_of(st.just(""), texts))
    fault = draw(
        st.one_of(
            st.lists(st.sampled_from([*NAMES, "unknown"]), max_size=3),
            st.sampled_from([[], {"amount": 1}, [["amount"]], [1], "amount"]),
        )
    )
    return fields, reason, fault


def depth(node: object) -> int:
    if isinstance(node, dict) and ("all" in node or "any" in node):
        return 1 + max(depth(child) for child in node.get("all") or node.get("any"))
    if isinstance(node, dict) and "not" in node:
        return 1 + depth(node["not"])
    return 1


@pytest.fixture
def case_table(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE rule_cases (id integer PRIMARY KEY, fields jsonb NOT NULL, "
            "exception_reason text NOT NULL, exception_fields jsonb NOT NULL)"
        )
    yield "rule_cases"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS rule_cases")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(condition=conditions, batch=st.lists(cases(), min_size=1, max_size=25))
def test_python_and_sql_select_the_same_cases(case_table, condition, batch):
    del case_table  # the fixture creates the temporary table rule_cases
    assume(depth(condition) <= 8)
    try:
        validate_condition(condition, fields=FIELDS)
    except ValidationError as exc:  # the strategies only build valid conditions
        raise AssertionError(f"generated an invalid condition: {exc.messages[0]}") from exc
    predicate = compile_predicate(condition, fields=FIELDS)
    sql, params = compile_sql(condition, fields=FIELDS, alias="c")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM rule_cases")
        cursor.executemany(
            "INSERT INTO rule_cases VALUES (%s, %s::jsonb, %s, %s::jsonb)",
            [
                (index, json.dumps(fields), reason, json.dumps(fault))
                for index, (fields, reason, fault) in enumerate(batch)
            ],
        )
        # compile_sql's text holds no values (they are in params): concatenating it is the point.
        cursor.execute("SELECT id FROM rule_cases c WHERE " + sql, params)  # noqa: S608
        in_sql = {row[0] for row in cursor.fetchall()}
        # What the app reads back (jsonb renormalises numbers: 1e+23 comes back as an integer).
        cursor.execute("SELECT id, fields, exception_fields FROM rule_cases")
        stored = {
            row[0]: tuple(json.loads(v) if isinstance(v, str) else v for v in row[1:])
            for row in cursor.fetchall()
        }
    in_python = {
        index
        for index, (fields, reason, fault) in enumerate(batch)
        if predicate(fields, reason, fault)
    }
    in_python_stored = {
        index
        for index, (fields, reason, _fault) in enumerate(batch)
        if predicate(stored[index][0], reason, stored[index][1])
    }
    # Selecting none or all of a batch says little: keep an eye on the mix in --hypothesis-show-statistics.
    event(
        "selects none"
        if not in_sql
        else "selects all"
        if len(in_sql) == len(batch)
        else "selects some"
    )
    assert in_python == in_sql, (sql, params)
    assert in_python_stored == in_sql, (sql, params)


@pytest.mark.django_db
def test_values_travel_as_parameters_never_in_the_sql_text():
    hostile = "x'); DROP TABLE cases_case; --"
    condition = {
        "any": [
            {"field": "note", "op": "eq", "value": hostile},
            {"field": "note", "op": "matches", "value": "\\'\\)"},
            {"field": "exception.reason", "op": "contains", "value": hostile},
        ]
    }
    sql, params = compile_sql(condition, fields=FIELDS, alias="c")
    assert "DROP" not in sql
    assert hostile in params
    with connection.cursor() as cursor:
        rows = (
            "(VALUES (%s::jsonb, %s, '[]'::jsonb)) AS c(fields, exception_reason, exception_fields)"
        )
        query = f"SELECT count(*) FROM {rows} WHERE {sql}"  # noqa: S608
        cursor.execute(query, [json.dumps({"note": hostile}), "", *params])
        assert cursor.fetchone()[0] == 1


def test_alias_must_be_an_identifier():
    with pytest.raises(ValidationError):
        compile_sql({"field": "urgent", "op": "is_null"}, fields=FIELDS, alias="c; drop")


@pytest.mark.django_db
def test_every_escaped_punctuation_character_matches_itself_in_both_dialects():
    chars = string.punctuation
    with connection.cursor() as cursor:
        for char in chars:
            condition = {"field": "note", "op": "matches", "value": "^\\" + char + "$"}
            sql, params = compile_sql(condition, fields=FIELDS, alias="c")
            rows = "unnest(%s::text[]) AS v, LATERAL (SELECT jsonb_build_object('note', v) AS fields) c"
            query = f"SELECT v FROM {rows} WHERE {sql}"  # noqa: S608
            cursor.execute(query, [list(chars), *params])
            assert [row[0] for row in cursor.fetchall()] == [char]
            assert compile_predicate(condition, fields=FIELDS)({"note": char}, "", [])
