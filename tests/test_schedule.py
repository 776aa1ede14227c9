"""registry.schedule: parsing, describing and stepping intervals and cron expressions.

Cron runs in local time, so those tests set the process's zone with TZ and
time.tzset (Unix only) to New York, whose 2024 clock changes were
10 March 02:00 EST -> 03:00 EDT and 3 November 02:00 EDT -> 01:00 EST.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from registry.schedule import DEFAULT_SCHEDULE, Schedule

# text, str(), describe(), interval in seconds (None for cron)
PARSED = [
    ("60s", "60s", "every minute", 60),
    ("90s", "90s", "every 1 minute 30 seconds", 90),
    ("1m", "1m", "every minute", 60),
    ("30m", "30m", "every 30 minutes", 1800),
    ("90m", "90m", "every 1 hour 30 minutes", 5400),
    ("1h", "1h", "every hour", 3600),
    ("6h", "6h", "every 6 hours", 21600),
    ("1d", "1d", "every day", 86400),
    ("2d", "2d", "every 2 days", 172800),
    ("1h30m", "1h30m", "every 1 hour 30 minutes", 5400),
    ("1d2h3m4s", "1d2h3m4s", "every 1 day 2 hours 3 minutes 4 seconds", 93784),
    ("0h1m", "0h1m", "every minute", 60),
    ("006h", "006h", "every 6 hours", 21600),
    (" 6h\n", "6h", "every 6 hours", 21600),
    ("0 3 * * *", "0 3 * * *", "cron '0 3 * * *' (local time)", None),
    ("*/15 * * * 1-5", "*/15 * * * 1-5", "cron '*/15 * * * 1-5' (local time)", None),
    ("  0   3 * *\t* ", "0 3 * * *", "cron '0 3 * * *' (local time)", None),
    ("0 9 * * mon", "0 9 * * mon", "cron '0 9 * * mon' (local time)", None),
    ("0 0 L * *", "0 0 L * *", "cron '0 0 L * *' (local time)", None),
]


@pytest.mark.parametrize(("text", "normal", "phrase", "seconds"), PARSED)
def test_parse(text: str, normal: str, phrase: str, seconds: int | None) -> None:
    schedule = Schedule.parse(text)
    assert str(schedule) == normal
    assert schedule.describe() == phrase
    expected = None if seconds is None else timedelta(seconds=seconds)
    assert schedule.interval == expected


def test_default_schedule() -> None:
    schedule = Schedule.parse(DEFAULT_SCHEDULE)
    assert schedule.interval == timedelta(hours=6)
    assert schedule.describe() == "every 6 hours"


def test_schedules_are_frozen_values() -> None:
    assert Schedule.parse(" 6h") == Schedule.parse("6h")
    assert Schedule.parse("0  3 * * *") == Schedule.parse("0 3 * * *")
    assert len({Schedule.parse("6h"), Schedule.parse("6h "), Schedule.parse("0 3 * * *")}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        Schedule.parse("6h").text = "1h"  # type: ignore[misc]


NOT_A_SCHEDULE = "is not a schedule: write an interval such as '6h'"

# text, what the message says besides naming the text
BAD = [
    ("", NOT_A_SCHEDULE),
    ("   ", NOT_A_SCHEDULE),
    ("6", NOT_A_SCHEDULE),
    ("h", NOT_A_SCHEDULE),
    ("6x", NOT_A_SCHEDULE),
    ("1.5h", NOT_A_SCHEDULE),
    ("6H", "write it as '6h' (an interval: units d h m s"),
    ("-6h", NOT_A_SCHEDULE),
    ("+6h", NOT_A_SCHEDULE),
    ("30m1h", NOT_A_SCHEDULE),  # largest unit first
    ("1h1h", NOT_A_SCHEDULE),
    ("1w", NOT_A_SCHEDULE),
    ("\u0666h", NOT_A_SCHEDULE),  # ARABIC-INDIC DIGIT SIX
    ("@daily", NOT_A_SCHEDULE),
    # An interval written with spaces or words is not taken for a short cron.
    ("6 h", "is not a schedule: write it as '6h' (an interval: units d h m s"),
    ("6 hours", "write it as '6h'"),
    ("6hours", "write it as '6h'"),
    ("1h 30m", "write it as '1h30m'"),
    ("1 hour 30 minutes", "write it as '1h30m'"),
    ("2 Days 1 hr", "write it as '2d1h'"),
    ("1 day 2 hours 3 minutes", "write it as '1d2h3m'"),  # 6 fields, still no cron
    ("every 6 hours", "it looks like an interval, written with spaces; write an interval"),
    ("30m 1h", "it looks like an interval, written with spaces"),  # no one spelling to offer
    ("59 s", "it looks like an interval, written with spaces"),
    ("6 weeks", "it has 2 fields, a cron expression has 5"),
    ("0 3 * *", "it has 4 fields, a cron expression has 5"),
    ("0 0 3 * * *", "it has 6 fields, a cron expression has 5"),  # no seconds field
    ("59s", "is too short: a schedule must be at least 60s (1m)"),
    ("0h0m59s", "is too short: a schedule must be at least 60s (1m)"),
    ("0m", "is too short: a schedule must be at least 60s (1m)"),
    ("0s", "is too short: a schedule must be at least 60s (1m)"),
    ("1000000000d", "is too long to be a schedule"),
    ("9" * 5000 + "s", "is too long to be a schedule"),  # past int()'s digit limit
    ("60 * * * *", "is invalid: Bad minute"),
    ("*/0 * * * *", "is invalid: Bad minute"),
    ("5-1 * * * *", "is invalid: Bad minute"),
    ("a b c d e", "is invalid: Bad minute"),
    ("0 24 * * *", "is invalid: Bad hour"),
    ("0 0 32 * *", "is invalid: Bad day-of-month"),
    ("0 0 30 2 *", "is invalid: Bad day-of-month"),
    ("0 0 * 13 *", "is invalid: Bad month"),
    ("0 0 * * 8", "is invalid: Bad day-of-week"),
]


@pytest.mark.parametrize(("text", "detail"), BAD)
def test_parse_errors_name_the_text(text: str, detail: str) -> None:
    with pytest.raises(ValueError) as caught:
        Schedule.parse(text)
    message = str(caught.value)
    assert f"'{text}'" in message
    assert detail in message


# text, moment, next run: offsets written out, so the zone of the result is checked too
INTERVALS = [
    ("6h", "2024-06-01T00:00:00+00:00", "2024-06-01T06:00:00+00:00"),
    ("1h30m", "2024-06-01T23:00:00+02:00", "2024-06-02T00:30:00+02:00"),
    ("90s", "2024-06-01T00:00:00.250000+00:00", "2024-06-01T00:01:30.250000+00:00"),
    ("1d", "2024-02-28T12:00:00-05:00", "2024-02-29T12:00:00-05:00"),
    ("60s", "2024-12-31T23:59:30+00:00", "2025-01-01T00:00:30+00:00"),
]


@pytest.mark.parametrize(("text", "moment", "expected"), INTERVALS)
def test_interval_next_after(text: str, moment: str, expected: str) -> None:
    after = Schedule.parse(text).next_after(datetime.fromisoformat(moment))
    assert after.isoformat() == expected


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        pytest.skip(f"no time zone data for {name}")


# Berlin's 2024 changes: 31 March 02:00 CET -> 03:00 CEST, 27 October 03:00 CEST -> 02:00 CET.
@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 3, 31, 0, 30), "2024-03-31T07:30:00+02:00"),
        (datetime(2024, 10, 27, 0, 30), "2024-10-27T05:30:00+01:00"),
    ],
)
def test_interval_counts_elapsed_time_across_a_clock_change(
    moment: datetime, expected: str
) -> None:
    berlin = _zone("Europe/Berlin")
    start = moment.replace(tzinfo=berlin)
    after = Schedule.parse("6h").next_after(start)
    assert after.isoformat() == expected
    assert after.tzinfo is berlin
    # Subtracting in UTC: with one shared tzinfo, Python subtracts wall-clock times.
    assert after.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=6)


@pytest.fixture
def new_york() -> Iterator[None]:
    """Make the process's local time New York's for one test."""
    if not hasattr(time, "tzset"):
        pytest.skip("the local time zone can only be set for a test on Unix")
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        if time.tzname != ("EST", "EDT"):
            pytest.skip("no time zone data for America/New_York")
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


# expression, moment, next run (New York local time)
CRON = [
    ("0 3 * * *", "2024-06-01T12:00:00-04:00", "2024-06-02T03:00:00-04:00"),
    ("0 3 * * *", "2024-06-01T02:59:59.999999-04:00", "2024-06-01T03:00:00-04:00"),
    # strictly after: a run at the moment itself is the one just done
    ("0 3 * * *", "2024-06-01T03:00:00-04:00", "2024-06-02T03:00:00-04:00"),
    ("0 3 * * *", "2024-06-01T03:00:00.500000-04:00", "2024-06-02T03:00:00-04:00"),
    # read in local time whatever the moment's zone; the result is local
    ("0 3 * * *", "2024-06-01T06:59:00+00:00", "2024-06-01T03:00:00-04:00"),
    ("0 3 * * *", "2024-06-01T03:00:00+09:00", "2024-06-01T03:00:00-04:00"),
    ("0 3 * * *", "2024-01-15T12:00:00-05:00", "2024-01-16T03:00:00-05:00"),
    ("*/15 * * * 1-5", "2024-06-07T23:50:00-04:00", "2024-06-10T00:00:00-04:00"),  # Fri -> Mon
    ("*/15 * * * 1-5", "2024-06-10T09:01:00-04:00", "2024-06-10T09:15:00-04:00"),
    ("0 9 * * mon", "2024-06-09T10:00:00-04:00", "2024-06-10T09:00:00-04:00"),
    ("0 0 1 1 *", "2024-12-31T23:59:00-05:00", "2025-01-01T00:00:00-05:00"),
    ("0 0 29 2 *", "2024-03-01T00:00:00-05:00", "2028-02-29T00:00:00-05:00"),
    # spring forward: a skipped time runs at the first minute that exists
    ("30 2 * * *", "2024-03-10T00:00:00-05:00", "2024-03-10T03:00:00-04:00"),
    ("30 2 * * *", "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"),
    ("*/15 * * * *", "2024-03-10T01:50:00-05:00", "2024-03-10T03:00:00-04:00"),
    ("*/15 * * * *", "2024-03-10T03:00:00-04:00", "2024-03-10T03:15:00-04:00"),
    # fall back: a repeated time runs once, at its first occurrence
    ("30 1 * * *", "2024-11-03T00:00:00-04:00", "2024-11-03T01:30:00-04:00"),
    ("30 1 * * *", "2024-11-03T01:40:00-04:00", "2024-11-04T01:30:00-05:00"),
    ("30 1 * * *", "2024-11-03T01:10:00-05:00", "2024-11-04T01:30:00-05:00"),
    ("0 * * * *", "2024-11-03T00:30:00-04:00", "2024-11-03T01:00:00-04:00"),
    ("0 * * * *", "2024-11-03T01:30:00-04:00", "2024-11-03T02:00:00-05:00"),
]


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize(("text", "moment", "expected"), CRON)
def test_cron_next_after(text: str, moment: str, expected: str) -> None:
    after = Schedule.parse(text).next_after(datetime.fromisoformat(moment))
    assert after.isoformat() == expected


@pytest.mark.parametrize("text", ["6h", "0 3 * * *"])
def test_next_after_refuses_a_naive_moment(text: str) -> None:
    with pytest.raises(ValueError, match="needs an aware datetime, not the naive 2024-06-01"):
        Schedule.parse(text).next_after(datetime(2024, 6, 1))


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize("text", ["1d", "0 0 * * *"])
def test_next_after_past_the_year_9999_overflows(text: str) -> None:
    with pytest.raises(OverflowError):
        Schedule.parse(text).next_after(datetime(9999, 12, 31, 12, tzinfo=UTC))
