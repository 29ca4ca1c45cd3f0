"""The visual schema editor of the process form.

A row per case field and per decision option (two formsets), changed by buttons that post the
whole form back: htmx swaps just the editor, and without JavaScript the page comes back whole with
what was typed. Saving validates the schema with `clean_schema`, which reports every problem with
a path ("fields[2].choices"); each problem is shown next to the input it is about. Power users
import a schema as JSON (pasted or a file) and download the rows as JSON.
"""

import json
import re
from dataclasses import dataclass

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

from apps.cases.schema import SchemaInvalid, SchemaProblem, clean_schema

FIELD_PREFIX = "fields"
DECISION_PREFIX = "decisions"
MAX_FIELD_ROWS = 200
# The schema allows 9 options; a few more rows may be on the form (reported, not dropped).
MAX_DECISION_ROWS = 20
MAX_IMPORT_BYTES = 1_000_000
TYPE_LABELS = {
    "number": "Number",
    "money": "Money",
    "category": "Category (choices)",
    "text": "Text",
    "date": "Date",
    "datetime": "Date and time",
    "boolean": "Yes / no",
}
_EDIT_RE = re.compile(r"^(up|down|remove)-(field|decision)-(\d{1,4})$")
_PATH_RE = re.compile(r"^(fields|decisions)\[(\d+)\](?:\.(\w+))?$")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _text(value: object) -> str:
    """A value of an imported schema as the text of an input (not-text stays visible, as JSON)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _line_text(value: object) -> str:
    if isinstance(value, list):
        return "\n".join(_text(item) for item in value)
    return _text(value)


class FieldRowForm(forms.Form):
    """One case field. Every input is optional here: the schema validator judges the row, so the
    form and the API say the same thing about it."""

    name = forms.CharField(
        required=False,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "e.g. amount"}
        ),
        help_text="lower_snake_case; used in the API and in files.",
    )
    label = forms.CharField(required=False, help_text="Shown to experts; from the name if empty.")
    type = forms.CharField(
        required=False, widget=forms.Select(choices=list(TYPE_LABELS.items())), initial="text"
    )
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Category fields: one choice per line.",
    )
    currency = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "EUR"}),
        help_text="Money fields: a 3-letter code.",
    )
    required = forms.BooleanField(required=False)
    group = forms.CharField(required=False, help_text="Fields of a group are shown together.")
    help_text = forms.CharField(required=False, label="Help text")


class DecisionRowForm(forms.Form):
    label = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. approve"}),
    )
    description = forms.CharField(required=False)
    reason_codes = forms.CharField(
        required=False,
        label="Reason codes",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One per line; may be empty.",
    )


FieldRows = forms.formset_factory(
    FieldRowForm, extra=0, max_num=MAX_FIELD_ROWS, absolute_max=MAX_FIELD_ROWS, validate_max=True
)
DecisionRows = forms.formset_factory(
    DecisionRowForm,
    extra=0,
    max_num=MAX_DECISION_ROWS,
    absolute_max=MAX_DECISION_ROWS,
    validate_max=True,
)


def field_row(spec: dict) -> dict:
    """A field definition (stored or imported) as the values of its row."""
    return {
        "name": _text(spec.get("name")),
        "label": _text(spec.get("label")),
        "type": _text(spec.get("type", "text")),
        "choices": _line_text(spec.get("choices")),
        "currency": _text(spec.get("currency")),
        # As clean_schema reads it, so an import means what the API would make of it.
        "required": bool(spec.get("required", False)),
        "group": _text(spec.get("group")),
        "help_text": _text(spec.get("help_text")),
    }


def decision_row(option: dict) -> dict:
    return {
        "label": _text(option.get("label")),
        "description": _text(option.get("description")),
        "reason_codes": _line_text(option.get("reason_codes")),
    }


def field_item(row: dict) -> dict:
    """A row as a field definition for clean_schema (and for the JSON download)."""
    kind = row["type"].strip()
    item: dict[str, object] = {"name": row["name"].strip(), "type": kind}
    for key in ("label", "help_text", "group"):
        if row[key].strip():
            item[key] = row[key].strip()
    item["required"] = bool(row["required"])
    # Choices and currency stay in the row when the type changes, but only count for their type.
    if kind == "category":
        item["choices"] = _lines(row["choices"])
    if kind == "money" and row["currency"].strip():
        item["currency"] = row["currency"].strip()
    return item


def decision_item(row: dict) -> dict:
    item: dict[str, object] = {"label": row["label"].strip()}
    if row["description"].strip():
        item["description"] = row["description"].strip()
    item["reason_codes"] = _lines(row["reason_codes"])
    return item


def _is_blank(row: dict) -> bool:
    """A row nobody filled in (e.g. added and left): skipped, not reported."""
    return not any(
        value.strip() for key, value in row.items() if isinstance(value, str) and key != "type"
    ) and not row.get("required")


def bound_data(prefix: str, rows: list[dict]) -> dict[str, str]:
    """Rows as the POST data of their formset, as the page would post them."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(len(rows)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            if value is True:
                data[f"{prefix}-{index}-{key}"] = "on"
            elif value is not False:
                data[f"{prefix}-{index}-{key}"] = value
    return data


@dataclass
class RowEntry:
    """What the template needs of a row: its form, its position, and what to focus after an edit."""

    form: forms.Form
    index: int
    count: int
    focus: str = ""

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def is_first(self) -> bool:
        return self.index == 0

    @property
    def is_last(self) -> bool:
        return self.index == self.count - 1


class SchemaEditor:
    """The field and decision rows of one process form, bound to a POST or built from a schema."""

    def __init__(
        self,
        data: QueryDict | None = None,
        files: MultiValueDict | None = None,
        *,
        fields: list[dict],
        decisions: list[dict],
    ) -> None:
        self.action = (data.get("editor") or "save") if data is not None else ""
        self.files = files
        self.data = data
        if data is None:
            self._set_rows(
                [field_row(spec) for spec in fields], [decision_row(o) for o in decisions]
            )
        else:
            self.field_rows = FieldRows(data, prefix=FIELD_PREFIX)
            self.decision_rows = DecisionRows(data, prefix=DECISION_PREFIX)
        self.import_errors: list[str] = []
        self.field_list_errors: list[str] = []
        self.decision_list_errors: list[str] = []
        self.priority_errors: list[str] = []
        self.focus: tuple[str, int, str] | None = None
        self._row_of: dict[str, list[int]] = {}
        self.fields: list[dict] = []
        self.decisions: list[dict] = []

    # --- rows ---------------------------------------------------------------------------------

    def _set_rows(self, fields: list[dict], decisions: list[dict]) -> None:
        # Bound to the rows' own values, so problems can be attached to their inputs.
        self.field_rows = FieldRows(bound_data(FIELD_PREFIX, fields), prefix=FIELD_PREFIX)
        self.decision_rows = DecisionRows(
            bound_data(DECISION_PREFIX, decisions), prefix=DECISION_PREFIX
        )

    @staticmethod
    def _values(formset: forms.BaseFormSet) -> list[dict]:
        # A missing or tampered management form means no rows (and a non-form error).
        return [{name: form[name].value() or "" for name in form.fields} for form in formset.forms]

    def field_values(self) -> list[dict]:
        rows = self._values(self.field_rows)
        for row in rows:
            row["required"] = bool(row["required"])
        return rows

    def decision_values(self) -> list[dict]:
        return self._values(self.decision_rows)

    def _entries(self, formset: forms.BaseFormSet, kind: str) -> list[RowEntry]:
        forms_ = formset.forms
        entries = [RowEntry(form, index, len(forms_)) for index, form in enumerate(forms_)]
        if self.focus and self.focus[0] == kind and self.focus[1] < len(entries):
            entries[self.focus[1]].focus = self.focus[2]
        return entries

    @property
    def field_entries(self) -> list[RowEntry]:
        return self._entries(self.field_rows, "field")

    @property
    def decision_entries(self) -> list[RowEntry]:
        return self._entries(self.decision_rows, "decision")

    # --- edits --------------------------------------------------------------------------------

    @property
    def is_edit(self) -> bool:
        """The post changes the rows (add, move, remove, import) rather than saving them."""
        return self.action in ("add-field", "add-decision", "import") or bool(
            _EDIT_RE.match(self.action)
        )

    def apply_edit(self) -> None:
        """Change the rows as the pressed button says; the page shows them again, unsaved."""
        fields, decisions = self.field_values(), self.decision_values()
        if self.action == "import":
            self._import(fields, decisions)
            return
        if self.action == "add-field":
            if len(fields) < MAX_FIELD_ROWS:
                fields.append(field_row({}))
            self.focus = ("field", len(fields) - 1, "name")
        elif self.action == "add-decision":
            if len(decisions) < MAX_DECISION_ROWS:
                decisions.append(decision_row({}))
            self.focus = ("decision", len(decisions) - 1, "label")
        elif match := _EDIT_RE.match(self.action):
            op, kind, index = match.group(1), match.group(2), int(match.group(3))
            rows = fields if kind == "field" else decisions
            if index < len(rows):
                self.focus = _move(rows, index, op, kind)
        self._set_rows(fields, decisions)
        if self.focus and self.focus[2] in ("name", "label"):
            formset = self.field_rows if self.focus[0] == "field" else self.decision_rows
            if self.focus[1] < len(formset.forms):
                form = formset.forms[self.focus[1]]
                form.fields[self.focus[2]].widget.attrs["autofocus"] = True

    def _import(self, fields: list[dict], decisions: list[dict]) -> None:
        try:
            imported_fields, imported_decisions = self._read_import()
        except ValueError as exc:
            self.import_errors.append(str(exc))
            self._set_rows(fields, decisions)
            return
        if imported_decisions is not None:
            decisions = [decision_row(option) for option in imported_decisions]
        self._set_rows([field_row(spec) for spec in imported_fields], decisions)
        # Imported: show what is wrong with it at once, next to the rows.
        self.validate(priority_field=self.data.get("priority_field", "") if self.data else "")

    def _read_import(self) -> tuple[list[dict], list[dict] | None]:
        upload: UploadedFile | None = self.files.get("schema_file") if self.files else None
        if upload is not None:
            if upload.size > MAX_IMPORT_BYTES:
                raise ValueError(
                    f"The file is {upload.size:,} bytes; a schema file may have at most "
                    f"{MAX_IMPORT_BYTES:,}."
                )
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValueError("The file is not UTF-8 text.") from None
        else:
            text = (self.data.get("schema_json") or "") if self.data else ""
        if not text.strip():
            raise ValueError("Paste a schema as JSON or choose a .json file, then import it.")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        except RecursionError:
            raise ValueError("Not a schema: the JSON is nested too deeply.") from None
        if isinstance(parsed, list):
            parsed = {"fields": parsed}
        if not isinstance(parsed, dict) or not isinstance(parsed.get("fields"), list):
            raise ValueError(
                'Expected {"fields": [...], "decisions": [...]} (as downloaded here or answered '
                "by the API) or a list of fields."
            )
        decisions = parsed.get("decisions")
        if decisions is not None and not isinstance(decisions, list):
            raise ValueError('"decisions" must be a list of decision options.')
        for kind, items in (("fields", parsed["fields"]), ("decisions", decisions or [])):
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ValueError(f"{kind}[{index}] must be an object, got {_text(item)}.")
        if len(parsed["fields"]) > MAX_FIELD_ROWS or len(decisions or []) > MAX_DECISION_ROWS:
            raise ValueError(
                f"At most {MAX_FIELD_ROWS} fields and {MAX_DECISION_ROWS} decision options."
            )
        return parsed["fields"], decisions

    def export(self) -> str:
        """The rows as JSON, as the API takes them (blank rows left out)."""
        schema = {
            "fields": [field_item(row) for row in self.field_values() if not _is_blank(row)],
            "decisions": [
                decision_item(row) for row in self.decision_values() if not _is_blank(row)
            ],
        }
        return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"

    # --- saving -------------------------------------------------------------------------------

    def validate(self, *, priority_field: str) -> bool:
        """Check the rows as a schema; every problem is attached to its input (or its list).

        Afterwards `fields` and `decisions` hold the clean schema when it is valid."""
        rows_valid = self.field_rows.is_valid() & self.decision_rows.is_valid()
        self.field_list_errors += list(self.field_rows.non_form_errors())
        self.decision_list_errors += list(self.decision_rows.non_form_errors())
        if not rows_valid:
            return False
        field_rows = [(i, r) for i, r in enumerate(self.field_values()) if not _is_blank(r)]
        decision_rows = [(i, r) for i, r in enumerate(self.decision_values()) if not _is_blank(r)]
        # Blank rows are left out of the schema: its indexes map back to these rows.
        self._row_of = {
            "fields": [i for i, _ in field_rows],
            "decisions": [i for i, _ in decision_rows],
        }
        try:
            self.fields, self.decisions = clean_schema(
                fields=[field_item(row) for _, row in field_rows],
                decisions=[decision_item(row) for _, row in decision_rows],
                priority_field=priority_field,
            )
        except SchemaInvalid as exc:
            self.show_problems(exc.problems)
            return False
        return True

    def show_problems(self, problems: list[SchemaProblem]) -> None:
        """Put each problem next to its input, or above its list when it is about the list."""
        for problem in problems:
            match = _PATH_RE.match(problem.path)
            if problem.path == "priority_field":
                self.priority_errors.append(problem.message)
            elif match is None:
                target = (
                    self.field_list_errors
                    if problem.path.startswith("fields")
                    else self.decision_list_errors
                )
                target.append(problem.message)
            else:
                kind, index, part = match.group(1), int(match.group(2)), match.group(3)
                formset = self.field_rows if kind == "fields" else self.decision_rows
                rows = self._row_of.get(kind, [])
                row_index = rows[index] if index < len(rows) else index
                if row_index >= len(formset.forms):
                    lists = {
                        "fields": self.field_list_errors,
                        "decisions": self.decision_list_errors,
                    }
                    lists[kind].append(f"{problem.path}: {problem.message}")
                    continue
                form = formset.forms[row_index]
                form.add_error(part if part in form.fields else None, problem.message)

    @property
    def has_problems(self) -> bool:
        """Whether validation found anything wrong with the schema (shown with the form's)."""
        return bool(
            self.field_list_errors
            or self.decision_list_errors
            or self.priority_errors
            or any(form.errors for form in self.field_rows.forms)
            or any(form.errors for form in self.decision_rows.forms)
        )

    @property
    def focus_add(self) -> str:
        """Which list lost its last row ("field" or "decision"): its Add button gets the focus."""
        return self.focus[0] if self.focus and not self.focus[2] else ""


def _move(rows: list[dict], index: int, op: str, kind: str) -> tuple[str, int, str]:
    """Move or remove one row in place; returns what to focus afterwards (kind, row, control)."""
    if op == "remove":
        del rows[index]
        if not rows:
            return (kind, 0, "")
        return (kind, min(index, len(rows) - 1), "remove")
    target = index - 1 if op == "up" else index + 1
    if not 0 <= target < len(rows):
        return (kind, index, op)
    rows[index], rows[target] = rows[target], rows[index]
    # Keep the pressed button focused so it can be pressed again, unless it is now disabled.
    if target == 0 and op == "up":
        return (kind, target, "down")
    if target == len(rows) - 1 and op == "down":
        return (kind, target, "up")
    return (kind, target, op)
