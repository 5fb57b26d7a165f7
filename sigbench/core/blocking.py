"""Cache blocking shared by the backends: this CPU's L2 size, and how many rows of a training batch one block of
the step takes (NumPy's hand-written step and JAX's jitted one both walk the batch block by block where its hidden
activations would leave L2)."""
from __future__ import annotations

import functools
import os
from pathlib import Path


@functools.cache
def l2_cache_bytes() -> int:
    """This CPU's L2 cache per core, in bytes: glibc's sysconf, else Linux's /sys; 1 MiB where neither says."""
    try:
        found = os.sysconf("SC_LEVEL2_CACHE_SIZE")
    except (ValueError, OSError):
        found = 0
    if found <= 0:
        try:
            text = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
            found = int(text.rstrip("KMG")) << {"K": 10, "M": 20, "G": 30}.get(text[-1:], 0)
        except (OSError, ValueError):
            found = 1 << 20
    return found


def block_rows(batch: int, hidden: int, itemsize: int, device: str = "cpu") -> int:
    """Rows per block of a training step's forward and backward: the whole batch on a GPU (``device`` other than
    ``"cpu"``: its caches are not what this rule sizes) and where its hidden activations (batch x hidden) fit L2,
    else the rows whose activations fill it (at least 64: a smaller block pays more in
    calls than it saves). Each block's passes over its activations (bias, ReLU, its mask, the hidden gradient)
    then stay in the cache instead of going to memory and back.

    Measured at batch 4,096 on one thread of Zen 4 (1 MiB of L2), the step's time against one block: NumPy at
    hidden 1,024, 64 rows 0.74x, 128 0.67x, **256 0.63x**, 512 0.88x; NumPy at hidden 128, 512-1,024 rows 0.76x;
    JAX at hidden 1,024, **256 rows 0.35x**, 512 0.36x, 1,024 0.40x."""
    if device != "cpu":
        return batch
    fill = l2_cache_bytes() // (hidden * itemsize)
    return batch if batch <= fill else max(64, fill)
