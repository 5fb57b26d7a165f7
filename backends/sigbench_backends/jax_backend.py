"""JAX backend: jitted sigmoid variants and a jitted value_and_grad + optax.adam training step.

float64 runs inside a scoped ``enable_x64`` so that asking for it never changes later float32 runs.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sigbench.core import blocking
from sigbench.core.workloads import MLPParams, TrainStart
from sigbench_backends import native, ziv

# Cross-checks compare against float64: full-precision float32 matmuls (no TF32/bf16 passes on GPUs).
jax.config.update("jax_default_matmul_precision", "highest")

_DEVICE_KINDS = {"cpu": "cpu", "gpu": "gpu"}


def _x64(dtype: str) -> contextlib.AbstractContextManager[Any]:
    """float64 on for this block only."""
    if dtype != "float64":
        return contextlib.nullcontext()
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # type: ignore[attr-defined]  # jax < 0.7

    return enable_x64()


def _scoped(fn: Callable[..., Any], dtype: str) -> Callable[..., Any]:
    if dtype != "float64":
        return fn

    def call(*args: Any) -> Any:
        with _x64(dtype):
            return fn(*args)

    return call


class JaxBackend:
    name = "jax"
    extra = "jax"

    def __init__(self) -> None:
        self._threads = os.cpu_count() or 1  # as the NumPy backend, until ``set_threads``

    def versions(self) -> dict[str, str]:
        import jaxlib

        found = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "accurate kernel": native.status("c++")}
        if importlib.util.find_spec("optax") is not None:
            import optax

            found["optax"] = optax.__version__
        return found

    def devices(self) -> list[str]:
        found = ["cpu"]
        with contextlib.suppress(RuntimeError):
            if jax.devices("gpu"):
                found.append("gpu")
        return found

    def dtypes(self, device: str) -> tuple[str, ...]:
        return ("float16", "bfloat16", "float32", "float64")

    def _device(self, device: str) -> Any:
        return jax.devices(_DEVICE_KINDS[device])[0]

    def from_numpy(self, array: np.ndarray, device: str) -> jax.Array:
        with _x64(array.dtype.name):
            return jax.device_put(array, self._device(device))

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def synchronize(self, device: str) -> None:
        """Block on every live array of the device: JAX dispatches asynchronously."""
        for array in jax.live_arrays():
            if not array.is_deleted() and self._device(device) in array.devices():
                array.block_until_ready()

    def wait_for(self, results: list[Any]) -> None:
        """Block until ``results`` are computed: the timer's wait, far cheaper than ``synchronize`` (which
        walks every live array, ~1 ms with a run's arrays alive). Donated (deleted) results are skipped:
        the result that replaced them depends on them."""
        for leaf in jax.tree_util.tree_leaves(results):
            if isinstance(leaf, jax.Array) and not leaf.is_deleted():
                leaf.block_until_ready()

    def copy_fn(self, device: str, nbytes: int) -> Any:
        """A call copying ``nbytes`` on ``device`` into the previous copy's donated buffer."""
        src = jax.device_put(np.ones(nbytes // 4, dtype=np.float32), self._device(device))
        copy = jax.jit(lambda out, x: out.at[...].set(x), donate_argnums=0)
        state = {"out": jax.device_put(jnp.empty_like(src), self._device(device))}

        def call() -> None:
            state["out"] = copy(state["out"], src)

        return call

    def matmul_fn(self, device: str, n: int, dtype: str = "float32") -> Callable[[], Any]:
        """An ``n`` x ``n`` jitted matmul on ``device`` (precision "highest", as every float32 matmul here)."""
        with _x64(dtype):
            a = jax.device_put(np.ones((n, n), dtype=dtype), self._device(device))
        matmul = _scoped(jax.jit(jnp.matmul), dtype)
        return lambda: matmul(a, a)

    def reset_peak_memory(self, device: str) -> None:
        """Remember the device's memory counters now: XLA's peak cannot be reset, only compared with."""
        stats = self._device(device).memory_stats() or {}
        self._memory_base = (stats.get("bytes_in_use"), stats.get("peak_bytes_in_use"))

    def peak_memory_bytes(self, device: str) -> int | None:
        """The device memory in use at the peak since ``reset_peak_memory``, over what was in use then; None
        where the device keeps no counters (CPU) or the peak did not rise past the earlier one (unknown)."""
        self.synchronize(device)
        in_use, peak = getattr(self, "_memory_base", (None, None))
        now = (self._device(device).memory_stats() or {}).get("peak_bytes_in_use")
        if in_use is None or peak is None or now is None or now <= peak:
            return None
        return int(now - in_use)

    def set_threads(self, threads: int) -> dict[str, Any]:
        """XLA's own threads are fixed by XLA_FLAGS before JAX starts (the worker sets them); ``threads`` is
        kept for the native ``accurate`` kernel."""
        self._threads = threads
        return {"xla_flags": os.environ.get("XLA_FLAGS", ""), "accurate_kernel_threads": threads}

    # --- sigmoid -------------------------------------------------------------------------------

    def sigmoid_variants(self) -> dict[str, str | None]:
        return {"naive": None, "stable": None, "builtin": None, "fast": None, "accurate": None}

    def sigmoid(self, variant: str, dtype: str, device: str) -> Callable[[Any], Any]:
        if variant == "fast":
            return _scoped(_FastSigmoid(), dtype)
        if variant == "accurate":  # float64 inside, whatever the dtype
            if dtype == "float32" and device == "cpu" and native.compiler("c++") is not None:
                return _NativeAccurateSigmoid(self._threads)
            if dtype == "float32":
                return _scoped(_ZivAccurateSigmoid(), "float64")
            return _scoped(_FastSigmoid(_sigmoid_accurate_into_jit), "float64")
        functions = {"naive": sigmoid_naive, "stable": sigmoid_stable, "builtin": jax.nn.sigmoid}
        return _scoped(jax.jit(functions[variant]), dtype)

    def sigmoid_path(self, variant: str, dtype: str, device: str) -> str | None:
        if variant != "accurate" or dtype != "float32" or device != "cpu":
            return None
        return f"native {native.kernel_path()}" if native.compiler("c++") is not None else "XLA ops (no C++ compiler)"

    def sigmoid_grad_variants(self) -> dict[str, str | None]:
        return {"grad": None, "stable": None}

    def sigmoid_grad(self, variant: str, dtype: str) -> Callable[[Any], Any]:
        functions = {"grad": jax.vmap(jax.grad(jax.nn.sigmoid)), "stable": sigmoid_grad_stable}
        return _scoped(jax.jit(functions[variant]), dtype)

    def bce_forms(self) -> dict[str, str | None]:
        no_optax = None if importlib.util.find_spec("optax") else "needs optax: pip install 'sigbench[jax]'"
        return {"optax": no_optax, "jax step": None}

    def bce(self, form: str, dtype: str) -> Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]:
        if form == "optax":
            import optax

            per_element = optax.sigmoid_binary_cross_entropy
        else:  # the training step's own bce_loss, on one element at a time
            def per_element(z: jax.Array, y: jax.Array) -> jax.Array:
                return bce_loss(jax.nn.sigmoid(z)[None], y[None])

        both = _scoped(jax.jit(jax.vmap(jax.value_and_grad(per_element))), dtype)

        def call(z: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
            with _x64(dtype):
                loss, grad = both(self.from_numpy(z, "cpu"), self.from_numpy(np.full_like(z, y), "cpu"))
            return self.to_numpy(loss), self.to_numpy(grad)

        return call

    # --- training step -------------------------------------------------------------------------

    def train_variants(self, device: str | None = None) -> dict[str, str | None]:
        if importlib.util.find_spec("optax") is None:
            return {"jit": "needs optax: pip install 'sigbench[jax]'"}
        return {"jit": None}

    def train_session(self, variant: str, start: TrainStart, device: str) -> JaxTrainSession:
        if variant != "jit":
            raise KeyError(variant)
        return JaxTrainSession(self, start, device)


def sigmoid_naive(x: jax.Array) -> jax.Array:
    return 1 / (1 + jnp.exp(-x))


def sigmoid_stable(x: jax.Array) -> jax.Array:
    z = jnp.exp(-jnp.abs(x))
    r = 1 / (1 + z)
    return jnp.where(x >= 0, r, z * r)


def sigmoid_grad_stable(x: jax.Array) -> jax.Array:
    z = jnp.exp(-jnp.abs(x))
    r = 1 / (1 + z)
    return z * r * r


def _sigmoid_into(out: jax.Array, x: jax.Array) -> jax.Array:
    """Written as an update of ``out`` so that XLA keeps the (donated) argument and aliases it to the result;
    an unused argument would be pruned and its donation lost."""
    return out.at[...].set(jax.nn.sigmoid(x))


_sigmoid_into_jit = jax.jit(_sigmoid_into, donate_argnums=0)


def _sigmoid_accurate_into(out: jax.Array, x: jax.Array) -> jax.Array:
    """jax.nn.sigmoid in float64 rounded once to x's dtype, fused by XLA into one pass; to be traced with x64 on.

    float16 and bfloat16 go through float32 rounded to odd, so that XLA's conversion (which may pass
    through float32) cannot round twice. XLA on CPU flushes subnormal results to zero all the same.
    """
    if x.dtype == jnp.float64:
        return out.at[...].set(jax.nn.sigmoid(x))
    wide = jax.nn.sigmoid(x.astype(jnp.float64))
    if x.dtype == jnp.float32:
        return out.at[...].set(wide.astype(jnp.float32))
    narrow = wide.astype(jnp.float32)
    bits = jax.lax.bitcast_convert_type(narrow, jnp.int32)
    bits = bits - (narrow.astype(jnp.float64) > wide).astype(jnp.int32)
    truncated = jax.lax.bitcast_convert_type(bits, jnp.float32)
    bits = bits | (truncated.astype(jnp.float64) != wide).astype(jnp.int32)
    return out.at[...].set(jax.lax.bitcast_convert_type(bits, jnp.float32).astype(x.dtype))


_sigmoid_accurate_into_jit = jax.jit(_sigmoid_accurate_into, donate_argnums=0)


def _sigmoid_ziv_into(out: jax.Array, x: jax.Array) -> jax.Array:
    """Ziv's fast path of ``ziv`` for float32 x, fused by XLA into one pass; NaN marks the inputs the exact path
    must redo (within the error bound of a rounding midpoint, NaN inputs). Traced with x64 on. XLA flushes
    subnormal float32 results to 0 on both sides of the test, so they come out 0, as from the exact path.

    k is rounded directly: XLA simplifies (a + SHIFT) - SHIFT to a, so the bits trick only builds 2^k."""
    y = jnp.clip(-x.astype(jnp.float64), -ziv.CLAMP, ziv.CLAMP)
    k = jnp.round(y * ziv.INVLN2)
    r = (y - k * ziv.LN2_HI) - k * ziv.LN2_LO
    p = jnp.full_like(r, ziv.EXP_COEFFS[-1])
    for coeff in ziv.EXP_COEFFS[-2::-1]:
        p = p * r + coeff
    k_bits = jax.lax.bitcast_convert_type(k + ziv.SHIFT, jnp.int64)
    two_k = jax.lax.bitcast_convert_type((k_bits << 52) + ziv.ONE_BITS, jnp.float64)
    s = 1.0 / (1.0 + p * two_k)
    below = (s * (1 - ziv.REL_BAND)).astype(jnp.float32)
    above = (s * (1 + ziv.REL_BAND)).astype(jnp.float32)
    return out.at[...].set(jnp.where(below == above, below, jnp.nan))


_sigmoid_ziv_into_jit = jax.jit(_sigmoid_ziv_into, donate_argnums=0)


def _redo_blocks(out: jax.Array, x: jax.Array, starts: jax.Array) -> jax.Array:
    """The exact path (float64 jax.nn.sigmoid rounded once) over the blocks of _ZIV_BLOCK elements at ``starts``."""
    size = min(_ZIV_BLOCK, x.shape[0])

    def redo(i: int, out: jax.Array) -> jax.Array:
        block = jax.lax.dynamic_slice(x, (starts[i],), (size,))
        exact = jax.nn.sigmoid(block.astype(jnp.float64)).astype(jnp.float32)
        return jax.lax.dynamic_update_slice(out, exact, (starts[i],))

    return jax.lax.fori_loop(0, starts.shape[0], redo, out)


_redo_blocks_jit = jax.jit(_redo_blocks, donate_argnums=0)
#: Elements per block of the exact path's redo: about 1 input in 2^18.5 is hard, so 1 block in 350 is redone.
_ZIV_BLOCK = 1024


class _ZivAccurateSigmoid:
    """Correctly rounded float32 sigmoid by Ziv's strategy, into the previous call's (donated) output: one fused
    fast pass marks hard inputs NaN; a NaN-propagating block maximum (NumPy, on the CPU buffer) finds the blocks
    to redo, and one jitted loop redoes them, their count padded to a power of two to bound recompilation."""

    def __init__(self) -> None:
        self._out: jax.Array | None = None

    def __call__(self, x: jax.Array) -> jax.Array:
        out = self._out
        if out is None or out.shape != x.shape or out.dtype != x.dtype or out.devices() != x.devices():
            out = jax.device_put(jnp.empty_like(x), next(iter(x.devices())))
        flat_in = x.reshape(-1)
        self._out = out = _sigmoid_ziv_into_jit(out.reshape(-1), flat_in)
        view = np.asarray(out)
        whole = view.size - view.size % _ZIV_BLOCK
        starts = np.flatnonzero(np.isnan(np.max(view[:whole].reshape(-1, _ZIV_BLOCK), axis=1))) * _ZIV_BLOCK
        if whole < view.size and np.isnan(view[whole:]).any():
            starts = np.append(starts, max(view.size - _ZIV_BLOCK, 0))  # the tail, as a block ending at the end
        del view
        if starts.size:
            padded = np.full(1 << (int(starts.size) - 1).bit_length(), starts[-1], dtype=np.int64)
            padded[:starts.size] = starts
            self._out = out = _redo_blocks_jit(out, flat_in, jnp.asarray(padded))
        self._out = out = out.reshape(x.shape)
        return out


_NATIVE_TARGET = "sigbench_ziv_f32"


def _native_accurate_into(out: jax.Array, x: jax.Array, *, threads: int) -> jax.Array:
    """The native Ziv kernel through the XLA FFI, writing into ``out`` (aliased to the result, donated)."""
    call = jax.ffi.ffi_call(_NATIVE_TARGET, jax.ShapeDtypeStruct(x.shape, x.dtype), input_output_aliases={1: 0})
    return call(x, out, threads=np.int64(threads))


class _NativeAccurateSigmoid:
    """Correctly rounded float32 sigmoid on CPU by the native Ziv kernel of ``native``, called by XLA through the
    FFI inside jit, on ``threads`` OpenMP threads, into the previous call's (donated) output. The kernel keeps
    subnormal results (it clears flush-to-zero on its threads), unlike XLA's own arithmetic on CPU."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._fast: _FastSigmoid | None = None

    def __call__(self, x: jax.Array) -> jax.Array:
        if self._fast is None:  # built and registered at the first call, so its time is in first_call_s
            native.register_jax_target(_NATIVE_TARGET)
            into = functools.partial(_native_accurate_into, threads=self._threads)
            self._fast = _FastSigmoid(jax.jit(into, donate_argnums=0))
        return self._fast(x)


class _FastSigmoid:
    """A sigmoid writing into the previous call's output, donated: no fresh large allocation per call."""

    def __init__(self, into: Callable[[jax.Array, jax.Array], jax.Array] = _sigmoid_into_jit) -> None:
        self._into = into
        self._out: jax.Array | None = None

    def __call__(self, x: jax.Array) -> jax.Array:
        out = self._out
        if out is None or out.shape != x.shape or out.dtype != x.dtype or out.devices() != x.devices():
            out = jax.device_put(jnp.empty_like(x), next(iter(x.devices())))
        self._out = self._into(out, x)
        return self._out


def _safe_log(p: jax.Array) -> jax.Array:
    """max(log p, -100) whose gradient stays finite at p = 0 (the double-where guard)."""
    positive = p > 0
    return jnp.where(positive, jnp.maximum(jnp.log(jnp.where(positive, p, 1)), -100.0), -100.0)


def bce_loss(p: jax.Array, y: jax.Array) -> jax.Array:
    """``nn.BCELoss()`` semantics: mean over all elements, each log clamped at -100."""
    return -jnp.mean(y * _safe_log(p) + (1 - y) * _safe_log(1 - p))


def forward(params: tuple[jax.Array, ...], x: jax.Array) -> jax.Array:
    w1, b1, w2, b2 = params
    hidden = jax.nn.relu(x @ w1.T + b1)
    return jax.nn.sigmoid(hidden @ w2.T + b2)


@jax.custom_vjp
def first_layer(x: jax.Array, x_t: jax.Array, w1_t: jax.Array, b1: jax.Array) -> jax.Array:
    """x @ w1_t + b1, with w1 stored (inputs, hidden), whose weight gradient is ``x_t @ g`` from a contiguous x^T.

    Why: XLA on CPU gives a dot to its fast library (YNNPACK) only where the left operand contracts on its minor
    dimension. Autodiff writes the weight gradient as g^T @ x, both contracting on the batch, their major
    dimension: XLA's own dot emitter then ran it at a third of the speed (batch 4,096, hidden 1,024: 21.6 ms
    against 6.8 ms for x^T @ g with x^T contiguous, on 2 vCPUs). A transpose of the product does not help: XLA
    folds it back into the same dot. x^T is made once per session (the batch does not change)."""
    return x @ w1_t + b1


def _first_layer_forward(x: jax.Array, x_t: jax.Array, w1_t: jax.Array, b1: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x @ w1_t + b1, x_t


def _first_layer_backward(x_t: jax.Array, g: jax.Array) -> tuple[None, None, jax.Array, jax.Array]:
    return None, None, x_t @ g, g.sum(0)


first_layer.defvjp(_first_layer_forward, _first_layer_backward)


@jax.custom_vjp
def relu_output_layer(h_pre: jax.Array, w2: jax.Array, b2: jax.Array) -> jax.Array:
    """relu(h_pre) @ w2.T + b2, whose backward makes the hidden layer's gradient in one elementwise pass.

    Why: autodiff makes it as a dot with K = outputs (2), writing the batch x hidden gradient, then masks it with
    the ReLU in a second pass; XLA does not fuse the two. Written as a sum over the outputs of broadcast products,
    masked, it is one loop that XLA fuses: 0.79x the step's time at batch 4,096, hidden 1,024 (on 1 and on 2
    threads), where the 16 MiB activation leaves the caches. The ReLU's derivative at 0 is 0, as jax.nn.relu's."""
    return jnp.maximum(h_pre, 0) @ w2.T + b2


def _relu_output_forward(h_pre: jax.Array, w2: jax.Array, b2: jax.Array) -> tuple[jax.Array, Any]:
    return jnp.maximum(h_pre, 0) @ w2.T + b2, (h_pre, w2)


def _relu_output_backward(saved: Any, g: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    h_pre, w2 = saved
    d_hidden = sum(g[:, k:k + 1] * w2[k] for k in range(w2.shape[0]))
    return jnp.where(h_pre > 0, d_hidden, 0), g.T @ jnp.maximum(h_pre, 0), g.sum(0)


relu_output_layer.defvjp(_relu_output_forward, _relu_output_backward)


def forward_train(params: tuple[jax.Array, ...], x: jax.Array, x_t: jax.Array) -> jax.Array:
    """``forward`` as the training step runs it: w1 stored (inputs, hidden), the first layer's gradient from x^T,
    the hidden layer's gradient in one pass (``first_layer``, ``relu_output_layer``)."""
    w1_t, b1, w2, b2 = params
    return jax.nn.sigmoid(relu_output_layer(first_layer(x, x_t, w1_t, b1), w2, b2))


class JaxTrainSession:
    """The whole step (loss, gradients, Adam) in one jitted function with donated buffers.

    w1 is kept as (inputs, hidden), the transpose of PyTorch's layout, so that both its matmuls are ones XLA's
    CPU backend runs fast (``first_layer``); ``params`` and ``optimizer_state`` give it back in PyTorch's layout.

    Cache blocking of the batch on the CPU: where the hidden activations are larger than L2, the jitted step
    takes the loss and gradients block by block (``sigbench.core.blocking.block_rows``: 256 rows at hidden 1,024
    with 1 MiB of L2), a ``lax.scan`` over the blocks summing them (and one more block for rows left over), then
    one Adam update. XLA keeps each block's activations in the cache instead of making each of its passes over
    16 MiB in memory: 0.35x the step's time at batch 4,096, hidden 1,024 on one thread (Zen 4). The same step,
    summed in another order. Below L2, and on GPUs, one block is the whole batch and nothing changes.
    """

    def __init__(self, backend: JaxBackend, start: TrainStart, device: str) -> None:
        import optax

        config = start.config
        self._backend = backend
        self._dtype = config.dtype
        optimizer = optax.adam(config.lr, b1=config.beta1, b2=config.beta2, eps=config.eps)

        def loss_fn(params: tuple[jax.Array, ...], x: jax.Array, x_t: jax.Array, y: jax.Array) -> jax.Array:
            return bce_loss(forward_train(params, x, x_t), y)

        def step(params: Any, opt_state: Any, x: jax.Array, x_t: jax.Array, y: jax.Array) -> Any:
            loss, grads = jax.value_and_grad(loss_fn)(params, x, x_t, y)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        rows = blocking.block_rows(config.batch, config.hidden, np.dtype(config.dtype).itemsize, device)
        scale = 1.0 / (config.batch * config.outputs)

        def block_sum(params: tuple[jax.Array, ...], x: jax.Array, x_t: jax.Array, y: jax.Array) -> jax.Array:
            """The block's share of the mean loss: its elements' terms over the whole batch's count."""
            p = forward_train(params, x, x_t)
            return -jnp.sum(y * _safe_log(p) + (1 - y) * _safe_log(1 - p)) * scale

        def blocked_step(params: Any, opt_state: Any, blocks: Any, rest: Any) -> Any:
            def add_block(total: Any, block: Any) -> tuple[Any, None]:
                loss, grads = jax.value_and_grad(block_sum)(params, *block)
                return jax.tree.map(jnp.add, total, (loss, grads)), None

            zero = (jnp.zeros((), blocks[0].dtype), jax.tree.map(jnp.zeros_like, params))
            total, _ = jax.lax.scan(add_block, zero, blocks)
            if rest is not None:
                total, _ = add_block(total, rest)
            loss, grads = total
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        self._start, self._device, self._optimizer = start, device, optimizer
        self.rows = rows
        with _x64(self._dtype):
            x, y = start.x, start.y
            if rows == config.batch:
                self._data: tuple[Any, ...] = tuple(backend.from_numpy(a, device)
                                                    for a in (x, np.ascontiguousarray(x.T), y))
                jitted = jax.jit(step, donate_argnums=(0, 1))
            else:  # (blocks, rows, ...) for the scan, and the rows left over
                whole = config.batch // rows * rows

                def split(a: np.ndarray) -> np.ndarray:
                    return a[:whole].reshape(whole // rows, rows, a.shape[1])

                def pieces(xs: np.ndarray, x_ts: np.ndarray, ys: np.ndarray) -> tuple[jax.Array, ...]:
                    return tuple(backend.from_numpy(np.ascontiguousarray(a), device) for a in (xs, x_ts, ys))

                blocks = pieces(split(x), split(x).transpose(0, 2, 1), split(y))
                rest = pieces(x[whole:], x[whole:].T, y[whole:]) if whole < config.batch else None
                self._data = (blocks, rest)
                jitted = jax.jit(blocked_step, donate_argnums=(0, 1))
        self.reset()
        self._step = _scoped(jitted, self._dtype)

    def reset(self) -> None:
        """Fresh buffers of the starting parameters and optimizer state (same shapes: no recompilation)."""
        with _x64(self._dtype):
            w1, b1, w2, b2 = self._start.params
            self._params = tuple(self._backend.from_numpy(p, self._device)
                                 for p in (np.ascontiguousarray(w1.T), b1, w2, b2))
            # Adam's state starts at zero (the count and both moments): made in NumPy and committed to the device
            # like the parameters. optax's own init makes them by one small compilation per shape (0.15 s a
            # shape), uncommitted, and the step's outputs are committed: the second step then compiled the
            # whole step again (0.3-0.5 s per shape on the CPU).
            zeros = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype),
                                 jax.eval_shape(self._optimizer.init, self._params))
            self._opt_state = jax.device_put(zeros, self._backend._device(self._device))

    def step(self) -> jax.Array:
        self._params, self._opt_state, loss = self._step(self._params, self._opt_state, *self._data)
        return loss

    def loss_value(self, loss: Any) -> float:
        return float(loss)

    def _torch_layout(self, values: tuple[jax.Array, ...]) -> MLPParams:
        w1_t, b1, w2, b2 = (self._backend.to_numpy(v) for v in values)
        return MLPParams(np.ascontiguousarray(w1_t.T), b1, w2, b2)

    def params(self) -> MLPParams:
        return self._torch_layout(self._params)

    def optimizer_state(self) -> tuple[int, MLPParams, MLPParams]:
        adam = self._opt_state[0]  # optax.adam = chain(scale_by_adam, scale_by_learning_rate)
        return int(adam.count), self._torch_layout(adam.mu), self._torch_layout(adam.nu)
