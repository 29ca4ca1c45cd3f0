"""Forms of the assessment, first-battle and criteria pages. They check shape; the services
check meaning (and say why in the same words as the API)."""

from django import forms
from django.contrib.auth import get_user_model

from apps.capital.criteria import KINDS
from apps.capital.selectors_roadmap import PHASES
from apps.fabric.models import NodeClass
from apps.people.models import Team

MAX_ANSWER = 4000


def _members(team: Team) -> forms.ModelChoiceField:
    users = get_user_model().objects.filter(memberships__team=team).distinct().order_by("username")
    return forms.ModelChoiceField(
        queryset=users, required=False, empty_label="(nobody yet)", label="Owner"
    )


class AssetForm(forms.Form):
    name = forms.CharField(max_length=120, label="Machine")
    asset_class = forms.ChoiceField(choices=NodeClass.choices, label="Class")
    site = forms.CharField(max_length=120, required=False)
    note = forms.CharField(max_length=300, required=False)


class DataSourceForm(forms.Form):
    name = forms.CharField(
        max_length=120, label="Data source", help_text="As nodes name it (--data-source)."
    )
    system = forms.CharField(max_length=120, required=False)
    site = forms.CharField(max_length=120, required=False)
    note = forms.CharField(max_length=300, required=False)


class NamedProcessForm(forms.Form):
    name = forms.CharField(max_length=120, label="Process")
    cases_per_week = forms.FloatField(
        min_value=0, max_value=1_000_000, required=False, label="Cases a week (estimate)"
    )
    minutes_per_case = forms.FloatField(
        min_value=0, max_value=1_000_000, required=False, label="Minutes per case (estimate)"
    )
    backlog = forms.IntegerField(min_value=0, required=False, label="Backlog (estimate)")
    labels = forms.CharField(
        max_length=2000, required=False, label="Outcomes", help_text="Comma separated."
    )
    fields = forms.CharField(
        max_length=2000, required=False, label="Inputs", help_text="Comma separated."
    )
    note = forms.CharField(max_length=300, required=False)

    def __init__(self, *args: object, team: Team, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"] = _members(team)


class AnswersForm(forms.Form):
    """One text area per current gap question (`q-<key>`)."""

    def __init__(self, *args: object, questions: list, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.questions = questions
        for question in questions:
            self.fields[f"q-{question.key}"] = forms.CharField(
                label=question.text,
                required=False,
                max_length=MAX_ANSWER,
                initial=question.answer,
                widget=forms.Textarea(attrs={"rows": 2}),
            )

    def answers(self) -> dict[str, str]:
        return {q.key: self.cleaned_data.get(f"q-{q.key}", "") for q in self.questions}


class RecordForm(forms.Form):
    note = forms.CharField(
        max_length=MAX_ANSWER,
        required=False,
        label="Note on this assessment",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class WeightsForm(forms.Form):
    pain = forms.FloatField(min_value=0, max_value=10, label="High pain, clear boundaries")
    data = forms.FloatField(min_value=0, max_value=10, label="Existing data, infrastructure")
    stakeholders = forms.FloatField(min_value=0, max_value=10, label="Engaged stakeholders")

    def clean(self) -> dict:
        cleaned = super().clean()
        values = [cleaned.get(k) for k in ("pain", "data", "stakeholders")]
        if all(v is not None for v in values) and sum(values) <= 0:
            raise forms.ValidationError("At least one weight must be above 0.")
        return cleaned


class ChooseForm(forms.Form):
    candidate = forms.ChoiceField(label="First battle")
    reason = forms.CharField(
        max_length=MAX_ANSWER, widget=forms.Textarea(attrs={"rows": 3}), label="Why this one"
    )

    def __init__(self, *args: object, candidates: list, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["candidate"].choices = [
            (c.key, f"{c.rank}. {c.name} ({c.total:.2f})") for c in candidates
        ]


class OwnerForm(forms.Form):
    process = forms.ChoiceField(label="Process")

    def __init__(self, *args: object, team: Team, processes: list, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["process"].choices = [(p.slug, p.name) for p in processes]
        self.fields["owner"] = _members(team)


class CriterionForm(forms.Form):
    phase = forms.TypedChoiceField(
        coerce=int, choices=[(p.number, f"{p.number}. {p.name}") for p in PHASES]
    )
    kind = forms.ChoiceField(
        choices=[(kind, spec.label.replace(" ≥ {threshold}", "")) for kind, spec in KINDS.items()]
    )
    threshold = forms.FloatField(
        min_value=0, help_text="A count, hours, or a share between 0 and 1 (0.3 for 30 %)."
    )
