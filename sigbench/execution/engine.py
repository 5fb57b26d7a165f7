"""Where cases run: in worker processes (one backend each, one at a time), or in this process.

Both engines answer the same requests (``worker.handle``): the in-process one calls the worker code
directly; the process one starts ``python -m sigbench.execution.worker BACKEND`` and speaks JSON lines with it,
enforcing a deadline on every reply. A worker that dies (a signal, an exit) or runs past its deadline is
reported as ``WorkerFailed`` with what happened, and is gone: the caller starts a fresh one.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Protocol

from sigbench.core.errors import UsageError

#: Seconds a worker may take to start and describe its backend (importing torch takes ~2 s).
START_TIMEOUT_S = 300.0
#: The version of the requests and replies a worker speaks (``worker.handle``). ``sigbench ab`` starts
#: workers in other Python environments and requires theirs to match; change it with the messages.
WORKER_PROTOCOL = 1


class WorkerFailed(Exception):
    """The worker died or timed out while answering; ``message`` says which, for the case's row."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.timed_out = timed_out


class BackendHandle(Protocol):
    """A backend, ready to answer requests: where it lives is the engine's business."""

    info: dict[str, Any]

    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]: ...

    def close(self) -> None: ...


class InProcessBackend:
    """The backend in this very process: no isolation and no deadline (``--in-process``, debugging)."""

    def __init__(self, name: str, threads: int | None) -> None:
        from sigbench.execution.worker import BackendWorker, configure_threads

        configure_threads(threads, pin=False)
        try:
            self._worker = BackendWorker(name, threads)
        except UsageError:
            raise
        except Exception as error:
            raise WorkerFailed(f"{type(error).__name__}: {error}") from error
        self.info = self._worker.describe()

    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        from sigbench.execution.worker import handle

        return handle(self._worker, message)

    def close(self) -> None:
        from sigbench.execution.worker import cached_input, check_reference

        cached_input.cache_clear()
        check_reference.cache_clear()


def describe_exit(returncode: int) -> str:
    """``killed by signal SIGSEGV (11)`` or ``exited with status 3``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal"
        return f"killed by signal {name} ({-returncode})"
    return f"exited with status {returncode}"


def worker_environment(name: str) -> dict[str, str]:
    """The worker's environment: this process's, with its import path, and JAX kept from taking the GPU."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + env.get("PYTHONPATH", "").split(os.pathsep)))
    # JAX reserves 75% of a GPU when it starts; in its own process it takes only what it uses, so the
    # other backends' workers find the memory free and peak device memory is each backend's own
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def other_environment() -> dict[str, str]:
    """The environment of a worker run by another Python environment's interpreter (``sigbench ab``).

    Unlike ``worker_environment``, it adds none of this process's import path (that would import this
    environment's packages there); a user's own PYTHONPATH stays, made absolute, since such a worker runs
    in a folder of its own, where no ``sigbench`` source folder can shadow that environment's.
    """
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProcessBackend:
    """A worker process for one backend. Every reply has a deadline; past it the worker is killed."""

    def __init__(self, name: str, threads: int | None, start_timeout_s: float = START_TIMEOUT_S,
                 python: str | None = None, cwd: str | None = None) -> None:
        """``python``: another environment's interpreter, run in the folder ``cwd`` (``sigbench ab``);
        None: this one's, with this process's import path."""
        command = [python or sys.executable, "-m", "sigbench.execution.worker", name]
        if threads is not None:
            command += ["--threads", str(threads)]
        self.name = name
        self._stderr = tempfile.TemporaryFile()
        self._buffer = b""
        env = worker_environment(name) if python is None else other_environment()
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env=env, cwd=cwd, close_fds=True)
        try:
            hello = self._read(start_timeout_s, "starting")
        except BaseException:
            self.kill()
            raise
        if not hello.get("ok"):
            self.kill()
            raise WorkerFailed(f"the {name} worker could not load its backend: {hello.get('error')}")
        self.info = hello["info"]

    @property
    def pid(self) -> int:
        return self._process.pid

    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        try:
            assert self._process.stdin is not None
            self._process.stdin.write((json.dumps(message) + "\n").encode())
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died: reading says how
        return self._read(timeout_s, "running")

    def _read(self, timeout_s: float, doing: str) -> dict[str, Any]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerFailed(f"timed out after {timeout_s:g} s", timed_out=True)
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._process.wait()
                message = f"the {self.name} worker {describe_exit(self._process.returncode)} while {doing}"
                tail = self.stderr_tail()
                self.kill()
                raise WorkerFailed(message + (f"; its last words: {tail}" if tail else ""))
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return dict(json.loads(line))

    def stderr_tail(self, limit: int = 300) -> str:
        """The end of what the worker wrote to stderr, on one line."""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 4096))
            text = self._stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-limit:]

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within a few seconds."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self._process.stdin is not None
                self._process.stdin.write(b'{"op": "exit"}\n')
                self._process.stdin.flush()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """Stop the worker now, and release its pipes."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
        for stream in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(OSError):
            self._stderr.close()


class Engine:
    """Starts backends in worker processes or in this process, and stops every one it started."""

    def __init__(self, in_process: bool, threads: int | None, python: str | None = None,
                 cwd: str | None = None) -> None:
        """``python`` and ``cwd``: workers of another Python environment (``ProcessBackend``)."""
        if in_process and python is not None:
            raise ValueError("another environment's workers cannot run in this process")
        self.in_process = in_process
        self.threads = threads
        self.python = python
        self.cwd = cwd
        self._live: list[BackendHandle] = []

    def start(self, name: str) -> BackendHandle:
        handle: BackendHandle = (InProcessBackend(name, self.threads) if self.in_process
                                 else ProcessBackend(name, self.threads, python=self.python, cwd=self.cwd))
        self._live.append(handle)
        return handle

    def stop(self, handle: BackendHandle) -> None:
        if handle in self._live:
            self._live.remove(handle)
        handle.close()

    def forget(self, handle: BackendHandle) -> None:
        """A handle that already died (its process is reaped)."""
        if handle in self._live:
            self._live.remove(handle)

    def stop_all(self, graceful: bool = True) -> None:
        """Every live worker: asked to exit, or killed at once (an interrupted run leaves no orphan)."""
        for handle in list(self._live):
            if graceful or not isinstance(handle, ProcessBackend):
                self.stop(handle)
            else:
                handle.kill()
                self.forget(handle)
