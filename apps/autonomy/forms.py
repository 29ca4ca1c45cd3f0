from django import forms

from apps.autonomy.models import Level, ProcessAutonomy
from apps.core.display import readable_code

LEVEL_CHOICES = [(level.value, f"{level.value} · {level.label}") for level in Level]


class SettingsForm(forms.Form):
    threshold = forms.FloatField(
        min_value=0.01, max_value=1, help_text="The model acts only at or above this confidence."
    )
    target_precision = forms.FloatField(
        min_value=0.01, max_value=1, help_text="Precision the gate and the audits require."
    )
    min_shadow = forms.IntegerField(
        min_value=1, help_text="Shadow predictions experts must decide before a promotion."
    )
    audit_rate = forms.FloatField(
        min_value=0, max_value=1, help_text="Share of confident cases sent to experts at level 3."
    )
    audit_window = forms.IntegerField(
        min_value=1, help_text="Audited decisions measured (sliding)."
    )
    min_audits = forms.IntegerField(
        min_value=1, help_text="Audited decisions needed before an automatic demotion."
    )

    def __init__(self, *args: object, labels: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.labels = labels
        for label in labels:
            self.fields[f"route:{label}"] = forms.CharField(
                required=False,
                label=f"Route for “{readable_code(label)}”",
                help_text="team:<slug> or expert:<username>; empty: the team's queue",
            )

    @classmethod
    def initial_for(cls, autonomy: ProcessAutonomy) -> dict[str, object]:
        initial: dict[str, object] = {
            name: getattr(autonomy, name)
            for name in (
                "threshold",
                "target_precision",
                "min_shadow",
                "audit_rate",
                "audit_window",
                "min_audits",
            )
        }
        for label, route in (autonomy.routes or {}).items():
            initial[f"route:{label}"] = route
        return initial

    def values(self) -> dict[str, object]:
        data = dict(self.cleaned_data)
        routes = {label: data.pop(f"route:{label}", "").strip() for label in self.labels}
        data["routes"] = {label: route for label, route in routes.items() if route}
        return data


class ShadowForm(forms.Form):
    target = forms.TypedChoiceField(choices=LEVEL_CHOICES[1:], coerce=int)


class PromoteForm(forms.Form):
    level = forms.TypedChoiceField(choices=LEVEL_CHOICES[1:], coerce=int)
    reason = forms.CharField(required=False, max_length=2000)


class DemoteForm(forms.Form):
    level = forms.TypedChoiceField(choices=LEVEL_CHOICES[:-1], coerce=int)
    reason = forms.CharField(max_length=2000)
