"""Sphinx configuration of sigbench's docs: `tox -e docs` builds them with warnings as errors, offline."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import sigbench  # noqa: E402

project = "sigbench"
author = "the sigbench authors"
copyright = "2026, the sigbench authors"
release = version = sigbench.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_argparse_cli",
    "sigbench_schema",  # docs/_ext: the results columns, read from the code that defines them
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
# GitHub-style anchors for headings down to ###, so the README's links and the docs' agree
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"sigbench {release}"
html_static_path: list[str] = []

# Type hints go in the description, not the signature: the signatures of run() and ab() are long.
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

# No intersphinx: the build fetches nothing. Names of other projects that appear in type hints therefore
# have no page to link to; they are listed here so that -n (nitpicky) does not fail on them.
nitpick_ignore = [
    ("py:class", "pd.DataFrame"),
    ("py:class", "pandas.DataFrame"),
    ("py:class", "pandas.core.frame.DataFrame"),
    ("py:class", "Path"),
    ("py:class", "pathlib.Path"),
    ("py:class", "collections.abc.Iterable"),
    ("py:class", "collections.abc.Callable"),
    ("py:class", "Iterable"),
    ("py:class", "Callable"),
    ("py:class", "PathLike"),
    ("py:class", "optional"),
]
