from django import forms

from apps.skills.gold import MAX_GOLD_SHARE


class GoldMarkForm(forms.Form):
    case = forms.CharField(
        max_length=200, label="Case", help_text="A decided case's number or external id."
    )
    rationale = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the answer is right; empty: the rationale the deciding label gave.",
    )


class PracticeSettingForm(forms.Form):
    gold_share = forms.FloatField(
        min_value=0,
        max_value=MAX_GOLD_SHARE,
        label="Share of gold in the review queue",
        help_text=f"0 to {MAX_GOLD_SHARE}: of the cases new experts get, this share are gold.",
    )
    new_below = forms.IntegerField(
        min_value=1,
        label="New to the process below",
        help_text="An expert with fewer decisions than this in the process gets gold cases.",
    )
