"""Python environments for ``sigbench ab``'s tests and power benchmark (scripts/ab_power.py).

Not a backend: a helper beside the plugins, loaded from its file, since putting this folder on sys.path
would register the test plugins as backends of the process that loads it.
"""
from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from pathlib import Path


def make_environment(path: Path, factor: float = 1.0, sigbench_visible: bool = True, plugins: bool = True) -> Path:
    """A venv of this interpreter for ``sigbench ab``; returns its python.

    ``sigbench_visible``: it sees this environment's packages (a ``.pth`` file that adds its site folders);
    ``plugins``: and this folder's plugins; ``factor``: its ``work`` plugin does that many times the
    iterations (set by a ``.pth`` line of its own, so only that environment's processes have it)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    lines = []
    if sigbench_visible:
        parents = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
        lines += [f"import site; site.addsitedir({p!r})" for p in dict.fromkeys(parents)]
    if plugins:
        lines.append(str(Path(__file__).resolve().parent))
    if factor != 1.0:
        lines.append(f"import os; os.environ['SIGBENCH_TEST_WORK_FACTOR'] = '{factor:g}'")
    Path(purelib, "sigbench_test.pth").write_text("\n".join(lines) + "\n")
    return python
