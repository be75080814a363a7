"""The sweep's progress display: one line rewritten in place on a terminal, a few lines in a
log (never one per epoch), nothing when HARNESS_QUIET=1, and a time-left estimate."""

from __future__ import annotations

import io

import pytest

from harness.sweep.progress import BAR, LINES, OFF, EpochProgress, resolve_mode


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _train(
    bar: EpochProgress, clock: Clock, epochs: int, epoch_s: float, start_s: float = 5.0
) -> None:
    clock.now += start_s  # imports, data, graph tracing: all in the first epoch
    for epoch in range(1, epochs + 1):
        clock.now += epoch_s
        bar.update(epoch)


def test_on_a_terminal_one_line_is_rewritten_and_cleared_before_other_output():
    out, clock = io.StringIO(), Clock()
    bar = EpochProgress("[3/12]", epochs=100, mode=BAR, stream=out, clock=clock)
    bar.started("keras-sigmoid-probs-adam-s0")
    clock.now += 5.0
    bar.update(1)
    clock.now += 49 * 0.2
    bar.update(50)
    shown = out.getvalue()
    assert "\n" not in shown  # rewritten in place, never scrolled
    last = shown.split("\r\x1b[K")[-1]
    assert last.startswith("[3/12] keras-sigmoid-probs-adam-s0 [##########..........] epoch 50/100")
    # paced by the epochs after the first (which carries start-up): 50 x 0.2 s left
    assert "~10 s left" in last

    bar.print("[harness] keras-sigmoid-probs-adam-s0: val/loss=0.1", file=out)
    assert out.getvalue().endswith("\r\x1b[K[harness] keras-sigmoid-probs-adam-s0: val/loss=0.1\n")


def test_in_a_log_a_long_run_prints_a_line_every_few_seconds_and_a_short_one_none():
    out, clock = io.StringIO(), Clock()
    long_run = EpochProgress(
        "[1/2]", epochs=1000, mode=LINES, stream=out, every_s=10.0, clock=clock
    )
    _train(long_run, clock, epochs=1000, epoch_s=0.1)  # 100 s of epochs
    lines = out.getvalue().splitlines()
    assert 8 <= len(lines) <= 11  # one per 10 s, not one per epoch
    assert all(line.startswith("[harness] [1/2]: epoch ") and "left" in line for line in lines)

    out, clock = io.StringIO(), Clock()
    short_run = EpochProgress(
        "[2/2]", epochs=100, mode=LINES, stream=out, every_s=10.0, clock=clock
    )
    _train(short_run, clock, epochs=100, epoch_s=0.05, start_s=1.0)
    assert out.getvalue() == ""


def test_the_sweep_estimate_adds_the_jobs_after_this_one():
    out, clock = io.StringIO(), Clock()
    bar = EpochProgress(
        "[2/3]", epochs=10, mode=LINES, sweep_after_s=120.0, stream=out, every_s=0.0, clock=clock
    )
    _train(bar, clock, epochs=5, epoch_s=1.0)
    assert (
        out.getvalue().splitlines()[-1] == "[harness] [2/3]: epoch 5/10, ~5 s left (sweep ~2 min)"
    )


def test_quiet_mode_shows_no_progress(monkeypatch):
    monkeypatch.setenv("HARNESS_QUIET", "1")
    out, clock = io.StringIO(), Clock()
    bar = EpochProgress("[1/1]", epochs=1000, mode=BAR, stream=out, every_s=0.0, clock=clock)
    assert bar.mode == OFF
    _train(bar, clock, epochs=1000, epoch_s=1.0)
    bar.clear()
    assert out.getvalue() == ""


@pytest.mark.parametrize("value, quiet", [("1", True), ("true", True), ("0", False), ("", False)])
def test_mode_follows_the_stream_and_the_quiet_switch(monkeypatch, value, quiet):
    monkeypatch.setenv("HARNESS_QUIET", value)
    assert resolve_mode(stream=io.StringIO()) == (OFF if quiet else LINES)  # not a terminal
