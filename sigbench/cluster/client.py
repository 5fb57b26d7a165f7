"""Where work runs: this machine's threads, or the workers of a Dask cluster (``--scheduler``).

The one module that knows which engine runs the work. The accuracy sweep maps its chunk tasks with
``map_unordered``: a ``concurrent.futures`` thread pool here, ``client.map`` futures on a cluster, both
yielding results as they finish; the fleet run places one task per host with ``Cluster.run_per_host``. Dask is an
extra (``pip install 'sigbench[dask]'``) and is imported only when a cluster is asked for, so
``import sigbench`` stays light.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sigbench.core import version
from sigbench.core.errors import UsageError

#: How long to try to reach a scheduler before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10.0
#: How long a reachable scheduler may take to show its first worker.
WORKER_WAIT_S = 5.0
#: Threads of the local engine: NumPy, PyTorch and JAX release the GIL in their kernels.
LOCAL_THREADS = 2
#: A task whose worker died is rerun elsewhere by Dask (its own bookkeeping); these retries are for the rest.
TASK_RETRIES = 2
#: How often a fleet run looks for finished hosts and hosts that left.
POLL_S = 0.5
INSTALL_HINT = "pip install 'sigbench[dask]'"

_ADDRESS = re.compile(r"(?:(?:tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")

Item = TypeVar("Item")
Result = TypeVar("Result")


def check_address(address: str) -> str:
    """``address`` if it reads as a scheduler address (``tcp://host:port``), else a UsageError saying so."""
    match = _ADDRESS.fullmatch(address.strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise UsageError(f"--scheduler {address!r} is not a scheduler address; give tcp://HOST:PORT "
                         "(what `dask scheduler` prints), or --scheduler-file PATH")
    return address.strip()


def _address_from_file(path: Path) -> str:
    try:
        address = json.loads(path.read_text(encoding="utf-8"))["address"]
    except FileNotFoundError:
        raise UsageError(f"--scheduler-file {path}: no such file (it is what `dask scheduler --scheduler-file "
                         f"{path}` writes)") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"--scheduler-file {path}: not a Dask scheduler file ({error})") from None
    return check_address(str(address))


class Cluster:
    """A connected Dask cluster: its workers, grouped by host, and ways to put work on them."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.address: str = client.scheduler.address

    def workers(self) -> dict[str, str]:
        """Worker address -> the host it runs on."""
        from distributed.comm import get_address_host

        return {address: get_address_host(address) for address in self.client.scheduler_info(n_workers=-1)["workers"]}

    def hosts(self) -> dict[str, list[str]]:
        """Host -> its workers' addresses, hosts in a stable order."""
        by_host: dict[str, list[str]] = {}
        for address, host in sorted(self.workers().items()):
            by_host.setdefault(host, []).append(address)
        return by_host

    def on_every_worker(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        """``fn(*args)`` inside each worker process (light work: facts about the worker)."""
        return dict(self.client.run(fn, *args))

    def map_unordered(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
        """``fn`` over ``items`` on the workers, results as they finish; leaving early cancels the rest.

        ``client.map`` sends every task in one message (``get_executor().submit`` costs a round trip each:
        7.8 s against 0.14 s for 4,096 tasks here).
        """
        import distributed

        pending = set(self.client.map(fn, list(items), pure=False, retries=TASK_RETRIES))
        try:
            for future in distributed.as_completed(list(pending), loop=self.client.loop):
                result = future.result()
                pending.discard(future)  # the worker may forget it now
                future.release()
                yield result
        finally:
            if pending:
                self.client.cancel(list(pending))

    def require_same_versions(self, backends: list[str]) -> None:
        """UsageError naming the differences when the workers would compute with different versions."""
        found = self.on_every_worker(worker_versions, backends)
        missing = {worker: facts["missing"] for worker, facts in found.items() if "missing" in facts}
        if missing:
            worker, message = next(iter(missing.items()))
            raise UsageError(f"worker {worker} cannot compute: {message}; install the same backends on every "
                             f"worker ({len(missing)} of {len(found)} workers lack one)")
        differing = []
        for library in sorted({name for facts in found.values() for name in facts}):
            seen: dict[str, list[str]] = {}
            for worker, facts in sorted(found.items()):
                seen.setdefault(str(facts.get(library)), []).append(worker)
            if len(seen) > 1:
                differing.append(f"{library} " + " vs ".join(f"{version} on {', '.join(workers)}"
                                                             for version, workers in seen.items()))
        if differing:
            raise UsageError("the workers would compute with different versions: " + "; ".join(differing)
                             + "; install the same versions on every worker")

    def run_per_host(self, fn: Callable[..., Any], args_by_host: dict[str, tuple[Any, ...]],
                     done: Callable[[str, Any, str | None], None]) -> None:
        """``fn(*args)`` once on one worker of each host, all hosts at once; ``done(host, result, failure)`` as
        each finishes. A host whose workers all leave the cluster fails with a message instead of waiting."""
        hosts = self.hosts()
        pending = {self.client.submit(fn, *args, workers=hosts[host], allow_other_workers=False, pure=False): host
                   for host, args in args_by_host.items()}
        try:
            while pending:
                finished = [future for future in pending if future.done()]
                if not finished:
                    time.sleep(POLL_S)
                for future in finished:
                    host = pending.pop(future)
                    if future.status == "finished":
                        done(host, future.result(), None)
                    else:
                        done(host, None, _describe(future))
                alive = set(self.workers().values())
                for future, host in list(pending.items()):
                    if host not in alive:
                        future.cancel()
                        del pending[future]
                        done(host, None, "the host left the cluster (its workers disappeared) before it finished")
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        self.client.close()


def _describe(future: Any) -> str:
    try:
        error = future.exception()
    except Exception as failure:  # cancelled, or the scheduler lost it
        error = failure
    return f"{type(error).__name__}: {error}"


def worker_versions(backends: list[str]) -> dict[str, str]:
    """What decides a worker's numbers: sigbench, NumPy, mpmath and each backend's libraries."""
    import mpmath
    import numpy as np

    from sigbench.core import registry

    found = {"sigbench": version.__version__, "numpy (reference)": np.__version__, "mpmath": mpmath.__version__}
    for name in backends:
        try:
            backend = registry.load(name)
        except Exception as error:  # not installed or broken there: the caller names the worker
            return {"missing": str(error)}
        found.update({f"{name}: {library}": str(version) for library, version in backend.versions().items()})
    return found


def connect(address: str | None, scheduler_file: Path | None, timeout_s: float = CONNECT_TIMEOUT_S) -> Cluster:
    """A client of the scheduler at ``address`` (or named in ``scheduler_file``) with at least one worker."""
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--scheduler needs Dask distributed, which is not installed; install the dask extra: "
                         f"{INSTALL_HINT}") from None
    address = _address_from_file(scheduler_file) if scheduler_file is not None else check_address(address or "")
    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its connection retries are not for users
    try:
        client = distributed.Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise UsageError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s ({error}); is "
                         "`dask scheduler` running there, and is the port open?") from None
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError:
        client.close()
        raise UsageError(f"the Dask cluster at {address} has no workers; start one with: dask worker {address}"
                         ) from None
    return Cluster(client)


@contextmanager
def connected(address: str | None, scheduler_file: Path | None) -> Iterator[Cluster | None]:
    """The cluster the command line names, closed afterwards; None (this machine) when it names none."""
    if address is None and scheduler_file is None:
        yield None
        return
    cluster = connect(address, scheduler_file)
    try:
        yield cluster
    finally:
        cluster.close()


def map_unordered(cluster: Cluster | None, fn: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
    """``fn`` over ``items`` on the cluster's workers (or this machine's threads), results as they finish.

    Leaving early (an error, Ctrl-C) cancels the outstanding tasks.
    """
    if cluster is not None:
        yield from cluster.map_unordered(fn, items)
        return
    executor = ThreadPoolExecutor(LOCAL_THREADS, thread_name_prefix="sigbench")
    futures = [executor.submit(fn, item) for item in items]
    finished = False
    try:
        for future in as_completed(futures):
            yield future.result()
        finished = True
    finally:
        executor.shutdown(wait=True, cancel_futures=not finished)
