"""Progress of a run or an accuracy sweep on stderr: rich's bar on a terminal, plain lines in logs, or nothing.

One interface for every long command: ``with bar("sigbench run", quiet) as show: show(done, total, what)``.
On a terminal the bar shows the case being measured, the cases done, the time elapsed and the time left.
When stderr is a file or a pipe (CI logs, ``2> log``) a redrawn bar would fill the log with control codes,
so each call prints one plain line instead; past 100 calls, one per percent, so long sweeps stay readable.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: In plain-line mode, at most this many lines per bar (besides the first and the last).
PLAIN_LINES = 100

Show = Callable[[int, int, str], None]


@contextmanager
def bar(description: str, quiet: bool) -> Iterator[Show]:
    """A ``show(done, total, what)`` for the block: ``what`` is the case now starting, or "done" at the end."""
    if quiet:
        yield lambda done, total, what: None
    elif sys.stderr.isatty():
        with _rich_bar(description) as show:
            yield show
    else:
        yield _plain_lines(description)


@contextmanager
def _rich_bar(description: str) -> Iterator[Show]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), TextColumn("{task.fields[what]}"))
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=None, what="")

        def show(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, what=what, refresh=True)

        yield show


def _plain_lines(description: str) -> Show:
    last_percent = [(-1, 0)]
    started = time.perf_counter()

    def show(done: int, total: int, what: str) -> None:
        if total > PLAIN_LINES and 0 < done < total:
            percent = (done * PLAIN_LINES // total, total)
            if percent == last_percent[0]:
                return
            last_percent[0] = percent
        elapsed = time.perf_counter() - started
        left = f", {format_duration(elapsed / done * (total - done))} left" if 0 < done < total else ""
        print(f"{description}: {done}/{total} in {format_duration(elapsed)}{left}: {what}", file=sys.stderr,
              flush=True)

    return show


def format_duration(seconds: float) -> str:
    """``1:05`` or ``1:02:05``: how a person reads time elapsed or left."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
