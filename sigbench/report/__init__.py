"""Rendering: the tables, markdown, HTML pages and plots of a run, an ab, a comparison and an accuracy
sweep, and writing a run's set of files. It renders rows made by the stages above; it runs nothing.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The names of the old module ``sigbench.report`` (before the layout by stage), with a DeprecationWarning."""
    from sigbench.core import moved

    return moved.attribute(__name__, name)
