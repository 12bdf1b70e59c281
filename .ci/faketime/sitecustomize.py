"""Loaded by every Python process of .ci/run's faketime runs (PYTHONPATH=.ci/faketime).

Those runs use FAKETIME_DONT_FAKE_MONOTONIC=1, because with a faked monotonic clock Python's
timed lock waits (sem_clockwait) never return. But libfaketime 0.9.10 (Debian 12) then breaks
time.sleep on Python 3.11, which sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME):
libfaketime shifts that absolute deadline by the fake offset and the kernel answers EINVAL
(libfaketime issue 426). So time.sleep waits in select() instead, a relative timeout that
libfaketime leaves alone. Outside such a run this module does nothing.
"""

import os
import select
import time

if (
    "faketime" in os.environ.get("LD_PRELOAD", "")
    and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1"
):

    def _sleep(seconds: float) -> None:
        """time.sleep without clock_nanosleep."""
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        select.select([], [], [], seconds)

    time.sleep = _sleep
