"""Progress for long work: a bar on a terminal, a log line now and then elsewhere.

A tqdm bar redraws itself with carriage returns, which a captured log or a Slurm output
file keeps as one endless line. So `progress_bar` is tqdm's bar when stderr is a
terminal, and otherwise a `Heartbeat`: the same calls (iterate, update, set_postfix,
close, a context manager), written as one INFO line every HEARTBEAT_S seconds with the
count, the rate and the time left. `heartbeat` does the same for one long call that
reports nothing itself (dlib's trainers): elapsed time, and the time left when an
estimate is given.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager

log = logging.getLogger("synthface")

HEARTBEAT_S = 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Heartbeat:
    """tqdm's calls, as a log line every `every` seconds (and one at the end when the
    work took longer than that)."""

    def __init__(self, iterable=None, *, total=None, desc: str = "", unit: str = "it", initial: int = 0,
                 every: float = HEARTBEAT_S):
        self.iterable, self.desc, self.unit, self.every = iterable, desc, unit, every
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.initial = total, initial, initial
        self.start = self.last = time.monotonic()
        self.postfix = ""

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.start
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else 0.0
        count = f"{self.n:,}" + (f" of {self.total:,}" if self.total else "") + f" {self.unit}s"
        text = f"{self.desc}: {count}, {_duration(elapsed)}"
        if rate > 0:
            text += f", {rate:.1f} {self.unit}s/s"
            if self.total:
                text += f", about {_duration((self.total - self.n) / rate)} left"
        return text + (f" ({self.postfix})" if self.postfix else "")

    def close(self) -> None:
        if self.last != self.start:  # it spoke before: say where it ended
            self.last = self.start
            log.info("%s", self.line())


def progress_bar(iterable=None, *, total=None, desc: str = "", unit: str = "it", disable: bool = False,
                 initial: int = 0, **tqdm_options):
    """tqdm's bar on a terminal, a `Heartbeat` elsewhere, nothing when `disable`."""
    if disable:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=True)
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, **tqdm_options)
    return Heartbeat(iterable, total=total, desc=desc, unit=unit, initial=initial)


@contextmanager
def heartbeat(desc: str, estimate_s: float | None = None, every: float = HEARTBEAT_S, disable: bool = False):
    """Around one long call: a log line every `every` seconds while it runs (elapsed, and
    with `estimate_s` the time left)."""
    if disable:
        yield
        return
    stop = threading.Event()
    start = time.monotonic()

    def beat():
        while not stop.wait(every):
            elapsed = time.monotonic() - start
            left = "" if estimate_s is None else f", about {_duration(max(estimate_s - elapsed, 0))} left"
            log.info("%s: still working, %s%s", desc, _duration(elapsed), left)

    thread = threading.Thread(target=beat, daemon=True, name="heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
