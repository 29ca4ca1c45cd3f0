import json

from django import forms

from apps.cases.models import QueueOrder
from apps.cases.schema import MAX_TEXT


class JSONListField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 10, "class": "mono", "spellcheck": "false"})

    def to_python(self, value: object) -> object:
        text = super().to_python(value)
        if not text:
            return []
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(parsed, list):
            raise forms.ValidationError("must be a JSON list")
        return parsed

    def prepare_value(self, value: object) -> object:
        if isinstance(value, list):
            return json.dumps(value, indent=2)
        return value


class ProcessForm(forms.Form):
    team = forms.ChoiceField(help_text="The team whose experts review this process.")
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(
        max_length=60, required=False, help_text="Used in URLs and the API; from the name if empty."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    minutes_per_case = forms.DecimalField(min_value=0, max_digits=7, decimal_places=2, initial=5)
    overlap = forms.IntegerField(
        min_value=1, max_value=10, initial=1, help_text="Independent experts per case."
    )
    priority_field = forms.CharField(
        max_length=63,
        required=False,
        help_text="A number, money, date, datetime or boolean field; the queue serves higher values first unless you untick the box.",
    )
    priority_descending = forms.BooleanField(
        required=False, initial=True, label="Higher values first"
    )
    # Blank keeps the current value, so an edit form without them changes nothing.
    queue_order = forms.ChoiceField(
        choices=QueueOrder.choices,
        required=False,
        label="Queue order",
        help_text="Fresh cases by the priority field, most uncertain for the promoted model "
        "first (active learning), or soonest due first (the SLA of routed items).",
    )
    random_share = forms.FloatField(
        min_value=0,
        max_value=1,
        required=False,
        label="Random share",
        help_text="With uncertainty order: the share of cases picked at random (0 to 1), so the "
        "model can be evaluated without bias.",
    )

    reviewers = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Experts who review this process; none ticked means every expert of the team.",
    )
    adjudicators = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Who settles disagreements; none ticked means the team's managers.",
    )

    def typed_values(self) -> dict[str, object]:
        """What was typed, as initial values: the page shows it again after a row edit without
        judging it yet."""
        return {name: self[name].value() for name in self.fields}

    def __init__(
        self,
        *args: object,
        teams: list[tuple[str, str]],
        editing: bool = False,
        experts: list[tuple[str, str]] | None = None,
        members: list[tuple[str, str]] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = teams
        self.fields["reviewers"].choices = experts or []
        self.fields["adjudicators"].choices = members or []
        if not editing:
            # People are named once the process (and so its team) exists.
            del self.fields["reviewers"]
            del self.fields["adjudicators"]
            del self.fields["queue_order"]
            del self.fields["random_share"]
        if editing:
            for name in ("team", "slug"):
                self.fields[name].disabled = True
                self.fields[name].required = False


class DecisionForm(forms.Form):
    label = forms.CharField(
        max_length=100, error_messages={"required": "Choose a decision (keys 1 to 9)."}
    )
    reason_code = forms.CharField(max_length=100, required=False)
    rationale = forms.CharField(widget=forms.Textarea, required=False, max_length=20_000)
    key_factors = forms.MultipleChoiceField(required=False)

    def __init__(self, *args: object, field_names: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key_factors"].choices = [(name, name) for name in field_names]


class AdjudicationForm(forms.Form):
    """The adjudicator's final decision: one of the schema's labels and, when that label has reason
    codes, one of *its* codes (the page offers only those; a code of another label is refused here
    too, next to the field)."""

    label = forms.ChoiceField(error_messages={"required": "Choose the final decision."})
    reason_code = forms.CharField(max_length=100, required=False)
    rationale = forms.CharField(widget=forms.Textarea, required=False, max_length=MAX_TEXT)

    def __init__(self, *args: object, decisions: list[dict[str, object]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.codes_by_label = {
            str(option["label"]): [str(code) for code in option.get("reason_codes") or []]
            for option in decisions
        }
        self.fields["label"].choices = [("", "— choose —")] + [
            (label, label) for label in self.codes_by_label
        ]
        self.fields["label"].error_messages["invalid_choice"] = (
            "“%(value)s” is not a decision of this process."
        )

    def clean(self) -> dict[str, object]:
        data = super().clean()
        label, code = data.get("label"), data.get("reason_code", "")
        if not label:
            return data
        codes = self.codes_by_label[label]
        if codes and not code:
            self.add_error("reason_code", f"Choose a reason code for “{label}”.")
        elif codes and code not in codes:
            self.add_error(
                "reason_code",
                f"“{code}” is not a reason code of “{label}”: choose one of {', '.join(codes)}.",
            )
        elif not codes and code:
            self.add_error("reason_code", f"“{label}” takes no reason code; leave it empty.")
        return data
