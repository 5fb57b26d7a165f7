"""The roofline floor: the GEMM rate measured once per run, the copy bandwidth at each training shape's bytes,
and floor_s / floor_fraction / floor_flops_s / floor_bytes_s on training rows."""
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
    columns = limits.roofline_columns(flops, 1.0, 4e-5, {"gemm_gflops": 100.0, "gemm_gflops_numpy": 100.0}, None)
    assert columns["floor_s"] == columns["floor_flops_s"] == pytest.approx(flops / 100e9, rel=1e-15)
    assert columns["floor_fraction"] == pytest.approx(flops / 100e9 / 4e-5, rel=1e-15)


def test_bytes_per_step_counts_each_array_the_fewest_times():
    config = TrainConfig(batch=4096, hidden=1024)
    params = 64 * 1024 + 1024 + 1024 * 2 + 2
    # parameters, both moments and the gradients read and written once; x and y read; the hidden activation
    # and its gradient each written and read once (16 MiB each at this shape)
    assert config.bytes_per_step() == 4 * (8 * params + 4096 * (64 + 2) + 4 * 4096 * 1024)
    assert TrainConfig(batch=4096, hidden=1024, dtype="float64").bytes_per_step() == 2 * config.bytes_per_step()


def test_roofline_floor_is_the_larger_term_and_keeps_both():
    gemm = {"gemm_gflops": 500.0}
    # 1 GFLOP at 500 GFLOP/s: 2 ms; 64 MiB at 20 GB/s: 3.36 ms, so the bytes bind
    columns = limits.roofline_columns(1e9, 64 * 2**20, 8e-3, gemm, 20.0)
    assert columns["floor_flops_s"] == pytest.approx(2e-3, rel=1e-15)
    assert columns["floor_bytes_s"] == pytest.approx(64 * 2**20 / 20e9, rel=1e-15)
    assert columns["floor_s"] == columns["floor_bytes_s"]
    assert columns["floor_fraction"] == pytest.approx(64 * 2**20 / 20e9 / 8e-3, rel=1e-15)
    # the same work from cache at 400 GB/s: 0.17 ms, and the FLOPs bind
    columns = limits.roofline_columns(1e9, 64 * 2**20, 8e-3, gemm, 400.0)
    assert columns["floor_s"] == columns["floor_flops_s"] == pytest.approx(2e-3, rel=1e-15)
    assert columns["floor_fraction"] == pytest.approx(0.25, rel=1e-15)
    # a term not measured leaves the other alone; neither, no floor
    assert limits.roofline_columns(1e9, 1e6, 1e-2, None, 10.0)["floor_s"] == pytest.approx(1e-4, rel=1e-15)
    assert limits.roofline_columns(1e9, 1e6, 1e-2, gemm, None)["floor_s"] == pytest.approx(2e-3, rel=1e-15)
    assert limits.roofline_columns(1e9, 1e6, 1e-2, {}, None) == {
        "floor_s": None, "floor_fraction": None, "floor_flops_s": None, "floor_bytes_s": None}


@pytest.mark.backend(param="name")
@pytest.mark.parametrize("name", BACKENDS)
def test_copy_rate_at_a_size_counts_bytes_read_and_written(name):
    backend = need(name)
    gbps = limits.copy_rate_at(backend, "cpu", 1 << 20)
    assert 0 < gbps < 1e5


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
    (row,) = [r for r in result.rows if r["status"] == "ok" and r["variant"] == "handwritten"]
    gemm = files.load(tmp_path / "run")["metadata"]["gemm"]
    flops = TrainConfig(batch=8, hidden=16).flops_per_step()
    nbytes = TrainConfig(batch=8, hidden=16).bytes_per_step()
    copy = files.load(tmp_path / "run")["metadata"][limits.TRAIN_BANDWIDTH][str(nbytes)]
    assert row["floor_flops_s"] == pytest.approx(flops / (gemm["gemm_gflops"] * 1e9), rel=1e-12)
    assert row["floor_bytes_s"] == pytest.approx(nbytes / (copy["copy_gbps"] * 1e9), rel=1e-12)
    assert row["floor_s"] == max(row["floor_flops_s"], row["floor_bytes_s"])
    assert row["floor_fraction"] == pytest.approx(row["floor_s"] / row["median_s"], rel=1e-12)
    text = tables.markdown([files.load(tmp_path / "run")])
    assert "Roofline floor" in text and f"| {row['floor_fraction']:.3f} |" in text
    assert "GEMM rate" in text
    assert list(tables.frame(result.rows).columns).count("floor_fraction") == 1
