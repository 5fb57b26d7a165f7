"""sigbench: compare NumPy, PyTorch and JAX on the same work, checked and timed.

Importing this package is light: no framework, no pandas. Backends load on first use, and the Python
API (``run``, ``load``, ``compare``, ``accuracy``, ``ab``; see ``sigbench.api``) loads on first access.
The package is laid out by stage (see ARCHITECTURE.md); ``sigbench.core.moved`` keeps the old module paths
working for one release.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sigbench.core import moved
from sigbench.core.errors import ResultsFileError, UsageError
from sigbench.core.version import SCHEMA_VERSION, __version__

moved.install()

_API = ("run", "load", "compare", "accuracy", "ab", "Results", "AccuracyResults", "ABResults")

__all__ = ["__version__", "SCHEMA_VERSION", "UsageError", "ResultsFileError", "run", "load", "compare", "accuracy",
           "ab", "Results", "AccuracyResults", "ABResults"]

if TYPE_CHECKING:
    from sigbench.api import ABResults, AccuracyResults, Results, ab, accuracy, compare, load, run


def __getattr__(name: str) -> Any:
    if name in _API:
        from sigbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'sigbench' has no attribute {name!r}")
