"""ISO-8601 dates and datetimes stored as TEXT (what SQLite's ``date()``,
``datetime()``, ``strftime('%Y-%m-%dT%H:%M:%f')`` and ``CURRENT_TIMESTAMP`` write) as
numbers a model can use: year, month, day, day of week, day of year, ordinal day, and
the hour when the column holds times.

A time zone suffix (``Z``, ``+02:00``) is accepted and the time kept as written (the
wall-clock hour and day are what the parts describe). The same function turns a value
into its parts at training and at prediction, so both see identical numbers.
"""

from __future__ import annotations

import datetime
import math
import re

DATE_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "ordinal")
TIME_PARTS = ("hour",)
PARTS = DATE_PARTS + TIME_PARTS
FORMAT = "YYYY-MM-DD, optionally followed by a time (T or space) HH:MM[:SS[.fff]]"

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


def parse(value: object) -> tuple[datetime.date, int | None] | None:
    """The date and hour (None: a date without a time) a TEXT value writes; None when it
    is not an ISO-8601 date (or names a day that does not exist, 2023-02-30)."""
    if not isinstance(value, str):
        return None
    match = _ISO.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        date = datetime.date(int(year), int(month), int(day))
    except ValueError:
        return None
    if hour is None:
        return date, None
    if int(hour) > 23 or int(minute) > 59 or (second is not None and int(second) > 59):
        return None
    return date, int(hour)


def parts_for(values: list[object]) -> tuple[str, ...] | None:
    """The parts a column's non-NULL training values call for (the hour only when one of
    them has a time), or None when any of them is not an ISO-8601 date."""
    timed = False
    seen = False
    for value in values:
        if value is None or value == "":
            continue
        parsed = parse(value)
        if parsed is None:
            return None
        seen = True
        timed = timed or parsed[1] is not None
    if not seen:
        return None
    return PARTS if timed else DATE_PARTS


def mostly_dates(values: list[object]) -> object | None:
    """The value that keeps a column of dates from being read as dates: the first one
    that is not a date, when only a few are not (one, or at most a twentieth of the
    present values); None otherwise."""
    present = [value for value in values if value is not None and value != ""]
    strangers = [value for value in present if parse(value) is None]
    if not strangers or len(strangers) > max(1, len(present) // 20):
        return None
    return strangers[0]


def encode(value: object, parts: tuple[str, ...] | list[str]) -> list[float] | None:
    """``parts`` of one value (NaN each for NULL or ''), or None when it is not a date.
    A date without a time is at hour 0, as SQLite's ``datetime('2024-05-01')`` reads it."""
    if value is None or value == "":
        return [math.nan] * len(parts)
    parsed = parse(value)
    if parsed is None:
        return None
    date, hour = parsed
    values = {
        "year": date.year,
        "month": date.month,
        "day": date.day,
        "day_of_week": date.weekday(),  # Monday 0 ... Sunday 6
        "day_of_year": date.timetuple().tm_yday,
        "ordinal": date.toordinal(),  # days since 0001-01-01 (day 1)
        "hour": hour or 0,
    }
    return [float(values[part]) for part in parts]
