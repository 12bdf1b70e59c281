"""The fake Telegram Bot API (tests/fakes) in a process of its own, for delivery benchmarks.

`python bench/fake_provider.py [--per-second N]` prints its base URL and token as one JSON
line, serves until SIGTERM, then prints the figures it counted as one JSON line: accepted
sends, refused (429) sends, the most sends in any second, first and last arrival. A process of
its own so the fake's work does not share a GIL with the worker being measured.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import _Handler  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

# Headers and body go out in two writes: without TCP_NODELAY every answer waits ~40 ms for
# the client's delayed ACK (Nagle), which capped the fake near 90 answers/s with 4 in flight.
_Handler.disable_nagle_algorithm = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-second", type=float, default=None)
    parser.add_argument("--times", action="store_true", help="also print every arrival")
    args = parser.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with FakeTelegram() as fake:
        if args.per_second:
            fake.enforce_limits(
                per_second=args.per_second, per_chat_per_second=1, per_group_per_minute=20
            )
        print(json.dumps({"base_url": fake.base_url, "token": fake.token}), flush=True)
        done.wait()
        sends = fake.calls_to("sendMessage")
        ok = [c.at for c in sends if c.ok]
        print(
            json.dumps(
                {
                    "accepted": len(ok),
                    "refused": sum(1 for c in sends if c.status == 429),
                    "max_per_second": fake.max_sends_per_second(ok_only=True),
                    "first": min(ok, default=0.0),
                    "last": max(ok, default=0.0),
                    **({"times": sorted(ok)} if args.times else {}),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
