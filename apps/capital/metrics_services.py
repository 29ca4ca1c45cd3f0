"""Writes around the capital metrics: baseline overrides and money rates (kept as history)."""

from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.capital.metrics_definitions import BY_KEY
from apps.capital.models import BaselineOverride, MoneyRate
from apps.cases.models import Process
from apps.people.models import Team


def _process_of(team: Team, process: Process | None) -> Process | None:
    if process is not None and process.team_id != team.pk:
        raise ValidationError("that process belongs to another team")
    return process


@transaction.atomic
def set_baseline(
    *,
    team: Team,
    metric: str,
    value: float,
    reason: str,
    by: AbstractBaseUser,
    process: Process | None = None,
) -> BaselineOverride:
    """Override the measured baseline of `metric` (in the unit it is shown in: % for shares).
    The previous override is cleared, the measured baseline stays on record, and the figure
    says who set it and why."""
    if metric not in BY_KEY:
        raise ValidationError(f"unknown metric {metric!r}")
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationError("say why the measured baseline does not fit (at least 5 characters)")
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise ValidationError("the baseline must be a number") from error
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ValidationError("the baseline must be a number of 0 or more")
    process = _process_of(team, process)
    now = timezone.now()
    BaselineOverride.objects.filter(
        team=team, process=process, metric=metric, cleared_at__isnull=True
    ).update(cleared_at=now)
    return BaselineOverride.objects.create(
        team=team, process=process, metric=metric, value=value, reason=reason, set_by=by, set_at=now
    )


def clear_baseline(*, team: Team, metric: str, process: Process | None = None) -> int:
    """Go back to the measured baseline; returns how many overrides were cleared."""
    return BaselineOverride.objects.filter(
        team=team, process=process, metric=metric, cleared_at__isnull=True
    ).update(cleared_at=timezone.now())


def _money(name: str, value: object) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation as error:
        raise ValidationError(f"{name} must be an amount like 55.00") from error
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e10"):
        raise ValidationError(f"{name} must be an amount of 0 or more")
    return amount.quantize(Decimal("0.01"))


def set_money_rate(
    *,
    team: Team,
    by: AbstractBaseUser,
    per_hour: object = None,
    per_case: object = None,
    currency: str = "EUR",
    process: Process | None = None,
) -> MoneyRate:
    """What an hour of expert time and a decided case are worth, to show value in money."""
    hour, case = _money("value per hour", per_hour), _money("value per case", per_case)
    if hour is None and case is None:
        raise ValidationError("give a value per hour, per case, or both")
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError("currency must be a three-letter code such as EUR")
    return MoneyRate.objects.create(
        team=team,
        process=_process_of(team, process),
        per_hour=hour,
        per_case=case,
        currency=currency,
        set_by=by,
        set_at=timezone.now(),
    )
