"""The arithmetic floor: the GEMM rate measured once per run, and floor_s / floor_fraction on training rows."""
import numpy as np
import pytest

from conftest import BACKENDS, need
from sigbench.core.workloads import TrainConfig
from sigbench.measure import limits
from sigbench.report import tables
from sigbench.results import files


def test_floor_is_the_steps_flops_at_the_gemm_rate():
    config = TrainConfig()
    flops = config.flops_per_step()
    # 2 b (i h + h o) forward, twice that less the input gradient backward, 12 per parameter for Adam
    assert flops == 2 * 32 * (64 * 128 + 128 * 2) * 3 - 2 * 32 * 64 * 128 + 12 * (64 * 128 + 128 + 128 * 2 + 2)
    columns = limits.floor_columns(flops, 4e-5, {"gemm_gflops": 100.0, "gemm_gflops_numpy": 100.0})
    assert columns["floor_s"] == pytest.approx(flops / 100e9, rel=1e-15)
    assert columns["floor_fraction"] == pytest.approx(flops / 100e9 / 4e-5, rel=1e-15)
    assert limits.floor_columns(flops, 4e-5, None) == {"floor_s": None, "floor_fraction": None}
    assert limits.floor_columns(flops, 4e-5, {}) == {"floor_s": None, "floor_fraction": None}


@pytest.mark.backend(param="name")
@pytest.mark.parametrize("name", BACKENDS)
def test_matmul_fn_multiplies(name):
    backend = need(name)
    call = backend.matmul_fn("cpu", 64, "float64")
    out = backend.to_numpy(call())
    np.testing.assert_array_equal(out, np.full((64, 64), 64.0))  # ones @ ones: every entry is n
    assert out.dtype == np.float64


@pytest.mark.backend("numpy")
def test_gemm_rate_counts_two_flops_per_multiply_add(monkeypatch):
    backend = need("numpy")
    monkeypatch.setitem(limits.GEMM_N, "cpu", 128)
    gflops = limits.rate(backend, "gemm", "cpu", "float64")
    assert gflops > 0
    assert limits.best({"numpy": gflops, "other": gflops / 2}, "gemm") == {
        "gemm_gflops_numpy": gflops, "gemm_gflops_other": gflops / 2, "gemm_gflops": gflops}
    with pytest.raises(ValueError, match="unknown limit"):
        limits.rate(backend, "flux", "cpu")


@pytest.mark.backend("numpy")
def test_training_rows_carry_the_floor_and_the_report_shows_it(tmp_path):
    need("numpy")
    from sigbench.execution.plan import RunOptions
    from sigbench.execution.runner import execute

    options = RunOptions(backends=["numpy"], workloads=["train"], batches=[8], hiddens=[16], preset="quick",
                         max_time_s=0.05, output_dir=tmp_path / "run", formats=("csv", "md"))
    result = execute(options)
    (row,) = [r for r in result.rows if r["status"] == "ok"]
    gemm = files.load(tmp_path / "run")["metadata"]["gemm"]
    flops = TrainConfig(batch=8, hidden=16).flops_per_step()
    assert row["floor_s"] == pytest.approx(flops / (gemm["gemm_gflops"] * 1e9), rel=1e-12)
    assert row["floor_fraction"] == pytest.approx(row["floor_s"] / row["median_s"], rel=1e-12)
    text = tables.markdown([files.load(tmp_path / "run")])
    assert "Arithmetic floor" in text and f"({row['floor_fraction']:.3f})" in text
    assert "GEMM rate" in text
    assert list(tables.frame(result.rows).columns).count("floor_fraction") == 1
