"""sigbench on a real Dask cluster: a scheduler and two workers on 127.0.0.1, started and stopped here.

The accuracy tables from the cluster must equal the local run's bit for bit (the merge is exact), a worker
killed mid-sweep must change nothing, a fleet run must bring back each host's results and a merged report,
and every way of pointing at no usable cluster must be exit 2 with a message. Without Dask these tests skip,
except where SIGBENCH_REQUIRE_DASK=1 (tox's ``dask`` env, which installs the extra): there they fail.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigbench.core import registry

if os.environ.get("SIGBENCH_REQUIRE_DASK") != "1":
    pytest.importorskip("distributed", reason="Dask is not installed (pip install 'sigbench[dask]')")
else:
    import distributed  # noqa: F401  (a missing extra is a failure in the dask env)

pytestmark = pytest.mark.slow


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_scheduler(folder: Path, processes: list[subprocess.Popen[bytes]]) -> Path:
    file = folder / "scheduler.json"
    processes.append(_start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
                            folder / "scheduler.log"))
    deadline = time.monotonic() + 30
    while not file.exists() or not file.read_text().strip():
        if time.monotonic() > deadline or processes[-1].poll() is not None:
            raise RuntimeError("dask scheduler did not start: " + (folder / "scheduler.log").read_text())
        time.sleep(0.1)
    return file


def _start_worker(file: Path, name: str, folder: Path, nanny: bool = True) -> subprocess.Popen[bytes]:
    """A one-thread worker; with ``nanny=False`` the worker is this very process, so killing it kills the worker
    (with a nanny, as ``dask worker`` starts by default, the worker runs with OMP_NUM_THREADS=1 and the like)."""
    return _start([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(file),
                   "--nthreads", "1", "--nanny" if nanny else "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                   "--name", name], folder / f"worker-{name}.log")


def _workers(file: Path) -> dict[str, str]:
    """Worker name -> address, asked of the scheduler."""
    from distributed import Client

    with Client(scheduler_file=str(file), timeout=10, set_as_default=False) as client:
        return {str(info["name"]): address for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}


def _wait_for_workers(file: Path, names: set[str]) -> dict[str, str]:
    deadline = time.monotonic() + 60
    while True:
        found = _workers(file)
        if names <= set(found):
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {names - set(found)} did not join")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def scheduler_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scheduler and two one-thread workers on 127.0.0.1; stopped afterwards, even after a failure."""
    folder = tmp_path_factory.mktemp("dask")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        file = _start_scheduler(folder, processes)
        processes += [_start_worker(file, name, folder) for name in ("a", "b")]
        _wait_for_workers(file, {"a", "b"})
        yield file
    finally:
        _stop(processes)


def sigbench(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sigbench", *argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _table(folder: Path) -> list[dict[str, object]]:
    import pandas as pd

    return pd.read_csv(folder / "accuracy.csv").drop(columns="seconds").to_dict("records")


def test_accuracy_on_the_cluster_equals_the_local_run(scheduler_file: Path, tmp_path: Path) -> None:
    """Exhaustive float16 and a float32 sample: the same table from both engines, every column but the time."""
    argv = ("accuracy", "-b", "numpy", "--dtype", "float16", "--dtype", "float32", "--quiet")
    local = sigbench(*argv, "-o", str(tmp_path / "local"))
    remote = sigbench(*argv, "-o", str(tmp_path / "cluster"), "--scheduler-file", str(scheduler_file))
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    local_rows, remote_rows = _table(tmp_path / "local"), _table(tmp_path / "cluster")
    assert len(local_rows) >= 10 and {r["inputs"] for r in local_rows if r["dtype"] == "float16"} == {65536}
    assert json.dumps(remote_rows) == json.dumps(local_rows)  # bit for bit: floats printed in full


def test_a_worker_killed_mid_sweep_changes_nothing(scheduler_file: Path, tmp_path: Path) -> None:
    """A third worker joins, takes chunks of an exhaustive float32 sweep and is killed: its chunks are
    computed again elsewhere, and the merged totals equal those computed here."""
    from sigbench.accuracy_sweep import ulp as accuracy
    from sigbench.cluster import client

    backend = registry.load("numpy")
    cases = [accuracy.AccuracyCase("numpy", v, "float32") for v, r in backend.sigmoid_variants().items() if r is None]
    tasks = accuracy.sweep_tasks(cases, "float32", True, 0, "value")[0][2000:2030]
    victim = _start_worker(scheduler_file, "victim", tmp_path, nanny=False)
    try:
        address = _wait_for_workers(scheduler_file, {"victim"})["victim"]
        pool = client.connect(None, scheduler_file)
        try:
            totals = {case: accuracy.Totals() for case in cases}
            killed_while_busy = None
            for done, result in enumerate(client.map_unordered(pool, accuracy.measure_chunk, tasks), start=1):
                for case, partial in zip(result.cases, result.totals):
                    totals[case] = totals[case] + partial
                if killed_while_busy is None and pool.client.processing(workers=[address]).get(address):
                    killed_while_busy = done
                    victim.send_signal(signal.SIGKILL)
        finally:
            pool.close()
    finally:
        _stop([victim])
    assert killed_while_busy is not None and killed_while_busy < len(tasks), "the victim never held a task"
    assert victim.returncode == -signal.SIGKILL
    expected = {case: accuracy.Totals() for case in cases}
    for task in tasks:
        result = accuracy.measure_chunk(task)
        for case, partial in zip(result.cases, result.totals):
            expected[case] = expected[case] + partial
    assert totals == expected
    assert sum(t.inputs for t in totals.values()) == len(cases) * 30 * accuracy.EXHAUSTIVE_CHUNK


def test_fleet_run_brings_back_each_hosts_results_and_a_merged_report(scheduler_file: Path, tmp_path: Path) -> None:
    missing = [name for name in registry.BUILTIN if name not in registry.installed_names()]
    argv = ["run", "--quick", "-b", "numpy", *(f"-b{name}" for name in missing[:1]), "-w", "sigmoid",
            "-n", "1024", "-o", str(tmp_path / "fleet"), "--scheduler-file", str(scheduler_file)]
    finished = sigbench(*argv, "--json")
    assert finished.returncode == 0, finished.stderr
    hostname = socket.gethostname()
    document = json.loads((tmp_path / "fleet" / hostname / "results.json").read_text())
    printed = json.loads(finished.stdout)  # --json: each host's results.json, and the hosts that gave none
    assert printed["failures"] == {} and printed["hosts"][hostname]["rows"] == document["rows"]
    ok = [r for r in document["rows"] if r["status"] == "ok"]
    assert {r["backend"] for r in ok} == {"numpy"} and all(r["machine"] == hostname for r in ok)
    assert all(r["size"] == 1024 and r["check_passed"] for r in ok)
    # Dask's nanny starts its workers with OMP_NUM_THREADS=1; the benchmark must not inherit that
    assert "OMP_NUM_THREADS" not in document["metadata"]["env"]
    for name in missing[:1]:
        assert any(r["backend"] == name and r["status"] == "skipped" and "not installed" in r["message"]
                   for r in document["rows"])
    merged = (tmp_path / "fleet" / "results.md").read_text()
    assert "numpy/naive" in merged and hostname in merged
    assert (tmp_path / "fleet" / "results.html").exists() and (tmp_path / "fleet" / hostname / "results.md").exists()


def test_fleet_run_refuses_an_unknown_host(scheduler_file: Path, tmp_path: Path) -> None:
    finished = sigbench("run", "--quick", "-b", "numpy", "--hosts", "no-such-host", "-o", str(tmp_path / "x"),
                        "--scheduler-file", str(scheduler_file))
    assert finished.returncode == 2 and "no-such-host" in finished.stderr and "Traceback" not in finished.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("where, message", [
    (("--scheduler", "not-an-address"), "is not a scheduler address"),
    (("--scheduler", "tcp://127.0.0.1:99999"), "is not a scheduler address"),
    (("--scheduler-file", "/no/such/scheduler.json"), "no such file"),
])
def test_an_address_that_is_not_one_exits_2(where: tuple[str, str], message: str, tmp_path: Path) -> None:
    finished = sigbench("accuracy", "-b", "numpy", "--dtype", "float16", "-o", str(tmp_path / "x"), *where)
    assert finished.returncode == 2 and message in finished.stderr and "Traceback" not in finished.stderr


def test_an_unreachable_scheduler_exits_2(tmp_path: Path) -> None:
    finished = sigbench("accuracy", "-b", "numpy", "--dtype", "float16", "-o", str(tmp_path / "x"),
                        "--scheduler", f"tcp://127.0.0.1:{_free_port()}", timeout=60)
    assert finished.returncode == 2 and "cannot reach the Dask scheduler" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_a_cluster_without_workers_exits_2(tmp_path: Path) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        file = _start_scheduler(tmp_path, processes)
        finished = sigbench("run", "--quick", "-b", "numpy", "-o", str(tmp_path / "x"), "--scheduler-file", str(file))
    finally:
        _stop(processes)
    assert finished.returncode == 2 and "has no workers" in finished.stderr and "dask worker" in finished.stderr


def test_scheduler_without_the_dask_extra_names_the_extra(tmp_path: Path) -> None:
    """A process where ``import distributed`` fails, as it does without the extra."""
    code = ("import sys; sys.modules['distributed'] = None; from sigbench.cli import main; "
            f"sys.exit(main(['accuracy', '-b', 'numpy', '-o', {str(tmp_path / 'x')!r}, '--scheduler', "
            "'tcp://127.0.0.1:8786']))")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2 and "sigbench[dask]" in finished.stderr and "Traceback" not in finished.stderr


def test_ctrl_c_stops_a_cluster_sweep_and_leaves_the_cluster_idle(scheduler_file: Path, tmp_path: Path) -> None:
    """Ctrl-C while an exhaustive float32 sweep runs on the cluster: exit 130 within seconds, no traceback, and
    soon after no task of it left on the scheduler or running on a worker."""
    from distributed import Client

    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sigbench", "accuracy", "-b", "numpy", "--dtype", "float32", "--exhaustive",
             "-o", str(tmp_path / "sweep"), "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL,
            # a background job inherits SIGINT ignored: give the child the default, as a terminal would
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        with Client(scheduler_file=str(scheduler_file), timeout=10, set_as_default=False) as client:
            def busy() -> int:
                return sum(len(tasks) for tasks in client.processing().values())

            deadline = time.monotonic() + 120
            while busy() == 0:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the sweep never reached the workers"
                time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 130, log.read_text()
            deadline = time.monotonic() + 30
            while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) or busy():
                assert time.monotonic() < deadline, "tasks of the interrupted sweep are still on the cluster"
                time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text()
