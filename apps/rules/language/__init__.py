"""The rule language: a JSON condition tree over a case's schema fields and its exception, and an action.

A condition can never execute code: it is data, validated against the process's case schema, then
compiled to a Python predicate (to evaluate one case fast) and to a SQL expression over the case's
JSONB (to backtest in PostgreSQL). Both compilations have exactly the same semantics, checked by a
property test (tests/rules/test_language_sql.py).

Nodes
    {"all": [node, …]}   every child holds (at least one child)
    {"any": [node, …]}   some child holds (at least one child)
    {"not": node}        the child does not hold
    {"field": name, "op": op, "value": json}   a comparison

`field` is a schema field name, "exception.reason" (text) or "exception.fields" (the names of the
fields at fault). At most 8 levels and 100 nodes.

Operators and the field types they apply to
    eq ne        every type
    lt le gt ge  number, money, date, datetime
    between      number, money, date, datetime; value [low, high], both inclusive, low ≤ high
    in not_in    number, money, category, text; value a non-empty list
    contains startswith   category, text (substring / prefix, case-sensitive); on "exception.fields",
                 contains means the named field is among the fields at fault
    matches      category, text: a bounded regular expression, searched anywhere, case-sensitive
    is_null      every type (no value); on "exception.fields" it means no field is at fault

Values
    number/money   JSON numbers, compared exactly as decimals (a float is taken as its shortest
                   repr, which is how JSON and PostgreSQL's jsonb hold it: 0.1 is exactly 0.1)
    date           "YYYY-MM-DD"
    datetime       "YYYY-MM-DDTHH:MM:SS[.ffffff]" plus "Z" or an offset "±HH:MM" (up to ±14:59);
                   compared as instants
    category       one of the field's choices (contains/startswith/matches take any text)
    text           a string (at most 1,000 characters)
    boolean        true / false

Missing values — two-valued logic, no SQL NULL leaks out
    A case's value is *missing* when the key is absent, JSON null, of the wrong JSON type for the
    field (a string in a number field, a number in a text field), an empty string, or for
    date/datetime not in the exact ISO shape above or not a real date (2026-02-30). The exception
    reason is missing when it is empty. On a missing value `is_null` is true and every other
    comparison is false — including `ne` and `not_in`. Every comparison is therefore strictly true or
    false, and `not` simply negates: {"not": {"field": "amount", "op": "gt", "value": 5}} holds for a
    case without an amount, while {"field": "amount", "op": "le", "value": 5} does not. In SQL each
    comparison is wrapped in COALESCE(…, false) to get exactly this.

Regular expressions (`matches`) — a subset on which Python's `re` and PostgreSQL's `~` agree
    At most 200 characters: literal characters, `.` (any character, newline included), `^` and `$`
    (start and end of the whole value, never of a line), bracket classes `[abc]`, `[^a-z]` (a literal
    `-`, `[`, `]` inside one must be escaped), `\\d \\s \\w` and `\\D \\S \\W` (ASCII only: digits, space
    tab and line breaks, letters digits and underscore), `\\n \\t \\r \\f \\v`, any ASCII punctuation
    escaped with `\\`, groups `( )` and `(?: )`, alternation `|`, and quantifiers `* + ? {m} {m,}
    {m,n}` (m, n ≤ 100, optionally lazy with a trailing `?`).
    Not allowed: backreferences, lookarounds and other `(?…)` groups, `\\b` and other escapes, POSIX
    classes, empty alternatives, and a repeated group that itself contains a repetition, an
    alternation or an anchor — `(a+)+`, `(a|aa)*` — which makes backtracking take exponential time.
    The pattern is translated once into each dialect (e.g. `$` becomes `\\Z` for Python, which has
    no DOTALL-insensitive end anchor otherwise; classes are spelt out so locale never matters).
"""

from apps.rules.language.compile import Predicate, compile_predicate, compile_sql
from apps.rules.language.describe import describe, describe_action, describe_rule
from apps.rules.language.regex import MAX_PATTERN, MAX_REPEAT
from apps.rules.language.tree import (
    EXCEPTION_FIELDS,
    EXCEPTION_REASON,
    MAX_DEPTH,
    MAX_FLAG,
    MAX_LIST,
    MAX_NODES,
    MAX_TEXT_VALUE,
    NUMERIC_TYPES,
    OPS,
    OPS_BY_TYPE,
    ORDERED_TYPES,
    STRING_TYPES,
    validate_action,
    validate_condition,
)

__all__ = [
    "EXCEPTION_FIELDS",
    "EXCEPTION_REASON",
    "MAX_DEPTH",
    "MAX_FLAG",
    "MAX_LIST",
    "MAX_NODES",
    "MAX_PATTERN",
    "MAX_REPEAT",
    "MAX_TEXT_VALUE",
    "NUMERIC_TYPES",
    "OPS",
    "OPS_BY_TYPE",
    "ORDERED_TYPES",
    "STRING_TYPES",
    "Predicate",
    "compile_predicate",
    "compile_sql",
    "describe",
    "describe_action",
    "describe_rule",
    "validate_action",
    "validate_condition",
]
