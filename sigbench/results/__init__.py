"""The results files: the columns and their JSON Schema, atomic writes, reading a saved run back with checks.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The names of the old module ``sigbench.results`` (before the layout by stage), with a DeprecationWarning."""
    from sigbench.core import moved

    return moved.attribute(__name__, name)
