"""A Sphinx directive, ``sigbench-columns``: the table of results.csv's columns, in the code's order.

The names and their order come from the code that defines them, so the page cannot drift from it; the
build fails (a warning, and the docs build turns warnings into errors) when a column has no description
here or a description names a column the code no longer has.
"""
from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from sigbench.results.schema import COLUMNS, KEY_COLUMNS

LOG = logging.getLogger(__name__)

#: What each column means. Units are in the names: ``_s`` seconds, ``_bytes`` bytes.
DESCRIPTIONS: dict[str, str] = {
    "workload": "`sigmoid` or `train`.",
    "backend": "`numpy`, `torch`, `jax`, or a plugin's name.",
    "variant": "The variant of the workload (see {doc}`/reference/variants`).",
    "device": "`cpu`, or the backend's name for the GPU (`cuda`, `gpu`).",
    "dtype": "`float16`, `bfloat16`, `float32` or `float64`.",
    "size": "Sigmoid: the number of elements n. Training: the batch size.",
    "hidden": "Training: the hidden layer's width; empty for the sigmoid.",
    "batch": "Training: the batch size; empty for the sigmoid.",
    "status": "`ok`, `error` (the message says why) or `skipped` (the message says why not run).",
    "check_passed": "Whether the numerics check against float64 passed.",
    "max_error": "The largest difference from the float64 reference, in `error_unit`.",
    "error_unit": "`ulp` (sigmoid) or `abs` (training, beyond the rounding allowance).",
    "max_ulp": "Sigmoid: the largest difference in ULPs.",
    "max_abs_error": "The largest absolute difference.",
    "flushed_subnormals": "Results that should be subnormal but came out as zero (allowed: XLA on CPU flushes "
                          "them).",
    "warnings": "Warnings the case raised, such as NumPy's overflow warning.",
    "first_call_s": "The first call alone: tracing, JIT compilation, lazy setup (the median over processes).",
    "median_s": "The geometric mean of the processes' median per-call times; with one process, the median.",
    "ci_low_s": "Lower end of the 95% interval of `median_s` (hierarchical bootstrap over processes, then "
                "samples).",
    "ci_high_s": "Upper end of that interval.",
    "ci_level": "The interval's coverage: 0.95, or, with one process, the exact coverage of the "
                "order-statistic interval.",
    "min_s": "The fastest per-call time over all samples of all processes.",
    "mean_s": "The mean per-call time over all samples.",
    "std_s": "Their standard deviation.",
    "q1_s": "Their first quartile.",
    "q3_s": "Their third quartile.",
    "iqr_s": "Their interquartile range, `q3_s - q1_s`.",
    "samples": "Samples, all processes together.",
    "outliers": "Samples beyond Tukey's 1.5 IQR fences.",
    "unstable": "IQR over 10% of the median within a process (the median over processes): rerun such a row.",
    "processes": "K, the worker processes that measured the case.",
    "process_cv": "How much the processes' medians differ: their geometric spread (0.05: ±5%).",
    "loops_per_sample": "Calls per sample (a block between two clock reads).",
    "timer_overhead_s": "The clock's own cost: two reads and a device sync.",
    "gbps": "Sigmoid: `2 × itemsize × n / median_s`, bytes read plus written per second, in GB/s.",
    "bandwidth_fraction": "Sigmoid: `gbps` over `copy_gbps_at_size`, the copy bandwidth at the row's own array "
                          "size (in cache where the array fits): 1.0 is the limit at that size.",
    "copy_gbps_at_size": "Sigmoid: the best copy bandwidth any backend's worker reached copying the row's "
                         "`n × itemsize` bytes on its device, in GB/s read plus written.",
    "out_of_cache_fraction": "Sigmoid: `gbps` over the copy bandwidth measured out of cache (128 MiB on CPU, "
                             "1 GiB on GPU): above 1 where the array fits in a cache. Files written before "
                             "the per-size limit had this figure as `bandwidth_fraction`; loading one moves "
                             "it here.",
    "gflops": "Training: FLOPs per second, 2 per multiply-add, forward, backward and Adam.",
    "floor_s": "Training: the roofline floor, the larger of `floor_flops_s` and `floor_bytes_s`.",
    "floor_fraction": "`floor_s / median_s`: 1.0 would be a step at the machine's floor.",
    "floor_flops_s": "Training: the step's FLOPs at the run's best GEMM rate (the floor's arithmetic term).",
    "floor_bytes_s": "Training: the bytes the step must move at least once (`TrainConfig.bytes_per_step`) at the "
                     "copy bandwidth measured for that many bytes (the floor's memory term).",
    "reference_ratio": "Training: `median_s` over the reference row's (`numpy/reference`, one fused numba "
                       "function) at the same shape, dtype, device and machine; 1.0 on that row.",
    "peak_host_bytes": "Host memory the case adds at its peak (Linux; empty elsewhere).",
    "peak_device_bytes": "GPU memory the case adds at its peak (empty on CPU).",
    "seed": "The seed of the inputs and starting parameters.",
    "threads": "`--threads`, or where it was not given, the machine's CPU count.",
    "code_path": "The code path a variant chose at run time, where it has several: float32 `accurate`'s kernel "
                 "(`native avx512`, `native avx2-fma`, `native plain`; NumPy's numba target, e.g. `avx512 (numba, "
                 "LLVM cpu znver4)`), or why it runs without one. Empty for variants with one path.",
    "machine": "The host name of the machine that measured the row: the dimension of a merged report.",
    "message": "Why a row erred or was skipped.",
}


class ColumnsDirective(SphinxDirective):
    """``sigbench-columns``: one table row per column of results.csv, in order."""

    def run(self) -> list[nodes.Node]:
        missing = [c for c in COLUMNS if c not in DESCRIPTIONS]
        stale = [c for c in DESCRIPTIONS if c not in COLUMNS]
        for column in missing:
            LOG.warning("sigbench-columns: column %r has no description in docs/_ext/sigbench_schema.py", column,
                        location=self.get_location())
        for column in stale:
            LOG.warning("sigbench-columns: %r is described but is no column of results.csv", column,
                        location=self.get_location())
        lines = ["| # | column | identifies the case | meaning |", "|---|---|---|---|"]
        for number, column in enumerate(COLUMNS, 1):
            key = "yes" if column in KEY_COLUMNS else ""
            meaning = DESCRIPTIONS.get(column, "").replace("|", "\\|")
            lines.append(f"| {number} | `{column}` | {key} | {meaning} |")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="sigbench-columns"), self.content_offset, container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("sigbench-columns", ColumnsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
