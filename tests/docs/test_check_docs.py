"""scripts/check_docs.py: it finds each kind of problem in small pages, and none in the repository's own docs."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_docs.py"


@pytest.fixture(scope="module")
def check_docs():
    spec = importlib.util.spec_from_file_location("check_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problems(check_docs, tmp_path: Path, page: str, other: str = "# Other\n\n## A heading, with `code`\n") -> list[str]:
    (tmp_path / "docs").mkdir()
    (tmp_path / "sigbench").mkdir()
    (tmp_path / "sigbench" / "timing.py").write_text("")
    (tmp_path / "docs" / "other.md").write_text(other)
    (tmp_path / "README.md").write_text(page)
    return check_docs.check(tmp_path)


def test_a_clean_page_passes(check_docs, tmp_path):
    page = ("# Title\n\nSee [other](docs/other.md#a-heading-with-code), [here](#title), [web](https://example.org),\n"
            "`sigbench run --threads 1 --quick`, `--rigorous` and `sigbench/timing.py`.\n\n"
            "```bash\nsigbench compare reports/run-A reports/run-B --threshold 5%\npip install --upgrade x\n```\n")
    assert problems(check_docs, tmp_path, page) == []


def test_a_broken_link_is_found(check_docs, tmp_path):
    found = problems(check_docs, tmp_path, "# Title\n\nSee [gone](docs/gone.md).\n")
    assert len(found) == 1 and "broken link" in found[0] and "README.md:3" in found[0]


def test_a_missing_anchor_is_found(check_docs, tmp_path):
    found = problems(check_docs, tmp_path, "# Title\n\nSee [other](docs/other.md#no-such-heading) and [me](#nope).\n")
    assert len(found) == 2 and all("missing anchor" in p for p in found)


def test_a_myst_target_is_an_anchor(check_docs, tmp_path):
    found = problems(check_docs, tmp_path, "# Title\n\nSee [other](docs/other.md#the-target).\n",
                     other="# Other\n\n(the-target)=\n## Something else\n")
    assert found == []


def test_an_unknown_flag_is_found(check_docs, tmp_path):
    found = problems(check_docs, tmp_path, "# Title\n\nRun `sigbench run --no-such-flag`, or `--also-missing`.\n")
    assert len(found) == 2 and all("unknown flag" in p for p in found)
    assert "--no-such-flag" in found[0] and "--also-missing" in found[1]


def test_flags_inside_an_environment_variable_are_not_sigbench_flags(check_docs, tmp_path):
    page = ("# Title\n\n`XLA_FLAGS=--xla_cpu_max_isa=AVX2`, `A=1 XLA_FLAGS=--xla_x sigbench run --threads 1`\n"
            "and `XLA_FLAGS=--xla_x sigbench run --nope`.\n")
    found = problems(check_docs, tmp_path, page)
    assert len(found) == 1 and "--nope" in found[0] and "--xla" not in found[0]


def test_a_flag_of_another_subcommand_is_found(check_docs, tmp_path):
    # --steps belongs to `check`, not to `compare`
    found = problems(check_docs, tmp_path, "# Title\n\n`sigbench compare A B --steps 3`\n")
    assert len(found) == 1 and "--steps" in found[0]


def test_a_missing_path_is_found(check_docs, tmp_path):
    found = problems(check_docs, tmp_path, "# Title\n\nThe code is in `sigbench/accuracy.py`.\n")
    assert len(found) == 1 and "sigbench/accuracy.py does not exist" in found[0]


def test_the_script_exits_2_listing_each_problem(tmp_path):
    (tmp_path / "README.md").write_text("# T\n\n[gone](nowhere.md) and `scripts/nothing.py`\n")
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "nowhere.md" in done.stderr and "scripts/nothing.py" in done.stderr


def test_the_repository_docs_pass():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
