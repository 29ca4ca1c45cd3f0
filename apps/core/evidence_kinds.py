"""Evidence kinds: how a person's work in one app is measured as evidence of a skill.

The `skills` app (top floor) grants skill levels by evidence rules stored as data: a kind and its
parameters. The kinds themselves belong to the app that owns the records they count, which
registers them here from a module named `skill_evidence.py` (found by `autodiscover()`, the way
Django's admin finds `admin.py`). A new app (a data catalog, say) adds its kinds by shipping its own
`skill_evidence.py`: neither `skills` nor this module changes.

A kind's `measure(person, params, since, until)` returns a `Measurement`: how many qualifying rows
(`count`), a figure when the kind has one (an agreement share, a kappa, a precision, an uptime),
and links to the rows it counted. An evidence rule then compares those with its thresholds
(`min_count`, `min_value`, `period_days`), which are the same for every kind.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError

# How many rows an evidence item links to (the count says how many there were in all).
MAX_REFS = 10


@dataclass(frozen=True)
class Param:
    """A parameter of a kind: `process` (a process slug), `text`, `float` (0 to 1) or `bool`."""

    name: str
    type: str
    help: str = ""
    default: Any = None


@dataclass(frozen=True)
class Ref:
    label: str
    url: str


@dataclass
class Measurement:
    count: int
    value: float | None = None
    refs: list[Ref] = field(default_factory=list)


@dataclass(frozen=True)
class EvidenceKind:
    key: str  # "<app label>.<name>", stored in evidence rules
    label: str  # what is counted, e.g. "Decisions that agree with the final label"
    # What the figure is, e.g. "agreement" ("" when the kind has no figure, only a count).
    value_label: str
    measure: Callable[..., Measurement]
    params: tuple[Param, ...] = ()
    # A verb phrase for "what's missing": "decide {n} more cases" is built from it: {n} and {v}.
    todo: str = "{n} more"
    owner: str = ""

    def clean_params(self, raw: dict[str, Any] | None) -> dict[str, Any]:
        """The parameters, typed and defaulted; ValidationError naming an unknown or bad one."""
        raw = dict(raw or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValidationError(f"{self.key} takes no parameter {', '.join(unknown)}.")
        clean: dict[str, Any] = {}
        for param in self.params:
            value = raw.get(param.name, param.default)
            if value in (None, ""):
                if param.default is not None:
                    clean[param.name] = param.default
                continue
            clean[param.name] = _typed(self.key, param, value)
        return clean


def _typed(key: str, param: Param, value: Any) -> Any:
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"true", "1", "yes"}:
            return True
        if str(value).lower() in {"false", "0", "no"}:
            return False
        raise ValidationError(f"{key}: {param.name} must be true or false.")
    if param.type == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{key}: {param.name} must be a number.") from None
        if not 0 <= number <= 1:
            raise ValidationError(f"{key}: {param.name} must be between 0 and 1.")
        return number
    if not isinstance(value, str) or len(value) > 100:
        raise ValidationError(f"{key}: {param.name} must be a short text.")
    if param.type == "process":
        from apps.cases.models import Process

        if not Process.objects.filter(slug=value).exists():
            raise ValidationError(f"{key}: there is no process {value!r}.")
    return value


_kinds: dict[str, EvidenceKind] = {}


def register_evidence_kind(kind: EvidenceKind) -> None:
    _kinds[kind.key] = kind


def evidence_kind(key: str) -> EvidenceKind | None:
    return _kinds.get(key)


def evidence_kinds() -> list[EvidenceKind]:
    return sorted(_kinds.values(), key=lambda k: k.key)


def autodiscover() -> None:
    """Import every installed app's `skill_evidence` module (each registers its kinds)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("skill_evidence")


def between(field: str, since: datetime | None, until: datetime) -> dict[str, datetime]:
    """Lookups keeping `field` in [since, until) (since None: from the beginning)."""
    bounds = {f"{field}__lt": until}
    if since is not None:
        bounds[f"{field}__gte"] = since
    return bounds
