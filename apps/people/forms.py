from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordMixin
from django.db.models import Q

from apps.people.models import Role

User = get_user_model()


class AddMemberForm(forms.Form):
    identifier = forms.CharField(label="Username or email", max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

    def clean_identifier(self) -> object:
        identifier = self.cleaned_data["identifier"].strip()
        matches = list(
            User.objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier))[:2]
        )
        if not matches:
            raise forms.ValidationError(
                "No account has that username or email; invite them instead."
            )
        if len(matches) > 1:
            raise forms.ValidationError("Several accounts share that email; use the username.")
        if not matches[0].is_active:
            raise forms.ValidationError("That account is deactivated.")
        return matches[0]


class MemberRolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=Role.choices, widget=forms.CheckboxSelectMultiple, required=False
    )


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EXPERT)
    email = forms.EmailField(required=False, help_text="Optional: who the link is meant for.")
    days = forms.IntegerField(label="Valid for (days)", min_value=1, max_value=60, initial=7)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What uses it, e.g. “nightly import script”.")


class AcceptInvitationForm(SetPasswordMixin, forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        max_length=150,
        help_text="Letters, digits and @/./+/-/_ only.",
        error_messages={"invalid": "Use letters, digits and @/./+/-/_ only."},
    )
    email = forms.EmailField(required=False)
    password1, password2 = SetPasswordMixin.create_password_fields()

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username

    def clean(self) -> dict[str, object]:
        self.validate_passwords()
        return self.cleaned_data
