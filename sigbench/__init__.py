"""sigbench: compare NumPy, PyTorch and JAX on the same work, checked and timed.

Importing this package is light: no framework, no pandas. Backends load on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

#: Version of the results files (CSV/JSON) this sigbench writes and reads.
SCHEMA_VERSION = 2

__all__ = ["__version__", "SCHEMA_VERSION"]
