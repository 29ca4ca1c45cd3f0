from django import forms

from apps.notifications.models import Kind
from apps.notifications.selectors import PreferenceRow


class PreferencesForm(forms.Form):
    """Two boxes per kind: `<kind>-in_app` and `<kind>-email` (unticked boxes are not sent)."""

    def __init__(self, *args: object, rows: list[PreferenceRow], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for row in rows:
            self.fields[f"{row.kind}-in_app"] = forms.BooleanField(
                required=False, initial=row.in_app, label=f"{row.label}: in the app"
            )
            self.fields[f"{row.kind}-email"] = forms.BooleanField(
                required=False, initial=row.email, label=f"{row.label}: by email"
            )

    def choices(self) -> dict[str, dict[str, bool]]:
        return {
            kind: {
                "in_app": self.cleaned_data[f"{kind}-in_app"],
                "email": self.cleaned_data[f"{kind}-email"],
            }
            for kind in Kind.values
            if f"{kind}-in_app" in self.cleaned_data
        }
