"""Auto-update schedules: when ruvector next checks the registry for updates.

ruvector.toml writes a schedule as one string, in one of two forms:

    "6h", "30m", "90s", "1d", "1h30m"
        an interval, counted from the end of the last check; units d h m s,
        largest first, no spaces; at least 60 seconds, so that a typo cannot
        make ruvector poll the registry in a tight loop
    "0 3 * * *", "*/15 * * * 1-5"
        a 5-field cron expression (minute hour day-of-month month
        day-of-week), read by cronsim and evaluated in the machine's local
        time, as the crontab it looks like would be

Local time has daylight-saving changes. A cron time that the clocks skip
when they go forward runs at the first minute that exists after it (02:30
runs at 03:00, as Debian cron does); a time the clocks repeat when they go
back runs once, at its first occurrence, and an hourly or finer schedule
has no runs during the repeated hour. Intervals are elapsed time: "6h"
across a change is still six hours.

Everything takes and returns aware datetimes; nothing here reads the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

DEFAULT_SCHEDULE = "6h"
MIN_INTERVAL = timedelta(seconds=60)

_FORMS = (
    "write an interval such as '6h', '30m' or '1h30m' (units d h m s, largest first, "
    "no spaces) or a 5-field cron expression such as '0 3 * * *'"
)

# [0-9], not \d: \d also matches other scripts' digits, which int() accepts.
_INTERVAL = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_UNIT_SECONDS = (86400, 3600, 60, 1)  # the groups of _INTERVAL, in order
_UNIT_NAMES = ("day", "hour", "minute", "second")

_CRON_FIELDS = 5

# Unit words and abbreviations people write, and the unit each stands for.
_UNIT_WORDS = {
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
}
_WORD = re.compile(r"[a-z]+")
# "6 hours", "1h 30m", "1 hour 30 minutes": a number and a word, repeated.
_SPOKEN = re.compile(r"(?:[0-9]+\s*[a-z]+\s*)+")
_SPOKEN_PART = re.compile(r"([0-9]+)\s*([a-z]+)")


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; build one with `Schedule.parse`.

    `text` is the schedule as written, trimmed (cron fields single-spaced);
    `interval` is its length, or None when `text` is a cron expression.
    """

    text: str
    interval: timedelta | None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse an interval or a 5-field cron expression (see the module docstring).

        Raises ValueError naming `text` and saying what is accepted.
        """
        fields = text.split()
        if len(fields) <= 1:
            return cls(text.strip(), _parse_interval(text))
        if len(fields) != _CRON_FIELDS and _looks_like_interval(text):
            # "6 hours", "1h 30m": an interval with spaces, not a short cron.
            hint = (
                _compact_hint(text) or f"it looks like an interval, written with spaces; {_FORMS}"
            )
            raise ValueError(f"'{text}' is not a schedule: {hint}")
        if len(fields) != _CRON_FIELDS:
            raise ValueError(
                f"'{text}' is not a schedule: it has {len(fields)} fields, "
                f"a cron expression has {_CRON_FIELDS}; {_FORMS}"
            )
        expression = " ".join(fields)
        try:
            # Any start will do: the constructor parses and checks every field.
            CronSim(expression, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"cron expression '{text}' is invalid: {exc}") from exc
        return cls(expression, None)

    def next_after(self, moment: datetime) -> datetime:
        """When to check next, given that `moment` (aware) was the last check or now.

        The result is aware and strictly after `moment`: in `moment`'s time
        zone for an interval, in local time for cron.

        Raises ValueError if `moment` is naive, and OverflowError if the next
        run would fall after the year 9999.
        """
        if moment.utcoffset() is None:
            raise ValueError(f"a schedule needs an aware datetime, not the naive {moment}")
        if self.interval is None:
            return _next_cron(self.text, moment)
        # Add in UTC: aware arithmetic in a zone with DST adds wall-clock
        # time, which would make "6h" five or seven hours on change days.
        later = moment.astimezone(UTC) + self.interval
        return later.astimezone(moment.tzinfo)

    def describe(self) -> str:
        """A phrase for people: "every 6 hours", "cron '0 3 * * *' (local time)"."""
        if self.interval is None:
            return f"cron '{self.text}' (local time)"
        return f"every {_spell(int(self.interval.total_seconds()))}"

    def __str__(self) -> str:
        return self.text


def _parse_interval(text: str) -> timedelta:
    """The length of an interval such as "1h30m". Raises ValueError naming `text`."""
    written = text.strip()
    match = _INTERVAL.fullmatch(written)
    # Every group is optional, so the empty string matches: reject it here.
    if match is None or not written:
        raise ValueError(f"'{text}' is not a schedule: {_compact_hint(written) or _FORMS}")
    try:
        numbers = (int(n) for n in match.groups("0"))
        interval = timedelta(
            seconds=sum(n * size for n, size in zip(numbers, _UNIT_SECONDS, strict=True))
        )
    # ValueError: more digits than int() will read (sys.get_int_max_str_digits).
    except (OverflowError, ValueError):
        raise ValueError(f"interval '{text}' is too long to be a schedule") from None
    if interval < MIN_INTERVAL:
        raise ValueError(
            f"interval '{text}' is too short: a schedule must be at least "
            f"{int(MIN_INTERVAL.total_seconds())}s (1m)"
        )
    return interval


def _looks_like_interval(text: str) -> bool:
    """Whether `text` has a number and a unit word ("6 hours", "1h 30m")."""
    has_unit = any(word in _UNIT_WORDS for word in _WORD.findall(text.lower()))
    return has_unit and any(c in "0123456789" for c in text)


def _compact_hint(text: str) -> str | None:
    """How to write "1 hour 30 minutes" or "6H" as an interval ("1h30m", "6h"); None if unsure."""
    compact = _compact(text)
    if compact is None:
        return None
    return f"write it as '{compact}' (an interval: units d h m s, largest first, no spaces)"


def _compact(text: str) -> str | None:
    """The interval "1 hour 30 minutes" spelled "1h30m", if valid that way; else None."""
    written = text.strip().lower()
    if not _SPOKEN.fullmatch(written):
        return None
    try:
        compact = "".join(n + _UNIT_WORDS[word] for n, word in _SPOKEN_PART.findall(written))
    except KeyError:
        return None  # a word that is no unit: "every", "weeks"
    # Units out of order or repeated, or too short: no one spelling to offer.
    # Not empty, and matched first: _parse_interval comes back here only
    # for what does not match.
    if not _INTERVAL.fullmatch(compact):
        return None
    try:
        _parse_interval(compact)
    except ValueError:
        return None
    return compact


def _spell(seconds: int) -> str:
    """A length in words: "6 hours", "1 hour 30 minutes", and "hour" for a lone 1 hour."""
    words = []
    for size, name in zip(_UNIT_SECONDS, _UNIT_NAMES, strict=True):
        count, seconds = divmod(seconds, size)
        if count:
            words.append(f"{count} {name}" if count == 1 else f"{count} {name}s")
    if len(words) == 1 and words[0].startswith("1 "):
        return words[0].removeprefix("1 ")  # "every hour", not "every 1 hour"
    return " ".join(words)


def _next_cron(expression: str, moment: datetime) -> datetime:
    """The first run of `expression`, read in local time, strictly after `moment`.

    cronsim steps through naive local wall-clock times, and each is converted
    by the OS's own local-time rules. (cronsim handles DST itself only with a
    tzinfo for the local zone, which the standard library cannot name
    portably; `datetime.astimezone()` gives just a fixed offset.)
    """
    start = moment.astimezone().replace(tzinfo=None)
    for wall in CronSim(expression, start):
        run = _local(wall)
        # A wall time the clocks repeat maps to its first occurrence, which
        # is before `moment` when `moment` is in the repeated hour.
        if run > moment:
            return run
    # cronsim gives up after 50 years without a match. The rarest 5-field
    # schedules (a weekday that must fall on 29 February) wait up to 40.
    raise ValueError(f"cron expression '{expression}' has no run after {moment}")


def _local(wall: datetime) -> datetime:
    """The naive local time `wall` as an aware datetime (a fixed-offset tzinfo).

    A wall time skipped by DST does not survive the round trip (the OS maps
    it to another time), so move to the first minute that does exist.
    """
    while (run := wall.astimezone()).replace(tzinfo=None) != wall:
        wall += timedelta(minutes=1)
    return run
