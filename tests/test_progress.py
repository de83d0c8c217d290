"""medslip.progress: rate and ETA text, and throttling of its log lines (with a fake clock)."""

from __future__ import annotations

import logging
import math

import pytest

from medslip.progress import ENV, Progress, duration, progress, rate_text

LOGGER = "medslip.test_progress"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (42.4, "42s"), (59.6, "1m00s"), (185, "3m05s"), (7620, "2h07m"), (math.nan, "?")],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_rate_text_per_second_or_seconds_per_item():
    assert rate_text(12.34, "image") == "12.3 image/s"
    assert rate_text(0.25, "batch") == "4 s/batch"
    assert rate_text(0.0, "step") == "? step/s"


def test_status_has_counts_rate_elapsed_eta_and_postfix():
    clock = FakeClock()
    bar = Progress("pretrain", 100, unit="step", every=math.inf, clock=clock)
    clock.now += 20
    bar.update(40, loss=0.81234, epoch="1/5")
    assert bar.status() == (
        "step 40/100 (40%), 2 step/s, 20s elapsed, ETA 30s; loss=0.8123 epoch=1/5"
    )


def test_unknown_total_has_no_eta():
    clock = FakeClock()
    bar = Progress("read", unit="report", every=math.inf, clock=clock)
    clock.now += 4
    bar.update(10)
    assert bar.status() == "report 10, 2.5 report/s, 4s elapsed"


def test_lines_are_throttled_to_one_per_interval(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = FakeClock()
    bar = Progress(
        "shard", 10, unit="image", every=30, logger=logging.getLogger(LOGGER), clock=clock
    )
    for _ in range(10):  # one image every 10 s: a line at 30 s, 60 s and 90 s
        clock.now += 10
        bar.update()
    bar.close()
    bar.close()  # once only
    assert _lines(caplog) == [
        "shard: image 3/10 (30%), 10 s/image, 30s elapsed, ETA 1m10s",
        "shard: image 6/10 (60%), 10 s/image, 1m00s elapsed, ETA 40s",
        "shard: image 9/10 (90%), 10 s/image, 1m30s elapsed, ETA 10s",
        "shard: done, image 10/10 in 1m40s, 10 s/image",
    ]


def test_short_loops_stay_silent(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = FakeClock()

    def tick(items):
        for item in items:
            clock.now += 1
            yield item

    out = list(
        progress(tick(range(5)), "quick", total=5, logger=logging.getLogger(LOGGER), clock=clock)
    )
    assert out == list(range(5)) and _lines(caplog) == []


def test_progress_counts_an_item_when_the_next_is_asked_for(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = FakeClock()
    seen = []
    for item in progress(
        ["a", "b", "c"], "loop", every=0, logger=logging.getLogger(LOGGER), clock=clock
    ):
        clock.now += 2
        seen.append(item)
    assert seen == ["a", "b", "c"]
    assert _lines(caplog) == [
        "loop: item 1/3 (33%), 2 s/item, 2s elapsed, ETA 4s",
        "loop: item 2/3 (67%), 2 s/item, 4s elapsed, ETA 2s",
        "loop: item 3/3 (100%), 2 s/item, 6s elapsed, ETA 0s",
        "loop: done, item 3/3 in 6s, 2 s/item",
    ]


def test_disabled_progress_logs_nothing(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    bar = Progress("rank 1", 3, every=0, logger=logging.getLogger(LOGGER), enabled=False)
    bar.update(3)
    bar.close()
    assert _lines(caplog) == []


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV, "5")
    assert Progress("x").every == 5
    monkeypatch.setenv(ENV, "not a number")
    assert Progress("x").every == 30
    assert Progress("x", every=1).every == 1
