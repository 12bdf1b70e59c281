"""Time zones and instants. All stored instants are UTC; local times are derived."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class BadTimeZone(ValueError):
    """An IANA time zone name we do not know."""


#: The clock utcnow() reads: the wall clock, or a simulated one (`dash demo`) set by use_clock.
_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    if _clock is not None:
        return _clock()
    return datetime.now(UTC)


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Make utcnow() read `clock` (aware UTC instants) inside the block: simulated time for
    the demo, so every action stamps and compares with the simulation's "now"."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`, rejecting abbreviations like 'EST' that mislead."""
    cleaned = (name or "").strip()
    if not cleaned or cleaned not in _known_zones():
        raise BadTimeZone(cleaned)
    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - defensive
        raise BadTimeZone(cleaned) from exc


_ZONES: frozenset[str] | None = None


def _known_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(z for z in available_timezones() if "/" in z or z == "UTC")
    return _ZONES


def local_to_utc(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `tz`.

    A wall time that does not exist (spring forward gap) moves forward by the gap;
    an ambiguous one (fall back) takes the first occurrence (fold=0), as people expect.
    """
    z = zone(tz)
    naive = datetime.combine(day, at)
    local = naive.replace(tzinfo=z, fold=0)
    # Round-trip to detect a non-existent time in a DST gap.
    roundtrip = local.astimezone(UTC).astimezone(z)
    if roundtrip.replace(tzinfo=None) != naive:
        local = (naive + timedelta(hours=1)).replace(tzinfo=z)
    return local.astimezone(UTC)


def to_local(instant: datetime, tz: str) -> datetime:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(zone(tz))


def local_date(instant: datetime, tz: str) -> date:
    return to_local(instant, tz).date()


def in_quiet_hours(instant: datetime, tz: str, start: time, end: time) -> bool:
    """Whether `instant` falls in the quiet window [start, end) local, which may wrap midnight."""
    if start == end:
        return False
    t = to_local(instant, tz).time()
    if start < end:
        return start <= t < end
    return t >= start or t < end


def end_of_quiet_hours(instant: datetime, tz: str, start: time, end: time) -> datetime:
    """The first instant at or after `instant` that is outside quiet hours."""
    if not in_quiet_hours(instant, tz, start, end):
        return instant
    local = to_local(instant, tz)
    day = local.date()
    if start > end and local.time() >= start:
        day = day + timedelta(days=1)
    return local_to_utc(day, end, tz)
