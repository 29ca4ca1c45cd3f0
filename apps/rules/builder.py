"""The rule builder's state: a condition tree and an action kept in plain form fields.

The server is the source of truth. The builder form posts every field; `state_from_post` reads
them back into a tree, `apply` makes the change a button asked for (add, remove), and the page's
builder partial is rendered again from `builder_view`, which checks the tree with the rule
language itself (`validate_condition`, `describe`) and names the part that is wrong.

Form fields, one set per node, the path being the node's position ("0" the root group, "0.2" its
third child):
    c.<path>.kind    "all" or "any" (a group) or "cmp" (a comparison)
    c.<path>.not     "on" when the node is negated ({"not": node})
    c.<path>.field, c.<path>.op, c.<path>.value, c.<path>.high (between), c.<path>.values (a list)
and for the action: action.kind (decide, route, flag), action.decide, action.reason_code,
action.route, action.flag; then name, priority, target ("new" or a rule id) and provenance (JSON).
"""

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.http import QueryDict

from apps.cases.models import ProcessSchemaVersion
from apps.rules.language import (
    EXCEPTION_FIELDS,
    EXCEPTION_REASON,
    OPS_BY_TYPE,
    validate_action,
    validate_condition,
)
from apps.rules.language.describe import describe_action_html, describe_html
from apps.rules.language.tree import _datetime

ROOT = "0"
GROUPS = ("all", "any")
MAX_BUILDER_DEPTH = 5  # groups nest at most this deep in the builder (the language allows 8)
MAX_BUILDER_NODES = 100
_PATH_RE = re.compile(r"0(\.[0-9]{1,3}){0,8}")
_LOCAL_DATETIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
ACTION_KINDS = (("decide", "decide"), ("route", "route to"), ("flag", "flag for a look"))
_OP_WORDS = {
    "eq": "=",
    "ne": "≠",
    "lt": "<",
    "le": "≤",
    "gt": ">",
    "ge": "≥",
    "between": "between",
    "in": "is one of",
    "not_in": "is not one of",
    "contains": "contains",
    "startswith": "starts with",
    "matches": "matches (regex)",
    "is_null": "is empty",
}
_TIME_WORDS = {
    "eq": "is",
    "ne": "is not",
    "lt": "is before",
    "le": "is on or before",
    "gt": "is after",
    "ge": "is on or after",
}


@dataclass
class Node:
    kind: str  # "all", "any" or "cmp"
    negated: bool = False
    children: list["Node"] = dataclasses.field(default_factory=list)
    field: str = ""
    op: str = ""
    value: str = ""
    high: str = ""
    values: list[str] = dataclasses.field(default_factory=list)


@dataclass
class BuilderState:
    root: Node
    action_kind: str = "decide"
    decide: str = ""
    reason_code: str = ""
    route: str = ""
    flag: str = ""
    name: str = ""
    priority: str = "100"
    target: str = "new"  # "new" or the id of the rule that gets a new version
    provenance: dict = dataclasses.field(default_factory=dict)


def empty_state() -> BuilderState:
    return BuilderState(root=Node("all", children=[Node("cmp")]))


# --- reading the form ---------------------------------------------------------------------------


def state_from_post(data: QueryDict) -> BuilderState:
    """The builder's state from its posted fields (missing or odd fields read as empty)."""
    paths = {
        key[2:-5]
        for key in data
        if key.startswith("c.") and key.endswith(".kind") and _PATH_RE.fullmatch(key[2:-5])
    }
    budget = [MAX_BUILDER_NODES]

    def read(path: str) -> Node:
        budget[0] -= 1
        kind = data.get(f"c.{path}.kind", "cmp")
        negated = data.get(f"c.{path}.not") == "on"
        if kind in GROUPS:
            prefix = f"{path}."
            indices = sorted(
                int(p[len(prefix) :])
                for p in paths
                if p.startswith(prefix) and p[len(prefix) :].isdigit()
            )
            children = [read(f"{path}.{i}") for i in indices if budget[0] > 0]
            return Node(kind, negated, children)
        node = Node(
            "cmp",
            negated,
            field=data.get(f"c.{path}.field", "").strip(),
            op=data.get(f"c.{path}.op", "").strip(),
            value=data.get(f"c.{path}.value", ""),
            high=data.get(f"c.{path}.high", ""),
            values=[v for v in data.getlist(f"c.{path}.values") if v != ""],
        )
        was = data.get(f"c.{path}.was")  # the field the row showed before this post
        if was is not None and was != node.field:
            node.value, node.high, node.values = "", "", []
        return node

    root = read(ROOT) if ROOT in paths else empty_state().root
    if root.kind not in GROUPS:
        root = Node("all", children=[root])
    try:
        provenance = json.loads(data.get("provenance") or "{}")
    except json.JSONDecodeError:
        provenance = {}
    kind = data.get("action.kind", "decide")
    target = data.get("target", "new")
    return BuilderState(
        root=root,
        action_kind=kind if kind in dict(ACTION_KINDS) else "decide",
        decide=data.get("action.decide", ""),
        reason_code=data.get("action.reason_code", ""),
        route=data.get("action.route", ""),
        flag=data.get("action.flag", ""),
        name=data.get("name", "").strip(),
        priority=data.get("priority", "100").strip(),
        target=target if target.isdigit() else "new",
        provenance=provenance if isinstance(provenance, dict) else {},
    )


def _field_kind(name: str, specs: dict[str, dict]) -> str | None:
    if name == EXCEPTION_REASON:
        return "text"
    if name == EXCEPTION_FIELDS:
        return "fault_fields"
    spec = specs.get(name)
    return spec["type"] if spec else None


def normalise(state: BuilderState, schema: ProcessSchemaVersion) -> None:
    """Keep every comparison's operator one that applies to its field's type, and the reason
    code one of the chosen decision's (a field or decision just changed)."""
    specs = {spec["name"]: spec for spec in schema.fields}

    def walk(node: Node) -> None:
        if node.kind in GROUPS:
            for child in node.children:
                walk(child)
            return
        kind = _field_kind(node.field, specs)
        if kind is None:
            if not node.field:
                node.op = ""
            return
        if node.op not in OPS_BY_TYPE[kind]:
            node.op = "contains" if kind == "fault_fields" else "eq"

    walk(state.root)
    if state.decide not in schema.labels:
        state.decide = schema.labels[0] if schema.labels else ""
    if state.reason_code and state.reason_code not in schema.reason_codes(state.decide):
        state.reason_code = ""


# --- changes asked for by the buttons -----------------------------------------------------------


def _find(root: Node, path: str) -> tuple[Node | None, Node | None, int]:
    """(node at `path`, its parent, its index in the parent)."""
    node, parent, index = root, None, -1
    for part in path.split(".")[1:]:
        if node.kind not in GROUPS or not part.isdigit() or int(part) >= len(node.children):
            return None, None, -1
        parent, index = node, int(part)
        node = node.children[index]
    return node, parent, index


def _count(node: Node) -> int:
    return 1 + sum(_count(child) for child in node.children)


def apply(state: BuilderState, do: str) -> None:
    """Apply a button's change: "add:<path>" (a comparison), "add-all:<path>" / "add-any:<path>"
    (a group holding one comparison), "remove:<path>". Anything else changes nothing."""
    command, _, path = do.partition(":")
    node, parent, index = _find(state.root, path) if _PATH_RE.fullmatch(path) else (None, None, -1)
    if node is None:
        return
    if command == "remove" and parent is not None:
        del parent.children[index]
        return
    if node.kind not in GROUPS or _count(state.root) >= MAX_BUILDER_NODES - 1:
        return
    if command == "add":
        node.children.append(Node("cmp"))
    elif command in ("add-all", "add-any") and path.count(".") + 1 < MAX_BUILDER_DEPTH:
        node.children.append(Node(command[4:], children=[Node("cmp")]))


# --- from and to the rule language --------------------------------------------------------------


def _number(text: str) -> object:
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return text  # left as written: the rule language says what is wrong with it
    if not number.is_finite():
        return text
    return int(number) if number == number.to_integral_value() else float(number)


def _typed(text: str, kind: str) -> object:
    if kind in ("number", "money"):
        return _number(text)
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if kind == "datetime" and _LOCAL_DATETIME_RE.fullmatch(text):
        # The builder's date-time inputs are in UTC.
        return (text if text.count(":") == 2 else f"{text}:00") + "Z"
    return text


def _comparison(node: Node, kind: str | None) -> dict:
    raw: dict = {"field": node.field, "op": node.op}
    kind = kind or "text"
    if node.op == "is_null":
        return raw
    if node.op == "between":
        raw["value"] = [_typed(node.value, kind), _typed(node.high, kind)]
    elif node.op in ("in", "not_in"):
        if kind == "category":
            items = node.values
        else:
            items = [line.strip() for line in node.value.splitlines() if line.strip()]
        raw["value"] = [_typed(item, kind) for item in items]
    elif kind == "fault_fields" or node.op in ("contains", "startswith", "matches"):
        raw["value"] = node.value
    else:
        raw["value"] = _typed(node.value, kind)
    return raw


def to_condition(node: Node, schema: ProcessSchemaVersion) -> dict:
    """The node as a rule-language condition (values typed by their fields; what cannot be read
    is left as written, so that validation names it)."""
    specs = {spec["name"]: spec for spec in schema.fields}
    if node.kind in GROUPS:
        raw: dict = {node.kind: [to_condition(child, schema) for child in node.children]}
    else:
        raw = _comparison(node, _field_kind(node.field, specs))
    return {"not": raw} if node.negated else raw


def final_condition(state: BuilderState, schema: ProcessSchemaVersion) -> dict:
    """What gets saved: the root group, or its only child when it has just one."""
    root = state.root
    if not root.negated and len(root.children) == 1:
        return to_condition(root.children[0], schema)
    return to_condition(root, schema)


def to_action(state: BuilderState) -> dict:
    if state.action_kind == "route":
        return {"route": state.route}
    if state.action_kind == "flag":
        return {"flag": state.flag.strip()}
    action = {"decide": state.decide}
    if state.reason_code:
        action["reason_code"] = state.reason_code
    return action


def _show(value: object, kind: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if kind == "datetime" and isinstance(value, str):
        moment = _datetime(value)
        if moment is not None:
            return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    return "" if value is None else str(value)


def node_from_condition(raw: object, specs: dict[str, dict]) -> Node:
    """A builder node from a condition (read leniently: a rule on a field the schema dropped
    still loads, so the builder can show what is wrong with it)."""
    negated = False
    while isinstance(raw, dict) and set(raw) == {"not"}:
        negated, raw = not negated, raw["not"]
    if not isinstance(raw, dict):
        return Node("cmp", negated)
    for group in GROUPS:
        if isinstance(raw.get(group), list):
            return Node(group, negated, [node_from_condition(c, specs) for c in raw[group]])
    name = str(raw.get("field") or "")
    kind = _field_kind(name, specs)
    node = Node("cmp", negated, field=name, op=str(raw.get("op") or ""))
    value = raw.get("value")
    if node.op == "between" and isinstance(value, list) and len(value) == 2:
        node.value, node.high = _show(value[0], kind), _show(value[1], kind)
    elif node.op in ("in", "not_in") and isinstance(value, list):
        if kind == "category":
            node.values = [_show(item, kind) for item in value]
        else:
            node.value = "\n".join(_show(item, kind) for item in value)
    else:
        node.value = _show(value, kind)
    return node


def state_from_rule(
    condition: object,
    action: object,
    schema: ProcessSchemaVersion,
    *,
    name: str = "",
    priority: int = 100,
    target: str = "new",
    provenance: dict | None = None,
) -> BuilderState:
    """A builder state holding `condition` and `action` (e.g. a rule's current version, an
    induction candidate or a chat model's draft)."""
    specs = {spec["name"]: spec for spec in schema.fields}
    root = node_from_condition(condition, specs)
    if root.kind not in GROUPS or root.negated:
        root = Node("all", children=[root])
    state = BuilderState(
        root=root,
        name=name,
        priority=str(priority),
        target=target,
        provenance=provenance or {},
    )
    action = action if isinstance(action, dict) else {}
    if "route" in action:
        state.action_kind, state.route = "route", str(action["route"])
    elif "flag" in action:
        state.action_kind, state.flag = "flag", str(action["flag"])
    else:
        state.decide = str(action.get("decide") or "")
        state.reason_code = str(action.get("reason_code") or "")
    return state


# --- checking and showing -----------------------------------------------------------------------


def _first_unpicked(node: Node, where: str) -> str | None:
    inner = f"{where}.not" if node.negated else where
    if node.kind in GROUPS:
        for index, child in enumerate(node.children):
            found = _first_unpicked(child, f"{inner}.{node.kind}[{index}]")
            if found:
                return found
        return None
    return None if node.field else f"{inner}.field: pick a field"


@dataclass
class Check:
    condition: dict | None  # the condition to save, when it is valid
    action: dict | None  # the action, when it is valid
    condition_error: str = ""
    action_error: str = ""
    sentence: str = ""  # the condition in words (HTML, names as tooltips), when it is valid
    action_sentence: str = ""

    @property
    def ok(self) -> bool:
        return self.condition is not None and self.action is not None

    @property
    def error_part(self) -> str:
        return self.condition_error.split(": ", 1)[0] if self.condition_error else ""


def check(state: BuilderState, schema: ProcessSchemaVersion) -> Check:
    """Validate the state's condition and action with the rule language and put them in words."""
    result = Check(condition=None, action=None)
    # The whole root is validated (not just its only child) so error paths match builder rows.
    unpicked = _first_unpicked(state.root, "condition")
    try:
        if unpicked:
            raise ValidationError(unpicked)
        validate_condition(to_condition(state.root, schema), fields=schema.fields)
        result.condition = final_condition(state, schema)
        result.sentence = describe_html(result.condition, fields=schema.fields)
    except ValidationError as exc:
        result.condition_error = " ".join(exc.messages)
    action = to_action(state)
    try:
        validate_action(
            action,
            labels=schema.labels,
            reason_codes={
                option["label"]: list(option.get("reason_codes") or [])
                for option in schema.decisions
            },
        )
        result.action = action
        result.action_sentence = describe_action_html(action)
    except ValidationError as exc:
        result.action_error = " ".join(exc.messages)
    return result


def _op_options(kind: str | None) -> list[tuple[str, str]]:
    if kind is None:
        return []
    words = _TIME_WORDS if kind in ("date", "datetime") else _OP_WORDS
    if kind == "fault_fields":
        return [("contains", "includes"), ("is_null", "is empty (no field at fault)")]
    return [(op, words.get(op, _OP_WORDS[op])) for op in OPS_BY_TYPE[kind]]


def _widget(kind: str | None, op: str) -> str:
    """Which value input a comparison shows."""
    if kind is None or not op or op == "is_null":
        return "none"
    if kind == "fault_fields":
        return "field"
    if op in ("contains", "startswith", "matches"):
        return "text"
    if op in ("in", "not_in"):
        return "multi" if kind == "category" else "lines"
    if kind in ("number", "money"):
        return "number"
    if kind in ("date", "datetime", "category", "boolean"):
        return {"category": "select", "boolean": "boolean"}.get(kind, kind)
    return "text"


def rows(state: BuilderState, schema: ProcessSchemaVersion, error_part: str = "") -> list[dict]:
    """The tree as flat rows for the template: a group's header, its children, then its buttons.
    The row the current error is about carries it."""
    specs = {spec["name"]: spec for spec in schema.fields}
    field_options = [
        (spec["name"], f"{spec.get('label') or spec['name']} ({spec['type']})")
        for spec in schema.fields
    ] + [(EXCEPTION_REASON, "Exception reason (text)"), (EXCEPTION_FIELDS, "Fields at fault")]
    known = {name for name, _ in field_options}
    result: list[dict] = []

    def walk(node: Node, path: str, where: str, depth: int) -> None:
        inner = f"{where}.not" if node.negated else where
        mine = error_part == inner or error_part.startswith(f"{inner}.")
        row = {"path": path, "depth": depth, "node": node, "root": path == ROOT, "error": False}
        if node.kind in GROUPS:
            row.update(type="group", error=error_part in (inner, f"{inner}.{node.kind}"))
            result.append(row)
            for index, child in enumerate(node.children):
                walk(child, f"{path}.{index}", f"{inner}.{node.kind}[{index}]", depth + 1)
            result.append(
                {
                    "type": "add",
                    "path": path,
                    "depth": depth + 1,
                    "can_nest": path.count(".") + 1 < MAX_BUILDER_DEPTH,
                }
            )
            return
        kind = _field_kind(node.field, specs)
        options = list(field_options)
        if node.field and node.field not in known:
            options.append((node.field, f"{node.field} (not in the schema)"))
        spec = specs.get(node.field) or {}
        choices = list(spec.get("choices") or [])
        if kind == "fault_fields":
            choices = [spec_["name"] for spec_ in schema.fields]
        widget = _widget(kind, node.op)
        current = node.values if widget == "multi" else [node.value]
        if widget in ("select", "multi", "field"):
            choices += [v for v in current if v and v not in choices]
        row.update(
            type="cmp",
            error=mine,
            kind=kind,
            field_options=options,
            op_options=_op_options(kind),
            widget=widget,
            range=node.op == "between",
            choices=choices,
        )
        result.append(row)

    walk(state.root, ROOT, "condition", 0)
    return result
