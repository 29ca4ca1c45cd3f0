from django import forms

from apps.connectors.models import EventType
from apps.people.models import Team


class ConnectorForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), to_field_name="slug")
    name = forms.CharField(max_length=120)
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="Where events are POSTed (https://…); private and loopback addresses are refused.",
    )
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)

    def __init__(self, *args: object, teams: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class ConnectorSettingsForm(forms.Form):
    name = forms.CharField(max_length=120)
    url = forms.CharField(label="URL", max_length=2000)
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


class ReplayForm(forms.Form):
    since = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    only_dead = forms.BooleanField(required=False, label="Only the dead-lettered ones")
