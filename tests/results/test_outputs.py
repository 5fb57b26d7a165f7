"""Every output write is safe on a full disk: an OSError is a message naming the file and what was kept,
with exit 1, and what was written before stays whole."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sigbench
from conftest import BACKENDS
from sigbench.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "example-cpu" / "results.json"


def fail_writes_of(monkeypatch: pytest.MonkeyPatch, name: str, code: int) -> None:
    """os.replace, the last step of every output write, fails with ``code`` for files called ``name``."""
    real = os.replace

    def replace(src: str, dst: str) -> None:
        if Path(dst).name == name:
            raise OSError(code, os.strerror(code))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_failed_write_names_the_file_and_what_was_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str], code: int) -> None:
    fail_writes_of(monkeypatch, "results.html", code)
    out = tmp_path / "report"
    assert main(["report", str(EXAMPLE), "-o", str(out), "--force"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"cannot write {out / 'results.html'}: {os.strerror(code)}" in err
    assert "results.md" in err and "sigbench-1" not in err
    assert (out / "results.md").read_text().startswith("# ")  # written before, and whole
    assert not any(p.name.startswith(".results.html") for p in out.iterdir())  # no temporary left behind


@pytest.mark.backend("numpy")
def test_a_run_whose_page_cannot_be_written_keeps_its_rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    if "numpy" not in BACKENDS:
        pytest.skip("numpy is not under test")
    fail_writes_of(monkeypatch, "results.html", errno.ENOSPC)
    out = tmp_path / "run"
    code = main(["run", "-b", "numpy", "-v", "stable", "-w", "sigmoid", "-n", "1024", "--quick", "--in-process",
                 "-q", "-o", str(out)])
    assert code == 1
    assert "cannot write" in capsys.readouterr().err
    saved = sigbench.load(out)
    assert saved.status == "complete" and [r["status"] for r in saved.rows] == ["ok"]


def test_a_real_full_disk(tmp_path: Path) -> None:
    """A 300 KiB tmpfs as the output folder: results.md fits, results.html (about 1.4 MB) does not."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"no tmpfs can be mounted here ({mounted.stderr.strip() or 'not root'}); the injected "
                    "errors above stand for it")
    try:
        done = subprocess.run([sys.executable, "-m", "sigbench", "report", str(EXAMPLE), "-o", str(folder),
                               "--force"], capture_output=True, text=True, check=False)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "No space left on device" in done.stderr
        kept = sorted(p.name for p in folder.iterdir())
        assert "results.html" not in kept and not any(name.startswith(".") for name in kept)  # no half file
        full = tmp_path / "full"
        assert main(["report", str(EXAMPLE), "-o", str(full)]) == 0
        for name in kept:  # what fitted is whole: the same bytes as where the disk has room
            assert (folder / name).read_bytes() == (full / name).read_bytes(), name
    finally:
        subprocess.run(["umount", str(folder)], check=False)
