"""Worker processes: isolation, K processes per case, faults contained, memory measured, no orphans.

The faults come from a real plugin backend (tests/plugins), registered through the entry-point group as a
third-party package would be: it segfaults, aborts, is SIGKILLed, exits, hangs or allocates on purpose.
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import BACKENDS
from conftest import TINY as SEEDED_TINY
from sigbench.cli import main
from sigbench.core import registry

PLUGINS = Path(__file__).parents[1] / "plugins"
TINY = ["--size", "256", "--max-time", "0.01", "--min-time", "0.005", "-q"]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc (Linux)")


@pytest.fixture
def faults(monkeypatch):
    """The misbehaving plugin backend, installed for this test only."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    registry.specs.cache_clear()
    assert "faults" in registry.installed_names()
    yield
    registry.specs.cache_clear()


def _rows(out):
    document = json.loads((out / "results.json").read_text())
    return {r["variant"]: r for r in document["rows"]}, document


def _fault_run(tmp_path, *variants, extra=()):
    out = tmp_path / "out"
    args = ["run", "-b", "faults", "-w", "sigmoid", *TINY, "-o", str(out), *extra]
    for variant in variants:
        args += ["-v", variant]
    return main(args), out


@pytest.mark.parametrize("variant, fragment", [
    ("segfault", "killed by signal SIGSEGV (11)"),
    ("abort", "killed by signal SIGABRT (6)"),
    ("sigkill", "killed by signal SIGKILL (9)"),
    ("exit", "exited with status 3"),
])
def test_a_dying_worker_is_an_error_row_and_the_run_goes_on(tmp_path, faults, capsys, variant, fragment):
    code, out = _fault_run(tmp_path, variant, "ok", extra=["--processes", "2"])
    assert code == 1
    rows, document = _rows(out)
    assert rows[variant]["status"] == "error" and fragment in rows[variant]["message"]
    # the backend's next case ran in a fresh worker, in both processes; the dead case was not retried
    assert rows["ok"]["status"] == "ok" and rows["ok"]["processes"] == 2
    assert rows[variant]["processes"] == 0
    assert document["status"] == "complete"


@pytest.mark.slow
def test_a_hung_case_is_killed_at_its_timeout(tmp_path, faults, capsys):
    started = time.perf_counter()
    code, out = _fault_run(tmp_path, "hang", "ok", extra=["--case-timeout", "3"])
    assert time.perf_counter() - started < 60
    assert code == 1
    rows, _ = _rows(out)
    assert rows["hang"]["status"] == "error" and rows["hang"]["message"] == "timed out after 3 s"
    assert rows["ok"]["status"] == "ok"


def test_an_exception_keeps_the_worker(tmp_path, faults, capsys):
    code, out = _fault_run(tmp_path, "raise", "ok")
    rows, _ = _rows(out)
    assert code == 1 and "RuntimeError: boom" in rows["raise"]["message"] and rows["ok"]["status"] == "ok"


@linux_only
def test_peak_host_memory_of_a_known_allocation(tmp_path, faults, capsys):
    from sigbench_test_faults import ALLOC_BYTES

    code, out = _fault_run(tmp_path, "alloc", "ok", extra=["--processes", "2"])
    assert code == 0
    rows, _ = _rows(out)
    pages = 64 * os.sysconf("SC_PAGE_SIZE")  # the timer's own bookkeeping and 256-element arrays: < 256 KiB
    assert abs(rows["alloc"]["peak_host_bytes"] - ALLOC_BYTES) <= pages
    assert rows["ok"]["peak_host_bytes"] <= pages
    assert rows["alloc"]["peak_device_bytes"] is None  # CPU: no device memory to speak of


@linux_only
def test_the_timers_statistics_add_nothing_to_a_cases_peak():
    """The timer's statistics, first called inside a case (as on a busy machine, where the stopping rule is
    reached sooner), add nothing to that case's peak memory: the worker has run them once before."""
    code = ("from sigbench.execution import worker\nfrom sigbench.measure import stats\n"
            "with worker.BackendWorker._peak_memory(object(), 'cpu') as peaks:\n"
            "    stats.summarize([1e-6 * (1 + i / 100) for i in range(8)])\n"
            "print(peaks['peak_host_bytes'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(done.stdout) <= 64 * os.sysconf("SC_PAGE_SIZE")  # 2.2 MB before the worker warmed them


@pytest.mark.backend("numpy")
@linux_only
def test_numpy_naive_allocates_temporaries_and_fast_does_not(tmp_path, capsys):
    if "numpy" not in BACKENDS:
        pytest.skip("numpy is not under test")
    out = tmp_path / "out"
    code = main(["run", "-b", "numpy", "-w", "sigmoid", "-v", "naive", "-v", "fast", "--size", "2^24",
                 "--max-time", "0.05", "--min-time", "0.01", "--processes", "1", "-q", "-o", str(out)])
    assert code == 0
    rows, _ = _rows(out)
    array = 2**24 * 4  # 64 MiB of float32
    # 1/(1+exp(-x)) makes three 64 MiB temporaries (-x, exp(-x), the result; NumPy elides 1+ in place), of
    # which two are alive at once; a few pages of them may reuse memory the allocator already held
    assert rows["naive"]["peak_host_bytes"] >= 1.9 * array
    assert rows["fast"]["peak_host_bytes"] < array // 16  # writes into the buffer it reuses


def test_each_case_is_measured_in_k_processes(tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "out"
    args = ["run", "-b", BACKENDS[0], "-w", "sigmoid", "-v", "stable", *TINY, "--processes", "3", "-o", str(out)]
    assert main(args) == 0
    rows, document = _rows(out)
    row = rows["stable"]
    assert row["processes"] == 3 and len(row["process_samples_s"]) == 3
    assert len(row["process_first_call_s"]) == 3 and row["process_cv"] is not None
    assert row["samples"] == sum(len(s) for s in row["process_samples_s"])
    assert row["ci_low_s"] <= row["median_s"] <= row["ci_high_s"]
    assert document["metadata"]["processes"] == 3 and document["metadata"]["mode"] == "workers"


@pytest.mark.slow
@pytest.mark.meet
def test_in_process_and_workers_give_the_same_cases_and_checks(seeded_run, tmp_path, capsys):
    """The shared run's workers (3 processes a case) against one run in this process, on the same seed."""
    assert seeded_run.code == 0
    out = tmp_path / "in"
    assert main(["run", *sum((["-b", b] for b in BACKENDS), []), *SEEDED_TINY, "--seed", "7", "--in-process",
                 "-o", str(out)]) == 0
    found = []
    for directory in (seeded_run.directory, out):
        _, document = _rows(directory)
        found.append(({(r["workload"], r["backend"], r["variant"], r["size"], r["status"], r.get("check_passed"),
                        r.get("max_error")) for r in document["rows"]}, document["metadata"]["mode"]))
    assert found[0][0] == found[1][0]
    assert [mode for _, mode in found] == ["workers", "in-process"]


def test_in_process_refuses_several_processes(capsys):
    assert main(["run", "--in-process", "--processes", "3"]) == 2
    assert "--in-process" in capsys.readouterr().err


@linux_only
def test_a_worker_imports_only_its_own_framework():
    from sigbench.execution.engine import ProcessBackend

    handle = ProcessBackend("numpy", threads=1)
    try:
        maps = Path(f"/proc/{handle.pid}/maps").read_text()
        assert "libtorch" not in maps and "xla_extension" not in maps and "jaxlib" not in maps
        assert handle.info["threads"]["cpu_affinity"] == 1  # pinned to --threads cores before numpy started
    finally:
        handle.close()


@pytest.mark.meet
def test_the_run_process_imports_no_framework(seeded_run):
    """The shared run ran in a process of its own that imported none of torch, jax and scipy: only its
    workers did."""
    assert seeded_run.code == 0
    assert seeded_run.heavy == []


# --- interruption: no orphan ---------------------------------------------------------------------


def _alive_with(tag: str) -> list[int]:
    """Processes still running whose environment carries ``tag`` (the run and every worker it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if tag.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def start_run(tmp_path, out, tag, *extra):
    """``sigbench run`` in a child with SIGINT's default disposition, whatever this process inherited
    (a test suite started in the background or under nohup has SIGINT ignored)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", SIGBENCH_TEST_TAG=tag)
    # at least 4 variants x 12 sizes x 0.4 s: the run is still measuring when its first save (after 10 s)
    # shows an ok row
    sizes = [arg for k in range(10, 22) for arg in ("--size", str(2**k))]
    args = [sys.executable, "-m", "sigbench", "run", "-b", BACKENDS[0], "-w", "sigmoid", *sizes,
            "--min-time", "0.4", "--max-time", "0.4", "-o", str(out), *extra]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until at least one case is saved
        results = out / "results.json"
        if results.exists():
            rows = json.loads(results.read_text())["rows"]
            if any(r["status"] == "ok" for r in rows):
                return process
        time.sleep(0.05)
    process.kill()
    pytest.fail("the run saved no case within 120 s")


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("mode", [[], ["--in-process"]], ids=["workers", "in-process"])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_keeps_readable_partial_results_and_no_orphan(tmp_path, signum, code, mode):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "out"
    tag = uuid.uuid4().hex
    process = start_run(tmp_path, out, tag, *mode)
    deadline = time.time() + 5  # the run, and its worker (between two worker processes, for a moment, none)
    while len(_alive_with(tag)) != (1 if mode else 2) and time.time() < deadline:
        time.sleep(0.05)
    assert len(_alive_with(tag)) == (1 if mode else 2)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "interrupted" in err and str(out) in err and "Traceback" not in err
    assert _alive_with(tag) == []
    document = json.loads((out / "results.json").read_text())
    assert document["status"] == "interrupted"
    assert any(r["status"] == "ok" for r in document["rows"])
    assert (out / "results.csv").read_text().startswith("workload,")
    assert "Status: interrupted" in (out / "results.md").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_stop_that_lands_in_a_finaliser_is_taken_quietly_and_other_errors_still_reported(monkeypatch):
    """In the in-process mode SIGTERM can arrive inside a gc callback (JAX has one): Python then prints the
    exception as "ignored". The stop is recorded and taken at the next case, so it must not be printed."""
    from sigbench.core.errors import Interrupted
    from sigbench.execution import runner

    class Finaliser:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)  # what Python would print
    with runner.stop_on_signals():
        item = Finaliser(Interrupted(143))
        del item
        other = Finaliser(ValueError("a real bug"))
        del other
    assert [type(r.exc_value) for r in reported] == [ValueError]
    assert sys.unraisablehook == reported.append


@pytest.mark.slow
@linux_only
def test_a_killed_run_takes_its_workers_with_it(tmp_path):
    """SIGKILL cannot be caught: the kernel ends the workers (PR_SET_PDEATHSIG)."""
    if not BACKENDS:
        pytest.skip("no backend under test")
    tag = uuid.uuid4().hex
    process = start_run(tmp_path, tmp_path / "out", tag)
    process.kill()
    process.communicate(timeout=60)
    deadline = time.time() + 10
    while _alive_with(tag) and time.time() < deadline:
        time.sleep(0.1)
    assert _alive_with(tag) == []


@pytest.mark.slow
@linux_only
@pytest.mark.backend(param="name")
@pytest.mark.parametrize("name", BACKENDS)
def test_threads_are_honoured_in_every_worker_xla_included(name):
    """Each worker is pinned to --threads cores before its framework starts; XLA sizes its pools from that."""
    from sigbench.execution.engine import ProcessBackend

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores")
    counts = {}
    for threads in (1, 2):
        handle = ProcessBackend(name, threads=threads)
        try:
            assert handle.info["threads"]["cpu_affinity"] == threads
            for key in ("torch_intra_op_threads", "numpy_fast_threads"):
                assert handle.info["threads"].get(key, threads) == threads
            counts[threads] = len(list(Path(f"/proc/{handle.pid}/task").iterdir()))
        finally:
            handle.close()
    if name == "jax":  # XLA's Eigen pool follows the affinity mask: fewer threads with one core
        assert counts[1] < counts[2]


@pytest.mark.slow
@pytest.mark.backend("jax")
@linux_only
def test_an_asynchronous_backend_holds_one_result_at_a_time(tmp_path, capsys):
    """JAX dispatches asynchronously: a warm-up that queued calls without waiting held ~30 outputs (2 GiB
    at n = 2^24). Each timed block waits on its own results, so the peak is about one output."""
    if "jax" not in BACKENDS:
        pytest.skip("jax is not under test")
    out = tmp_path / "out"
    code = main(["run", "-b", "jax", "-w", "sigmoid", "-v", "naive", "--size", "2^24", "--max-time", "0.05",
                 "--min-time", "0.01", "--processes", "1", "-q", "-o", str(out)])
    assert code == 0
    rows, _ = _rows(out)
    assert rows["naive"]["peak_host_bytes"] <= 3 * 2**24 * 4
