"""``sigbench ab`` end to end, with real interpreters: venvs made here that see this environment's packages.

Side B's venv sets ``SIGBENCH_TEST_WORK_FACTOR`` (a ``.pth`` file of its own), so the test plugin ``work``
does exactly 1.2x the iterations there: a known slowdown. The A/A pairs two venvs with the same count.
These tests use the test plugin alone, so they are backend-independent: one tox env runs them (tox.ini).
"""
from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import sigbench
from sigbench.comparison import abtest

PLUGINS = Path(__file__).parents[1] / "plugins"


def _helpers() -> Any:
    """tests/plugins/ab_environments.py, loaded from its file: putting its folder on sys.path would register
    the test plugins as backends for every test after this one."""
    spec = importlib.util.spec_from_file_location("ab_environments", PLUGINS / "ab_environments.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_environment = _helpers().make_environment

# every test here shares venvs that take seconds to make, and most run sigbench ab for seconds
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ab-envs")
    return {"a": make_environment(root / "a"), "twin": make_environment(root / "twin"),
            "slow": make_environment(root / "slow", 1.2),
            "bare": make_environment(root / "bare", sigbench_visible=False, plugins=False),
            "no_plugin": make_environment(root / "no-plugin", plugins=False)}


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``sigbench ARGS``: this process needs no plugin; each side finds its own (or not)."""
    return subprocess.run([sys.executable, "-m", "sigbench", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def slow_run(envs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ab of the environment whose plugin does 1.2x the work against the plain one."""
    out = tmp_path_factory.mktemp("slow") / "ab"
    done = cli("ab", str(envs["a"]), str(envs["slow"]), "-b", "work", "-v", "work", "-n", "1024", "-w", "sigmoid",
               "-w", "train", "--max-time", "300", "-o", str(out))
    assert done.returncode == 1, done.stderr  # a slower case is a regression, as in compare
    return out


def test_finds_a_known_slowdown_and_records_both_sides(slow_run: Path) -> None:
    out = slow_run
    document = json.loads((out / "ab-results.json").read_text())
    assert document["status"] == "complete" and document["stopped_because"] == "decided"
    rows = {row["workload"]: row for row in document["rows"]}
    for row in rows.values():
        assert row["verdict"] == "slower", row
        # the plugin does 24 iterations against 20: the interval holds 1.2 (less the calls' own overhead, under
        # 1% of a call), and lies beyond the threshold. That is what ab promises (each interval holds the truth,
        # all cases and looks at once, at 95%; in reports/ab-power none of 176 A/A verdicts erred); the point
        # estimate carries no such promise: with a second test suite beside this one, a case decided at the
        # first look (10 rounds) gave 2.0 within [1.16, 3.19], a right verdict, and once failed a bound on it
        assert 1.05 < row["ci_low"] <= 1.2 and row["ci_high"] >= 1.2 * 0.99, row
        assert row["ci_low"] <= row["ratio"] <= row["ci_high"], row
        assert row["check_passed_a"] is True and row["check_passed_b"] is True
        assert row["rounds"] >= abtest.sequential.FIRST_LOOK and len(row["per_round"]) == row["rounds"]
    sides = document["metadata"]["sides"]
    assert sides["A"]["executable"] != sides["B"]["executable"]
    assert sides["A"]["backends"]["work"]["factor"] == "1" and sides["B"]["backends"]["work"]["factor"] == "1.2"
    assert sides["A"]["name"] == "work factor 1" and sides["B"]["name"] == "work factor 1.2"
    # every round ran each side once, in a random order, and both orders occurred
    orders = {tuple(r["order"]) for r in document["rounds"]}
    assert all(sorted(order) == ["A:work", "B:work"] for order in orders)
    for name in ("ab-results.csv", "ab-results.md", "ab-results.html", "ab-ratios.png"):
        assert (out / name).stat().st_size > 0
    assert "work factor 1.2" in (out / "ab-results.md").read_text()
    assert "work factor 1.2" in (out / "ab-results.html").read_text()


def test_aa_finds_the_same(envs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "aa"
    done = cli("ab", str(envs["a"]), str(envs["twin"]), "-b", "work", "-v", "work", "-n", "1024", "-w", "sigmoid",
               "--threshold", "10%", "--max-time", "300", "-o", str(out))
    assert done.returncode == 0, done.stderr
    (row,) = json.loads((out / "ab-results.json").read_text())["rows"]
    assert row["verdict"] == "same", row
    # the interval lies within the threshold; it need not hold 1 exactly: two venvs that differ only in their
    # paths differ in layout, which moved a memory-bound kernel by up to 3% in reports/ab-power (CI found
    # 0.9956-1.0x on a run of this test), so a tight interval beside 1 is a true finding, not an error
    assert 1 / 1.1 <= row["ci_low"] <= row["ratio"] <= row["ci_high"] <= 1.1, row


def test_a_fault_on_one_side_is_that_sides_error_row(envs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fault"
    done = cli("ab", str(envs["a"]), str(envs["slow"]), "-b", "work", "-v", "fragile", "-v", "work", "-n", "1024",
               "-w", "sigmoid", "--max-time", "300", "-o", str(out))
    assert done.returncode == 1, done.stderr
    rows = {row["variant"]: row for row in json.loads((out / "ab-results.json").read_text())["rows"]}
    assert rows["fragile"]["status"] == "error" and rows["fragile"]["verdict"] == "error"
    assert rows["fragile"]["message"].startswith("side B") and "SIGABRT" in rows["fragile"]["message"]
    assert rows["work"]["verdict"] == "slower"  # the other case went on


@pytest.mark.parametrize("which, needle", [
    ("missing", "is no file"),
    ("not_python", "is not a Python interpreter"),
    ("bare", "sigbench is not installed there"),
    ("no_plugin", "backend 'work' is not installed there"),
    ("other_minor", "must be the same Python minor version"),
])
def test_bad_sides_exit_2_with_a_message_naming_the_side(envs: dict[str, Path], tmp_path: Path, which: str,
                                                         needle: str) -> None:
    if which == "missing":
        other = tmp_path / "nowhere" / "python"
    elif which == "not_python":
        other = tmp_path / "not-python"
        other.write_text("#!/bin/sh\necho hello\n")
        other.chmod(0o755)
    elif which == "other_minor":  # an interpreter that describes itself as another minor version
        other = tmp_path / "python3.99"
        probe = {"probe": "sigbench-ab", "python": "3.99.0", "executable": str(other), "packages": {},
                 "sigbench": sigbench.__version__, "protocol": 1, "backends": {}}
        other.write_text(f"#!/bin/sh\necho '{json.dumps(probe)}'\n")
        other.chmod(0o755)
    else:
        other = envs[which]
    done = cli("ab", str(envs["a"]), str(other), "-b", "work", "-o", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "side B" in done.stderr and needle in done.stderr, done.stderr
    if which in ("bare", "no_plugin"):
        assert f"{other} -m pip install" in done.stderr  # the one command that installs what is missing
    assert not (tmp_path / "out").exists()


def test_interrupted_ab_keeps_its_rounds_and_leaves_no_worker(envs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-m", "sigbench", "ab", str(envs["a"]), str(envs["twin"]), "-b", "work", "-v", "work",
         "-n", "1024", "-w", "sigmoid", "--threshold", "0.1%", "--max-time", "300", "-o", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background job ignores SIGINT
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with_rounds = (out / "ab-results.json").exists() and json.loads(
            (out / "ab-results.json").read_text() or "{}").get("rounds")
        if with_rounds and len(with_rounds) >= 3:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    document = json.loads((out / "ab-results.json").read_text())
    assert document["status"] == "interrupted" and len(document["rounds"]) >= 3
    assert document["rows"][0]["rounds"] >= 3  # the rounds done are kept, with their values
    time.sleep(0.5)
    worker = "-m sigbench.execution.worker"
    left = subprocess.run(["pgrep", "-f", f"{envs['twin']} {worker}"], capture_output=True, text=True)
    left_a = subprocess.run(["pgrep", "-f", f"{envs['a']} {worker}"], capture_output=True, text=True)
    assert left.stdout.strip() == "" and left_a.stdout.strip() == ""


def test_report_compare_and_load_read_an_ab(slow_run: Path, tmp_path: Path) -> None:
    out = slow_run
    compared = cli("compare", str(out))
    assert compared.returncode == 1 and "| **slower** |" in compared.stdout and "work factor 1.2" in compared.stdout
    # at a threshold wider than every interval, the same intervals lie within it: same. (Not a fixed 60%: a case
    # decided at its first look with a second test suite beside it had 1.09-4.19, beyond any fixed threshold.)
    widest = max(row["ci_high"] for row in json.loads((out / "ab-results.json").read_text())["rows"])
    loose = cli("compare", str(out), "--threshold", f"{100 * (widest * 1.05 - 1):.0f}%")
    assert loose.returncode == 0 and "| **same** |" in loose.stdout, loose.stdout
    rebuilt = tmp_path / "rebuilt"
    reported = cli("report", str(out), "-o", str(rebuilt))
    assert reported.returncode == 0, reported.stderr
    assert (rebuilt / "ab-results.html").stat().st_size > 0 and "old" in (rebuilt / "ab-results.md").read_text()
    assert (rebuilt / "ab-results.json").read_text() == (out / "ab-results.json").read_text()
    loaded = sigbench.load(out)
    assert isinstance(loaded, sigbench.ABResults)
    frame = loaded.frame()
    assert list(frame["verdict"]) == ["slower", "slower"] and loaded.sides["B"]["name"] == "work factor 1.2"
    assert cli("compare", str(out), str(out)).returncode == 2  # an ab holds both sides: one folder alone


def test_names_given_on_the_command_line(envs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "named"
    done = cli("ab", str(envs["a"]), str(envs["slow"]), "-b", "work", "-v", "work", "-n", "1024", "-w", "sigmoid",
               "--max-rounds", "2", "-o", str(out), "--name-a", "old", "--name-b", "new", "--json")
    assert done.returncode == 0, done.stderr  # two rounds decide nothing: undecided is no failure
    document = json.loads(done.stdout)
    assert document["stopped_because"] == "max-rounds" and document["rows"][0]["verdict"] == "undecided"
    assert [document["metadata"]["sides"][s]["name"] for s in ("A", "B")] == ["old", "new"]
