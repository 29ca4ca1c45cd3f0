"""Owner availability policy: when a node may take new work. Pure (standard library only).

A policy is stored as JSON on the node:

    {"windows": [{"days": [0, 1, 2, 3, 4], "start": "19:00", "end": "07:00"},
                 {"days": [5, 6], "start": "00:00", "end": "24:00"}],
     "idle_minutes": 15, "reclaim": false}

Days are Monday=0 … Sunday=6 and name the day a window *starts*; a window whose end is not after
its start runs past midnight into the next day (start == end is a whole day). Times are wall-clock
times in the node's timezone, so "19:00-07:00" stays 19:00-07:00 across daylight-saving changes.
No windows means any time. `reclaim` is the owner's "stop new work now" switch and beats the rest.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DASH = "\u2013"  # an en dash, as in "Mon–Fri 19:00–07:00"  # noqa: RUF003
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
MAX_WINDOWS = 14
MAX_IDLE_MINUTES = 24 * 60


class PolicyError(ValueError):
    """The policy JSON is malformed; the message says which part and why."""


@dataclass(frozen=True)
class Window:
    days: tuple[int, ...]
    start: str  # "HH:MM"
    end: str  # "HH:MM", "24:00" allowed

    # Cached: the scheduler evaluates every node's windows for every task it places.
    @cached_property
    def start_minute(self) -> int:
        return _minutes(self.start)

    @cached_property
    def length_minutes(self) -> int:
        start, end = _minutes(self.start), _minutes(self.end)
        return end - start if end > start else end + 24 * 60 - start

    @cached_property
    def day_set(self) -> frozenset[int]:
        return frozenset(self.days)

    @property
    def all_day(self) -> bool:
        return self.length_minutes == 24 * 60

    def to_json(self) -> dict[str, object]:
        return {"days": list(self.days), "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Policy:
    windows: tuple[Window, ...] = ()
    idle_minutes: int = 0
    reclaim: bool = False
    timezone: str = "UTC"
    _zone: ZoneInfo = field(default=ZoneInfo("UTC"), repr=False, compare=False)

    @cached_property
    def outside_reason(self) -> str:
        return f"outside its hours ({describe_windows(self)})"

    def to_json(self) -> dict[str, object]:
        """The stored form (the timezone lives on the node, not in the JSON)."""
        return {
            "windows": [w.to_json() for w in self.windows],
            "idle_minutes": self.idle_minutes,
            "reclaim": self.reclaim,
        }


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str  # why not, or what makes it available; one readable line


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(
            f"unknown timezone {name!r}; use an IANA name like Europe/Berlin"
        ) from None


def parse_policy(data: object, timezone: str = "UTC") -> Policy:
    """A Policy from its JSON form; raises PolicyError naming the bad part."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError("the availability policy must be an object")
    unknown = set(data) - {"windows", "idle_minutes", "reclaim"}
    if unknown:
        raise PolicyError(f"unknown availability setting(s): {', '.join(sorted(unknown))}")
    raw_windows = data.get("windows", [])
    if not isinstance(raw_windows, list):
        raise PolicyError("windows must be a list")
    if len(raw_windows) > MAX_WINDOWS:
        raise PolicyError(f"at most {MAX_WINDOWS} windows")
    windows = [_parse_window(raw, index) for index, raw in enumerate(raw_windows)]
    idle = data.get("idle_minutes", 0)
    if isinstance(idle, bool) or not isinstance(idle, int) or not 0 <= idle <= MAX_IDLE_MINUTES:
        raise PolicyError(f"idle_minutes must be a whole number from 0 to {MAX_IDLE_MINUTES}")
    reclaim = data.get("reclaim", False)
    if not isinstance(reclaim, bool):
        raise PolicyError("reclaim must be true or false")
    return Policy(
        windows=tuple(windows),
        idle_minutes=idle,
        reclaim=reclaim,
        timezone=timezone,
        _zone=zone(timezone),
    )


def _parse_window(raw: object, index: int) -> Window:
    where = f"windows[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object with days, start and end")
    days = raw.get("days")
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days)
    ):
        raise PolicyError(f"{where}.days must be a non-empty list of weekdays 0 (Mon) to 6 (Sun)")
    start, end = raw.get("start"), raw.get("end")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, str) or not _TIME.match(value):
            raise PolicyError(f"{where}.{name} must be a time HH:MM, got {value!r}")
    if start == "24:00":
        raise PolicyError(f"{where}.start must be before 24:00")
    return Window(days=tuple(sorted(set(days))), start=start, end=end)  # type: ignore[arg-type]


def _in_window(window: Window, weekday: int, minute: int) -> bool:
    """`weekday` and `minute` (of the day) are wall-clock; a window is at most 24 h, so it
    started today or yesterday. Minute arithmetic on the wall clock is what a person means by
    "19:00-07:00", whatever a daylight-saving change does to the instants."""
    for back in (0, 1):
        if (weekday - back) % 7 not in window.day_set:
            continue
        begin = window.start_minute - back * 24 * 60
        if begin <= minute < begin + window.length_minutes:
            return True
    return False


AVAILABLE = Availability(True, "available")
RECLAIMED = Availability(False, "reclaimed by its owner: no new work until released")


def evaluate(policy: Policy, now: datetime, idle_seconds: float | None) -> Availability:
    """Whether the node may take new work at `now` (timezone-aware), and why (not)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if policy.reclaim:
        return RECLAIMED
    if policy.windows:
        # Wall-clock comparison: a DST jump moves the UTC instants of "07:00", not the rule.
        local = now.astimezone(policy._zone)
        weekday, minute = local.weekday(), local.hour * 60 + local.minute
        if not any(_in_window(w, weekday, minute) for w in policy.windows):
            return Availability(False, policy.outside_reason)
    if policy.idle_minutes:
        if idle_seconds is None:
            return Availability(False, "waits for idle time, and the agent reported none yet")
        if idle_seconds < policy.idle_minutes * 60:
            return Availability(
                False,
                f"in use: idle {int(idle_seconds // 60)} of {policy.idle_minutes} minutes needed",
            )
    return AVAILABLE


def is_available(policy: Policy, now: datetime, idle_seconds: float | None) -> bool:
    return evaluate(policy, now, idle_seconds).available


def _day_groups(days: tuple[int, ...]) -> str:
    """(0,1,2,3,4) → "Mon-Fri"; (0,2,4) → "Mon, Wed, Fri" (ranges use an en dash)."""
    if len(days) == 7:
        return "every day"
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}{DASH}{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[d] for d in run)
    return ", ".join(parts)


def _describe_window(window: Window) -> str:
    if window.all_day:
        if window.days == (5, 6):
            return "all weekend"
        if len(window.days) == 7:
            return "all day, every day"
        return f"all day {_day_groups(window.days)}"
    return f"{_day_groups(window.days)} {window.start}{DASH}{window.end}"


def describe_windows(policy: Policy) -> str:
    if not policy.windows:
        return "any time"
    return " and ".join(_describe_window(w) for w in policy.windows)


def describe(policy: Policy) -> str:
    """The policy in words, e.g. "Mon-Fri 19:00-07:00 and all weekend (Europe/Berlin), only
    after 15 minutes idle"."""
    text = describe_windows(policy)
    if policy.windows:
        text += f" ({policy.timezone})"
    else:
        text = "Any time"
    if policy.idle_minutes:
        text += f", only after {policy.idle_minutes} minute{'s' if policy.idle_minutes != 1 else ''} idle"
    text = text[0].upper() + text[1:]
    if policy.reclaim:
        text = f"Reclaimed by its owner (otherwise: {text})"
    return text


# Owner-friendly defaults: a workstation is someone's desk, so evenings and weekends only.
EVENINGS_AND_WEEKENDS = {
    "windows": [
        {"days": [0, 1, 2, 3, 4], "start": "19:00", "end": "07:00"},
        {"days": [5, 6], "start": "00:00", "end": "24:00"},
    ],
    "idle_minutes": 0,
    "reclaim": False,
}
ANY_TIME = {"windows": [], "idle_minutes": 0, "reclaim": False}
