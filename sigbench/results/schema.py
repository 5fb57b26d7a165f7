"""The columns of a results row: what identifies a case and what each row reports, in order.

Kept apart from reading and writing files (``results``) and from rendering them (``report``), so
both depend on it and not on each other.
"""
from __future__ import annotations

from sigbench.measure.stats import FIELDS as STAT_FIELDS

#: What identifies a case; two runs are compared on these.
KEY_COLUMNS: tuple[str, ...] = ("workload", "backend", "variant", "device", "dtype", "size", "hidden")

#: Every column of results.csv, in order.
COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS, "batch", "status", "check_passed", "max_error", "error_unit", "max_ulp",
    "max_abs_error", "flushed_subnormals", "warnings", "first_call_s", *STAT_FIELDS, "processes",
    "process_cv", "loops_per_sample", "timer_overhead_s", "gbps", "bandwidth_fraction", "copy_gbps_at_size",
    "out_of_cache_fraction", "gflops", "floor_s", "floor_fraction", "floor_flops_s", "floor_bytes_s",
    "reference_ratio", "peak_host_bytes", "peak_device_bytes", "seed", "threads", "code_path", "machine", "message",
)
