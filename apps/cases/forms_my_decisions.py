from django import forms
from django.core.exceptions import ValidationError

from apps.cases.models import Process
from apps.cases.selectors_my_decisions import DecisionFilters, Outcome
from apps.core.display import readable_code


class MyDecisionsFilterForm(forms.Form):
    """The filters of the "My decisions" page (a GET form: every field optional)."""

    process = forms.ChoiceField(required=False)
    label = forms.ChoiceField(required=False)
    outcome = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *Outcome.CHOICES])
    decided_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    decided_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(
        self, *args: object, processes: list[Process], labels: list[str], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self.processes = {process.slug: process for process in processes}
        self.fields["process"].choices = [
            ("", "All processes"),
            *((process.slug, process.name) for process in processes),
        ]
        self.fields["label"].choices = [
            ("", "Any label"),
            *((label, readable_code(label)) for label in labels),
        ]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("decided_from"), data.get("decided_to")
        if start and end and start > end:
            raise ValidationError("“From” must be on or before “To”.")
        return data

    def filters(self) -> DecisionFilters:
        """The filters of a valid form."""
        data = self.cleaned_data
        return DecisionFilters(
            process=self.processes.get(data.get("process") or ""),
            label=data.get("label") or "",
            outcome=data.get("outcome") or "",
            decided_from=data.get("decided_from"),
            decided_to=data.get("decided_to"),
        )
