"""Check the prose a user reads against the repository, offline: links, anchors, flags and paths.

    python scripts/check_docs.py [ROOT]

- Every relative link and image in README.md, docs/ and reports/ (markdown files) must point at a file or
  folder that exists; a ``#anchor`` must name a heading of the target page (GitHub's slug of it) or a myst
  target ``(name)=`` written there.
- Every ``--flag`` quoted in README.md and docs/ must be an option of the real parser of ``sigbench.cli``:
  of the subcommand a ``sigbench SUBCOMMAND ...`` span names, else of any subcommand.
- Every repository path quoted in README.md and docs/ (a code span that is a path under a top-level folder
  or one of the top-level files) must exist.

Exit 0 when all hold; 2 with one line per problem, ``FILE:LINE: what``, when one does not. Nothing is
fetched: links with a scheme (https:, mailto:) are left alone.
"""
from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Top-level entries whose paths are checked when quoted in a code span.
TOP_LEVEL_DIRS = ("sigbench", "backends", "tests", "scripts", "reports", "docs", ".ci")
TOP_LEVEL_FILES = ("README.md", "ARCHITECTURE.md", "pyproject.toml", "tox.ini", "constraints.txt")
#: Commands whose flags are not sigbench's: a code span starting with one of these is not checked for flags.
OTHER_COMMANDS = frozenset({
    "pip", "pip3", "python", "python3", "pytest", "tox", "dask", "srun", "sphinx-build", "uv", "git", "apt-get",
    "ruff", "mypy", "export", "cd", "ls", "sudo", "cpupower", "taskset", "numactl", "nohup", "jupyter",
    "torch.compile", "uvx", "make", "bash", "sh", "env", "perf", "chmod", "echo",
})
#: An environment variable set in front of a command, or alone (``NAME=value``).
ENV_ASSIGNMENT = re.compile(r"^[A-Z][A-Z0-9_]*=")
#: Placeholders and globs: a path holding one of these names no single file.
PLACEHOLDER = re.compile(r"[<>*{}$…]|\.\.\.|\b[A-Z]{2,}\b")

FENCE = re.compile(r"^\s*(```+|~~~+)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MYST_TARGET = re.compile(r"^\(([^()\s]+)\)=\s*$")
FLAG = re.compile(r"(?<![\w/.=-])--[a-z][a-z0-9-]*")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def github_slug(heading: str) -> str:
    """The anchor GitHub (and myst's heading anchors) give a heading: lower case, punctuation dropped,
    spaces to hyphens; inline markup is dropped first."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # html tags
    text = text.replace("`", "").strip().lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "-_ " or category[0] in "LN" or category == "Mn":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def prose_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, line, inside a fenced code block) for each line."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
                yield number, line, True
                continue
            if marker.startswith(fence):
                fence = None
                yield number, line, True
                continue
        yield number, line, fence is not None


def anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    """The anchors a markdown page offers: its headings' slugs (a repeat gets -1, -2, ...) and myst targets."""
    if path not in cache:
        found: set[str] = set()
        seen: dict[str, int] = {}
        for _, line, in_code in prose_lines(path.read_text(encoding="utf-8")):
            if in_code:
                continue
            target = MYST_TARGET.match(line)
            if target:
                found.add(target.group(1))
            heading = HEADING.match(line)
            if heading:
                slug = github_slug(heading.group(2))
                count = seen.get(slug, 0)
                seen[slug] = count + 1
                found.add(slug if count == 0 else f"{slug}-{count}")
        cache[path] = found
    return cache[path]


def strip_code_spans(line: str) -> str:
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def check_links(path: Path, root: Path, cache: dict[Path, set[str]]) -> Iterator[str]:
    """Every relative link and image of one markdown file."""
    for number, line, in_code in prose_lines(path.read_text(encoding="utf-8")):
        if in_code:
            continue
        prose = strip_code_spans(line)
        targets = [m.group(1) for m in LINK.finditer(prose)] + [m.group(1) for m in HTML_LINK.finditer(prose)]
        for target in targets:
            if target.startswith(("path:", "project:")):
                target = target.split(":", 1)[1]
            elif SCHEME.match(target):
                continue
            where = f"{path.relative_to(root)}:{number}"
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if file_part and not linked.exists():
                yield f"{where}: broken link {target!r}: {file_part} does not exist"
                continue
            if not anchor:
                continue
            if linked.is_dir() or linked.suffix != ".md":
                yield f"{where}: anchor #{anchor} in {target!r} points into something that is not a markdown page"
            elif anchor not in anchors_of(linked, cache):
                yield f"{where}: missing anchor {target!r}: {linked.relative_to(root)} has no heading or target " \
                      f"'{anchor}'"


def cli_options() -> tuple[set[str], dict[str, set[str]]]:
    """The options of the real parser: the top level's, and each subcommand's (aliases included)."""
    from sigbench.cli import build_parser

    parser = build_parser()
    top = set(parser._option_string_actions)
    commands: dict[str, set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = set(sub._option_string_actions)
    return top, commands


def code_spans(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every code span, and of every line of a fenced block of shell commands."""
    language = ""
    for number, line, in_code in prose_lines(path.read_text(encoding="utf-8")):
        if in_code:
            fence = FENCE.match(line)
            if fence:
                language = line.strip().lstrip("`~").strip().split(" ")[0].strip("{}") if not language else ""
                continue
            if language in ("bash", "sh", "shell", "console", ""):
                yield number, line.split(" #", 1)[0].strip().removeprefix("$ ")
            continue
        for match in CODE_SPAN.finditer(line):
            yield number, match.group(2).strip()


def check_flags(path: Path, root: Path, top: set[str], commands: dict[str, set[str]]) -> Iterator[str]:
    every = set(top).union(*commands.values())
    for number, span in code_spans(path):
        words = span.split()
        while words and ENV_ASSIGNMENT.match(words[0]):  # `XLA_FLAGS=--xla_... cmd`: the variable's flags are not ours
            words = words[1:]
        span = " ".join(words)
        if not words or "--" not in span:
            continue
        known = every
        if words[0] in ("sigbench",) or words[:3] == ["python", "-m", "sigbench"]:
            rest = words[1:] if words[0] == "sigbench" else words[3:]
            if rest and rest[0] in commands:
                known = top | commands[rest[0]]
        elif words[0] in OTHER_COMMANDS or words[0].startswith((".", "/", "~")) or "/" in words[0]:
            continue

        for flag in FLAG.findall(span):
            if flag not in known:
                where = f"{path.relative_to(root)}:{number}"
                yield f"{where}: unknown flag {flag} in `{span}`"


def repo_path(token: str) -> str | None:
    """The repository path a token names, or None where it is not one (or is a placeholder or glob)."""
    token = token.strip("'\"(),;")
    if PLACEHOLDER.search(token) or "://" in token:
        return None
    if token in TOP_LEVEL_FILES:
        return token
    head = token.split("/", 1)[0]
    if "/" in token and head in TOP_LEVEL_DIRS:
        return token.split("::", 1)[0]
    return None


def check_paths(path: Path, root: Path) -> Iterator[str]:
    for number, span in code_spans(path):
        words = span.split()
        if not words:
            continue
        # a span that is one path is checked whole; inside a command, only source paths (outputs may be new)
        candidates = words if len(words) == 1 else [w for w in words if not w.startswith(("reports/", "docs/"))]
        for word in candidates:
            name = repo_path(word)
            if name is not None and not (root / name).exists():
                yield f"{path.relative_to(root)}:{number}: path {name} does not exist (in `{span}`)"


def markdown_files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    return sorted(p for p in base.rglob("*.md") if "_build" not in p.parts) if base.is_dir() else []


def check(root: Path, prose: Iterable[Path] | None = None, linked_only: Iterable[Path] | None = None) -> list[str]:
    """Every problem found, one line each. ``prose``: the files whose links, flags and paths are checked
    (default: README.md, ARCHITECTURE.md and docs/); ``linked_only``: files whose links alone are checked
    (default: reports/)."""
    root = root.resolve()
    if prose is None:
        prose = [root / name for name in ("README.md", "ARCHITECTURE.md") if (root / name).exists()]
        prose += markdown_files(root, "docs")
    if linked_only is None:
        linked_only = markdown_files(root, "reports")
    prose = [p.resolve() for p in prose]
    cache: dict[Path, set[str]] = {}
    top, commands = cli_options()
    problems: list[str] = []
    for path in prose:
        problems += check_links(path, root, cache)
        problems += check_flags(path, root, top, commands)
        problems += check_paths(path, root)
    for path in linked_only:
        problems += check_links(path.resolve(), root, cache)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the repository (default: the one this script is in)")
    args = parser.parse_args(argv)
    problems = check(args.root)
    if problems:
        print(f"check_docs: {len(problems)} problem(s) in the docs:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("Fix each link, anchor, flag or path above (or the code, if the docs are right).", file=sys.stderr)
        return 2
    print("check_docs: every link, anchor, flag and path holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
