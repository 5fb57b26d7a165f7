"""The numba loops of NumPy's float32 ``accurate`` sigmoid (Ziv's fast path of ``ziv``), compiled with
``cache=True``.

numba compiles them for the host CPU (``$NUMBA_CPU_NAME`` and ``$NUMBA_CPU_FEATURES`` choose another target;
``native.numba_path()`` says which instruction set that is): LLVM vectorises the loop with AVX-512 where the CPU
has it, AVX2 and FMA where it has those. ``fastmath={"contract"}`` lets it fuse a * b + c into one multiply-add,
as the C kernel does: that only removes roundings from ``ziv``'s error budget, and without it each of Horner's
steps is two operations (the loop took 2.1 ns per input instead of 0.9 on one Zen 4 thread, with the fix below).

Not imported as a package module: ``numpy_backend.numba_ziv`` loads a copy of this file kept in sigbench's
cache folder, under a name that hashes this file, ``ziv.py`` and the numba, NumPy and Python versions. numba
keys its on-disk cache by the defining file's path and time stamp only, not by the ``ziv`` constants it
freezes in; the copy's name is what ties the cached machine code to them. A later worker process then loads
the loops (about 0.5 s) instead of compiling them (about 2 s). Where no cache folder can be written, the copy
goes to a temporary folder of the process, and the loops compile as they would without a cache.
"""
import numpy as np
from numba import njit, prange

from sigbench_backends import ziv

#: Elements per block of ``kernel``: a block whose count of hard inputs is not 0 has its flags computed again to
#: find them, so blocks stay small (at 2^-18.5 hard inputs, about 1 block in 90).
BLOCK = 4096

_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9 = ziv.EXP_COEFFS
_BELOW, _ABOVE = 1 - ziv.REL_BAND, 1 + ziv.REL_BAND
_CLAMP, _INVLN2, _SHIFT = ziv.CLAMP, ziv.INVLN2, ziv.SHIFT
_LN2_HI, _LN2_LO, _ONE_BITS = ziv.LN2_HI, ziv.LN2_LO, ziv.ONE_BITS


#: Fused multiply-adds allowed, nothing else of fastmath (the same flags for both loops, so they flag alike).
_FASTMATH = {"contract"}


@njit(inline="always", fastmath=_FASTMATH, cache=True)
def _fast_path(xf):
    y = min(max(-np.float64(xf), -_CLAMP), _CLAMP)
    t = y * _INVLN2 + _SHIFT  # numba keeps IEEE order: t - SHIFT is rint(y / ln 2)
    k = t - _SHIFT
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = ((((((((_C9 * r + _C8) * r + _C7) * r + _C6) * r + _C5) * r + _C4) * r + _C3) * r + _C2) * r + _C1) * r + _C0
    two_k = np.int64((np.float64(t).view(np.int64) << 52) + _ONE_BITS).view(np.float64)
    s = 1.0 / (1.0 + p * two_k)
    return s, np.float32(s * _BELOW) != np.float32(s * _ABOVE)


@njit(inline="always", fastmath=_FASTMATH, cache=True)
def _fast_path_rounded(xf):
    s, _ = _fast_path(xf)
    up, down = np.float32(s * _ABOVE), np.float32(s * _BELOW)
    return up, up != down


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def kernel(x, out, hard_counts):
    """out = the fast path rounded to float32 where it decides the result; hard_counts[b] = how many of block
    b's inputs the exact path must redo. The loop runs over slices from 0, not over x[start + i]: with a
    start LLVM cannot prove nonnegative, numba's wraparound of negative indices made it load x by gathers (2x
    slower). Where s (1 -+ REL_BAND) round alike, that value is the result, so out takes the upper one rather
    than convert s a third time; the hard ones are overwritten."""
    for block in prange(hard_counts.size):
        start = block * BLOCK
        inputs = x[start:start + BLOCK]
        outputs = out[start:start + BLOCK]
        count = np.int32(0)
        for i in range(inputs.size):
            up, hard = _fast_path_rounded(inputs[i])
            outputs[i] = up
            count += hard
        hard_counts[block] = count


@njit(fastmath=_FASTMATH, cache=True)
def fast_path_values(x, wide, hard):
    """The float64 value before rounding and the hard flag, per element (to find a block's hard inputs, and for
    tests of the error bound)."""
    for i in range(x.size):
        wide[i], hard[i] = _fast_path(x[i])
