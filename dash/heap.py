"""The garbage collector and long-running processes."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Move everything loaded at start (the engine, the bots, SQLAlchemy) out of the garbage
    collector's reach, so a full collection no longer walks it all and pauses the work in
    flight. Call once, when the process has loaded what it runs and before it starts;
    objects made later are collected as usual."""
    gc.collect()
    gc.freeze()
