from django import forms

from apps.cases.forms import JSONListField


class JSONObjectField(JSONListField):
    def to_python(self, value: object) -> object:
        import json

        text = forms.CharField.to_python(self, value)
        if not text:
            raise forms.ValidationError("This field is required.")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError("must be a JSON object")
        return parsed

    def prepare_value(self, value: object) -> object:
        import json

        return json.dumps(value, indent=2) if isinstance(value, dict) else value


class RuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    priority = forms.IntegerField(initial=100, help_text="Lower runs first.")
    condition = JSONObjectField(
        help_text='e.g. {"all": [{"field": "po_match", "op": "eq", "value": "missing"}, '
        '{"field": "amount", "op": "gt", "value": 10000}]}'
    )
    # Set when an induction candidate is accepted, so the rule records where it came from.
    provenance = forms.JSONField(required=False, widget=forms.HiddenInput)
    action = JSONObjectField(
        help_text='{"decide": "LABEL", "reason_code": "CODE"}, {"route": "team:SLUG"} or {"flag": "TEXT"}'
    )
