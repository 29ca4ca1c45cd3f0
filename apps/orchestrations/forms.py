from django import forms

from apps.orchestrations.models import Stage

STAGE_CHOICES = [(s, label) for s, label in Stage.choices if s != Stage.DRAFT]


class OrchestrationForm(forms.Form):
    process = forms.ModelChoiceField(queryset=None, help_text="Its team owns the orchestration.")
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60, help_text="Its address in the API and the pages.")

    def __init__(self, *args: object, processes: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["process"].queryset = processes


class StageForm(forms.Form):
    stage = forms.ChoiceField(choices=STAGE_CHOICES)
    canary_share = forms.FloatField(required=False, min_value=0, max_value=1)
    reason = forms.CharField(required=False, max_length=2000)


class RollbackForm(forms.Form):
    to = forms.IntegerField(min_value=1)
    reason = forms.CharField(max_length=2000)


class NewVersionForm(forms.Form):
    from_version = forms.IntegerField(min_value=1, required=False)


class ComparisonPeriodForm(forms.Form):
    """The champion/challenger page's period (whole days, `until` included) and model."""

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    model = forms.IntegerField(required=False, min_value=1, label="Challenger model version")


class ChallengerForm(forms.Form):
    model_version = forms.IntegerField(
        required=False, min_value=1, help_text="Leave empty to stop the challenger."
    )
    reason = forms.CharField(required=False, max_length=2000)


class PromoteChallengerForm(forms.Form):
    reason = forms.CharField(max_length=2000)
