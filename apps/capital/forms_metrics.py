"""Forms of the capital metrics pages. They check shape; metrics_services checks meaning (and says
why in the same words as the API)."""

from django import forms

from apps.cases.models import Process
from apps.people.models import Team

TEAM_WIDE = ""


class MoneyRateForm(forms.Form):
    """What an hour of expert time and a decided case are worth, for the team or one process."""

    process = forms.ChoiceField(
        required=False,
        label="For",
        help_text="A process's own value applies to it; the team's to every other process.",
    )
    per_hour = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        label="Value per expert hour",
        help_text="Multiplies the hours saved.",
    )
    per_case = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        label="Value per case decided without a person",
        help_text="Multiplies the automatic decisions that stood.",
    )
    currency = forms.CharField(
        max_length=3, min_length=3, initial="EUR", help_text="Three letters, such as EUR."
    )

    def __init__(self, *args: object, team: Team, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        processes = Process.objects.filter(team=team).order_by("name")
        self.fields["process"].choices = [
            (TEAM_WIDE, f"The whole team ({team.name})"),
            *((p.slug, p.name) for p in processes),
        ]

    def clean(self) -> dict[str, object]:
        data = super().clean()
        if data.get("per_hour") is None and data.get("per_case") is None:
            raise forms.ValidationError("Give a value per hour, per case, or both.")
        return data

    def process_object(self) -> Process | None:
        slug = self.cleaned_data.get("process") or TEAM_WIDE
        if slug == TEAM_WIDE:
            return None
        return Process.objects.get(team=self.team, slug=slug)
