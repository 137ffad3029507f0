"""Progress of the long commands as a user sees it: on a terminal (a pseudo-terminal read like a
screen) a bar with the time left, then a line per finished phase; through a pipe only those lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

ENV = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="120")


def on_a_terminal(args: list[str], timeout: float = 300) -> str:
    """Run ``inceptionkit ARGS`` with a pseudo-terminal as its stdout and stderr; everything it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120 x 40 screen
    process = subprocess.Popen([sys.executable, "-m", "inceptionkit", *args], stdin=follower, stdout=follower,
                               stderr=follower, env=ENV, close_fds=True)
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the other end closed: the process has ended
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        process.kill()
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_visualize_shows_a_bar_with_the_time_left_on_a_terminal_and_lines_through_a_pipe(digits_run, tmp_path):
    args = ["visualize", str(digits_run), "--layer", "inception4a", "--channels", "0-1", "--steps", "40"]
    screen = on_a_terminal([*args, "-o", str(tmp_path / "a.png")])
    assert "wrote" in screen, screen[-2000:]
    bars = [part for part in re.split(r"[\r\n]", screen) if "inception4a: feature visualization, 2 channels" in part]
    assert any(re.search(r"\d+/40 \[\d\d:\d\d<\d\d:\d\d", bar) for bar in bars), bars  # done/total [elapsed<left
    assert re.search(r"inception4a: feature visualization, 2 channels: \d+ s", screen), screen[-2000:]

    short = [*args, "--steps", "8"]  # the last --steps counts: what a pipe or --quiet shows needs no more
    piped = subprocess.run([sys.executable, "-m", "inceptionkit", *short, "-o", str(tmp_path / "b.png")],
                           capture_output=True, text=True, env=ENV, timeout=300)
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert "\r" not in piped.stderr and "<" not in piped.stderr  # no bar
    assert re.fullmatch(r"inception4a: feature visualization, 2 channels: \d+ s\n", piped.stderr), piped.stderr
    quiet = subprocess.run([sys.executable, "-m", "inceptionkit", *short, "-o", str(tmp_path / "c.png"), "--quiet"],
                           capture_output=True, text=True, env=ENV, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.slow
def test_the_microscope_shows_its_phases_on_a_terminal_and_a_line_per_finished_layer_through_a_pipe(digits_run,
                                                                                                   tmp_path):
    args = ["microscope", str(digits_run), "--layers", "inception3a,inception4a", "--per-branch", "1", "--steps", "8",
            "--k", "2", "--max-images", "100", "--dream-side", "64"]
    screen = on_a_terminal([*args, "-o", str(tmp_path / "shown")])
    assert "pictures made" in screen, screen[-2000:]
    bar = r"inception4a: feature visualization, 4 channels: +\d+%\|.*\| *\d+/32 \[\d\d:\d\d<"
    assert re.search(bar, screen), screen
    piped = subprocess.run([sys.executable, "-m", "inceptionkit", *args, "-o", str(tmp_path / "piped")],
                           capture_output=True, text=True, env=ENV, timeout=600)
    assert piped.returncode == 0, piped.stderr[-2000:]
    lines = piped.stderr.splitlines()
    for phase in ("data set examples of inception3a, inception4a", "inception3a: feature visualization, 4 channels",
                  "inception4a: feature visualization, 4 channels", "activation grids", "DeepDream"):
        assert any(re.fullmatch(re.escape(phase) + r": \d+ s", line) for line in lines), (phase, lines)


def test_a_torchrun_rank_prints_lines_with_its_rank_count_and_time_left(monkeypatch, capsys):
    """Under torchrun each rank prints lines (no bar) at most every RANK_LINE_EVERY seconds: the rank, the
    count, and the time left by the rate so far (a clock set by hand: 10 of 40 in 30 s, so 90 s left, which
    reads 2 min)."""
    from inceptionkit.cli import microscope

    clock = iter([0.0, 30.0, 40.0, 70.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock, 70.0))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bars = microscope._progress(quiet=False)
    assert bars.terminal is False and bars.every == microscope.RANK_LINE_EVERY  # lines even on a terminal
    with bars:
        bars("feature visualizations, 40 channels", 0, 40)  # t=0: the phase starts
        bars("feature visualizations, 40 channels", 10, 40)  # t=30: a line
        bars("feature visualizations, 40 channels", 12, 40)  # t=40: too soon for another
        bars("feature visualizations, 40 channels", 40, 40)  # t=70: done, then its closing line
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["rank 1 of 2: feature visualizations, 40 channels: 10/40 (25%), 30 s in, about 2 min left",
                     "rank 1 of 2: feature visualizations, 40 channels: 70 s"], lines
