"""Dask: connecting to a cluster, spreading accuracy chunks over it, and ``run`` once per host (the fleet).
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The names of the old module ``sigbench.cluster`` (before the layout by stage), with a DeprecationWarning."""
    from sigbench.core import moved

    return moved.attribute(__name__, name)
