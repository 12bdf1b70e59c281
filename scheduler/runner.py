"""APScheduler 3 wiring: one interval job that runs a tick.

The agenda itself is our data (scheduler.agenda); APScheduler only supplies the heartbeat. One
job with max_instances=1 and coalesce=True, so a slow tick is never overlapped by the next and
missed beats collapse into one. A tick that fails (the database is down) is logged and the
next beat tries again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from dash.context import AppContext
from dash.timeutil import utcnow
from scheduler.tick import DispatchReport, dispatch

log = logging.getLogger("scheduler.runner")

JOB_ID = "dash-tick"
#: /healthz calls the scheduler stuck when no tick succeeded for this many intervals...
STUCK_INTERVALS = 10
#: ...and at least this long (a big batch after downtime may take a while).
STUCK_MINIMUM = timedelta(minutes=2)


class SchedulerService:
    """Runs `dispatch(ctx, utcnow())` every `interval` seconds in a background thread."""

    def __init__(self, ctx: AppContext, interval: float | None = None) -> None:
        self.ctx = ctx
        self.interval = interval if interval is not None else ctx.settings.tick_seconds
        self._scheduler: BackgroundScheduler | None = None
        self.last_report: DispatchReport | None = None
        self.started_at: datetime | None = None
        self.last_success_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def tick(self) -> DispatchReport | None:
        """One beat; never raises (a failure is logged and the next beat retries)."""
        try:
            self.last_report = dispatch(self.ctx, utcnow())
        except Exception:
            log.exception("scheduler tick failed; retrying on the next beat")
            return None
        self.last_success_at = utcnow()
        return self.last_report

    def is_stuck(self, now: datetime) -> bool:
        """True when running but no tick has succeeded for a long while (for /healthz)."""
        if not self.running or self.started_at is None:
            return False
        limit = max(STUCK_MINIMUM, timedelta(seconds=self.interval * STUCK_INTERVALS))
        return now - (self.last_success_at or self.started_at) > limit

    def start(self) -> None:
        """Start the background thread; the first tick runs immediately."""
        if self.running:
            return
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.interval,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            # APScheduler times its beats by the wall clock; utcnow() may be an injected clock
            # (tests, rehearsals) far from it, and the interval trigger would then step through
            # every beat in between (a year back: 30 million) before the first tick.
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
        self.started_at = utcnow()
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler started: a tick every %.0f s", self.interval)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the thread; with `wait`, let a running tick finish first."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self._scheduler = None
