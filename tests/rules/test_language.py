"""The rule language: validation that names the part, sentences, and the Python predicate."""

import pytest
from django.core.exceptions import ValidationError

from apps.rules.language import (
    compile_predicate,
    describe,
    describe_action,
    describe_rule,
    validate_action,
    validate_condition,
)
from apps.rules.language.describe import describe_rule_html

FIELDS = [
    {"name": "amount", "type": "money", "label": "amount"},
    {"name": "quantity", "type": "number", "label": "Quantity"},
    {"name": "po_match", "type": "category", "label": "PO match", "choices": ["ok", "missing"]},
    {"name": "vendor", "type": "text", "label": "Vendor"},
    {"name": "due", "type": "date", "label": "Due"},
    {"name": "received_at", "type": "datetime", "label": "Received at"},
    {"name": "urgent", "type": "boolean", "label": "Urgent"},
]
LABELS = ["Approve", "Reject"]
REASON_CODES = {"Approve": ["price_ok", "waived"], "Reject": []}


def error_of(condition: object) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_condition(condition, fields=FIELDS)
    return caught.value.messages[0]


def holds(condition: dict, fields: dict, reason: str = "", fault: list | None = None) -> bool:
    return compile_predicate(condition, fields=FIELDS)(fields, reason, fault or [])


# --- Validation ------------------------------------------------------------------------------------


def test_a_value_of_the_wrong_type_is_named_by_its_path():
    condition = {
        "all": [
            {"field": "po_match", "op": "eq", "value": "missing"},
            {"field": "amount", "op": "gt", "value": "10000"},
        ]
    }
    assert error_of(condition) == ("condition.all[1].value: expected a number for amount (money)")


def test_an_unknown_field_is_named():
    condition = {"any": [{"not": {"field": "amout", "op": "gt", "value": 1}}]}
    assert error_of(condition) == (
        "condition.any[0].not.field: unknown field 'amout' (not in the process's schema)"
    )


def test_an_operator_that_does_not_apply_to_the_type_lists_the_ones_that_do():
    message = error_of({"field": "po_match", "op": "lt", "value": "ok"})
    assert message.startswith("condition.op: 'lt' does not apply to PO match (category)")
    assert "use one of eq, ne, in, not_in, contains, startswith, matches, is_null" in message


def test_an_unknown_operator_is_refused():
    assert error_of({"field": "amount", "op": "~", "value": 1}).startswith(
        "condition.op: unknown operator '~'"
    )


def test_a_category_value_must_be_one_of_its_choices():
    condition = {"field": "po_match", "op": "in", "value": ["ok", "maybe"]}
    assert error_of(condition) == (
        "condition.value[1]: expected one of ok, missing for PO match (category), got 'maybe'"
    )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "due", "op": "lt", "value": "31/01/2026"}, "expected a date as YYYY-MM-DD"),
        ({"field": "due", "op": "lt", "value": "2026-02-30"}, "expected a date as YYYY-MM-DD"),
        (
            {"field": "received_at", "op": "ge", "value": "2026-01-31T09:00:00"},
            "expected a date-time with an offset",
        ),
        ({"field": "urgent", "op": "eq", "value": "yes"}, "expected true or false"),
        ({"field": "amount", "op": "eq", "value": True}, "expected a number"),
        ({"field": "amount", "op": "between", "value": [5]}, "expected [low, high]"),
        ({"field": "amount", "op": "between", "value": [5, 1]}, "low bound is above"),
        ({"field": "amount", "op": "in", "value": []}, "expected a non-empty list"),
        ({"field": "vendor", "op": "contains", "value": ""}, "expected non-empty text"),
        ({"field": "vendor", "op": "is_null", "value": 3}, "is_null takes no value"),
        ({"field": "vendor", "op": "eq"}, "a value is required for eq"),
        ({"field": "vendor", "op": "eq", "value": "a", "note": 1}, "unexpected key 'note'"),
        ({"field": "exception.fields", "op": "contains", "value": "nope"}, "name of a field"),
        ({"field": "exception.fields", "op": "eq", "value": "amount"}, "does not apply"),
    ],
)
def test_bad_values_are_explained(condition, message):
    assert message in error_of(condition)


def test_an_empty_group_is_refused():
    assert error_of({"all": [{"any": []}]}) == (
        "condition.all[0].any: expected a non-empty list of conditions"
    )


def test_a_group_key_must_stand_alone():
    assert "must be the only key" in error_of({"all": [], "any": []})


def test_malformed_json_shapes_are_refused():
    assert error_of([]).startswith("condition: expected an object")
    assert error_of({}).startswith('condition: expected one of the keys "all", "any"')
    assert error_of({"all": "x"}) == "condition.all: expected a non-empty list of conditions"


def test_nesting_deeper_than_eight_levels_is_refused():
    condition: dict = {"field": "urgent", "op": "is_null"}
    for _ in range(7):
        condition = {"not": condition}
    validate_condition(condition, fields=FIELDS)  # eight levels
    message = error_of({"not": condition})
    assert message.startswith("condition.not.not.not.not.not.not.not.not: nested too deeply")


def test_more_than_a_hundred_nodes_is_refused():
    leaf = {"field": "urgent", "op": "is_null"}
    validate_condition({"any": [leaf] * 99}, fields=FIELDS)
    assert error_of({"any": [leaf] * 100}) == (
        "condition.any[99]: too many conditions (at most 100 nodes)"
    )


def test_a_rule_on_a_field_the_schema_dropped_is_refused():
    condition = {"field": "vendor", "op": "eq", "value": "acme"}
    without_vendor = [spec for spec in FIELDS if spec["name"] != "vendor"]
    with pytest.raises(ValidationError, match="unknown field 'vendor'"):
        compile_predicate(condition, fields=without_vendor)


# --- Regular expressions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a+)+$", "repeated group that contains a repetition"),
        ("(a|aa)*", "repeated group that contains a repetition, alternation"),
        ("(^a)*", "repeated group"),
        ("(a)\\1", "the escape \\1"),
        ("\\bword", "the escape \\b"),
        ("(?=a)b", "lookarounds"),
        ("(?<!a)b", "lookarounds"),
        ("(?P<n>a)", "named groups"),
        ("(?i)abc", "inline flags"),
        ("a**", "a repetition of a repetition"),
        ("a*+", "a repetition of a repetition"),
        ("*a", "nothing to repeat"),
        ("a{,3}", "'{' that is not a repetition"),
        ("a{101}", "repetition count above 100"),
        ("a{3,2}", "n below m"),
        ("a|", "empty alternative"),
        ("()", "empty group"),
        ("(a", "unclosed '('"),
        ("a)", "unmatched ')'"),
        ("[a", "unclosed '['"),
        ("[]", "empty class"),
        ("[[:alpha:]]", "POSIX classes"),
        ("[a-]", "'-' that is not a range"),
        ("[z-a]", "reversed range"),
        ("x\\", "trailing backslash"),
        ("a" * 201, "longer than 200 characters"),
        ("", "non-empty regular expression"),
    ],
)
def test_regexes_outside_the_safe_subset_are_refused(pattern, message):
    condition = {"field": "vendor", "op": "matches", "value": pattern}
    assert message in error_of(condition)
    assert error_of(condition).startswith("condition.value: ")


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("^INV-\\d{4}$", "INV-2026", True),
        ("^INV-\\d{4}$", "INV-2026\n", False),  # $ is the end of the value, not before a newline
        ("a.b", "a\nb", True),  # . matches a newline
        ("\\d", "٣", False),  # classes are ASCII: locale never matters
        ("\\w+@acme\\.com", "ann@acme.com", True),
        ("acme", "ACME", False),  # case-sensitive
        ("(?:ab)+c", "xxababc", True),  # a search, anywhere in the value
        ("[^\\s]{3}", "a b", False),
        ("colou?r|grey", "gray", False),
    ],
)
def test_matches_searches_with_the_documented_subset(pattern, text, expected):
    assert (
        holds({"field": "vendor", "op": "matches", "value": pattern}, {"vendor": text}) is expected
    )


# --- Sentences ---------------------------------------------------------------------------------------


def test_a_rule_reads_as_a_sentence():
    condition = {
        "all": [
            {"field": "amount", "op": "gt", "value": 10000},
            {"field": "po_match", "op": "eq", "value": "missing"},
        ]
    }
    assert describe_rule(condition, {"route": "team:procurement"}, fields=FIELDS) == (
        "amount > 10,000 and PO match is missing → route to procurement"
    )


def test_nested_groups_are_parenthesised():
    condition = {
        "any": [
            {
                "all": [
                    {"field": "quantity", "op": "between", "value": [1000, 5000.5]},
                    {"field": "vendor", "op": "in", "value": ["acme", "globex"]},
                ]
            },
            {"not": {"field": "urgent", "op": "eq", "value": True}},
            {"field": "due", "op": "le", "value": "2026-01-31"},
        ]
    }
    assert describe(condition, fields=FIELDS) == (
        '(Quantity is between 1,000 and 5,000.5 and Vendor is one of "acme", "globex") '
        "or not (Urgent is true) or Due is on or before 2026-01-31"
    )


@pytest.mark.parametrize(
    ("condition", "sentence"),
    [
        ({"field": "amount", "op": "le", "value": 1234.5}, "amount ≤ 1,234.50"),
        ({"field": "amount", "op": "ne", "value": 0}, "amount ≠ 0"),
        ({"field": "po_match", "op": "not_in", "value": ["ok"]}, "PO match is not one of ok"),
        ({"field": "po_match", "op": "is_null"}, "PO match is empty"),
        ({"not": {"field": "po_match", "op": "is_null"}}, "PO match is not empty"),
        ({"field": "vendor", "op": "contains", "value": "GmbH"}, 'Vendor contains "GmbH"'),
        ({"field": "vendor", "op": "startswith", "value": "Ac"}, 'Vendor starts with "Ac"'),
        ({"field": "vendor", "op": "matches", "value": "^A\\d"}, "Vendor matches /^A\\d/"),
        (
            {"field": "received_at", "op": "gt", "value": "2026-01-31T09:00:00Z"},
            "Received at is after 2026-01-31T09:00:00+00:00",
        ),
        (
            {"field": "exception.reason", "op": "contains", "value": "late"},
            'Exception reason contains "late"',
        ),
        (
            {"field": "exception.fields", "op": "contains", "value": "po_match"},
            "PO match is among the fields at fault",  # the field's label, not its name
        ),
        ({"field": "exception.fields", "op": "is_null"}, "no field is at fault"),
        ({"all": [{"field": "urgent", "op": "eq", "value": False}]}, "Urgent is false"),
    ],
)
def test_each_operator_has_words(condition, sentence):
    assert describe(condition, fields=FIELDS) == sentence


def test_actions_have_words():
    assert describe_action({"decide": "Approve", "reason_code": "price_ok"}) == (
        "decide Approve (reason code: Price ok)"
    )
    assert describe_action({"decide": "route_to_procurement"}) == "decide Route to procurement"
    assert describe_action({"decide": "Reject"}) == "decide Reject"
    assert describe_action({"route": "expert:erin"}) == "route to expert erin"
    assert describe_action({"flag": "check the vendor"}) == 'flag "check the vendor"'


def test_the_html_sentence_shows_labels_with_names_as_tooltips_and_escapes_values():
    condition = {
        "all": [
            {"field": "po_match", "op": "eq", "value": "missing"},
            {"field": "vendor", "op": "contains", "value": "<b>"},
            {"field": "exception.fields", "op": "contains", "value": "po_match"},
        ]
    }
    action = {"decide": "route_to_procurement", "reason_code": "no_po_over_limit"}
    html = describe_rule_html(condition, action, fields=FIELDS)
    assert html == (
        '<span class="rule-field" title="po_match">PO match</span> is missing and '
        '<span class="rule-field" title="vendor">Vendor</span> contains &quot;&lt;b&gt;&quot; and '
        '<span class="rule-field" title="po_match">PO match</span> is among the fields at fault'
        ' → decide <span class="rule-code" title="route_to_procurement">Route to procurement</span>'
        ' (reason code: <span class="rule-code" title="no_po_over_limit">No po over limit</span>)'
    )


def test_a_rule_that_no_longer_fits_the_schema_shows_its_saved_sentence():
    gone = {"field": "gone", "op": "is_null"}
    html = describe_rule_html(gone, {"flag": "x"}, fields=FIELDS, fallback="Gone <is> empty")
    assert html == "Gone &lt;is&gt; empty"


# --- Python predicate --------------------------------------------------------------------------------

CASE = {
    "amount": 12500.5,
    "quantity": 3,
    "po_match": "missing",
    "vendor": "Acme GmbH",
    "due": "2026-01-31",
    "received_at": "2026-01-31T09:00:00+01:00",
    "urgent": False,
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "amount", "op": "eq", "value": 12500.5}, True),
        ({"field": "amount", "op": "ne", "value": 12500.5}, False),
        ({"field": "amount", "op": "lt", "value": 12500.5}, False),
        ({"field": "amount", "op": "le", "value": 12500.5}, True),
        ({"field": "amount", "op": "gt", "value": 10000}, True),
        ({"field": "amount", "op": "ge", "value": 12501}, False),
        ({"field": "quantity", "op": "in", "value": [1, 3.0]}, True),
        ({"field": "quantity", "op": "not_in", "value": [1, 2]}, True),
        ({"field": "quantity", "op": "between", "value": [3, 3]}, True),
        ({"field": "quantity", "op": "between", "value": [4, 9]}, False),
        ({"field": "po_match", "op": "eq", "value": "missing"}, True),
        ({"field": "po_match", "op": "in", "value": ["ok"]}, False),
        ({"field": "po_match", "op": "startswith", "value": "miss"}, True),
        ({"field": "vendor", "op": "contains", "value": "GmbH"}, True),
        ({"field": "vendor", "op": "contains", "value": "gmbh"}, False),
        ({"field": "vendor", "op": "startswith", "value": "Acme"}, True),
        ({"field": "vendor", "op": "matches", "value": "G.bH$"}, True),
        ({"field": "vendor", "op": "is_null"}, False),
        ({"field": "due", "op": "eq", "value": "2026-01-31"}, True),
        ({"field": "due", "op": "gt", "value": "2026-01-30"}, True),
        ({"field": "due", "op": "between", "value": ["2026-02-01", "2026-03-01"]}, False),
        # Date-times compare as instants: 09:00+01:00 is 08:00Z.
        ({"field": "received_at", "op": "eq", "value": "2026-01-31T08:00:00Z"}, True),
        ({"field": "received_at", "op": "lt", "value": "2026-01-31T08:30:00+00:00"}, True),
        ({"field": "urgent", "op": "eq", "value": False}, True),
        ({"field": "urgent", "op": "ne", "value": False}, False),
        ({"field": "urgent", "op": "is_null"}, False),
        ({"not": {"field": "urgent", "op": "eq", "value": False}}, False),
        (
            {
                "all": [
                    {"field": "amount", "op": "gt", "value": 10000},
                    {
                        "any": [
                            {"field": "urgent", "op": "eq", "value": True},
                            {"field": "due", "op": "is_null"},
                        ]
                    },
                ]
            },
            False,
        ),
    ],
)
def test_each_operator_evaluates_on_a_case(condition, expected):
    assert holds(condition, CASE) is expected


@pytest.mark.parametrize(
    "op_value",
    [
        ("eq", 5),
        ("ne", 5),
        ("lt", 5),
        ("ge", 5),
        ("in", [5]),
        ("not_in", [5]),
        ("between", [0, 10]),
    ],
)
@pytest.mark.parametrize("value", ["absent", None, "5", True, [5]])
def test_a_missing_or_mistyped_value_fails_every_comparison_but_is_null(op_value, value):
    op, operand = op_value
    fields = {} if value == "absent" else {"quantity": value}
    assert holds({"field": "quantity", "op": op, "value": operand}, fields) is False
    assert holds({"field": "quantity", "op": "is_null"}, fields) is True
    # not simply negates: the case without a quantity is "not (quantity = 5)".
    assert holds({"not": {"field": "quantity", "op": op, "value": operand}}, fields) is True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vendor", ""),
        ("vendor", 7),
        ("po_match", ""),
        ("due", "2026-02-30"),
        ("due", "2026-1-31"),
        ("due", "2026-01-31T00:00:00"),
        ("received_at", "2026-01-31T09:00:00"),  # no offset
        ("received_at", "2026-01-31T24:00:00Z"),
        ("received_at", "2026-01-31 09:00:00Z"),
        ("urgent", "false"),
    ],
)
def test_values_not_in_the_stored_shape_count_as_missing(field, value):
    assert holds({"field": field, "op": "is_null"}, {**CASE, field: value}) is True
    assert (
        holds({"field": field, "op": "ne", "value": CASE[field]}, {**CASE, field: value}) is False
    )


def test_numbers_compare_as_the_decimals_json_holds():
    assert holds({"field": "amount", "op": "eq", "value": 0.3}, {"amount": 0.1 + 0.2}) is False
    assert holds({"field": "amount", "op": "eq", "value": 10000}, {"amount": 10000.0}) is True
    # 1e23 is stored as exactly 10**23 in JSON, though the float is slightly below it.
    big = {"field": "amount", "op": "lt", "value": 99999999999999995000000}
    assert holds(big, {"amount": 1e23}) is False


def test_the_exception_reason_and_the_fields_at_fault_can_be_tested():
    late = {"field": "exception.reason", "op": "contains", "value": "late"}
    assert holds(late, {}, reason="Delivery late by 3 days") is True
    assert holds({"field": "exception.reason", "op": "is_null"}, {}, reason="") is True
    at_fault = {"field": "exception.fields", "op": "contains", "value": "amount"}
    assert holds(at_fault, {}, fault=["po_match", "amount"]) is True
    assert holds(at_fault, {}, fault=["po_match"]) is False
    assert holds({"field": "exception.fields", "op": "is_null"}, {}, fault=[]) is True
    assert holds({"field": "exception.fields", "op": "is_null"}, {}, fault=["amount"]) is False


# --- Actions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        {"decide": "Approve", "reason_code": "price_ok"},
        {"decide": "Approve"},
        {"decide": "Reject", "reason_code": ""},
        {"route": "team:procurement"},
        {"route": "expert:erin.k@acme"},
        {"flag": "check the vendor's bank details"},
    ],
)
def test_good_actions_pass(action):
    validate_action(action, labels=LABELS, reason_codes=REASON_CODES)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"decide": "Maybe"},
            "action.decide: unknown decision 'Maybe'; use one of Approve, Reject",
        ),
        (
            {"decide": "Approve", "reason_code": "cheap"},
            "action.reason_code: 'cheap' is not a reason code of 'Approve'; use one of price_ok, waived",
        ),
        (
            {"decide": "Reject", "reason_code": "x"},
            "action.reason_code: 'x' is not a reason code of 'Reject' (it has none)",
        ),
        ({"decide": "Approve", "route": "team:x"}, "action: unexpected key 'route'"),
        (
            {"route": "procurement"},
            "action.route: expected 'team:<slug>' or 'expert:<username>', got 'procurement'",
        ),
        ({"route": "team:"}, "action.route: expected 'team:<slug>'"),
        ({"route": "expert:a b"}, "action.route: expected 'team:<slug>'"),
        ({"flag": "  "}, "action.flag: expected a non-empty text"),
        ({"flag": "x" * 201}, "action.flag: expected a non-empty text"),
        ({"route": "team:a", "flag": "x"}, "action: expected exactly one of decide, route or flag"),
        ({"escalate": True}, "action: unknown action 'escalate'"),
        ("decide", "action: expected"),
    ],
)
def test_bad_actions_are_explained(action, message):
    with pytest.raises(ValidationError) as caught:
        validate_action(action, labels=LABELS, reason_codes=REASON_CODES)
    assert caught.value.messages[0].startswith(message)
