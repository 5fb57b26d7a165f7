"""``python -m sigbench.worker``: the old way to start a worker, kept for one release.

Workers are ``python -m sigbench.execution.worker`` now; this starts the same, with a DeprecationWarning.
"""
import importlib
import runpy
import sys
import warnings

if __name__ == "__main__":
    warnings.warn("python -m sigbench.worker has moved to python -m sigbench.execution.worker; the old path goes "
                  "in the release after sigbench 0.2", DeprecationWarning, stacklevel=1)
    runpy.run_module("sigbench.execution.worker", run_name="__main__", alter_sys=True)
else:
    from sigbench.core import moved

    moved.warn("sigbench.worker", "sigbench.execution.worker")
    sys.modules[__name__] = importlib.import_module("sigbench.execution.worker")
