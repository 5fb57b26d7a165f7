"""sigbench.execution.progress: a rich bar on a terminal, plain lines elsewhere, nothing when quiet; and the CLI's
use of it."""
import io
import re
import sys

import pytest

from conftest import BACKENDS
from sigbench.cli import main
from sigbench.execution import progress


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", fake)
    return fake


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.4, "0:59"), (65, "1:05"), (3725, "1:02:05")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_quiet_is_silent(capsys):
    with progress.bar("sigbench run", quiet=True) as show:
        show(0, 2, "sigmoid numpy/naive")
        show(2, 2, "done")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_plain_lines_when_stderr_is_not_a_terminal(capsys, clock):
    with progress.bar("sigbench run", quiet=False) as show:
        show(0, 4, "measuring the copy bandwidth")
        show(0, 4, "sigmoid numpy/naive n=1,024")
        clock.now += 30
        show(1, 4, "sigmoid numpy/fast n=1,024")  # 30 s per case so far: 3 cases left, 1:30
        clock.now += 90
        show(4, 4, "done")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "sigbench run: 0/4 in 0:00: measuring the copy bandwidth",
        "sigbench run: 0/4 in 0:00: sigmoid numpy/naive n=1,024",
        "sigbench run: 1/4 in 0:30, 1:30 left: sigmoid numpy/fast n=1,024",
        "sigbench run: 4/4 in 2:00: done",
    ]


def test_plain_lines_stay_few_on_long_sweeps(capsys, clock):
    total = 4096
    with progress.bar("sigbench accuracy", quiet=False) as show:
        for index in range(total):
            show(index, total, f"float32 chunk {index + 1}")
        show(total, total, "done")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 + progress.PLAIN_LINES + 1  # the first call, one per percent, the last
    assert lines[0].endswith("chunk 1") and lines[-1].endswith(": done")
    assert lines[1].startswith(f"sigbench accuracy: 1/{total}")
    assert lines[2].startswith(f"sigbench accuracy: 41/{total}")  # the first call of the second percent


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.delenv("TERM", raising=False)
    with progress.bar("sigbench run", quiet=False) as show:
        show(0, 3, "sigmoid torch/fast float32 cpu n=1,024")
        show(1, 3, "sigmoid torch/fast float32 cpu n=65,536")
        show(3, 3, "done")
    text = terminal.getvalue()
    assert "\r" in text or "\x1b[" in text  # redrawn in place, not a line per call
    assert "sigmoid torch/fast float32 cpu n=65,536" in text and "1/3" in text
    assert "3/3" in text and "done" in text and "elapsed" in text and "left" in text
    assert "━" in text  # rich's bar


def _tiny_run(tmp_path, *extra):
    if not BACKENDS:
        pytest.skip("no backend under test")
    return main(["run", "-b", BACKENDS[0], "-w", "sigmoid", "-v", "naive", "--size", "256", "--max-time", "0.01",
                 "--min-time", "0.005", "--format", "csv", "-o", str(tmp_path / "out"), *extra])


def test_run_reports_each_case_on_stderr(tmp_path, capsys):
    assert _tiny_run(tmp_path) == 0
    lines = capsys.readouterr().err.splitlines()
    # the default preset measures the one case in 3 worker processes: 3 steps
    assert re.fullmatch(r"sigbench run: 0/3 in \d:\d\d: measuring the copy bandwidth", lines[0])
    for done in range(3):
        assert re.fullmatch(rf"sigbench run: {done}/3 in \d:\d\d(, \d:\d\d left)?: sigmoid {BACKENDS[0]}/naive "
                            r"float32 cpu n=256", lines[1 + done])
    assert re.fullmatch(r"sigbench run: 3/3 in \d:\d\d: done", lines[4])


@pytest.mark.parametrize("flag", ["--quiet", "--json"])
def test_run_quiet_or_json_prints_no_progress(tmp_path, capsys, flag):
    assert _tiny_run(tmp_path, flag) == 0
    captured = capsys.readouterr()
    assert "sigbench run:" not in captured.err and "sigbench run:" not in captured.out
