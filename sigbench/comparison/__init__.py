"""Verdicts between runs: ``compare`` of two saved runs (``verdicts``), the same run twice (``aa``), and two
Python environments in interleaved rounds with a stopping rule (``abtest``, ``sequential``).
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The names of the old module ``sigbench.comparison`` (before the layout by stage), with a DeprecationWarning."""
    from sigbench.core import moved

    return moved.attribute(__name__, name)
