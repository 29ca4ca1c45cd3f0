from django import forms

from apps.classifiers.models import LearningSettings


class LearningSettingsForm(forms.ModelForm):
    class Meta:
        model = LearningSettings
        fields = ["min_decisions", "retrain_after", "auto_promote", "label_error_confidence"]
        labels = {
            "min_decisions": "Minimum decided cases to train",
            "retrain_after": "Retrain after this many new decisions",
            "auto_promote": "Promote a retrained version automatically when it is at least as good",
            "label_error_confidence": "Confidence at which a model's disagreement asks for a second look",
        }

    def clean_min_decisions(self) -> int:
        value = self.cleaned_data["min_decisions"]
        if value < 20:
            raise forms.ValidationError("at least 20: fewer decisions cannot give held-out metrics")
        return value
