"""Progress on stderr: one line redrawn in place on a terminal, nothing when quiet or not a terminal."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def progress_line(done: int, total: int, elapsed_s: float, what: str) -> str:
    """``[=====     ] 12/48  1:05 left  <what>``; time left from the pace so far."""
    width = 20
    filled = int(width * done / total) if total else width
    left = ""
    if 0 < done < total:
        seconds = int(elapsed_s / done * (total - done))
        left = f" {seconds // 60}:{seconds % 60:02d} left"
    return f"[{'=' * filled}{' ' * (width - filled)}] {done}/{total}{left}  {what}"


def progress_printer(quiet: bool) -> Callable[[str], None] | None:
    """One line redrawn in place on a terminal; nothing when quiet or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(message: str) -> None:
        end = "\n" if message.endswith("done") else ""
        print(f"\r\033[K{message[:150]}", end=end, file=sys.stderr, flush=True)

    return show


@contextmanager
def bar(description: str, quiet: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar: the yielded ``show(done, total, what)`` redraws it."""
    printer = progress_printer(quiet)
    started = time.perf_counter()

    def show(done: int, total: int, what: str) -> None:
        if printer is not None:
            printer(progress_line(done, total, time.perf_counter() - started, what))

    yield show
