"""Progress of long loops as log lines: ``what: unit done/total (pct), rate, elapsed, ETA``.

Rule logs are files, where a tqdm bar is a stream of carriage returns; :class:`Progress` logs one
plain line at most every ``every`` seconds (:data:`EVERY` by default, or the
``MEDSLIP_PROGRESS_SECONDS`` environment variable) and a closing line when it logged any, so
short loops stay silent and long ones show their rate and time left. A base module: it imports
nothing from the rest of ``medslip``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

EVERY = 30.0
"""Seconds between two progress lines unless ``every`` or ``MEDSLIP_PROGRESS_SECONDS`` says."""
ENV = "MEDSLIP_PROGRESS_SECONDS"

_log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``; ``?`` when not finite."""
    if not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def rate_text(rate: float, unit: str) -> str:
    """``12.3 img/s`` at one or more per second, ``4.2 s/batch`` below."""
    if rate <= 0 or not math.isfinite(rate):
        return f"? {unit}/s"
    if rate >= 1:
        return f"{rate:.3g} {unit}/s"
    return f"{1 / rate:.3g} s/{unit}"


def _every(every: float | None) -> float:
    if every is not None:
        return every
    try:
        return float(os.environ.get(ENV, EVERY))
    except ValueError:
        return EVERY


class Progress:
    """Counts work done on ``total`` items (None: unknown) and logs its progress to ``logger``
    at most every ``every`` seconds of ``clock``; ``close`` logs the closing line."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        *,
        unit: str = "item",
        every: float | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool = True,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.every = _every(every)
        self.logger = logger or _log
        self.clock = clock
        self.enabled = enabled
        self.done = 0
        self.lines = 0
        self.postfix: dict[str, Any] = {}
        self.start = self.last = clock()
        self.closed = False

    def update(self, n: int = 1, **postfix: Any) -> None:
        """``n`` more items done; ``postfix`` (e.g. ``loss=0.81``) is shown after the counts."""
        self.done += n
        self.postfix.update(postfix)
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._emit(self.status(now))

    def status(self, now: float | None = None) -> str:
        """``unit done/total (pct), rate, elapsed, ETA[; key=value ...]`` at ``now``."""
        now = self.clock() if now is None else now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else math.nan
        if self.total:
            counts = f"{self.unit} {self.done}/{self.total} ({100 * self.done / self.total:.0f}%)"
            left = (self.total - self.done) / rate if rate > 0 else math.nan
            eta = f", ETA {duration(left)}"
        else:
            counts, eta = f"{self.unit} {self.done}", ""
        text = f"{counts}, {rate_text(rate, self.unit)}, {duration(elapsed)} elapsed{eta}"
        if self.postfix:
            text += "; " + " ".join(f"{k}={_short(v)}" for k, v in self.postfix.items())
        return text

    def close(self) -> None:
        """Log the closing line (total time and mean rate) if any progress line was logged."""
        if self.closed:
            return
        self.closed = True
        if self.lines:
            now = self.clock()
            elapsed = now - self.start
            rate = self.done / elapsed if elapsed > 0 else math.nan
            of = f"/{self.total}" if self.total else ""
            took = f"in {duration(elapsed)}, {rate_text(rate, self.unit)}"
            self._emit(f"done, {self.unit} {self.done}{of} {took}")

    def _emit(self, text: str) -> None:
        if self.enabled:
            self.lines += 1
            self.logger.info("%s: %s", self.what, text)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def progress(
    items: Iterable[T], what: str, *, total: int | None = None, **options: Any
) -> Iterator[T]:
    """``items``, one by one, counting an item done when the next one is asked for (``total``
    defaults to ``len(items)`` where it has one; ``options`` as :class:`Progress` takes them)."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    bar = Progress(what, total, **options)
    for item in items:
        yield item
        bar.update()
    bar.close()
