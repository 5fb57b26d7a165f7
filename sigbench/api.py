"""sigbench from Python: run, load, compare and accuracy, returning objects with DataFrames.

The command line is a thin layer over these functions: one code path. Errors a user can cause raise
``sigbench.UsageError`` with the messages the CLI prints; nothing here calls ``sys.exit``. Results show
as tables in Jupyter (``_repr_html_``) and as markdown in a terminal.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sigbench.core.errors import UsageError
from sigbench.execution.plan import DEFAULT_CASE_TIMEOUT_S, RunOptions

if TYPE_CHECKING:
    import pandas as pd

#: Every file a saved run can have besides results.json.
ALL_FORMATS: tuple[str, ...] = ("csv", "md", "html", "png")

PathLike = str | Path


def _names(value: str | Iterable[str] | None, what: str) -> list[str]:
    """A list of names from a list, one name, or None (meaning: the default)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not all(isinstance(name, str) for name in names):
        raise UsageError(f"{what} must be names (strings), got {names!r}")
    return names


def _whole_numbers(value: int | Iterable[int] | None, what: str) -> list[int]:
    if value is None:
        return []
    numbers = [value] if isinstance(value, int) else list(value)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in numbers):
        raise UsageError(f"{what} must be whole numbers above 0, got {numbers!r}")
    return numbers


@contextmanager
def _progress(show: bool, description: str) -> Iterator[Callable[[int, int, str], None]]:
    from sigbench.execution import progress

    with progress.bar(description, quiet=not show) as callback:
        yield callback


class SavedDocument:
    """A saved results document (a run's, an ab's): its rows, metadata and status, and its folder."""

    def __init__(self, document: dict[str, Any], directory: Path, exit_code: int = 0) -> None:
        self.document = document
        self.directory = directory
        self.exit_code = exit_code

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, as a dict of column to value."""
        return list(self.document["rows"])

    @property
    def metadata(self) -> dict[str, Any]:
        """Versions, machine, threads, timer settings and the rest of what the run recorded."""
        return dict(self.document.get("metadata", {}))

    @property
    def status(self) -> str:
        """``complete``, ``interrupted``, ``failed`` (or ``running`` for a file read mid-run)."""
        return str(self.document.get("status"))


class Results(SavedDocument):
    """A run: its rows, metadata and status, and the folder its files are in."""

    def frame(self) -> pd.DataFrame:
        """One row per case, with the columns of results.csv."""
        from sigbench.report import tables

        return tables.frame(self.rows)

    def summary(self) -> pd.DataFrame:
        """The report's summary: the fastest backend/variant per workload and size range."""
        from sigbench.report import tables

        return tables.summary_table(self.frame())

    def markdown(self) -> str:
        """The whole report, as results.md has it."""
        from sigbench.report import tables

        return tables.markdown([self.document], self.directory)

    def save(self, path: PathLike, force: bool = False, formats: Iterable[str] = ALL_FORMATS) -> Path:
        """Write results.json and the chosen files (csv, md, html, png) into ``path``, as the CLI does.

        ``path`` must be new or empty unless ``force`` is given (then only sigbench's files are replaced).

        Parameters
        ----------
        path
            The folder to write into.
        force
            Write into a folder that is not empty, replacing only sigbench's files.
        formats
            The files besides results.json: any of ``"csv"``, ``"md"``, ``"html"``, ``"png"``.

        Returns
        -------
        pathlib.Path
            The folder written.
        """
        from sigbench.report import plots, writer
        from sigbench.results import files

        chosen = tuple(formats)
        unknown = [f for f in chosen if f not in ALL_FORMATS]
        if unknown:
            raise UsageError(f"unknown format {unknown[0]!r}; choose from {', '.join(ALL_FORMATS)}")
        directory = files.prepare_output_dir(Path(path), force)
        if "png" in chosen:
            plots.write_all(directory, self.rows, self.metadata)
        writer.write_run(directory, self.rows, self.metadata, self.status, chosen)
        return directory

    def _repr_html_(self) -> str:
        summary = self.summary()
        table = summary.to_html(index=False, escape=True) if not summary.empty else "<p>No case was timed.</p>"
        return (f"<p><b>sigbench results</b> ({self.status}, {len(self.rows)} rows in "
                f"<code>{self.directory}</code>)</p>{table}")

    def __repr__(self) -> str:
        from sigbench.report import tables

        lines = tables.summary(self.frame())
        head = f"sigbench results ({self.status}, {len(self.rows)} rows in {self.directory})"
        return head + "\n\n" + "\n".join(lines[2:]).rstrip()


def execute(options: RunOptions, progress: Callable[[int, int, str], None] | None = None) -> Results:
    """Run ``options`` (the CLI's path too) and return its ``Results``."""
    from sigbench.execution import runner
    from sigbench.results import files

    outcome = runner.execute(options, progress)
    return Results(files.load(outcome.directory), outcome.directory, outcome.exit_code)


def run(backends: str | Iterable[str] | None = None, *, variants: str | Iterable[str] | None = None,
        workloads: str | Iterable[str] | None = None, sizes: int | Iterable[int] | None = None,
        batches: int | Iterable[int] | None = None, hiddens: int | Iterable[int] | None = None,
        dtype: str = "float32", device: str = "cpu", preset: str = "default", processes: int | None = None,
        threads: int | None = None, seed: int = 0, min_time_s: float | None = None,
        max_time_s: float | None = None, case_timeout_s: float = DEFAULT_CASE_TIMEOUT_S,
        in_process: bool = False, output_dir: PathLike | None = None, force: bool = False,
        formats: Iterable[str] = ("csv", "md", "html"), progress: bool = False) -> Results:
    """Check and time every backend x variant x size, like ``sigbench run``.

    Defaults as on the command line (every installed backend and variant, both workloads); the files go
    to ``output_dir`` (new or empty, or ``force``), else to a new folder reports/run-<time>, as there.
    ``Results.save`` writes them elsewhere too.

    Parameters
    ----------
    backends, variants, workloads
        Names to run (one name or several); ``None``: every installed backend, every variant, both
        workloads (``"sigmoid"``, ``"train"``).
    sizes, batches, hiddens
        The sigmoid's sizes n, the training step's batch sizes and hidden widths; ``None``: the defaults.
    dtype, device
        ``"float16"``, ``"bfloat16"``, ``"float32"`` or ``"float64"``; ``"cpu"``, ``"cuda"`` or ``"gpu"``.
    preset
        ``"quick"`` (1 process per case), ``"default"`` (3) or ``"rigorous"`` (5, a narrower target).
    processes, threads
        Worker processes per case, and threads per backend; ``None``: the preset's, and the backends' own.
    seed
        The seed of the inputs and starting parameters.
    min_time_s, max_time_s, case_timeout_s
        The timer's budget per case and process, and the time after which a case and its worker are killed.
    in_process
        Run everything in this process (for debugging: no isolation, no timeout).
    output_dir, force, formats
        Where the files go, whether to write into a folder that is not empty, and which files besides
        results.json (``"csv"``, ``"md"``, ``"html"``, ``"png"``).
    progress
        Show a progress bar on stderr.

    Returns
    -------
    Results
        The rows, metadata and status of the run, the folder of its files, and the exit code the command
        line would give. Raises ``UsageError`` for bad input.
    """
    from sigbench.core.interface import WORKLOADS

    if preset not in ("quick", "default", "rigorous"):
        raise UsageError(f"unknown preset {preset!r}; choose from: quick, default, rigorous")
    options = RunOptions(
        backends=_names(backends, "backends"), variants=_names(variants, "variants"),
        workloads=_names(workloads, "workloads") or list(WORKLOADS), sizes=_whole_numbers(sizes, "sizes"),
        dtype=dtype, device=device, preset=preset, min_time_s=min_time_s, max_time_s=max_time_s,
        threads=threads, seed=seed, batches=_whole_numbers(batches, "batches"),
        hiddens=_whole_numbers(hiddens, "hiddens"), output_dir=None if output_dir is None else Path(output_dir),
        force=force,
        formats=tuple(formats), processes=processes, in_process=in_process, case_timeout_s=case_timeout_s,
    )
    with _progress(progress, "sigbench run") as show:
        return execute(options, show)


def load(path: PathLike) -> Results | ABResults:
    """A saved run (its folder or its results.json), or a saved ``ab`` (its folder or ab-results.json).

    Parameters
    ----------
    path
        A run's folder or its results.json; or an ``ab`` run's folder or its ab-results.json.

    Returns
    -------
    Results or ABResults
        What was saved. Raises ``ResultsFileError`` (a ``UsageError``) for a file that is not sigbench's
        results or breaks their schema.
    """
    from sigbench.comparison import abtest
    from sigbench.results import files

    if abtest.is_ab(Path(path)):
        document = abtest.load(Path(path))
        return ABResults(document, Path(document["path"]).parent)
    document = files.load(Path(path))
    directory = Path(document["path"]).parent
    return Results(document, directory)


class ABResults(SavedDocument):
    """An ``ab`` of two Python environments: a row per case with its verdict, and the folder of its files."""

    @property
    def sides(self) -> dict[str, Any]:
        """Each side's name, interpreter, Python and package versions."""
        return dict(self.metadata.get("sides", {}))

    def frame(self) -> pd.DataFrame:
        """One row per case, with the columns of ab-results.csv (verdict, ratio, ci_low, ci_high, rounds, ...)."""
        from sigbench.report import abreport

        return abreport.frame(self.rows)

    def markdown(self) -> str:
        """The whole report, as ab-results.md has it."""
        from sigbench.report import abreport

        return abreport.markdown(self.document)

    def _repr_html_(self) -> str:
        from sigbench.report import abreport

        return f"<p><b>{abreport.summary_line(self.document)}</b></p>" + self.frame().to_html(index=False)

    def __repr__(self) -> str:
        return self.markdown()


def ab(python_a: PathLike, python_b: PathLike, *, backends: str | Iterable[str] | None = None,
       variants: str | Iterable[str] | None = None, workloads: str | Iterable[str] | None = None,
       sizes: int | Iterable[int] | None = None, batches: int | Iterable[int] | None = None,
       hiddens: int | Iterable[int] | None = None, dtype: str = "float32", device: str = "cpu",
       preset: str = "default", threads: int | None = None, seed: int = 0,
       case_timeout_s: float = DEFAULT_CASE_TIMEOUT_S, threshold: float = 0.05, level: float = 0.95,
       max_time_s: float = 600.0, max_rounds: int | None = None, statistic: str = "p10",
       name_a: str | None = None, name_b: str | None = None, output_dir: PathLike | None = None,
       force: bool = False, formats: Iterable[str] = ALL_FORMATS, progress: bool = False,
       progress_callback: Callable[[int, int, str], None] | None = None) -> ABResults:
    """``sigbench ab``: the same cases in two Python environments, in interleaved rounds.

    Parameters
    ----------
    python_a, python_b
        The two environments' interpreters (A is the baseline): paths, or names found on PATH.
    backends, variants, workloads, sizes, batches, hiddens, dtype, device, preset, threads, seed
        What to measure, as ``run`` selects it; the sigmoid sizes default to 2^10, 2^16 and 2^20, the
        backends to those installed on both sides.
    threshold
        The change that counts, as a fraction (0.05: 5%).
    level
        The confidence of all intervals of all cases at all looks at once.
    max_time_s, max_rounds
        When to stop starting rounds if not every case is decided by then.
    statistic
        What each process gives a round: ``"p10"`` (the default) or ``"median"`` of its per-call times.

    Returns
    -------
    ABResults
        A row per case: ``verdict`` (slower, faster, same, undecided, error, skipped), ``ratio`` B/A with
        ``ci_low`` and ``ci_high``, ``rounds``, ``detectable_ratio``; its files are in ``directory``.
        Raises ``UsageError`` for bad input or an environment that lacks sigbench or a backend.
    """
    from sigbench.comparison import abtest
    from sigbench.core.interface import WORKLOADS

    if preset not in ("quick", "default", "rigorous"):
        raise UsageError(f"unknown preset {preset!r}; choose from: quick, default, rigorous")
    chosen = tuple(formats)
    unknown = [f for f in chosen if f not in ALL_FORMATS]
    if unknown:
        raise UsageError(f"unknown format {unknown[0]!r}; choose from {', '.join(ALL_FORMATS)}")
    run_options = RunOptions(
        backends=_names(backends, "backends"), variants=_names(variants, "variants"),
        workloads=_names(workloads, "workloads") or list(WORKLOADS), sizes=_whole_numbers(sizes, "sizes"),
        dtype=dtype, device=device, preset=preset, threads=threads, seed=seed,
        batches=_whole_numbers(batches, "batches"), hiddens=_whole_numbers(hiddens, "hiddens"),
        output_dir=None if output_dir is None else Path(output_dir), force=force, formats=chosen,
        case_timeout_s=case_timeout_s, measure_limits=False,
    )
    options = abtest.ABOptions(str(python_a), str(python_b), run_options, name_a=name_a, name_b=name_b,
                                  threshold=threshold, level=level, max_time_s=max_time_s, max_rounds=max_rounds,
                                  statistic=statistic)
    if progress_callback is not None:
        outcome = abtest.execute(options, progress_callback)
    else:
        with _progress(progress, "sigbench ab (seconds of max_time_s)") as show:
            outcome = abtest.execute(options, show)
    return ABResults(outcome.document, outcome.directory, outcome.exit_code)


def _as_results(value: Results | PathLike) -> Results:
    loaded = value if isinstance(value, Results) else load(value)
    if not isinstance(loaded, Results):
        raise UsageError(f"{value}: an ab run holds both sides and its verdicts already (sigbench.load(...).frame())")
    return loaded


def compare(base: Results | PathLike, new: Results | PathLike, threshold: float = 0.05) -> pd.DataFrame:
    """``sigbench compare``: one row per case timed in both: new/base of the medians (``median_ratio``),
    the judged new/base of each process's 10th percentile (``ratio``) with its interval, and a verdict.

    Parameters
    ----------
    base, new
        The two runs: ``Results``, or the path of a saved run (its folder or results.json).
    threshold
        The change that counts, as a fraction (0.05: 5%).

    Returns
    -------
    pandas.DataFrame
        One row per case timed in both runs, with its ratios, interval and verdict (``SLOWER``, ``FASTER``,
        within the threshold, or ``same``).
    """
    import pandas as pd

    from sigbench.comparison import verdicts

    if not 0 <= threshold < 10:
        raise UsageError(f"threshold {threshold!r}: give a fraction, e.g. 0.05 for 5%")
    rows = verdicts.compare_rows(_as_results(base).rows, _as_results(new).rows, threshold)
    return pd.DataFrame(rows)


class AccuracyResults:
    """An accuracy measurement: one row per backend/variant/dtype, and the folder of its files."""

    def __init__(self, rows: list[dict[str, Any]], directory: Path) -> None:
        self._rows = rows
        self.directory = directory

    def frame(self) -> pd.DataFrame:
        """One row per backend/variant/dtype, with the columns of accuracy.csv."""
        import pandas as pd

        return pd.DataFrame(self._rows)

    def markdown(self) -> str:
        """The report, as accuracy.md has it."""
        return (self.directory / "accuracy.md").read_text(encoding="utf-8")

    def _repr_html_(self) -> str:
        return self.frame().to_html(index=False)

    def __repr__(self) -> str:
        return self.markdown()


def accuracy(backends: str | Iterable[str] | None = None, *, variants: str | Iterable[str] | None = None,
             dtypes: str | Iterable[str] | None = None, quantity: str = "value", exhaustive: bool = False,
             seed: int = 0, output_dir: PathLike | None = None, force: bool = False,
             progress: bool = False, scheduler: str | None = None,
             scheduler_file: PathLike | None = None) -> AccuracyResults:
    """``sigbench accuracy``: each variant's error against a correctly rounded reference.

    The files go to ``output_dir`` (new or empty, or ``force``), else to a new folder under reports/. With
    ``scheduler`` (``tcp://host:port``) or ``scheduler_file``, the sweep runs on that Dask cluster.

    Parameters
    ----------
    backends, variants
        Names to measure (one or several); ``None``: every installed backend and every variant or form.
    dtypes
        ``"float16"``, ``"bfloat16"``, ``"float32"``, ``"float64"``; ``None``: all four (none for ``loss``).
    quantity
        ``"value"`` (the sigmoid), ``"grad"`` (its derivative) or ``"loss"`` (BCE and its gradient).
    exhaustive
        float32: every one of the 2^32 inputs, rather than a sample.
    seed
        The sample's seed.
    output_dir, force
        Where the files go, and whether to write into a folder that is not empty.
    progress
        Show a progress bar on stderr.
    scheduler, scheduler_file
        A Dask scheduler's address, or the file ``dask scheduler --scheduler-file`` writes.

    Returns
    -------
    AccuracyResults
        One row per backend, variant and dtype, and the folder of the files.
    """
    from sigbench.accuracy_sweep import ulp
    from sigbench.cluster import client
    from sigbench.core import registry
    from sigbench.report import accuracyreport
    from sigbench.results import files

    names = _names(backends, "backends") or registry.installed_names()
    for name in names:
        registry.get_spec(name)
    chosen = _names(dtypes, "dtypes") or ([] if quantity == "loss" else list(ulp.ACCURACY_DTYPES))
    ulp.check_request(quantity, chosen, exhaustive)
    with client.connected(scheduler, None if scheduler_file is None else Path(scheduler_file)) as pool:
        directory = files.prepare_output_dir(None if output_dir is None else Path(output_dir), force)
        with _progress(progress, "sigbench accuracy") as show:
            sweep = ulp.run(names, _names(variants, "variants"), chosen, exhaustive, seed, show, quantity, pool)
        accuracyreport.write(directory, sweep)
        rows = sweep.rows
    return AccuracyResults(rows, directory)
