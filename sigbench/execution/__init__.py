"""A benchmark run from a request to rows: the plan of cases, the worker processes (``engine``), what a
worker does (``worker``: ``python -m sigbench.execution.worker``), the runner that drives them, and progress.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The names of the old module ``sigbench.execution`` (before the layout by stage), with a DeprecationWarning."""
    from sigbench.core import moved

    return moved.attribute(__name__, name)
