"""Send-rate limits per bot, chat, group and sender number, all from settings.

Each limit is "at most N sends in any window of W seconds", counted on a sliding log of
recent send instants. A continuously refilling bucket would allow a full burst plus the
refill inside one window (21+ sends to a group in a minute); providers count per window,
so we do too. Bulk sends may use only `bulk_share` of each limit, so replies (which take
the rest) never wait behind a broadcast.

One limiter lives in one delivery worker process; `dash serve` runs one worker.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dash.settings import Settings

# Added to every window, for clock granularity. The provider clocks a send when it arrives;
# a send counts here from when it started until it settles, then from when it landed (its
# answer came back, so it had arrived): the next one cannot reach the provider inside the
# window of the last. A wider margin slows the pacing by one margin per window.
WINDOW_MARGIN_SECONDS = 0.01
#: A send not settled after this long (its ticket was lost) stops holding its place.
IN_FLIGHT_HOLD_SECONDS = 120.0


@dataclass(frozen=True)
class Limit:
    """At most `count` sends in any `window` seconds for one key."""

    key: str
    count: int
    window: float

    @classmethod
    def per_second(cls, key: str, rate: float) -> Limit:
        """`rate` sends a second as a whole count per window (0.5/s → 1 per 2 s)."""
        count = max(1, int(rate))
        return cls(key, count, count / rate)

    @classmethod
    def per_minute(cls, key: str, rate: float) -> Limit:
        count = max(1, int(rate))
        return cls(key, count, 60.0 * count / rate)


class _Stamp:
    """One send's instant under one limit; `settled` once its answer came back."""

    __slots__ = ("at", "settled")

    def __init__(self, at: float) -> None:
        self.at = at
        self.settled = False

    def counted_at(self, now: float) -> float:
        """A send still out counts as happening now (it may arrive at any moment), or at
        its reserved instant if that is later."""
        if self.settled or now - self.at > IN_FLIGHT_HOLD_SECONDS:
            return self.at
        return max(now, self.at)


class Ticket:
    """One send counted under some limits; `settle()` moves its instant to when it landed.

    The provider counts a send when it arrives, which can be well after we started it (a
    new connection, a busy pool). Until it settles it counts as "now"; settling on
    completion keeps the window honest.
    """

    def __init__(
        self, stamps: list[_Stamp], clock: Callable[[], float], not_before: float = 0.0
    ) -> None:
        self._stamps = stamps
        self._clock = clock
        #: The clock reading before which this send may not start (a reserved place).
        self.not_before = not_before

    def delay(self) -> float:
        """Seconds until the send may start (0 when it may go now)."""
        return max(0.0, self.not_before - self._clock())

    def settle(self) -> None:
        now = self._clock()
        for stamp in self._stamps:
            stamp.at = max(stamp.at, now)
            stamp.settled = True


class RateLimiter:
    """Sliding-window counters keyed by strings such as "<channel>" or "<channel>:chat:42"."""

    def __init__(
        self, bulk_share: float = 0.8, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bulk_share = bulk_share
        self.clock = clock
        self._sent: dict[str, deque[_Stamp]] = {}
        self._paused_until: dict[str, float] = {}

    def _allowed_count(self, limit: Limit, bulk: bool) -> int:
        if not bulk:
            return limit.count
        return max(1, math.floor(limit.count * self.bulk_share))

    def _log(self, limit: Limit, now: float) -> deque[_Stamp]:
        """`limit`'s send log, without the landed sends that left its window."""
        log = self._sent.setdefault(limit.key, deque())
        horizon = now - (limit.window + WINDOW_MARGIN_SECONDS)
        while log and log[0].settled and log[0].at <= horizon:
            log.popleft()
        return log

    def _recent(self, limit: Limit, now: float) -> list[float]:
        """Instants of sends still inside `limit`'s window, oldest first."""
        horizon = now - (limit.window + WINDOW_MARGIN_SECONDS)
        log = self._log(limit, now)
        return sorted(t for t in (stamp.counted_at(now) for stamp in log) if t > horizon)

    def headroom(self, limit: Limit, *, bulk: bool = False, within: float = 0.0) -> int:
        """How many more sends `limit` allows right now, or by `within` seconds from now
        (0 while paused until later)."""
        now = self.clock()
        if self._paused_until.get(limit.key, 0.0) > now + within:
            return 0
        free_from = now + within - (limit.window + WINDOW_MARGIN_SECONDS)
        held = sum(1 for stamp in self._log(limit, now) if stamp.counted_at(now) > free_from)
        return max(0, self._allowed_count(limit, bulk) - held)

    def wait_time(self, limits: Sequence[Limit], *, bulk: bool = False) -> float:
        """Seconds until one more send under every limit in `limits` is allowed (0 = now)."""
        now = self.clock()
        wait = 0.0
        for limit in limits:
            wait = max(wait, self._paused_until.get(limit.key, 0.0) - now)
            allowed = self._allowed_count(limit, bulk)
            if len(self._log(limit, now)) < allowed:
                continue  # fewer sends logged than allowed: no need to sort them
            recent = self._recent(limit, now)
            if len(recent) >= allowed:
                # The send that must leave the window before another fits.
                oldest = recent[len(recent) - allowed]
                wait = max(wait, oldest + limit.window + WINDOW_MARGIN_SECONDS - now)
        return max(0.0, wait)

    def try_acquire(
        self, limits: Sequence[Limit], *, bulk: bool = False, within: float = 0.0
    ) -> Ticket | None:
        """Count one send under every limit if all allow it now, or reserve the first place
        they allow within `within` seconds (the ticket's `delay()`); else None, nothing counted.

        A reserved place counts as taken from now on, so places are handed out one after
        the other, each as it frees.
        """
        wait = self.wait_time(limits, bulk=bulk)
        if wait > within:
            return None
        at = self.clock() + wait
        stamps: list[_Stamp] = []
        for limit in limits:
            stamp = _Stamp(at)
            self._sent.setdefault(limit.key, deque()).append(stamp)
            stamps.append(stamp)
        return Ticket(stamps, self.clock, not_before=at)

    def pause(self, key: str, seconds: float) -> None:
        """Stop every send under `key` for `seconds` (a provider said "slow down")."""
        until = self.clock() + seconds
        self._paused_until[key] = max(self._paused_until.get(key, 0.0), until)

    def forget_idle(self, older_than: float = 120.0) -> None:
        """Drop logs of keys not used for a while, so chats seen once do not pile up."""
        now = self.clock()
        for key in [
            k for k, log in self._sent.items() if not log or log[-1].at < now - older_than
        ]:
            del self._sent[key]
        for key in [k for k, t in self._paused_until.items() if t < now]:
            del self._paused_until[key]


def channel_limit(settings: Settings, channel: str) -> Limit | None:
    """The limit every send on `channel` counts against (the bot, the sender number)."""
    limits = limits_for(settings, channel, "")
    return limits[0] if limits else None


def limits_for(settings: Settings, channel: str, address: str) -> list[Limit]:
    """The limits one send to `address` on `channel` counts against (its channel type's)."""
    from bots.registry import type_for

    try:
        channel_type = type_for(channel)
    except KeyError:
        return []
    return channel_type.limits(settings, address)
