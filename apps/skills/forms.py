import json

from django import forms
from django.core.exceptions import ValidationError

from apps.core.evidence_kinds import evidence_kinds
from apps.skills.models import (
    CareerRole,
    LevelMatch,
    ManualEvidence,
    PlanState,
    Skill,
    SkillArea,
    SkillLevel,
)


class ManualEvidenceForm(forms.Form):
    skill = forms.ModelChoiceField(queryset=Skill.objects.all())
    kind = forms.ChoiceField(choices=ManualEvidence.Kind.choices)
    title = forms.CharField(max_length=200, help_text="The course or certificate, as named.")
    url = forms.URLField(required=False, label="Link", assume_scheme="https")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class EvidenceReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    note = forms.CharField(
        required=False, max_length=1000, help_text="Required to reject: say why."
    )


class PlanForm(forms.Form):
    target_role = forms.ModelChoiceField(queryset=CareerRole.objects.all(), label="Target role")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class TransitionForm(forms.Form):
    to = forms.ChoiceField(choices=PlanState.choices)
    note = forms.CharField(required=False, max_length=1000)


class ReviewRequestForm(forms.Form):
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="What to look at"
    )


class ReviewAnswerForm(forms.Form):
    response = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Your answer")


# --- the framework ------------------------------------------------------------------------------


class AreaForm(forms.Form):
    slug = forms.SlugField(max_length=60)
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class NewSkillForm(AreaForm):
    area = forms.ModelChoiceField(queryset=SkillArea.objects.all())
    field_order = ["area", "slug", "name", "description"]


class SkillForm(forms.Form):
    area = forms.ModelChoiceField(queryset=SkillArea.objects.all())
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    prerequisites = forms.ModelMultipleChoiceField(
        queryset=Skill.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Suggested before this one; they advise, they never lock it.",
    )

    def __init__(self, *args: object, skill: Skill, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["prerequisites"].queryset = Skill.objects.exclude(pk=skill.pk)  # type: ignore[attr-defined]


class LevelForm(forms.Form):
    name = forms.CharField(max_length=60)
    description = forms.CharField(required=False, max_length=1000)
    match = forms.ChoiceField(
        choices=LevelMatch.choices, label="Granted when", initial=LevelMatch.ALL
    )


class RuleForm(forms.Form):
    level = forms.ModelChoiceField(queryset=SkillLevel.objects.none())
    kind = forms.ChoiceField(choices=())
    params = forms.CharField(
        required=False,
        label="Parameters (JSON)",
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text='e.g. {"process": "claims", "label": "pay"}; each kind lists what it takes.',
    )
    min_count = forms.IntegerField(min_value=0, max_value=1_000_000, initial=1)
    min_value = forms.FloatField(
        required=False, min_value=-1, max_value=1, label="Minimum figure",
        help_text="A share or a kappa (empty: the count alone).",
    )  # fmt: skip
    period_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Period (days)",
        help_text="Only the last N days count (empty: all time); evidence decays out of it.",
    )  # fmt: skip

    def __init__(self, *args: object, skill: Skill, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["level"].queryset = skill.levels.all()  # type: ignore[attr-defined]
        self.fields["kind"].choices = [(k.key, f"{k.label} ({k.key})") for k in evidence_kinds()]  # type: ignore[attr-defined]

    def clean_params(self) -> dict:
        raw = self.cleaned_data.get("params") or "{}"
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValidationError("Parameters are a JSON object, e.g. {}.") from None
        if not isinstance(value, dict):
            raise ValidationError("Parameters are a JSON object, e.g. {}.")
        return value


class RoleForm(AreaForm):
    pass


class RoleEditForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    leads_to = forms.ModelMultipleChoiceField(
        queryset=CareerRole.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Leads to",
    )

    def __init__(self, *args: object, role: CareerRole, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["leads_to"].queryset = CareerRole.objects.exclude(pk=role.pk)  # type: ignore[attr-defined]


class RequirementForm(forms.Form):
    skill = forms.ModelChoiceField(queryset=Skill.objects.all())
    rank = forms.IntegerField(min_value=1, max_value=20, label="Level (rank)")
