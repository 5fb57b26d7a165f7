import math

import numpy as np
import pytest

from conftest import BACKENDS, mp_round, run_sigmoid
from sigbench.accuracy_sweep import ulp as accuracy
from sigbench.cli import main


def test_reference_matches_mpmath_rounding_float32():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(3000) * 20).astype(np.float32)
    want, _ = accuracy.correctly_rounded(x)
    for value, got in zip(x.tolist(), want.tolist()):
        assert got == mp_round(value, 24), value


def test_reference_matches_mpmath_over_every_float16_with_a_normal_result():
    x = accuracy.all_inputs("float16")
    want, _ = accuracy.correctly_rounded(x)
    finite = np.isfinite(x) & (want.astype(np.float64) >= np.finfo(np.float16).tiny)
    for value, got in zip(x[finite].astype(np.float64).tolist(), want[finite].astype(np.float64).tolist()):
        assert got == mp_round(value, 11), value


def test_reference_on_its_hardest_float32_cases():
    """The inputs whose float64 sigmoid lies closest to a float32 rounding midpoint, checked with mpmath."""
    from sigbench.core import reference

    x = np.arange(0x3F000000, 0x3F000000 + (1 << 20), dtype=np.uint32).view(np.float32)  # 0.5 .. 0.56
    exact = reference.sigmoid(x.astype(np.float64))
    guess = exact.astype(np.float32).astype(np.float64)
    half = np.spacing(exact.astype(np.float32)).astype(np.float64) / 2
    margin = np.abs(np.abs(exact - guess) - half) / np.spacing(exact)
    hardest = np.argsort(margin)[:25]
    want, decided = accuracy.correctly_rounded(x[hardest])
    assert margin[hardest[0]] < 1000  # they really are hard: within a thousand float64 ULPs of a midpoint
    for value, got in zip(x[hardest].tolist(), want.tolist()):
        assert got == mp_round(value, 24), value


def test_measure_errors_counts_each_kind_of_fault():
    x = np.array([-90.0, -1.0, 0.0, 3.0, 20.0, -20.0], dtype=np.float32)
    want, _ = accuracy.correctly_rounded(x)
    got = want.copy()
    got[0] = 0.0  # a subnormal result flushed
    got[1] = np.nextafter(np.nextafter(want[1], np.float32(1)), np.float32(1))  # 2 ULP off
    got[3] = np.nan  # NaN where a number is due
    got[5] = 0.0  # saturated where the result is 2e-9, a normal number
    totals = accuracy.measure_errors(got, want, x, warning_count=3)
    assert totals.inputs == 6 and totals.warnings == 3
    assert totals.flushed_subnormals == 1 and totals.nan_where_number == 1 and totals.wrong_saturation == 1
    assert totals.over_1ulp == 2  # the 2 ULP error and the saturated one
    assert totals.correctly_rounded == 2
    row = (totals + accuracy.Totals()).row()
    assert row["worst_input"] == -20.0 and row["max_ulp"] > 1e6


def test_totals_add_up_like_one_pass():
    x = (np.random.default_rng(1).standard_normal(1000) * 10).astype(np.float32)
    want, _ = accuracy.correctly_rounded(x)
    got = (1 / (1 + np.exp(-x))).astype(np.float32)
    whole = accuracy.measure_errors(got, want, x)
    first = accuracy.measure_errors(got[:400], want[:400], x[:400])
    second = accuracy.measure_errors(got[400:], want[400:], x[400:], offset=400)
    assert (first + second).row() == whole.row()
    assert (second + first) == (first + second) == whole  # exact and order-free, ties included


def test_exhaustive_float16_for_every_backend_under_test(backend):
    cases = [accuracy.AccuracyCase(backend.name, v, "float16")
             for v, reason in backend.sigmoid_variants().items() if reason is None]
    totals, samples, facts, _ = accuracy.run_cases(cases, "float16", exhaustive=False, seed=0)
    assert facts["mode"] == "exhaustive"
    for case, total in totals.items():
        row = total.row()
        assert row["inputs"] == 65536, case
        assert row["nan_where_number"] == 0, case
        if case.variant in ("stable", "accurate"):
            assert row["max_ulp"] <= 2 and row["flushed_subnormals"] == 0, (case, row)
        if case.variant == "accurate":
            assert row["correctly_rounded_fraction"] == 1.0, row
        assert samples[case][0].size == samples[case][1].size > 0


def test_chunks_on_two_threads_merge_to_the_one_thread_totals(backend):
    """The exhaustive sweep's chunks run two at a time; variants that keep an output buffer must not share
    it between threads, and the merge must not depend on the order the chunks finish in."""
    from sigbench.cluster import client

    cases = [accuracy.AccuracyCase(backend.name, v, "float32") for v, reason in backend.sigmoid_variants().items()
             if reason is None and v in ("naive", "fast", "accurate")]
    tasks = accuracy.sweep_tasks(cases, "float32", True, 0, "value")[0][3000:3008]
    one_thread = [accuracy.measure_chunk(task) for task in tasks]
    two_threads = sorted(client.map_unordered(None, accuracy.measure_chunk, tasks), key=lambda r: r.index)
    for k, case in enumerate(cases):
        expected = sum((r.totals[k] for r in one_thread), accuracy.Totals())
        assert sum((r.totals[k] for r in reversed(two_threads)), accuracy.Totals()) == expected, case
        assert expected.inputs == 8 * accuracy.EXHAUSTIVE_CHUNK


def test_accurate_float32_is_correctly_rounded_and_keeps_subnormals(backend):
    """NumPy's numba kernel and the native kernel of PyTorch and JAX keep subnormal results; for JAX that is
    the kernel's doing (it clears flush-to-zero on its threads: XLA's arithmetic on CPU flushes)."""
    from sigbench_backends import native

    if backend.name != "numpy" and native.compiler("c" if backend.name == "torch" else "c++") is None:
        pytest.skip("no compiler for the native kernel")
    x = np.concatenate([accuracy.sample_inputs("float32", 1 << 16, seed=2), np.float32([-95.0, -100.0])])
    want, _ = accuracy.correctly_rounded(x)
    got = run_sigmoid(backend, "accurate", x)
    totals = accuracy.measure_errors(got, want, x)
    assert totals.correctly_rounded == totals.inputs and totals.flushed_subnormals == 0, totals.row()
    assert got[-2] > 0 and got[-1] > 0  # subnormal results, not flushed


def test_special_inputs_cover_the_edges():
    x = accuracy.special_inputs("float32").astype(np.float64)
    assert np.isnan(x).sum() == 1 and np.isinf(x).sum() == 2
    assert {0.0} <= set(np.abs(x[np.isfinite(x)]).tolist())
    assert any(-89 < v < -88 for v in x.tolist())  # exp(-x) overflows just below -88.72
    assert any(v < -87.4 for v in x.tolist() if math.isfinite(v))  # subnormal results


@pytest.mark.meet
def test_accuracy_command_writes_its_files(tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path / "acc"
    args = ["accuracy", "--dtype", "float16", "--dtype", "float32", "-o", str(out), "-q"]
    for name in BACKENDS:
        args += ["--backend", name]
    assert main(args) == 0
    import pandas as pd

    table = pd.read_csv(out / "accuracy.csv")
    for column in ("backend", "variant", "dtype", "inputs", "max_ulp", "mean_ulp", "correctly_rounded_fraction",
                   "over_1ulp", "worst_input", "flushed_subnormals", "warnings"):
        assert column in table.columns
    assert set(table["dtype"]) == {"float16", "float32"}
    assert (out / "accuracy.md").read_text().startswith("# sigbench accuracy")
    assert (out / "accuracy-float16.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, fragment", [
    (["accuracy", "--dtype", "int4"], "unknown dtype 'int4'"),
    (["accuracy", "--exhaustive", "--dtype", "float16"], "--exhaustive applies to float32"),
    (["accuracy", "--variant", "nope", "--dtype", "float16"], "unknown variant 'nope'"),
])
def test_accuracy_bad_input_exits_2(argv, fragment, tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    assert main([*argv, "-o", str(tmp_path / "a"), "--backend", BACKENDS[0]]) == 2
    assert fragment in capsys.readouterr().err
