"""NumPy backend: sigmoid variants and a hand-written training step (forward, backward, Adam)."""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sigbench.core import blocking
from sigbench.core.workloads import MLPParams, TrainStart, numpy_dtype
from sigbench_backends import ziv

#: Below this many elements per thread, the fast variant stays on one thread.
_MIN_CHUNK = 1 << 16


class NumpyBackend:
    name = "numpy"
    extra = "numpy"

    def __init__(self) -> None:
        self._threads = os.cpu_count() or 1
        self._pool: ThreadPoolExecutor | None = None

    def versions(self) -> dict[str, str]:
        found = {"numpy": np.__version__}
        if importlib.util.find_spec("scipy") is not None:
            import scipy

            found["scipy"] = scipy.__version__
        if numba_available():  # its version without importing it (half a second)
            found["numba"] = importlib.metadata.version("numba")
        else:  # say which float32 ``accurate`` runs
            found["numba"] = "missing (float32 accurate takes the slower ufunc path)"
        return found

    def devices(self) -> list[str]:
        return ["cpu"]

    def dtypes(self, device: str) -> tuple[str, ...]:
        return ("float16", "float32", "float64")

    def from_numpy(self, array: np.ndarray, device: str) -> np.ndarray:
        return np.array(array, copy=True)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def synchronize(self, device: str) -> None:
        """NumPy computes eagerly: nothing is ever queued."""

    def copy_fn(self, device: str, nbytes: int) -> Any:
        """A call copying ``nbytes`` between two preallocated arrays, in chunks over the threads where each
        thread gets ``_MIN_CHUNK`` words at least (as the fast variant does): below that, handing chunks to
        the pool costs more than the copy, and the limit of a small array would be the pool's overhead."""
        src = np.ones(nbytes // 4, dtype=np.float32)
        dst = np.empty_like(src)
        threads = min(self._threads, max(1, src.size // _MIN_CHUNK))
        if threads <= 1:
            return lambda: np.copyto(dst, src)
        bounds = np.linspace(0, src.size, threads + 1).astype(int)
        pool = self.pool()

        def copy() -> None:
            list(pool.map(lambda i: np.copyto(dst[bounds[i]:bounds[i + 1]], src[bounds[i]:bounds[i + 1]]),
                          range(threads)))

        return copy

    def matmul_fn(self, device: str, n: int, dtype: str = "float32") -> Any:
        """An ``n`` x ``n`` BLAS matmul into a preallocated array (BLAS threads as ``set_threads`` left them)."""
        a = np.ones((n, n), dtype=numpy_dtype(dtype))
        b, out = np.ones_like(a), np.empty_like(a)
        return lambda: np.matmul(a, b, out=out)

    def reset_peak_memory(self, device: str) -> None:
        """NumPy has no device memory: host memory is measured by the worker for every backend."""

    def peak_memory_bytes(self, device: str) -> int | None:
        return None

    def set_threads(self, threads: int) -> dict[str, Any]:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(limits=threads)
        self._threads = threads
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        blas = sorted({f"{info['internal_api']}:{info['num_threads']}" for info in threadpool_info()})
        return {"numpy_fast_threads": threads, "blas": ",".join(blas)}

    # --- sigmoid -------------------------------------------------------------------------------

    def sigmoid_variants(self) -> dict[str, str | None]:
        no_scipy = None if importlib.util.find_spec("scipy") else "needs SciPy: pip install 'sigbench[numpy]'"
        no_numexpr = None if importlib.util.find_spec("numexpr") else "needs numexpr: pip install 'sigbench[numpy]'"
        # numexpr: a reference row for ``fast`` (the same formula through numexpr, into a reused buffer)
        return {"naive": None, "stable": None, "builtin": no_scipy, "fast": None, "numexpr": no_numexpr,
                "accurate": None}

    def sigmoid(self, variant: str, dtype: str, device: str) -> Any:
        if variant == "naive":
            return sigmoid_naive
        if variant == "stable":
            return sigmoid_stable
        if variant == "builtin":
            return sigmoid_builtin
        if variant == "fast":
            return _FastSigmoid(self)
        if variant == "numexpr":
            return _NumexprSigmoid(self._threads)
        if variant == "accurate":
            if dtype != "float32":
                return sigmoid_accurate
            return NumbaAccurateSigmoid(self) if numba_available() else _AccurateSigmoid(self)
        raise KeyError(variant)

    def sigmoid_path(self, variant: str, dtype: str, device: str) -> str | None:
        if variant != "accurate" or dtype != "float32":
            return None
        from sigbench_backends import native

        return native.numba_path() if numba_available() else "ufunc fast path (no numba)"

    def sigmoid_grad_variants(self) -> dict[str, str | None]:
        return {"handwritten": None, "stable": None}

    def sigmoid_grad(self, variant: str, dtype: str) -> Any:
        return {"handwritten": sigmoid_grad_handwritten, "stable": sigmoid_grad_stable}[variant]

    def bce_forms(self) -> dict[str, str | None]:
        return {"numpy step": None}

    def bce(self, form: str, dtype: str) -> Any:
        if form != "numpy step":
            raise KeyError(form)
        return bce_step

    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="sigbench-numpy")
        return self._pool

    # --- training step -------------------------------------------------------------------------

    def train_variants(self, device: str | None = None) -> dict[str, str | None]:
        # reference: the whole step as one fused numba function, a reference row and not a NumPy implementation
        return {"handwritten": None, "reference": reference_missing()}

    def train_session(self, variant: str, start: TrainStart, device: str) -> NumpyTrainSession:
        if variant == "reference":
            reason = reference_missing()
            if reason:
                raise RuntimeError(reason)
            return FusedReferenceSession(start, self._threads)
        if variant != "handwritten":
            raise KeyError(variant)
        return NumpyTrainSession(start)


def sigmoid_naive(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def sigmoid_stable(x: np.ndarray) -> np.ndarray:
    z = np.exp(-np.abs(x))
    r = 1 / (1 + z)
    return np.where(x >= 0, r, z * r)


def sigmoid_accurate(x: np.ndarray) -> np.ndarray:
    """Correctly rounded for half and single precision on all but a handful of inputs: the stable form in
    float64, rounded once (never through a flushing path, so subnormal results stay subnormal).

    ``accurate`` for float16 and float64 (float32 has Ziv's strategy, whose exact path is
    ``sigmoid_exact_float32``).
    """
    if x.dtype == np.float64:
        return sigmoid_stable(x)
    with np.errstate(invalid="ignore"):  # NaN inputs stay NaN, quietly
        return sigmoid_stable(x.astype(np.float64)).astype(x.dtype)


#: Whether NumPy's long double has x87's 64-bit significand (Linux and macOS on x86; on AArch64 Linux it is
#: quadruple precision, wider still): the exact path of float32 ``accurate`` then decides every input.
_LONG_DOUBLE_EXACT = np.finfo(np.longdouble).nmant >= 63


def sigmoid_exact_float32(x: np.ndarray) -> np.ndarray:
    """The exact path of float32 ``accurate``, for the few inputs the fast path cannot decide: the native
    kernel's (``exact`` in ``ziv_kernel.c``) in NumPy. 1/(1 + e^-x) in long double, rounded once; near 0, where
    1/2 + x/4 can be a float32 rounding midpoint that only the x^3/48 term decides, the tie is broken by the
    sign of x. Correctly rounded on every float32 input (the exhaustive run checks it). Where long double is
    float64 (Windows, Apple silicon), ``sigmoid_accurate``: off by 1 ULP on about 70 of the 2^32 inputs."""
    if not _LONG_DOUBLE_EXACT:
        return sigmoid_accurate(x)
    with np.errstate(over="ignore", invalid="ignore"):  # NaN inputs stay NaN, quietly
        wide = x.astype(np.longdouble)
        z = np.exp(-np.abs(wide))
        out = np.where(wide >= 0, 1 / (1 + z), z / (1 + z)).astype(np.float32)
    small = np.abs(x) < np.float32(2.0**-12)
    if small.any():
        out[small] = _near_half(x[small])
    return out


def _near_half(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) for float32 |x| < 2^-12: 1/2 + x/4 (exact in long double), rounded; at a float32 midpoint the
    result lies just below it for x > 0, just above for x < 0 (the -x^3/48 term). Away from midpoints that
    term is too small to change the rounding (see ``near_half`` in ``ziv_kernel.c``)."""
    head = 0.5 + x.astype(np.longdouble) / 4
    rounded = head.astype(np.float32)
    error = head - rounded
    other = np.nextafter(rounded, np.where(error > 0, np.float32(1), np.float32(0)))
    tie = (error != 0) & (2 * np.abs(error) == np.abs(other.astype(np.longdouble) - rounded))
    toward_sign = np.where(x > 0, np.minimum(rounded, other), np.maximum(rounded, other))
    return np.where(tie, toward_sign, rounded)


def sigmoid_grad_handwritten(x: np.ndarray) -> np.ndarray:
    """s * (1 - s) from the naive sigmoid, as the hand-written training step's backward has it."""
    with np.errstate(over="ignore"):
        s = sigmoid_naive(x)
    return s * (1 - s)


def sigmoid_grad_stable(x: np.ndarray) -> np.ndarray:
    """e^-|x| / (1 + e^-|x|)^2: no 1 - s, so no cancellation to 0 for large x."""
    z = np.exp(-np.abs(x))
    r = 1 / (1 + z)
    return z * r * r


def bce_step(z: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
    """Per element, the arithmetic of ``NumpyTrainSession.loss_and_grads`` (its mean without the 1/n): the naive
    sigmoid, logs clamped at -100, and PyTorch's backward (p - y) s / max(s, 1e-12) with s = p(1 - p)."""
    p = np.empty_like(z)
    _sigmoid_into(z, p)
    target = z.dtype.type(y)
    with np.errstate(divide="ignore"):
        loss = -(target * np.maximum(np.log(p), -100) + (1 - target) * np.maximum(np.log1p(-p), -100))
    s = (1 - p) * p
    grad = (p - target) * s / np.maximum(s, z.dtype.type(1e-12))
    return loss.astype(z.dtype), grad.astype(z.dtype)


def sigmoid_builtin(x: np.ndarray) -> np.ndarray:
    """scipy.special.expit; it has no float16 loop and answers float64, so the result is cast back."""
    from scipy.special import expit

    return expit(x).astype(x.dtype, copy=False)


class _FastSigmoid:
    """In place into one reused buffer, in chunks spread over the threads (ufuncs release the GIL), each chunk
    in blocks of a quarter of L2 per array (``_block_elements``), each block in three passes.

    Three passes: e = exp(x), t = 1 + e, out = e / t (``_sigmoid_by_exp``), where the tutorial's form takes four
    (negate, exp, add 1, divide: ``_sigmoid_into``). Dropping the negation saves a pass, and the first pass, the
    one that reads x from memory, is now the heavy exp, whose arithmetic hides the memory's latency where a
    negation only waited for it: 1.36-1.38x at 2^22 and 2^24 on one thread (Zen 4). e / (1 + e) is the same
    function; it overflows to inf / inf only for x above 88.7 (float32; 709.8 in float64): NumPy's floating-point
    error handler notes it, and only in a block where it did does a fourth pass write 1 where 1 + e^x is +inf.
    In float16 e^x overflows from x = 11.1, so float16 keeps the four passes; so does an array of one block (in
    cache the two forms take the same time, and the four passes need no scratch).

    Cache blocking: over a whole array larger than the cache, each pass streams it from memory and back, three
    round trips where a copy makes one. Taking the passes block by block, a block of input, output and scratch
    (three quarters of L2) stays in L2 from the first pass to the last: only the first read of x and the last
    write of out go to memory. Below a block's size nothing changes (one block is the whole call).
    """

    def __init__(self, backend: NumpyBackend) -> None:
        self._backend = backend
        self._out: np.ndarray | None = None
        self._scratch = threading.local()  # per-thread work buffers (``fast``'s "buffer", ``accurate``'s "buffers")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self._out
        if out is None or out.shape != x.shape or out.dtype != x.dtype:
            out = self._out = np.empty_like(x)
        flat_in, flat_out = x.reshape(-1), out.reshape(-1)
        threads = min(self._backend._threads, max(1, flat_in.size // _MIN_CHUNK))
        if threads <= 1:
            self._chunk(flat_in, flat_out)
            return out
        bounds = np.linspace(0, flat_in.size, threads + 1).astype(int)
        pool = self._backend.pool()
        list(pool.map(lambda i: self._chunk(flat_in[bounds[i]:bounds[i + 1]], flat_out[bounds[i]:bounds[i + 1]]),
                      range(threads)))
        return out

    def _chunk(self, x: np.ndarray, out: np.ndarray) -> None:
        """One thread's share, block by block (one block: no views made)."""
        step = _block_elements(x.itemsize)
        if x.size <= step:  # in cache: the four passes are as fast, with no scratch to keep
            _sigmoid_into(x, out)
            return
        if x.dtype == np.float16:
            for start in range(0, x.size, step):
                _sigmoid_into(x[start:start + step], out[start:start + step])
            return
        scratch = getattr(self._scratch, "buffer", None)  # this thread's t = 1 + e
        if scratch is None or scratch.dtype != x.dtype or scratch.size < step:
            scratch = self._scratch.buffer = np.empty(step, x.dtype)
        overflow = _Raised()
        with np.errstate(over="call", invalid="call", call=overflow):
            for start in range(0, x.size, step):
                block = x[start:start + step]
                _sigmoid_by_exp(block, out[start:start + step], scratch[:block.size], overflow)


class _Raised:
    """An ``np.errstate`` call handler that notes that a floating-point error was raised."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, kind: str, flag: int) -> None:
        self.seen = True


def _sigmoid_by_exp(x: np.ndarray, out: np.ndarray, scratch: np.ndarray, overflow: _Raised) -> None:
    """e^x / (1 + e^x) in three passes (``scratch`` holds 1 + e^x), under ``np.errstate`` with ``overflow`` as its
    call handler for overflow and invalid operations. e^x overflows to inf for x above 88.7 in float32 (and x is
    +inf), where the division gives inf / inf = NaN: where the handler saw that, a fourth pass writes 1, the
    right value, where 1 + e^x is +inf (a NaN input leaves NaN, for 1 + NaN is NaN)."""
    np.exp(x, out=out)
    np.add(out, 1, out=scratch)
    np.divide(out, scratch, out=out)
    if overflow.seen:
        np.copyto(out, 1, where=np.isposinf(scratch))
        overflow.seen = False


def _block_elements(itemsize: int) -> int:
    """Elements per block of ``_FastSigmoid``: a quarter of L2 per array (2^16 float32 for 1 MiB), so input and
    output together take half of it. Smaller blocks pay more calls (four ufunc calls a block, about 1 us each:
    2^15 was 5-10% slower at 2^22 and 2^24 on one thread); at least 4096."""
    return max(4096, blocking.l2_cache_bytes() // 4 // itemsize)


#: Ziv's fast path for float32: exp(-x) = T[k] * P(r) with k/S the nearest multiple of 1/S to x, |r| <= 1/(2S)
#: and P the degree-3 Taylor polynomial of exp(-r/S): relative error below 2^-36.6 (Taylor's remainder
#: (2^-8)^4/24 plus a few float64 roundings). Arguments beyond +-_ZIV_LIMIT give 0 or 1 in float32 anyway.
_ZIV_SCALE = 128
_ZIV_LIMIT = 110 * _ZIV_SCALE
_ZIV_POLY = (-1.0 / _ZIV_SCALE, 1.0 / (2 * _ZIV_SCALE**2), -1.0 / (6 * _ZIV_SCALE**3))
#: Half-width, in float64 ULPs of the result, of the band around a float32 rounding midpoint inside which
#: the fast path cannot decide: 2^17 ULPs is above the bound 2^-36.6 * 2^52 = 2^15.4 with margin.
_ZIV_BAND = 1 << 17
#: Below this x the float32 result is subnormal (its midpoints are not where the bit test looks) or
#: exp(-x) is large: the slow path takes these.
_ZIV_SUBNORMAL_X = np.float32(-87.3)
_ZIV_BLOCK = 1 << 14


class _AccurateSigmoid(_FastSigmoid):
    """Correctly rounded float32 sigmoid by Ziv's strategy, into one reused buffer, in blocks over the threads;
    the path when numba is missing (``NumbaAccurateSigmoid`` is about 3x faster).

    Fast path: a float64 evaluation with a proven relative error bound (a table of exp(-k/128) and a cubic),
    about 20 ufunc passes over a cache-sized block. Where its result lies within the bound of a float32
    rounding midpoint (about 1 input in 2000, found by a test on the float64 bits), or would be subnormal,
    the exact path (``sigmoid_exact_float32``) recomputes it.
    """

    def __init__(self, backend: NumpyBackend) -> None:
        super().__init__(backend)
        self._table = np.exp(-np.arange(-_ZIV_LIMIT, _ZIV_LIMIT + 1, dtype=np.float64) / _ZIV_SCALE)

    def _chunk(self, x: np.ndarray, out: np.ndarray) -> None:
        hard: list[np.ndarray] = []
        with np.errstate(all="ignore"):  # inf - inf for infinite inputs: those take the slow path
            for start in range(0, x.size, _ZIV_BLOCK):
                found = self._block(x[start:start + _ZIV_BLOCK], out[start:start + _ZIV_BLOCK])
                if found is not None:
                    hard.append(found + start)
        if hard:
            where = np.concatenate(hard)
            out[where] = sigmoid_exact_float32(x[where])

    def _block(self, x: np.ndarray, out: np.ndarray) -> np.ndarray | None:
        """The fast path on one block; returns the indices the slow path must redo, or None."""
        scratch = self._scratch
        if not hasattr(scratch, "buffers"):
            scratch.buffers = (np.empty(_ZIV_BLOCK, np.float32), np.empty(_ZIV_BLOCK, np.float32),
                               np.empty(_ZIV_BLOCK, np.int32), np.empty(_ZIV_BLOCK, np.float64),
                               np.empty(_ZIV_BLOCK, np.float64), np.empty(_ZIV_BLOCK, np.int64),
                               np.empty(_ZIV_BLOCK, np.bool_), np.empty(_ZIV_BLOCK, np.bool_))
        u, k, index, poly, e, bits, hard, extra = (b[:x.size] for b in scratch.buffers)
        c1, c2, c3 = (np.float64(c) for c in _ZIV_POLY)
        np.multiply(x, np.float32(_ZIV_SCALE), out=u)  # exact: a power of two
        np.rint(u, out=k)
        np.subtract(u, k, out=u)  # r, exact (Sterbenz), |r| <= 1/2
        np.add(k, _ZIV_LIMIT, out=index, casting="unsafe")
        np.multiply(u, c3, out=poly)
        poly += c2
        poly *= u
        poly += c1
        poly *= u
        poly += 1
        np.take(self._table, index, out=e, mode="clip")  # beyond the table, 0 or 1 all the same
        e *= poly
        e += 1
        np.divide(1, e, out=e)  # 1 / (1 + exp(-x)) cannot overflow in float64 here
        # float32 midpoints are where the 29 low bits of the float64 are 2^28
        np.subtract(e.view(np.int64), (1 << 28) - _ZIV_BAND, out=bits)
        bits &= (1 << 29) - 1
        np.less(bits, 2 * _ZIV_BAND, out=hard)
        np.less(x, _ZIV_SUBNORMAL_X, out=extra)
        hard |= extra
        np.greater(x, np.float32(_ZIV_LIMIT / _ZIV_SCALE), out=extra)  # also +inf, whose r is NaN
        hard |= extra
        np.copyto(out, e, casting="same_kind")
        return np.flatnonzero(hard) if hard.any() else None


def reference_missing() -> str | None:
    """Why the ``reference`` training row cannot run here (numba, and SciPy's BLAS for numba's matmuls), or None."""
    missing = [name for name in ("numba", "scipy") if importlib.util.find_spec(name) is None]
    if missing:
        return (f"the reference row is one fused numba function; needs {' and '.join(missing)}: "
                "pip install 'sigbench[numpy]' numba")
    return None


def numba_available() -> bool:
    """Whether float32 ``accurate`` runs the numba kernel (else the ufunc fast path, about 3x slower)."""
    return importlib.util.find_spec("numba") is not None


_PAGE = 4096
#: Where the numba loop's output starts, in bytes past its input's start modulo a 4 KiB page. Where the two
#: are a multiple of 4 KiB apart or just past it, the loop's loads of x match its recent stores to out in
#: their low 12 address bits, and the CPU holds each load back behind them ("4K aliasing"): 7 ms instead
#: of 1.5 at n = 2^20 on 2 threads here, for whatever place malloc gave the buffer (an output right after
#: its 4 MiB input is 16 bytes past it). Half a page is as far as can be from both sides.
_OUT_PAGE_OFFSET = _PAGE // 2


class NumbaAccurateSigmoid:
    """Correctly rounded float32 sigmoid by Ziv's strategy in one numba loop: the fast path of ``ziv`` (table-free,
    so LLVM vectorises it) over blocks spread on numba's threads, no temporaries; each block counts its inputs
    within the error bound of a rounding midpoint (and NaNs). In a block with any, the fast path's flags find
    them again and the exact path (``sigmoid_exact_float32``) redoes just those. Subnormal results stay
    subnormal: NumPy does not flush them. The reused output is placed away from the input (``_output_for``)."""

    def __init__(self, backend: NumpyBackend) -> None:
        import numba

        self._threads = min(backend._threads, numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        self._kernel, self._flags, self._block_size = numba_ziv()
        self._buffer: np.ndarray | None = None
        self._out: np.ndarray | None = None
        self._out_for = 0  # the address of the input ``_out`` was placed for
        self._hard_counts: np.ndarray | None = None
        self._wide = np.empty(self._block_size, np.float64)
        self._hard = np.empty(self._block_size, np.bool_)
        self._flags(np.zeros(1, np.float32), self._wide[:1], self._hard[:1])  # compiled now, never in a timed call

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import numba

        out = self._output_for(x)
        assert self._hard_counts is not None
        flat_in, flat_out = x.reshape(-1), out.reshape(-1)
        numba.set_num_threads(self._threads)
        self._kernel(flat_in, flat_out, self._hard_counts)
        for block in np.flatnonzero(self._hard_counts):  # about 1 block in 90
            start = block * self._block_size
            inputs = flat_in[start:start + self._block_size]
            self._flags(inputs, self._wide[:inputs.size], self._hard[:inputs.size])
            hard = start + np.flatnonzero(self._hard[:inputs.size])
            flat_out[hard] = sigmoid_exact_float32(flat_in[hard])
        return out

    def _output_for(self, x: np.ndarray) -> np.ndarray:
        """The reused output, placed half a page away from ``x`` modulo 4 KiB (see ``_OUT_PAGE_OFFSET``)."""
        out, address = self._out, x.__array_interface__["data"][0]
        if out is not None and out.shape == x.shape and address == self._out_for:
            return out
        if self._buffer is None or self._buffer.size != x.size + _PAGE // 4:
            self._buffer = np.empty(x.size + _PAGE // 4, np.float32)
            self._hard_counts = np.empty(-(-x.size // self._block_size), np.int32)
        shift = (address + _OUT_PAGE_OFFSET - self._buffer.ctypes.data) % _PAGE // 4
        self._out, self._out_for = self._buffer[shift:shift + x.size].reshape(x.shape), address
        return self._out


class NumbaZiv(NamedTuple):
    """The numba functions of float32 ``accurate`` (``ziv_numba``)."""

    #: kernel(x, out, hard_counts): out = the fast path rounded to float32, hard_counts[b] = how many of block
    #: b's inputs the exact path must redo
    kernel: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
    #: fast_path(x, wide, hard): the float64 value before rounding and the hard flag, per element (to find the
    #: hard inputs of a block, and for tests of the error bound)
    fast_path: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
    #: elements per block of ``kernel``
    block: int


@functools.cache
def numba_ziv() -> NumbaZiv:
    """``ziv_numba``'s loops, so numba is imported only here. They are imported from a copy of that file in
    sigbench's cache folder, named by a hash of it, ``ziv.py`` and the numba, NumPy and Python versions: numba's
    on-disk cache of their machine code (keyed by the copy's path and time stamp, and by the CPU) then
    serves later worker processes and runs, and cannot outlive a change to the ``ziv`` constants."""
    import importlib.util
    import platform
    import shutil
    import sys
    import tempfile

    import numba

    from sigbench_backends import native

    source = Path(__file__).with_name("ziv_numba.py")
    name = "sigbench_ziv_numba_" + native.digest(source.read_text(), Path(ziv.__file__).read_text(),
                                                 numba.__version__, np.__version__, platform.python_version())
    try:
        copy = native.write_once(native.cache_root() / "numba" / f"{name}.py",
                                 lambda partial: shutil.copyfile(source, partial))
    except OSError:  # no writable cache folder: this process's own, so the loops compile as without a cache
        copy = Path(tempfile.mkdtemp(prefix="sigbench-numba-")) / f"{name}.py"
        shutil.copyfile(source, copy)
    with _numba_lock:  # functools.cache lets two threads in at once; one must not see the other's half module
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, copy)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # numba's cache finds the module by name when it loads the machine code
            spec.loader.exec_module(module)
    return NumbaZiv(module.kernel, module.fast_path_values, module.BLOCK)


_numba_lock = threading.Lock()


class _NumexprSigmoid:
    """numexpr's evaluation of 1/(1+exp(-x)) on the same threads, into one reused buffer."""

    def __init__(self, threads: int) -> None:
        import numexpr

        numexpr.set_num_threads(threads)
        self._evaluate = numexpr.evaluate
        self._out: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self._out
        if out is None or out.shape != x.shape or out.dtype != x.dtype:
            out = self._out = np.empty_like(x)
        if x.dtype == np.float16:  # numexpr has no float16
            return self._evaluate("1 / (1 + exp(-x))", local_dict={"x": x.astype(np.float32)}).astype(x.dtype)
        one = x.dtype.type(1)
        return self._evaluate("one / (one + exp(-x))", local_dict={"x": x, "one": one}, out=out, casting="same_kind")


def _sigmoid_into(x: np.ndarray, out: np.ndarray) -> None:
    """1/(1+exp(-x)) without temporaries; exp overflowing to inf gives the right 0. The division is divide's
    loop, not reciprocal's: the same correctly rounded 1/v, but NumPy's float32 divide by a scalar numerator
    is vectorised (0.17 against 0.23 ns per element in L1 on Zen 4)."""
    with np.errstate(over="ignore"):
        np.negative(x, out=out)
        np.exp(out, out=out)
        out += 1
        np.divide(out.dtype.type(1), out, out=out)


# --- hand-written training step ---------------------------------------------------------------


class AdamState(NamedTuple):
    """optax-like Adam state. The moments are buffers the update rewrites in place."""

    steps: int
    mu: np.ndarray
    nu: np.ndarray


def adam_init(params: np.ndarray) -> AdamState:
    return AdamState(0, np.zeros_like(params), np.zeros_like(params))


def adam_update(
    grads: np.ndarray, state: AdamState, lr: float, beta1: float, beta2: float, eps: float
) -> tuple[np.ndarray, AdamState]:
    """Updates to add to the parameters (written into ``grads``), and the next state; torch's formula.

    Works on one flat array holding every parameter: a dozen ufunc calls per step, whatever the network.
    """
    count = state.steps + 1
    step_size = lr / (1 - beta1**count)
    root_bc2 = np.sqrt(1 - beta2**count)
    g, m, v = grads, state.mu, state.nu
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    np.multiply(g, g, out=g)
    g *= 1 - beta2
    v += g
    np.sqrt(v, out=g)
    g /= root_bc2
    g += eps
    np.divide(m, g, out=g)
    g *= -step_size
    return grads, AdamState(count, state.mu, state.nu)


def _views(flat: np.ndarray, like: MLPParams) -> MLPParams:
    """The parameters as views into one flat buffer, in order."""
    views, offset = [], 0
    for p in like:
        views.append(flat[offset:offset + p.size].reshape(p.shape))
        offset += p.size
    return MLPParams(*views)


class NumpyTrainSession:
    """Forward, BCELoss, backward and Adam by hand, with every intermediate in a preallocated buffer.

    Parameters, gradients and Adam's moments each live in one flat array (the named tensors are views),
    so that Adam is a few calls over one array instead of a few calls per tensor. Every ufunc writes into
    a buffer made once (``out=``), and every matmul is one BLAS call on a contiguous or transposed array.

    Cache blocking of the batch: where the hidden activations (batch x hidden) are larger than L2, forward and
    backward run over blocks of rows whose activations fill L2 (``sigbench.core.blocking.block_rows``: 256 rows
    at hidden 1,024 with 1 MiB of L2), the gradients summed block by block. The passes over the activations
    (bias, ReLU, its mask, the hidden gradient) then hit the cache instead of memory: 0.63x the step's time at
    batch 4,096, hidden 1,024 on one thread (Zen 4). The same step, summed in another order: the numerics check
    holds it to the float64 step like any other. Below L2 one block is the whole batch and nothing changes.
    """

    def __init__(self, start: TrainStart) -> None:
        config = start.config
        dtype = numpy_dtype(config.dtype)
        self._config = config
        self._start = start
        total = sum(p.size for p in start.params)
        self._flat_params = np.empty(total, dtype)
        self._params = _views(self._flat_params, start.params)
        self._x = np.array(start.x, dtype=dtype)
        self._y = np.array(start.y, dtype=dtype)
        self._y_flat = self._y.reshape(-1)
        self._opt = adam_init(self._flat_params)
        self.reset()
        b, h, o = config.batch, config.hidden, config.outputs
        self.rows = blocking.block_rows(b, h, dtype.itemsize)
        self._block_hidden = np.empty((self.rows, h), dtype)
        self._active = np.empty((self.rows, h), bool)
        self._dh = np.empty((self.rows, h), dtype)
        self._z = np.empty((b, o), dtype)
        self._log_p = np.empty((b, o), dtype)
        self._log_1mp = np.empty((b, o), dtype)
        self._s = np.empty((b, o), dtype)
        self._dz = np.empty((b, o), dtype)
        self._flat_grads = np.empty_like(self._flat_params)
        self._grads = _views(self._flat_grads, start.params)
        # one block's weight gradients, added to the totals from the second block on
        self._block_grads = (np.empty((h, config.inputs), dtype), np.empty(h, dtype), np.empty((o, h), dtype))
        self._eps12 = dtype.type(1e-12)
        self._inv_n = dtype.type(1.0 / self._y.size)

    def loss_and_grads(self) -> tuple[Any, MLPParams]:
        """BCELoss with PyTorch's backward: d loss/d z = (p - y) s / max(s, 1e-12) / n, s = p(1 - p)."""
        x, y, p, dz = self._x, self._y, self._z, self._dz
        gw1, gb1, gw2, gb2 = self._grads
        batch = x.shape[0]
        for first in range(0, batch, self.rows):
            last = min(batch, first + self.rows)
            self._block(x[first:last], y[first:last], p[first:last], dz[first:last], accumulate=first > 0)
        np.add.reduce(dz, axis=0, out=gb2)
        # loss = -mean(y log p + (1 - y) log(1 - p)) = -(y . (log p - log(1 - p)) + sum log(1 - p)) / n,
        # each log clamped at -100 as BCELoss clamps it
        log_p, log_1mp = self._log_p, self._log_1mp
        with np.errstate(divide="ignore"):
            np.log(p, out=log_p)
            np.negative(p, out=log_1mp)
            np.log1p(log_1mp, out=log_1mp)
        np.maximum(log_p, -100, out=log_p)
        np.maximum(log_1mp, -100, out=log_1mp)
        total = float(np.add.reduce(log_1mp, axis=None))
        log_p -= log_1mp
        loss = -(float(np.dot(self._y_flat, log_p.reshape(-1))) + total) * float(self._inv_n)
        return loss, self._grads

    def _block(self, x: np.ndarray, y: np.ndarray, p: np.ndarray, dz: np.ndarray, accumulate: bool) -> None:
        """Forward and backward over one block of rows: p and dz of its rows; the weight gradients of its rows
        written (the first block) or added (``accumulate``)."""
        w1, b1, w2, b2 = self._params
        gw1, gb1, gw2, _ = self._grads
        rows = x.shape[0]
        hidden, dh, active, s = self._block_hidden[:rows], self._dh[:rows], self._active[:rows], self._s[:rows]
        np.matmul(x, w1.T, out=hidden)
        hidden += b1
        np.maximum(hidden, 0, out=hidden)
        np.matmul(hidden, w2.T, out=p)
        p += b2
        _sigmoid_into(p, p)
        np.subtract(1, p, out=s)
        s *= p
        np.subtract(p, y, out=dz)
        dz *= s
        dz /= np.maximum(s, self._eps12, out=s)
        dz *= self._inv_n
        np.matmul(dz, w2, out=dh)
        np.greater(hidden, 0, out=active)
        dh *= active
        if not accumulate:
            np.matmul(dz.T, hidden, out=gw2)
            np.matmul(dh.T, x, out=gw1)
            np.add.reduce(dh, axis=0, out=gb1)
            return
        block_w1, block_b1, block_w2 = self._block_grads
        gw2 += np.matmul(dz.T, hidden, out=block_w2)
        gw1 += np.matmul(dh.T, x, out=block_w1)
        gb1 += np.add.reduce(dh, axis=0, out=block_b1)

    def step(self) -> Any:
        loss, _ = self.loss_and_grads()
        c = self._config
        updates, self._opt = adam_update(self._flat_grads, self._opt, c.lr, c.beta1, c.beta2, c.eps)
        self._flat_params += updates
        return loss

    def loss_value(self, loss: Any) -> float:
        return float(loss)

    def params(self) -> MLPParams:
        return MLPParams(*(p.copy() for p in self._params))

    def reset(self) -> None:
        for view, value in zip(self._params, self._start.params):
            view[...] = value
        self._opt.mu[...] = 0
        self._opt.nu[...] = 0
        self._opt = AdamState(0, self._opt.mu, self._opt.nu)

    def optimizer_state(self) -> tuple[int, MLPParams, MLPParams]:
        like = self._params
        return self._opt.steps, _views(self._opt.mu.copy(), like), _views(self._opt.nu.copy(), like)


#: From this many batch rows times hidden units, the reference step's row passes and Adam run on numba's
#: threads; below it, the serial build (a thread launch costs more than the work it would share).
_REFERENCE_PARALLEL_FROM = 1 << 15


class FusedReferenceSession(NumpyTrainSession):
    """The reference row: the whole step (forward, BCE, backward, Adam) as one numba function
    (``train_numba``), on the same flat buffers as ``NumpyTrainSession``, which gives it its state handling."""

    def __init__(self, start: TrainStart, threads: int) -> None:
        import numba

        from sigbench_backends import train_numba

        super().__init__(start)
        config = start.config
        self._hidden = np.empty((config.batch, config.hidden), self._flat_params.dtype)  # the whole batch's
        chunks = 1
        self._kernel = train_numba.step_serial
        if config.batch * config.hidden >= _REFERENCE_PARALLEL_FROM:
            chunks = max(1, min(threads, numba.config.NUMBA_NUM_THREADS, config.batch))  # type: ignore[attr-defined]
            numba.set_num_threads(chunks)
            self._kernel = train_numba.step_parallel
        width = config.hidden + config.outputs * config.hidden + config.outputs + 1
        self._partial = np.empty((chunks, width), self._flat_params.dtype)  # per chunk: gb1, gw2, gb2, loss
        self._threads = threads
        self._blas_limited = False

    def step(self) -> Any:
        c = self._config
        count = self._opt.steps + 1
        loss = self._kernel(self._x, self._y, self._flat_params, self._flat_grads, self._opt.mu, self._opt.nu,
                            self._hidden, self._partial, count, c.lr, c.beta1, c.beta2, c.eps)
        self._opt = AdamState(count, self._opt.mu, self._opt.nu)
        if not self._blas_limited:  # numba's matmuls load SciPy's BLAS at the first call: hold it to the threads
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=self._threads)
            self._blas_limited = True
        return loss
