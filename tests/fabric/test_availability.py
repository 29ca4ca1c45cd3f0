# ruff: noqa: RUF001 (the product writes hour ranges with an en dash)
"""The owner's availability policy: windows in the node's timezone, idle rule, reclaim."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from apps.fabric.availability import (
    EVENINGS_AND_WEEKENDS,
    PolicyError,
    describe,
    evaluate,
    is_available,
    parse_policy,
)

BERLIN = ZoneInfo("Europe/Berlin")
NIGHTS = {"windows": [{"days": [0, 1, 2, 3, 4], "start": "19:00", "end": "07:00"}]}


def at(*args: int, tz: ZoneInfo = BERLIN) -> datetime:
    return datetime(*args, tzinfo=tz)


def test_no_windows_means_any_time():
    policy = parse_policy({})
    assert is_available(policy, at(2025, 6, 4, 12, 0), idle_seconds=None)
    assert describe(policy) == "Any time"


def test_a_night_window_crosses_midnight_into_the_next_day():
    policy = parse_policy(NIGHTS, "Europe/Berlin")
    # Wednesday 2025-06-04
    assert not is_available(policy, at(2025, 6, 4, 12, 0), None)
    assert is_available(policy, at(2025, 6, 4, 19, 0), None)
    assert is_available(policy, at(2025, 6, 4, 23, 59), None)
    assert is_available(policy, at(2025, 6, 5, 6, 59), None)  # Thursday morning, from Wednesday
    assert not is_available(policy, at(2025, 6, 5, 7, 0), None)  # the end is exclusive


def test_the_day_named_is_the_day_the_window_starts():
    policy = parse_policy(NIGHTS, "Europe/Berlin")
    # Friday 19:00 runs into Saturday morning; Sunday evening is not a start day.
    assert is_available(policy, at(2025, 6, 7, 6, 30), None)  # Saturday 06:30
    assert not is_available(policy, at(2025, 6, 8, 20, 0), None)  # Sunday 20:00
    assert not is_available(policy, at(2025, 6, 2, 6, 30), None)  # Monday 06:30 (Sunday night)


def test_windows_are_wall_clock_times_in_the_nodes_timezone():
    policy = parse_policy(NIGHTS, "Europe/Berlin")
    # 18:30 UTC on a summer Wednesday is 20:30 in Berlin: inside the window.
    assert is_available(policy, datetime(2025, 6, 4, 18, 30, tzinfo=UTC), None)
    # The same instant for a node in New York (14:30 there) is outside.
    new_york = parse_policy(NIGHTS, "America/New_York")
    assert not is_available(new_york, datetime(2025, 6, 4, 18, 30, tzinfo=UTC), None)


def test_window_ends_at_the_same_wall_clock_time_across_spring_forward():
    # Berlin moves from 02:00 CET to 03:00 CEST on Sunday 2025-03-30.
    policy = parse_policy({"windows": [{"days": [5], "start": "19:00", "end": "07:00"}]},
                          "Europe/Berlin")  # fmt: skip
    # 05:30 UTC is 07:30 CEST: the window is over (a fixed +01:00 offset would say 06:30).
    assert not is_available(policy, datetime(2025, 3, 30, 5, 30, tzinfo=UTC), None)
    # 04:30 UTC is 06:30 CEST: still inside.
    assert is_available(policy, datetime(2025, 3, 30, 4, 30, tzinfo=UTC), None)
    # 02:30 does not exist that night; 01:30 UTC is 03:30 CEST, inside.
    assert is_available(policy, datetime(2025, 3, 30, 1, 30, tzinfo=UTC), None)


def test_window_ends_at_the_same_wall_clock_time_across_fall_back():
    # Berlin moves from 03:00 CEST back to 02:00 CET on Sunday 2025-10-26: that night is 13 h.
    policy = parse_policy({"windows": [{"days": [5], "start": "19:00", "end": "07:00"}]},
                          "Europe/Berlin")  # fmt: skip
    assert is_available(policy, datetime(2025, 10, 26, 5, 30, tzinfo=UTC), None)  # 06:30 CET
    assert not is_available(policy, datetime(2025, 10, 26, 6, 0, tzinfo=UTC), None)  # 07:00 CET
    # Both 02:30s of the repeated hour are inside.
    assert is_available(policy, datetime(2025, 10, 26, 0, 30, tzinfo=UTC), None)
    assert is_available(policy, datetime(2025, 10, 26, 1, 30, tzinfo=UTC), None)


def test_whole_days_and_evenings_combine():
    policy = parse_policy(EVENINGS_AND_WEEKENDS, "Europe/Berlin")
    assert is_available(policy, at(2025, 6, 8, 13, 0), None)  # Sunday afternoon
    assert is_available(policy, at(2025, 6, 8, 23, 59), None)  # Sunday, last minute
    assert not is_available(policy, at(2025, 6, 9, 8, 0), None)  # Monday morning
    assert describe(policy) == "Mon–Fri 19:00–07:00 and all weekend (Europe/Berlin)"


def test_idle_rule_needs_enough_reported_idle_time():
    policy = parse_policy({"idle_minutes": 15})
    now = at(2025, 6, 4, 12, 0)
    assert not is_available(policy, now, idle_seconds=None)
    result = evaluate(policy, now, idle_seconds=600)
    assert not result.available
    assert result.reason == "in use: idle 10 of 15 minutes needed"
    assert is_available(policy, now, idle_seconds=900)
    assert describe(policy) == "Any time, only after 15 minutes idle"


def test_reclaim_stops_new_work_whatever_the_windows_say():
    policy = parse_policy({"reclaim": True})
    result = evaluate(policy, at(2025, 6, 4, 12, 0), idle_seconds=10_000)
    assert not result.available
    assert "reclaimed" in result.reason
    assert describe(policy).startswith("Reclaimed by its owner")


def test_outside_hours_reason_names_the_hours():
    policy = parse_policy(NIGHTS, "Europe/Berlin")
    result = evaluate(policy, at(2025, 6, 4, 12, 0), None)
    assert result.reason == "outside its hours (Mon–Fri 19:00–07:00)"


@pytest.mark.parametrize(
    ("windows", "text"),
    [
        ([{"days": [0, 2, 4], "start": "08:00", "end": "12:00"}], "Mon, Wed, Fri 08:00–12:00"),
        ([{"days": [0, 1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00"}],
         "every day 22:00–06:00"),
        ([{"days": [6], "start": "00:00", "end": "00:00"}], "all day Sun"),
        ([{"days": [5, 6], "start": "10:00", "end": "24:00"}], "Sat, Sun 10:00–24:00"),
    ],
)  # fmt: skip
def test_descriptions_read_as_plain_words(windows, text):
    assert describe(parse_policy({"windows": windows})) == f"{text[0].upper()}{text[1:]} (UTC)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"windows": [{"days": [7], "start": "19:00", "end": "07:00"}]}, "windows[0].days"),
        ({"windows": [{"days": [1], "start": "7pm", "end": "07:00"}]}, "windows[0].start"),
        ({"windows": [{"days": [1], "start": "24:00", "end": "07:00"}]}, "before 24:00"),
        ({"idle_minutes": -1}, "idle_minutes"),
        ({"reclaim": "yes"}, "reclaim"),
        ({"hours": []}, "unknown availability setting"),
    ],
)
def test_bad_policies_are_refused_naming_the_part(data, message):
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(data)


def test_unknown_timezone_is_refused():
    with pytest.raises(PolicyError, match="unknown timezone"):
        parse_policy({}, "Mars/Olympus_Mons")


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(parse_policy({}), datetime(2025, 6, 4, 12, 0), None)  # noqa: DTZ001
