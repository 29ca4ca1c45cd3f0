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
