import re
import zoneinfo
from functools import cache

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from apps.fabric.availability import DAY_NAMES
from apps.fabric.models import ComputeNode, NodeClass
from apps.fabric.services import enrollment
from apps.people.models import Team

WINDOW_ROWS = 4
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
EXPIRY_CHOICES = [("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days")]


@cache
def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class EnrollmentTokenForm(forms.Form):
    note = forms.CharField(
        max_length=200, required=False, help_text="Which machine it is for, e.g. “render box 2”."
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="24h", label="Valid for")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False)
    labels = forms.CharField(
        required=False,
        help_text="Labels every node enrolled with it gets, e.g. site=branch-3, room=2.",
    )
    auto_approve = forms.BooleanField(
        required=False, help_text="Skip the approval queue: the node may take work at once."
    )

    def __init__(self, *args: object, scope: frozenset[int] | None = None, **kwargs: object):
        super().__init__(*args, **kwargs)
        if scope is not None:
            # A team admin enrols machines for their own teams only (scope: see fleet_scope).
            team = self.fields["team"]
            team.queryset = Team.objects.filter(pk__in=scope).order_by("name")
            team.required = True
            team.empty_label = None

    def clean_labels(self) -> dict[str, str]:
        text = self.cleaned_data["labels"]
        pairs = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return enrollment.parse_label_args(pairs)
        except ValidationError as exc:
            raise forms.ValidationError(" ".join(exc.messages)) from None


class AvailabilityForm(forms.Form):
    """Weekly windows as rows of weekday checkboxes and a time range, plus the idle rule.

    An end time at or before the start runs past midnight (19:00 → 07:00); 00:00 → 00:00 is the
    whole day. With "any time" chosen the rows are ignored.
    """

    mode = forms.ChoiceField(
        choices=[("any", "Any time"), ("windows", "Only during these hours")],
        widget=forms.RadioSelect,
    )
    timezone = forms.ChoiceField(choices=timezone_choices)
    idle_minutes = forms.IntegerField(
        min_value=0,
        max_value=24 * 60,
        initial=0,
        label="Only when idle for (minutes)",
        help_text="0 = don't wait for idle time.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for row in range(WINDOW_ROWS):
            self.fields[f"days_{row}"] = forms.TypedMultipleChoiceField(
                choices=list(enumerate(DAY_NAMES)),
                coerce=int,
                widget=forms.CheckboxSelectMultiple,
                required=False,
                label="Days",
            )
            self.fields[f"start_{row}"] = forms.CharField(
                required=False, widget=forms.TimeInput(attrs={"type": "time"}), label="From"
            )
            self.fields[f"end_{row}"] = forms.CharField(
                required=False, widget=forms.TimeInput(attrs={"type": "time"}), label="To"
            )

    @classmethod
    def for_node(cls, node: ComputeNode, **kwargs: object) -> "AvailabilityForm":
        """The form filled with the node's policy (`kwargs` go to the form, e.g. `auto_id`)."""
        policy = node.availability or {}
        windows = policy.get("windows") or []
        initial: dict[str, object] = {
            "mode": "windows" if windows else "any",
            "timezone": node.timezone,
            "idle_minutes": policy.get("idle_minutes", 0),
        }
        for row, window in enumerate(windows[:WINDOW_ROWS]):
            initial[f"days_{row}"] = window.get("days", [])
            initial[f"start_{row}"] = window.get("start", "")
            # "24:00" has no time-input form; 00:00 as an end means midnight, the same thing.
            initial[f"end_{row}"] = "00:00" if window.get("end") == "24:00" else window.get("end")
        return cls(initial=initial, **kwargs)

    def rows(self) -> list[dict[str, object]]:
        """The window rows' bound fields, for the template."""
        return [
            {
                "days": self[f"days_{row}"],
                "start": self[f"start_{row}"],
                "end": self[f"end_{row}"],
                "number": row + 1,
            }
            for row in range(WINDOW_ROWS)
        ]

    def clean(self) -> dict[str, object]:
        data = super().clean()
        windows = []
        if data.get("mode") == "windows":
            for row in range(WINDOW_ROWS):
                days = data.get(f"days_{row}") or []
                start = (data.get(f"start_{row}") or "").strip()[:5]
                end = (data.get(f"end_{row}") or "").strip()[:5]
                if not days and not start and not end:
                    continue
                if not days:
                    self.add_error(f"days_{row}", f"Row {row + 1}: tick at least one day.")
                    continue
                if not _HHMM.match(start) or not _HHMM.match(end):
                    self.add_error(f"start_{row}", f"Row {row + 1}: give both times as HH:MM.")
                    continue
                windows.append({"days": sorted(days), "start": start, "end": end})
            if not windows and not self.errors:
                raise forms.ValidationError(
                    "Add at least one row of days and hours, or choose “Any time”."
                )
        data["windows"] = windows
        return data


class NodeSettingsForm(forms.Form):
    name = forms.CharField(max_length=120)
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        help_text="Who lends this machine: they can reclaim it and set its hours.",
    )
    purpose = forms.CharField(max_length=200, required=False)
    node_class = forms.ChoiceField(choices=NodeClass.choices, label="Class")
    max_concurrent_tasks = forms.IntegerField(
        min_value=1, max_value=256, label="Max concurrent tasks"
    )

    def __init__(self, *args: object, scope: frozenset[int] | None = None, **kwargs: object):
        super().__init__(*args, **kwargs)
        if scope is not None:
            # A team admin hands their teams' machines to their teams' members only.
            owner = self.fields["owner"]
            owner.queryset = owner.queryset.filter(memberships__team__in=scope).distinct()

    @classmethod
    def for_node(cls, node: ComputeNode, scope: frozenset[int] | None = None) -> "NodeSettingsForm":
        return cls(
            scope=scope,
            initial={
                "name": node.name,
                "owner": node.owner_id,
                "purpose": node.purpose,
                "node_class": node.node_class,
                "max_concurrent_tasks": node.max_concurrent_tasks,
            },
        )
