"""The ``sigbench`` command: a thin layer over the Python API (``sigbench.api``) for ``run`` and
``accuracy``. Every error a user can cause is a message and exit code 2.

Exit codes: 0 all good; 1 a numerics check failed, a case errored, compare or ab found a slowdown, noise
flagged over 1% of its cases, or an output could not be written; 2 usage error; 130 / 143 interrupted
(SIGINT / SIGTERM), with the finished rows saved.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sigbench.core import version
from sigbench.core.errors import Interrupted, OutputWriteError, UsageError
from sigbench.core.interface import DTYPES, SIGMOID_VARIANT_HELP, WORKLOADS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- argument types: each raises a message argparse prints with exit 2 ----------------------


def positive_int(text: str) -> int:
    """A whole number above 0; also 2^k / 2**k and 1e6-style integers."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    match = re.fullmatch(r"(\d+)\s*(?:\^|\*\*)\s*(\d+)", cleaned)
    try:
        if match:
            value = int(match.group(1)) ** int(match.group(2))
        elif re.fullmatch(r"[+-]?\d+", cleaned):
            value = int(cleaned)
        elif re.fullmatch(r"\d+(\.\d+)?[eE]\d+", cleaned) and float(cleaned).is_integer():
            value = int(float(cleaned))
        else:
            raise ValueError
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (e.g. 1024 or 2^20)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number")
    return value


def percentage(text: str) -> float:
    cleaned = text.strip().rstrip("%")
    try:
        value = float(cleaned) / (100 if text.strip().endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (e.g. 5%)") from None
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"{text!r}: out of range")
    return value


#: What ``run --format`` can write besides results.json; all by default.
FORMATS: tuple[str, ...] = ("csv", "md", "html", "png")


def formats(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in FORMATS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    return chosen


#: --help is wrapped to the terminal, and never wider than this
HELP_WIDTH = 100


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions and epilogs wrapped by paragraph, lines that start with a space (examples, tables) kept
    as written, and "(default: X)" after every option that has a default and does not already say it."""

    def __init__(self, prog: str) -> None:
        import shutil

        super().__init__(prog, width=min(HELP_WIDTH, shutil.get_terminal_size().columns) - 2)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        out: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                out.extend(textwrap.wrap(" ".join(paragraph), width, initial_indent=indent,
                                         subsequent_indent=indent, break_on_hyphens=False))
                paragraph.clear()

        for line in text.splitlines():
            if not line.strip() or line.startswith(" "):
                flush()
                if len(indent + line) <= width:
                    out.append(indent + line if line.strip() else "")
                elif column := re.match(r"\s+\S+\s{2,}", line):  # a long table row: on under its 2nd column
                    hang = " " * column.end()
                    out.extend(textwrap.wrap(line.strip(), width, initial_indent=indent + line[:len(line) - len(
                        line.lstrip())], subsequent_indent=indent + hang, break_on_hyphens=False))
                else:  # an example: as written
                    out.append(indent + line)
            else:
                paragraph.append(line.strip())
                if line.rstrip().endswith(":"):  # a heading: what follows starts a line of its own
                    flush()
        flush()
        return "\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, [], argparse.SUPPRESS) or action.nargs == 0
                or not action.option_strings):
            return text
        if isinstance(default, (list, tuple)):
            default = ", ".join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """argparse, with sigbench's help formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_backend_option(parser: argparse.ArgumentParser, what: str = "backend") -> None:
    parser.add_argument("--backend", "-b", action="append", default=[], metavar="NAME",
                        help=f"{what} to use (repeat for several; default: every installed one)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sigbench",
        description="Compare NumPy, PyTorch and JAX on the same work: numerically checked, correctly timed.",
        epilog="examples:\n  sigbench run --quick\n  sigbench run -b torch -b jax --workload train\n"
               "  sigbench check --steps 10 --dtype float64\n  sigbench compare reports/run-A reports/run-B\n"
               "  sigbench ab .venv-old/bin/python .venv-new/bin/python -b jax -w train\n\n"
               "exit codes:\n"
               "  0    all good\n"
               "  1    a numerics check failed, a case raised an error, compare or ab found a slowdown, noise "
               "flagged over 1% of its cases, or an output could not be written\n"
               "  2    bad input: the message says what was wrong and what is allowed\n"
               "  130  interrupted by Ctrl-C (143: by SIGTERM); the finished rows are saved\n\n"
               "-v is --variant in every command, as -b is --backend and -w --workload (progress shows by "
               "default; --quiet hides it)",
    )
    parser.add_argument("--version", action="version", version=f"sigbench {version.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="check and time every backend, write CSV/markdown/JSON reports",
        description="Check each case's numerics against float64, then time it, in worker processes of its backend\n"
                    "(K per case, one at a time: the interval of each median includes the variance between\n"
                    "processes); write results.csv, results.md, results.html and results.json (and PNG plots)\n"
                    "into a new folder under reports/ or --output-dir.",
        epilog="variants (sigmoid):\n" + "\n".join(f"  {k:9} {v}" for k, v in SIGMOID_VARIANT_HELP.items())
        + "\n  numexpr   (numpy only) a reference row for fast: numexpr, same threads, reused buffer"
        + "\n\nvariants (train):\n  numpy     handwritten; reference (a reference row, not a NumPy implementation: "
        "the whole step as one fused numba function)\n  torch     eager (the tutorial's), foreach, fused (Adam "
        "kernels), manual (hand-written backward in torch ops + fused Adam), compiled (the whole step under "
        "torch.compile), graphed (a CUDA graph, GPU only)\n  jax       jit\n\n"
        "examples:\n  sigbench run --quick\n  sigbench run -b numpy -b torch --size 2^20 --size 2^24\n"
        "  sigbench run --workload train --batch 32 --batch 1024 --hidden 128 --hidden 1024")
    _add_run_options(run)
    _add_cluster_options(run, fleet=True)
    run.set_defaults(handler=cmd_run, preset="default")

    aa = commands.add_parser(
        "noise", aliases=["aa"],
        help="this machine's noise: the same run twice, then compare (an A/A test; also: aa)",
        description="Run the same benchmark twice, one run after the other, into DIR/a and DIR/b, then compare "
                    "them (an A/A test: `sigbench aa` is the same command). Nothing changed between the two, so "
                    "every case compare flags beyond the threshold is a false alarm: the rate says how far this "
                    "machine's noise alone moves a result. Writes DIR/aa.md; exit 1 when more than 1% of the "
                    "cases are flagged.",
        epilog="examples:\n  sigbench noise\n  sigbench noise --processes 5 -b jax -w sigmoid")
    _add_run_options(aa)
    aa.add_argument("--threshold", type=percentage, default=0.05, metavar="P",
                    help="the change compare flags, e.g. 10%% (default: 5%%)")
    aa.set_defaults(handler=cmd_aa, preset="default")

    ab = commands.add_parser(
        "ab", help="A/B of two Python environments: interleaved rounds until every case is decided",
        description="Measure the same cases in two Python environments (e.g. jax 0.9 in one venv, jax 0.10 in\n"
                    "another), each side's workers started with that side's interpreter. Each round runs one\n"
                    "worker process per side and backend in an order drawn at random, each taking every case\n"
                    "once; the verdict is on the rounds' paired ratios B/A. Rounds go on until every case's\n"
                    "interval lies beyond --threshold (slower / faster) or within it (same), or until\n"
                    "--max-time or --max-rounds. The intervals hold at every look and for every case at once\n"
                    "(a schedule of looks, each spending a share of the error rate, split over the cases),\n"
                    "so the error rate of the verdicts holds per run of ab. Writes ab-results.json, .csv, .md,\n"
                    ".html and ab-ratios.png. Exit 1 when a case is slower, errs or fails its numerics check.\n"
                    "Both sides need this sigbench and the backends compared; the message says how to\n"
                    "install what is missing.",
        epilog="examples:\n"
               "  sigbench ab .venv-jax09/bin/python .venv-jax010/bin/python -b jax -w train\n"
               "  sigbench ab .venv-np23/bin/python .venv-np24/bin/python -b numpy -w sigmoid --max-time 300\n"
               "  sigbench ab python3 python3 -b numpy --threshold 2%   # an A/A: the same environment twice")
    ab.add_argument("python_a", metavar="PYTHON_A",
                    help="side A's interpreter (the baseline), e.g. .venv-old/bin/python")
    ab.add_argument("python_b", metavar="PYTHON_B", help="side B's interpreter, e.g. .venv-new/bin/python")
    _add_selection_options(ab, sizes="2^10, 2^16, 2^20")
    ab.add_argument("--threshold", type=percentage, default=0.05, metavar="P",
                    help="the change that counts, e.g. 5%% (default: 5%%)")
    ab.add_argument("--max-time", type=positive_float, default=600.0, metavar="S",
                    help="stop starting rounds after S seconds (default: 600); the round under way finishes")
    ab.add_argument("--max-rounds", type=positive_int, metavar="N", help="stop after N rounds (default: no limit)")
    ab.add_argument("--level", type=float, default=0.95, metavar="C",
                    help="confidence of the intervals, all cases and looks at once (default: 0.95)")
    ab.add_argument("--statistic", default="p10", choices=("p10", "median"),
                    help="what each process gives a round: the 10th percentile of its per-call times (default) "
                         "or their median")
    ab.add_argument("--name-a", metavar="NAME", help="side A's name (default: its differing package versions)")
    ab.add_argument("--name-b", metavar="NAME", help="side B's name (default: its differing package versions)")
    from sigbench.execution.plan import DEFAULT_CASE_TIMEOUT_S

    ab.add_argument("--case-timeout", type=positive_float, default=DEFAULT_CASE_TIMEOUT_S, metavar="S",
                    help=f"kill a case (and its worker) after S seconds (default {DEFAULT_CASE_TIMEOUT_S:g})")
    _add_output_options(ab, folder="ab")
    ab.set_defaults(handler=cmd_ab, preset="default")

    demo = commands.add_parser("demo", help="the tutorial's first example: sigmoid of [-2, -1, 0, 1, 2]",
                               description="Print the sigmoid of [-2, -1, 0, 1, 2] in each backend.",
                               epilog="example:\n  sigbench demo --backend torch")
    _add_backend_option(demo)
    demo.set_defaults(handler=cmd_demo)

    info = commands.add_parser("info", help="backends, installed or not, versions and devices",
                               description="List every backend: installed or not (and the extra that installs "
                                           "it), versions, devices, variants.",
                               epilog="example:\n  sigbench info")
    info.set_defaults(handler=cmd_info)

    train = commands.add_parser(
        "train", help="the tutorial's training loop in one backend, a line per epoch",
        description="Train the tutorial's network on its random batch, printing 'Epoch [k/N], Loss: ...'.",
        epilog="example:\n  sigbench train --backend jax --epochs 10")
    train.add_argument("--backend", "-b", default="torch", metavar="NAME", help="backend (default: torch)")
    train.add_argument("--variant", "-v", metavar="NAME", help="training variant (default: the backend's first)")
    train.add_argument("--epochs", type=positive_int, default=10, metavar="N", help="epochs (default: 10)")
    _add_train_shape(train)
    train.set_defaults(handler=cmd_train)

    check = commands.add_parser(
        "check", help="every backend's training steps against a float64 reference",
        description="Run every backend and variant for K steps from one starting point, comparing the loss and "
                    "every parameter with a float64 NumPy reference after each step. Exit 1 beyond tolerance.",
        epilog="example:\n  sigbench check --steps 10 --dtype float64")
    _add_backend_option(check)
    check.add_argument("--steps", type=positive_int, default=10, metavar="K", help="steps (default: 10)")
    _add_train_shape(check)
    check.set_defaults(handler=cmd_check)

    compare = commands.add_parser(
        "compare", help="NEW against BASE: ratios, confidence intervals, significance",
        description="Match the cases of two runs and report NEW/BASE time ratios: of the medians, and of each "
                    "process's 10th percentile (the fast end, least touched by other jobs), which is judged, with "
                    "its 95% confidence interval from a hierarchical bootstrap (processes, then samples), so a "
                    "difference is judged against the noise between processes. SLOWER / FASTER: the whole "
                    "interval lies beyond the threshold. "
                    "Exit 1 on a SLOWER case. `sigbench aa` shows how often this machine raises a false alarm. "
                    "Given one ab run's folder (sigbench ab), it shows that run's verdicts, judged again at "
                    "--threshold from the intervals the cases ended with.",
        epilog="examples:\n  sigbench compare reports/run-A reports/run-B --threshold 5%\n"
               "  sigbench compare reports/ab-20261206-120000 --threshold 10%   # an ab run's verdicts, again")
    compare.add_argument("base", type=Path, metavar="BASE", help="results.json or run folder")
    compare.add_argument("new", type=Path, metavar="NEW", nargs="?",
                         help="results.json or run folder (none where BASE is an ab run's folder)")
    compare.add_argument("--threshold", type=percentage, default=0.05, metavar="P",
                         help="slowdown that counts, e.g. 10%% (default: 5%%)")
    compare.add_argument("--output", type=Path, metavar="FILE.md", help="also write the table here")
    compare.set_defaults(handler=cmd_compare)

    accuracy = commands.add_parser(
        "accuracy", help="ULP error of every sigmoid against a correctly rounded reference",
        description="Measure each sigmoid's error in ULPs against the correctly rounded value: float16 and "
                    "bfloat16 over all 65,536 inputs, float32 over a stratified sample (or all 2^32 inputs with "
                    "--exhaustive), float64 over a sample checked with mpmath. Writes accuracy.csv, accuracy.md "
                    "and a plot of the error against x per dtype.",
        epilog="examples:\n  sigbench accuracy\n  sigbench accuracy --exhaustive --dtype float32 -o reports/acc32\n"
               "  sigbench accuracy --quantity grad --dtype float16\n  sigbench accuracy --quantity loss")
    _add_backend_option(accuracy)
    accuracy.add_argument("--quantity", default="value", choices=("value", "grad", "loss"),
                          help="value (the sigmoid, default), grad (its derivative) or loss (BCE and d BCE/d logit)")
    accuracy.add_argument("--variant", "-v", action="append", default=[], metavar="NAME",
                          help="variant, derivative form or loss form (repeat; default: all)")
    accuracy.add_argument("--dtype", action="append", default=[], metavar="NAME",
                          help="float16, bfloat16, float32 or float64 (repeat; default: all)")
    accuracy.add_argument("--exhaustive", action="store_true", help="float32: every one of the 2^32 inputs")
    accuracy.add_argument("--seed", type=non_negative_int, default=0, metavar="S", help="sample seed (default: 0)")
    accuracy.add_argument("--output-dir", "-o", type=Path, metavar="DIR",
                          help="default: a new folder under reports/")
    accuracy.add_argument("--force", action="store_true", help="write into a non-empty --output-dir")
    accuracy.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_cluster_options(accuracy, fleet=False)
    accuracy.set_defaults(handler=cmd_accuracy)

    report = commands.add_parser(
        "report", help="rebuild the markdown, HTML page and plots from saved runs, merging several",
        description="Rebuild results.md, results.html and the plots from saved results; several runs (other "
                    "machines, versions) are merged into one report with the machine as a dimension. Given an ab "
                    "run's folder, rebuild its ab-results files.",
        epilog="example:\n  sigbench report reports/run-A reports/run-B --output-dir reports/merged")
    report.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="results.json files or run folders")
    report.add_argument("--output-dir", "-o", type=Path, metavar="DIR", help="default: a new folder under reports/")
    report.add_argument("--force", action="store_true", help="write into a non-empty --output-dir")
    report.set_defaults(handler=cmd_report)
    return parser


def _add_selection_options(parser: argparse.ArgumentParser, sizes: str = "2^10, 2^12, ... 2^24") -> None:
    """What to measure, as ``run`` and ``ab`` select it."""
    _add_backend_option(parser)
    parser.add_argument("--variant", "-v", action="append", default=[], metavar="NAME",
                        help="variant to run (repeat; default: all)")
    parser.add_argument("--workload", "-w", action="append", default=[], metavar="NAME",
                        help=f"one of {', '.join(WORKLOADS)} (repeat; default: both)")
    parser.add_argument("--size", "-n", action="append", default=[], type=positive_int, metavar="N",
                        help=f"sigmoid input length, e.g. 4096 or 2^20 (repeat; default: {sizes})")
    parser.add_argument("--batch", action="append", default=[], type=positive_int, metavar="N",
                        help="training batch size (repeat; default: the sweep 32, 256, 1024, 4096 at each hidden "
                        "width; 32 with --quick; either option replaces the sweep)")
    parser.add_argument("--hidden", action="append", default=[], type=positive_int, metavar="N",
                        help="training hidden width (repeat; default: the sweep 128, 1024; 128 with --quick)")
    parser.add_argument("--dtype", default="float32", metavar="NAME", help=f"one of {', '.join(DTYPES)}")
    parser.add_argument("--device", default="cpu", metavar="NAME", help="cpu, or cuda / gpu for the GPU")
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick",
                        help="a smoke run: few sizes, short timing (seconds per backend)")
    preset.add_argument("--rigorous", dest="preset", action="store_const", const="rigorous",
                        help="long timing for tight confidence intervals")


def _add_output_options(parser: argparse.ArgumentParser, folder: str = "run") -> None:
    parser.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads for every backend "
                        "(default: all cores)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of every input (default: 0)")
    parser.add_argument("--output-dir", "-o", type=Path, metavar="DIR",
                        help=f"where to write (default: a new folder reports/{folder}-<time>)")
    parser.add_argument("--force", action="store_true", help="write into a non-empty --output-dir")
    parser.add_argument("--format", type=formats, default=FORMATS, metavar="LIST",
                        help=f"files to write besides the JSON: any of {','.join(FORMATS)} (default: all)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress (a bar on a terminal, else plain lines on stderr; --json implies --quiet)")
    parser.add_argument("--json", action="store_true", help="print the results JSON to stdout instead of the table")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    _add_selection_options(parser)
    # the presets' times (timing.PRESETS, which imports NumPy: --help stays light; a test holds them equal)
    parser.add_argument("--min-time", type=positive_float, metavar="S",
                        help="sample each case at least S seconds (default: 0.015; --quick 0.02, --rigorous 0.3)")
    parser.add_argument("--max-time", type=positive_float, metavar="S",
                        help="sample each case at most S seconds (default: 0.08; --quick 0.15, --rigorous 1.5)")
    _add_output_options(parser)
    _add_execution_options(parser)


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    from sigbench.execution.plan import DEFAULT_CASE_TIMEOUT_S, PROCESSES

    parser.add_argument("--processes", "-k", type=positive_int, metavar="K",
                        help="measure each case in K worker processes, one after another (default: "
                        + ", ".join(f"{k} with {'the default preset' if p == 'default' else '--' + p}"
                                    for p, k in PROCESSES.items()) + ")")
    parser.add_argument("--in-process", action="store_true",
                        help="run every case in this process, without workers (debugging; one process)")
    parser.add_argument("--case-timeout", type=positive_float, default=DEFAULT_CASE_TIMEOUT_S, metavar="S",
                        help=f"kill a case (and its worker) after S seconds (default {DEFAULT_CASE_TIMEOUT_S:g})")


# --- Dask cluster options (sigbench.cluster, sigbench.cluster.fleet) -----------------------------------


def _add_cluster_options(parser: argparse.ArgumentParser, fleet: bool) -> None:
    group = parser.add_argument_group(
        "on a Dask cluster (pip install 'sigbench[dask]')",
        "run once on each host of the cluster, merged with the machine as a dimension" if fleet
        else "the sweep's chunks run on the cluster's workers; the same table as a local run")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--scheduler-file", type=Path, metavar="PATH",
                       help="the file `dask scheduler --scheduler-file PATH` wrote (HPC, dask-jobqueue)")
    if fleet:
        group.add_argument("--hosts", action="append", default=[], metavar="HOST",
                           help="only these hosts of the cluster, by name or address (repeat; default: all)")


def cmd_fleet_run(args: argparse.Namespace) -> int:
    """``run --scheduler``: the run once per host of the cluster; the merged report."""
    from sigbench.cluster import client, fleet
    from sigbench.execution import progress
    from sigbench.results import files

    if args.in_process:
        raise UsageError("--in-process runs in this process; it cannot be combined with --scheduler")
    argv = args.argv[args.argv.index("run") + 1:]
    with client.connected(args.scheduler, args.scheduler_file) as pool, \
            progress.bar("sigbench run (fleet)", quiet=args.quiet or args.json) as show:
        directory = files.prepare_output_dir(args.output_dir, args.force)
        outcome = fleet.execute(pool, argv, args.backend, args.hosts, args.workload or list(WORKLOADS), args.dtype,
                                args.device, directory, args.format, show)
    if args.json:  # each host's results.json, as run --json prints one, and the hosts that gave none
        hosts = {str(d.get("metadata", {}).get("hostname")): d for d in outcome.documents}
        print(files.json_text({"hosts": hosts, "failures": outcome.failures}))
    else:
        print((directory / files.RESULTS_MD).read_text(encoding="utf-8"))
    for host, why in outcome.failures.items():
        print(f"sigbench: {host} gave no results: {why}", file=sys.stderr)
    print(f"sigbench: {len(outcome.documents)} host(s); results in {directory}/<host>/, merged in {directory}/",
          file=sys.stderr)
    return outcome.exit_code


def _add_train_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", default="float32", metavar="NAME", help="float32 (default) or float64")
    parser.add_argument("--device", default="cpu", metavar="NAME", help="cpu, or cuda / gpu")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S", help="seed (default: 0)")
    parser.add_argument("--batch", type=positive_int, default=32, metavar="N", help="batch size (default: 32)")
    parser.add_argument("--hidden", type=positive_int, default=128, metavar="N", help="hidden width (default: 128)")
    parser.add_argument("--lr", type=positive_float, default=0.01, metavar="LR", help="learning rate (default: 0.01)")


# --- commands --------------------------------------------------------------------------------


def run_options(args: argparse.Namespace, output_dir: Path | None = None) -> Any:
    """The ``RunOptions`` of a ``run``-style command line."""
    from sigbench.execution.plan import RunOptions

    return RunOptions(
        backends=args.backend, variants=args.variant, workloads=args.workload or list(WORKLOADS),
        sizes=args.size, dtype=args.dtype, device=args.device, preset=args.preset,
        min_time_s=args.min_time, max_time_s=args.max_time, threads=args.threads, seed=args.seed,
        batches=args.batch, hiddens=args.hidden, output_dir=output_dir or args.output_dir, force=args.force,
        formats=args.format, processes=args.processes, in_process=args.in_process,
        case_timeout_s=args.case_timeout,
    )


def cmd_run(args: argparse.Namespace) -> int:
    if getattr(args, "scheduler", None) or getattr(args, "scheduler_file", None):  # one run per host of a cluster
        return cmd_fleet_run(args)
    from sigbench import api
    from sigbench.execution import progress
    from sigbench.results import files

    with progress.bar("sigbench run", quiet=args.quiet or args.json) as show:
        outcome = api.execute(run_options(args), show)
    directory = outcome.directory
    if args.json:
        print((directory / files.RESULTS_JSON).read_text(encoding="utf-8"))
    else:
        print(outcome.markdown())
    if outcome.status != "complete" or outcome.exit_code >= 128:
        status = "interrupted" if outcome.exit_code >= 128 else outcome.status
        print(f"sigbench: run {status}; the {len(outcome.rows)} finished rows are saved in {directory}/",
              file=sys.stderr)
    else:
        verdict = "all numerics checks passed" if outcome.exit_code == 0 else "SOME CASES FAILED (see above)"
        print(f"sigbench: {verdict}; results in {directory}/", file=sys.stderr)
    return outcome.exit_code


def cmd_aa(args: argparse.Namespace) -> int:
    from sigbench.comparison import aa
    from sigbench.execution import progress
    from sigbench.results import files

    directory = files.prepare_output_dir(args.output_dir, args.force)
    with progress.bar(f"sigbench {args.command}", quiet=args.quiet or args.json) as show:
        outcome = aa.aa_test(run_options(args, directory), directory, args.threshold, show)
    if args.json:  # the comparison's rows and the rate, as data
        print(files.json_text({
            "threshold": args.threshold, "cases": len(outcome.rows), "flagged": len(outcome.flagged),
            "rate": outcome.rate, "goal": aa.AA_GOAL, "runs": [str(directory / "a"), str(directory / "b")],
            "rows": outcome.rows}))
    else:
        print(outcome.text)
    print(f"sigbench {args.command}: {len(outcome.flagged)} of {len(outcome.rows)} cases flagged beyond "
          f"{args.threshold:.0%} "
          f"({outcome.rate:.1%}; goal at most {aa.AA_GOAL:.0%}); runs and aa.md in {directory}/",
          file=sys.stderr)
    return outcome.exit_code


def cmd_ab(args: argparse.Namespace) -> int:
    from sigbench import api
    from sigbench.execution import progress
    from sigbench.report.abreport import AB_JSON

    with progress.bar("sigbench ab (seconds of --max-time)", quiet=args.quiet or args.json) as show:
        outcome = api.ab(args.python_a, args.python_b, backends=args.backend, variants=args.variant,
                         workloads=args.workload or None, sizes=args.size or None, batches=args.batch or None,
                         hiddens=args.hidden or None, dtype=args.dtype, device=args.device, preset=args.preset,
                         threads=args.threads, seed=args.seed, case_timeout_s=args.case_timeout,
                         threshold=args.threshold, level=args.level, max_time_s=args.max_time,
                         max_rounds=args.max_rounds, statistic=args.statistic, name_a=args.name_a,
                         name_b=args.name_b, output_dir=args.output_dir, force=args.force, formats=args.format,
                         progress_callback=show)
    if args.json:
        print((outcome.directory / AB_JSON).read_text(encoding="utf-8"))
    else:
        print(outcome.markdown())
    if outcome.status != "complete":
        print(f"sigbench ab: {outcome.status}; the {len(outcome.document['rounds'])} finished rounds are saved in "
              f"{outcome.directory}/", file=sys.stderr)
    else:
        print(f"sigbench ab: results in {outcome.directory}/", file=sys.stderr)
    return outcome.exit_code


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from sigbench.core import registry

    names = args.backend or registry.installed_names()
    backends = registry.load_all(names)
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    print(f"input:  {np.array2string(x, precision=8, floatmode='fixed')}")
    for name, backend in backends.items():
        variant = "builtin" if backend.sigmoid_variants().get("builtin") is None else "stable"
        fn = backend.sigmoid(variant, "float64", "cpu")
        out = backend.to_numpy(fn(backend.from_numpy(x, "cpu")))
        print(f"{name:>6} ({variant}): {np.array2string(out, precision=8, floatmode='fixed')}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from sigbench.core import registry

    for name, spec in registry.specs().items():
        if not spec.installed:
            print(f"{name}: not installed (missing {', '.join(spec.missing())}); {registry.install_hint(spec)}")
            continue
        try:
            backend = registry.load(name)
        except Exception as error:  # a broken install is reported, not raised
            print(f"{name}: installed but fails to load: {error}")
            continue
        versions = ", ".join(f"{k} {v}" for k, v in backend.versions().items())
        print(f"{name}: {versions}; devices: {', '.join(backend.devices())}")
        for workload, offered in (("sigmoid", backend.sigmoid_variants()), ("train", backend.train_variants())):
            listed = ", ".join(v if reason is None else f"{v} (unavailable: {reason})" for v, reason in offered.items())
            print(f"  {workload} variants: {listed}")
    return EXIT_OK


def _train_config(args: argparse.Namespace) -> Any:
    from sigbench.core.workloads import TrainConfig

    if args.dtype not in ("float32", "float64"):
        raise UsageError(f"--dtype {args.dtype}: training runs in float32 or float64")
    return TrainConfig(batch=args.batch, hidden=args.hidden, lr=args.lr, dtype=args.dtype)


def cmd_train(args: argparse.Namespace) -> int:
    from sigbench.core.workloads import train_start
    from sigbench.execution import plan

    config = _train_config(args)
    backend, variant, device = plan.train_backend(args.backend, args.variant, args.dtype, args.device)
    session = backend.train_session(variant, train_start(config, args.seed), device)
    for epoch in range(1, args.epochs + 1):
        loss = session.loss_value(session.step())
        print(f"Epoch [{epoch}/{args.epochs}], Loss: {loss:.4f}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from sigbench.core import registry
    from sigbench.core.workloads import train_start
    from sigbench.execution import plan
    from sigbench.execution.worker import train_check
    from sigbench.measure.checks import train_verdict

    config = _train_config(args)
    names = args.backend or registry.installed_names()
    for name in names:
        registry.get_spec(name)
    start = train_start(config, args.seed)
    failed = False
    print(f"{args.steps} steps from one start (seed {args.seed}), {config.dtype}, batch {config.batch}, "
          f"hidden {config.hidden}; each step against a float64 step from the backend's own state:")
    print(f"{'backend/variant':22} {'step':>4} {'loss':>10} {'|d loss|':>10} {'|d param|':>10} {'rel d param':>11} "
          f"{'beyond allowance':>16} {'noise-level':>11}")
    for name in names:
        backend = registry.load(name)
        for variant, reason in backend.train_variants(plan.resolve_device(backend.devices(), args.device)).items():
            if reason:
                print(f"{name + '/' + variant:22} skipped: {reason}")
                continue
            if plan.resolve_device(backend.devices(), args.device) is None:
                print(f"{name + '/' + variant:22} skipped: no {args.device} device")
                continue
            backend, variant, device = plan.train_backend(name, variant, config.dtype, args.device)
            session = backend.train_session(variant, start, device)
            _, diffs = train_check(session, start, args.steps, lambda: backend.synchronize(device))
            for d in diffs:
                print(f"{name + '/' + variant:22} {d.step:>4} {d.loss:>10.6f} {d.loss_abs_diff:>10.2e} "
                      f"{d.param_abs_diff:>10.2e} {d.param_rel_diff:>11.2e} {d.excess:>16.2e} {d.noise_level:>11}")
            verdict = train_verdict(diffs, config.dtype)
            print(f"{name + '/' + variant:22} {'PASS' if verdict.passed else 'FAIL'}: worst {verdict.max_error:.2e} "
                  f"(tolerance {verdict.tolerance:g}) {verdict.message}")
            failed |= not verdict.passed
    return EXIT_FAILED if failed else EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from sigbench.comparison import abtest, verdicts

    if abtest.is_ab(args.base) or (args.new is not None and abtest.is_ab(args.new)):
        if args.new is not None:
            raise UsageError("an ab run holds both sides already: give its folder alone, "
                             "e.g. sigbench compare reports/ab-<time>")
        from sigbench.report import abreport
        from sigbench.results.files import atomic_write_text

        document = abtest.load(args.base)
        document["rows"] = abtest.rejudge(document, args.threshold)
        document.setdefault("metadata", {})["threshold"] = args.threshold
        text = abreport.markdown(document)
        print(text)
        if args.output is not None:
            atomic_write_text(args.output, text)
        return EXIT_FAILED if any(row.get("verdict") == "slower" for row in document["rows"]) else EXIT_OK
    if args.new is None:
        raise UsageError("compare needs two runs, BASE and NEW (or one ab run's folder)")
    from sigbench.report.comparereport import markdown
    from sigbench.results import files

    base, new = files.load(args.base), files.load(args.new)
    rows = verdicts.compare_rows(base["rows"], new["rows"], args.threshold)
    warnings = verdicts.environment_warnings(base, new)
    if not rows:
        raise UsageError("the two runs have no timed case in common")
    text = markdown(rows, warnings, args.threshold, verdicts.LEVEL, verdicts.JUDGED_QUANTILE)
    print(text)
    for warning in warnings:
        print(f"sigbench compare: warning: {warning}", file=sys.stderr)
    if args.output is not None:
        files.atomic_write_text(args.output, text)
    return EXIT_FAILED if any(r["verdict"] == "SLOWER" for r in rows) else EXIT_OK


def cmd_accuracy(args: argparse.Namespace) -> int:
    from sigbench import api

    outcome = api.accuracy(args.backend, variants=args.variant, dtypes=args.dtype, quantity=args.quantity,
                           exhaustive=args.exhaustive, seed=args.seed, output_dir=args.output_dir,
                           force=args.force, progress=not args.quiet, scheduler=args.scheduler,
                           scheduler_file=args.scheduler_file)
    print(outcome.markdown())
    print(f"sigbench: accuracy written to {outcome.directory}/", file=sys.stderr)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from sigbench.comparison import abtest
    from sigbench.report import writer
    from sigbench.results import files

    if any(abtest.is_ab(path) for path in args.paths):
        if len(args.paths) != 1:
            raise UsageError("report rebuilds one ab run at a time, and does not merge it with runs")
        from sigbench.report import abreport

        document = abtest.load(args.paths[0])
        document.pop("path", None)
        directory = files.prepare_output_dir(args.output_dir, args.force, prefix="ab")
        abreport.write(directory, document, FORMATS, final=True)
        print(abreport.markdown(document))
        print(f"sigbench: report of the ab run in {directory}/", file=sys.stderr)
        return EXIT_OK
    documents = [files.load(path) for path in args.paths]
    directory = files.prepare_output_dir(args.output_dir, args.force)
    text = writer.write_merged(directory, documents)
    print(text)
    print(f"sigbench: report of {len(documents)} run(s) in {directory}/", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a fleet run repeats on each host
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except UsageError as error:
        print(f"sigbench {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OutputWriteError as error:
        from sigbench.results.files import kept_files

        folder = Path(str(error.path)).parent
        kept = kept_files(folder)
        print(f"sigbench {args.command}: error: {error}. Every file is written whole or not at all: "
              f"{Path(str(error.path)).name} is as it was before, and {folder}/ keeps "
              f"{', '.join(kept) if kept else 'nothing'}. Free space there, or give another --output-dir.",
              file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("sigbench: interrupted", file=sys.stderr)
        return 130
    except Interrupted as stop:
        print("sigbench: interrupted", file=sys.stderr)
        return stop.exit_code
    except BrokenPipeError:
        return EXIT_OK
