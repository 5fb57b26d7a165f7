import json
import sys
import time

import pytest

import sigbench
from conftest import BACKENDS, TINY
from sigbench.cli import main
from sigbench.results.schema import COLUMNS


def _backend_args(names=None):
    args = []
    for name in names if names is not None else BACKENDS:
        args += ["--backend", name]
    return args


@pytest.mark.meet
@pytest.mark.slow
def test_run_end_to_end_writes_the_three_files(seeded_run):
    out, printed = seeded_run.directory, seeded_run.stdout
    assert seeded_run.code == 0
    import pandas as pd

    table = pd.read_csv(out / "results.csv")
    required = ["backend", "variant", "workload", "device", "dtype", "size", "median_s", "min_s", "iqr_s",
                "samples", "check_passed", "max_error", "first_call_s", "ci_low_s", "ci_high_s", "gbps",
                "bandwidth_fraction", "gflops"]
    assert set(required) <= set(table.columns)
    assert list(table.columns) == list(COLUMNS)
    ok = table[table["status"] == "ok"]
    assert set(ok["backend"]) == set(BACKENDS)
    assert set(ok["workload"]) == {"sigmoid", "train"}
    assert ok["check_passed"].all()
    assert (ok["median_s"] > 0).all() and (ok["min_s"] <= ok["median_s"]).all()
    sig = ok[ok["workload"] == "sigmoid"]
    assert set(sig["size"]) == {256, 4096}
    assert (sig["gbps"] > 0).all() and sig["bandwidth_fraction"].notna().all()
    train = ok[ok["workload"] == "train"]
    assert train["first_call_s"].notna().all() and train["gflops"].notna().all()
    document = json.loads((out / "results.json").read_text())
    assert document["schema_version"] == sigbench.SCHEMA_VERSION and document["status"] == "complete"
    meta = document["metadata"]
    for key in ("python", "numpy", "cpu", "cpu_count", "threads", "time_utc", "backends", "bandwidth", "seed"):
        assert key in meta, key
    timed = [r for r in document["rows"] if r["status"] == "ok"]
    assert all(sum(map(len, r["process_samples_s"])) == r["samples"] for r in timed)
    assert all(r["peak_host_bytes"] is not None for r in timed) or not sys.platform.startswith("linux")
    md = (out / "results.md").read_text()
    assert md.startswith("# sigbench results") and "## Summary" in md and "speedup over" in md
    assert "## Summary" in printed
    assert list(out.glob("*.png"))


def test_run_without_output_dir_makes_a_new_folder_each_time(tmp_path, monkeypatch, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    monkeypatch.chdir(tmp_path)
    args = ["run", *_backend_args(BACKENDS[:1]), "--workload", "sigmoid", "--variant", "stable", *TINY]
    assert main(args) == 0
    assert main(args) == 0
    runs = sorted((tmp_path / "reports").iterdir())
    assert len(runs) == 2 and all((r / "results.csv").exists() for r in runs)


def test_existing_non_empty_output_dir_needs_force(tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    args = ["run", *_backend_args(BACKENDS[:1]), "-w", "sigmoid", "-v", "stable", *TINY, "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err
    assert (out / "mine.txt").read_text() == "precious" and not (out / "results.csv").exists()
    assert main([*args, "--force"]) == 0
    assert (out / "results.csv").exists() and (out / "mine.txt").read_text() == "precious"


def test_output_dir_that_is_a_file_or_unwritable(tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    afile = tmp_path / "file"
    afile.write_text("x")
    args = ["run", *_backend_args(BACKENDS[:1]), "-w", "sigmoid", "-v", "stable", *TINY]
    assert main([*args, "-o", str(afile)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main([*args, "-o", str(afile / "below")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--backend", "cupy"], "unknown backend 'cupy'; known backends: numpy, torch, jax"),
    (["run", "--workload", "fft"], "unknown workload 'fft'; choose from: sigmoid, train"),
    (["run", "--dtype", "int8"], "unknown dtype 'int8'; choose from: float16, bfloat16, float32, float64"),
    (["run", "--device", "tpu"], "unknown device 'tpu'; choose from: cpu, cuda, gpu"),
    (["run", "--variant", "quantum"], "unknown variant 'quantum'"),
])
def test_unknown_names_exit_2_listing_the_valid_ones(argv, fragment, capsys):
    if "--variant" in argv and not BACKENDS:
        pytest.skip("no backend under test")
    extra = [] if "--backend" in argv else _backend_args(BACKENDS[:1])
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


@pytest.mark.parametrize("size, fragment", [
    ("0", "must be at least 1"), ("-5", "must be at least 1"), ("1.5", "not a whole number"),
    ("ten", "not a whole number"),
])
def test_bad_sizes_exit_2(size, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--size", size])
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err


def test_absurd_size_is_refused_before_allocating(capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    started = time.perf_counter()
    assert main(["run", *_backend_args(BACKENDS[:1]), "--size", "2^50", "-w", "sigmoid"]) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err
    assert "GiB" in err and "choose a smaller --size" in err


@pytest.mark.slow
@pytest.mark.meet
def test_gpu_without_gpu_exits_2(capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    from sigbench.core import registry

    if any(d != "cpu" for name in BACKENDS for d in registry.load(name).devices()):
        pytest.skip("this machine has a GPU")
    assert main(["run", *_backend_args(), "--device", "cuda", "--size", "256"]) == 2
    assert "no GPU is usable" in capsys.readouterr().err


@pytest.mark.packaging
def test_missing_backend_names_the_extra(capsys):
    from sigbench.core import registry

    missing = [name for name in ("torch", "jax") if not registry.get_spec(name).installed]
    if not missing:
        pytest.skip("every backend is installed here")
    assert main(["run", "--backend", missing[0]]) == 2
    assert f"pip install 'sigbench[{missing[0]}]'" in capsys.readouterr().err


@pytest.mark.meet
def test_demo_prints_the_tutorial_values(capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    assert main(["demo", *_backend_args()]) == 0
    out = capsys.readouterr().out
    for value in ("0.11920292", "0.26894142", "0.50000000", "0.73105858", "0.88079708"):
        assert out.count(value) == len(BACKENDS)


def test_info_lists_every_backend(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("numpy", "torch", "jax"):
        assert out.count(f"{name}:") >= 1


COMMANDS = ["run", "noise", "ab", "demo", "info", "train", "check", "compare", "accuracy", "report"]


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and sigbench.__version__ in capsys.readouterr().out
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: sigbench " + command in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["aa", "--help"])  # the A/A test's first name, kept
    assert "usage: sigbench noise" in capsys.readouterr().out
    assert main([]) == 2


def _help_of(argv, columns, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", [80, 300])
def test_every_help_fits_100_columns_with_an_example_and_every_default(columns, monkeypatch, capsys):
    import argparse

    from sigbench.cli import build_parser

    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(COMMANDS) == sorted(name for name in subparsers.choices if name != "aa")
    for command in COMMANDS:
        text = _help_of([command], columns, monkeypatch, capsys)
        # wrapped to the terminal, never past 100 columns; examples are kept as written (under 100)
        too_wide = [line for line in text.splitlines()
                    if len(line) > 100 or (len(line) > columns and not line.startswith("  sigbench "))]
        assert not too_wide, (command, too_wide)
        assert "example" in text and f"\n  sigbench {command}" in text, command
        for action in subparsers.choices[command]._actions:
            takes_value = action.option_strings and action.nargs != 0 and action.help != argparse.SUPPRESS
            if takes_value and action.default not in (None, [], False):
                # the option's own lines, up to the next option: it names its default
                flag = action.option_strings[0]
                own = text[text.index(f"  {flag}"):].split("\n  -")[0]
                assert "default" in own, (command, flag, own)
    main_help = _help_of([], columns, monkeypatch, capsys)
    assert "exit codes:" in main_help and "\n  2    bad input" in main_help and "130" in main_help
    assert all(len(line) <= 100 for line in main_help.splitlines())


def test_help_gives_the_presets_times(monkeypatch, capsys):
    from sigbench.measure.timing import PRESETS

    text = " ".join(_help_of(["run"], 300, monkeypatch, capsys).split())
    for flag, field in (("--min-time", "min_time_s"), ("--max-time", "max_time_s")):
        values = [getattr(PRESETS[name], field) for name in ("default", "quick", "rigorous")]
        assert f"(default: {values[0]:g}; --quick {values[1]:g}, --rigorous {values[2]:g})" in text, flag


@pytest.mark.backend("numpy")
def test_failing_case_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    if "numpy" not in BACKENDS:
        pytest.skip("numpy is not under test")
    from sigbench_backends import numpy_backend

    def broken(x):
        raise RuntimeError("boom")

    monkeypatch.setattr(numpy_backend, "sigmoid_naive", broken)
    out = tmp_path / "out"
    code = main(["run", "-b", "numpy", "-w", "sigmoid", "-v", "naive", "-v", "stable", *TINY, "-o", str(out),
                 "--in-process"])  # the patch lives in this process
    assert code == 1
    rows = json.loads((out / "results.json").read_text())["rows"]
    errors = [r for r in rows if r["status"] == "error"]
    assert errors and all("RuntimeError: boom" in r["message"] for r in errors)
    assert any(r["status"] == "ok" and r["variant"] == "stable" for r in rows)


def _numerics(out):
    document = json.loads((out / "results.json").read_text())
    assert document["metadata"]["seed"] == 7
    return {(r["workload"], r["backend"], r["variant"], r["size"]): (r.get("max_error"), r.get("max_abs_error"))
            for r in document["rows"]}


@pytest.mark.meet
@pytest.mark.slow
def test_same_seed_same_inputs_and_numerics(seeded_run, tmp_path):
    assert seeded_run.code == 0
    first = seeded_run.directory
    again = tmp_path / "again"
    # one process a case, not 3: the numerics check runs in a case's first process, so the count is no part
    # of what is compared, and a third of the processes keeps this test short
    assert main(["run", *_backend_args(), *TINY, "--seed", "7", "--processes", "1", "-o", str(again)]) == 0
    assert _numerics(again) == _numerics(first)


def test_python_api_rejects_bad_requests_before_running():
    from sigbench.core.errors import UsageError
    from sigbench.execution.plan import RunOptions, validate_request

    with pytest.raises(UsageError, match="unknown backend 'nope'"):
        validate_request(RunOptions(backends=["nope"]))
    with pytest.raises(UsageError, match="unknown dtype"):
        validate_request(RunOptions(dtype="float8"))
    with pytest.raises(UsageError, match="unknown workload"):
        validate_request(RunOptions(workloads=["fft"]))
    if BACKENDS:
        with pytest.raises(UsageError, match="choose a smaller --size"):
            validate_request(RunOptions(backends=BACKENDS[:1], sizes=[2**52], workloads=["sigmoid"]))


@pytest.mark.slow
def test_half_precision_training_is_a_skipped_row_not_an_error(tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "out"
    code = main(["run", *_backend_args(BACKENDS[:1]), "--dtype", "float16", *TINY, "-o", str(out)])
    assert code == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    train = [r for r in rows if r["workload"] == "train"]
    assert train and all(r["status"] == "skipped" and "float32 and float64" in r["message"] for r in train)
    assert any(r["workload"] == "sigmoid" and r["status"] == "ok" for r in rows)
