"""PyTorch backend: sigmoid variants and training steps, from the tutorial's nn.Module / BCELoss / Adam to a
whole step under torch.compile (``compiled``) and one replayed from a CUDA graph (``graphed``)."""
from __future__ import annotations

import shutil
import threading
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from sigbench.core import blocking
from sigbench.core.workloads import MLPParams, TrainStart
from sigbench_backends import native

# Cross-checks compare against float64: no TF32 shortcuts in float32 matmuls on GPUs.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


class TorchBackend:
    name = "torch"
    extra = "torch"

    def versions(self) -> dict[str, str]:
        found = {"torch": str(torch.__version__), "accurate kernel": native.status()}
        if torch.cuda.is_available():
            found["cuda"] = str(torch.version.cuda)
        return found

    def devices(self) -> list[str]:
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def dtypes(self, device: str) -> tuple[str, ...]:
        return tuple(_DTYPES)

    def from_numpy(self, array: np.ndarray, device: str) -> torch.Tensor:
        if array.dtype.name == "bfloat16":
            return torch.from_numpy(array.astype(np.float32)).to(device=device, dtype=torch.bfloat16)
        return torch.from_numpy(np.array(array, copy=True)).to(device)

    def to_numpy(self, array: Any) -> np.ndarray:
        array = array.detach()
        if array.dtype == torch.bfloat16:
            import ml_dtypes

            return array.float().cpu().numpy().astype(ml_dtypes.bfloat16)
        return array.cpu().numpy()

    def synchronize(self, device: str) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    def copy_fn(self, device: str, nbytes: int) -> Any:
        """A call copying ``nbytes`` between two preallocated tensors on ``device``."""
        src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
        dst = torch.empty_like(src)
        return lambda: dst.copy_(src)

    def matmul_fn(self, device: str, n: int, dtype: str = "float32") -> Callable[[], Any]:
        """An ``n`` x ``n`` matmul into a preallocated tensor: the arithmetic limit to compare with."""
        a = torch.ones(n, n, dtype=_DTYPES[dtype], device=device)
        b = torch.ones_like(a)
        out = torch.empty_like(a)
        return lambda: torch.mm(a, b, out=out)

    def reset_peak_memory(self, device: str) -> None:
        """Start a peak of device memory now (CUDA's allocator statistics); nothing on CPU."""
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            self._memory_base = torch.cuda.memory_allocated(device)

    def peak_memory_bytes(self, device: str) -> int | None:
        """Device memory allocated at the peak since ``reset_peak_memory``, over what was allocated then."""
        if not device.startswith("cuda"):
            return None
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - getattr(self, "_memory_base", 0))

    def set_threads(self, threads: int) -> dict[str, Any]:
        torch.set_num_threads(threads)
        return {"torch_intra_op_threads": torch.get_num_threads()}

    # --- sigmoid -------------------------------------------------------------------------------

    def sigmoid_variants(self) -> dict[str, str | None]:
        return {"naive": None, "stable": None, "builtin": None, "fast": None, "accurate": None}

    def sigmoid(self, variant: str, dtype: str, device: str) -> Any:
        if variant == "naive":
            return sigmoid_naive
        if variant == "stable":
            return sigmoid_stable
        if variant == "builtin":
            return torch.sigmoid
        if variant == "fast":
            return _FastSigmoid()
        if variant == "accurate":
            return _AccurateSigmoid()
        raise KeyError(variant)

    def sigmoid_path(self, variant: str, dtype: str, device: str) -> str | None:
        if variant != "accurate" or dtype != "float32" or device != "cpu":
            return None
        return f"native {native.kernel_path()}" if native.compiler() is not None else "torch ops (no C compiler)"

    def sigmoid_grad_variants(self) -> dict[str, str | None]:
        return {"autograd": None, "stable": None}

    def sigmoid_grad(self, variant: str, dtype: str) -> Any:
        return {"autograd": sigmoid_grad_autograd, "stable": sigmoid_grad_stable}[variant]

    def bce_forms(self) -> dict[str, str | None]:
        return {"Sigmoid+BCELoss": None, "BCEWithLogitsLoss": None}

    def bce(self, form: str, dtype: str) -> Any:
        losses = {"Sigmoid+BCELoss": lambda z, y: nn.BCELoss(reduction="none")(torch.sigmoid(z), y),
                  "BCEWithLogitsLoss": lambda z, y: nn.BCEWithLogitsLoss(reduction="none")(z, y)}
        loss_fn = losses[form]

        def call(z: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
            logits = self.from_numpy(z, "cpu").requires_grad_(True)
            loss = loss_fn(logits, torch.full_like(logits, y))
            loss.backward(torch.ones_like(loss))
            assert logits.grad is not None
            return self.to_numpy(loss), self.to_numpy(logits.grad)

        return call

    # --- training step -------------------------------------------------------------------------

    def train_variants(self, device: str | None = None) -> dict[str, str | None]:
        no_cuda = None if torch.cuda.is_available() else "needs a CUDA GPU (CUDA graphs); none is visible"
        if device is not None and not device.startswith("cuda"):
            no_cuda = "replays a CUDA graph: runs only on a CUDA device (--device cuda)"
        return {"eager": None, "foreach": None, "fused": None, "manual": None, "compiled": compiler_missing(),
                "graphed": no_cuda}

    def train_session(self, variant: str, start: TrainStart, device: str) -> TorchTrainSession | FunctionalTrainSession:
        if variant not in self.train_variants():
            raise KeyError(variant)
        if variant == "manual":
            return ManualTrainSession(self, start, device)
        if variant == "compiled":
            return CompiledTrainSession(self, start, device)
        if variant == "graphed":
            return GraphedTrainSession(self, start, device)
        return TorchTrainSession(self, variant, start, device)


def sigmoid_naive(x: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-x))


def sigmoid_stable(x: torch.Tensor) -> torch.Tensor:
    z = torch.exp(-torch.abs(x))
    r = 1 / (1 + z)
    return torch.where(x >= 0, r, z * r)


def sigmoid_grad_autograd(x: torch.Tensor) -> torch.Tensor:
    """What autograd gives for torch.sigmoid: its backward, s * (1 - s) from the rounded s."""
    leaf = x.detach().requires_grad_(True)
    torch.sigmoid(leaf).backward(torch.ones_like(leaf))
    assert leaf.grad is not None
    return leaf.grad


def sigmoid_grad_stable(x: torch.Tensor) -> torch.Tensor:
    z = torch.exp(-torch.abs(x))
    r = 1 / (1 + z)
    return z * r * r


class _FastSigmoid:
    """torch.sigmoid into one reused output tensor: no large fresh allocation per call."""

    def __init__(self) -> None:
        self._out: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self._out
        if out is None or out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
            out = self._out = torch.empty_like(x)
        return torch.sigmoid(x, out=out)


#: Elements per block: just below ATen's grain size (32768), so each block's ops run on the calling thread with
#: no intra-op parallel region (no barrier to wait at on a busy machine), and its 248 KiB of float64 stay in L2.
_ACCURATE_BLOCK = 31 * 1024


class _AccurateSigmoid:
    """Correctly rounded sigmoid into one reused buffer.

    float32 on CPU: the native Ziv kernel of ``native`` (a vectorised float64 fast path with a proven error
    bound, an exact path for the rare inputs near a rounding midpoint), on the intra-op threads. Elsewhere,
    or without a C compiler: torch.sigmoid in float64, rounded once to the input's dtype, in blocks handed out
    to a pool of Python threads (one per intra-op thread; ATen releases the GIL), each block converted,
    computed and rounded by its own thread in its own float64 scratch; correctly rounded except where the
    float64 value (a few float64 ULPs off) lies that close to a rounding midpoint. float16 and bfloat16 go
    through float32 rounded to odd, because PyTorch converts float64 to them through float32, and a plain
    double rounding would be wrong near their midpoints.
    """

    def __init__(self) -> None:
        self._out: torch.Tensor | None = None
        self._threads = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="sigbench-torch-accurate")
        self._scratch = threading.local()
        self._kernel: Any = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self._out
        if out is None or out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
            out = self._out = torch.empty_like(x)
        if x.dtype == torch.float64:
            return torch.sigmoid(x, out=out)
        flat_in, flat_out = x.reshape(-1), out.view(-1)
        if x.dtype == torch.float32 and x.device.type == "cpu":
            if self._kernel is None:  # built at the first call, so its time is in first_call_s
                self._kernel = native.kernel() if native.compiler() is not None else False
            if self._kernel:
                self._kernel(flat_in.data_ptr(), flat_out.data_ptr(), flat_in.numel(), self._threads)
                return out
        if x.device.type != "cpu" or self._threads == 1:
            for start in range(0, flat_in.numel(), _ACCURATE_BLOCK):
                self._block(flat_in, flat_out, start)
        else:
            list(self._pool.map(lambda start: self._block(flat_in, flat_out, start),
                                range(0, flat_in.numel(), _ACCURATE_BLOCK)))
        return out

    def _block(self, flat_in: torch.Tensor, flat_out: torch.Tensor, start: int) -> None:
        """One block, on the calling thread, in that thread's scratch."""
        block_in = flat_in[start:start + _ACCURATE_BLOCK]
        scratch = getattr(self._scratch, "wide", None)
        if scratch is None or scratch.device != block_in.device:
            scratch = self._scratch.wide = torch.empty(_ACCURATE_BLOCK, dtype=torch.float64, device=block_in.device)
        wide = scratch[:block_in.numel()]
        wide.copy_(block_in)
        torch.sigmoid(wide, out=wide)
        if block_in.dtype == torch.float32:
            flat_out[start:start + _ACCURATE_BLOCK].copy_(wide)
        else:
            flat_out[start:start + _ACCURATE_BLOCK].copy_(round_to_odd_float32(wide))


def round_to_odd_float32(wide: torch.Tensor) -> torch.Tensor:
    """Non-negative float64 values rounded to float32 by rounding to odd: truncate, then set the last bit if
    anything was lost. Rounding that once more to a type of at most 22 bits equals rounding the float64 once."""
    narrow = wide.to(torch.float32)
    bits = narrow.view(torch.int32)
    bits -= (narrow.to(torch.float64) > wide).to(torch.int32)
    bits |= (bits.view(torch.float32).to(torch.float64) != wide).to(torch.int32)
    return bits.view(torch.float32)


class TutorialNet(nn.Module):
    """The tutorial's network: Linear -> ReLU -> Linear -> Sigmoid."""

    def __init__(self, inputs: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, outputs)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self.fc2(self.relu(self.fc1(x))))


class TorchTrainSession:
    """``eager`` is the tutorial's loop as written; ``foreach`` and ``fused`` change only Adam's kernels."""

    def __init__(self, backend: TorchBackend, variant: str, start: TrainStart, device: str) -> None:
        config = start.config
        self._backend = backend
        self._start = start
        self._device = device
        dtype = _DTYPES[config.dtype]
        self.model = TutorialNet(config.inputs, config.hidden, config.outputs).to(device=device, dtype=dtype)
        self._initial = [backend.from_numpy(value, device) for value in start.params]
        options: dict[str, Any] = {} if variant == "eager" else {variant: True}
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps, **options
        )
        self.criterion = nn.BCELoss()
        self._x = backend.from_numpy(start.x, device)
        self._y = backend.from_numpy(start.y, device)
        self.reset()

    def _ordered_params(self) -> list[torch.Tensor]:
        m = self.model
        return [m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias]

    def reset(self) -> None:
        """Starting parameters; Adam's moments and step zeroed in place (no new allocation next step)."""
        with torch.no_grad():
            for param, value in zip(self._ordered_params(), self._initial):
                param.copy_(value)
            for state in self.optimizer.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor):
                        value.zero_()

    def step(self) -> torch.Tensor:
        self.optimizer.zero_grad()
        loss = self.criterion(self.model(self._x), self._y)
        loss.backward()
        self.optimizer.step()
        return loss

    def loss_value(self, loss: Any) -> float:
        return float(loss.item())

    def params(self) -> MLPParams:
        return MLPParams(*(self._backend.to_numpy(p) for p in self._ordered_params()))

    def optimizer_state(self) -> tuple[int, MLPParams, MLPParams]:
        params = self._ordered_params()
        states = [self.optimizer.state.get(p, {}) for p in params]
        if not states[0]:
            zeros = MLPParams(*(np.zeros(tuple(p.shape)) for p in params))
            return 0, zeros, zeros
        count = int(float(states[0]["step"]))
        mu = MLPParams(*(self._backend.to_numpy(s["exp_avg"]) for s in states))
        nu = MLPParams(*(self._backend.to_numpy(s["exp_avg_sq"]) for s in states))
        return count, mu, nu


class ManualTrainSession(TorchTrainSession):
    """Forward and backward written by hand in torch ops (no autograd graph), then fused Adam.

    The same arithmetic as the tutorial's step, without the per-op autograd bookkeeping that dominates a
    network this small; BCELoss's backward is PyTorch's own formula.

    Cache blocking of the batch on the CPU, as NumPy's step does: where the hidden activations are larger than
    L2, forward and backward run over blocks of rows whose activations fill it (``sigbench.core.blocking``), the
    weight gradients summed by ``addmm_``: 0.67x the step's time at batch 4,096, hidden 1,024 on one thread
    (Zen 4). Below L2, and on GPUs, one block is the whole batch.
    """

    def __init__(self, backend: TorchBackend, start: TrainStart, device: str) -> None:
        super().__init__(backend, "fused", start, device)
        for param in self._ordered_params():
            param.requires_grad_(False)
            param.grad = torch.zeros_like(param)
        config = start.config
        dtype = _DTYPES[config.dtype]
        self.rows = blocking.block_rows(config.batch, config.hidden, torch.finfo(dtype).bits // 8, device)
        #: the hidden gradient as broadcast products from 2^14 activations a block (``_block``)
        self._broadcast_hidden_grad = self.rows * config.hidden >= 1 << 14
        self._hidden = torch.empty(self.rows, config.hidden, dtype=dtype, device=device)
        self._dh = torch.empty(self.rows, config.hidden, dtype=dtype, device=device)
        self._p = torch.empty(config.batch, config.outputs, dtype=dtype, device=device)
        self._dz = torch.empty(config.batch, config.outputs, dtype=dtype, device=device)

    def step(self) -> torch.Tensor:
        w1, b1, w2, b2 = self._ordered_params()
        x, y, p, dz = self._x, self._y, self._p, self._dz
        batch = x.shape[0]
        for first in range(0, batch, self.rows):
            last = min(batch, first + self.rows)
            self._block(x[first:last], y[first:last], p[first:last], dz[first:last], y.numel(), first > 0)
        torch.sum(dz, 0, out=b2.grad)
        loss = nn.functional.binary_cross_entropy(p, y)
        self.optimizer.step()
        return loss

    def _block(self, x: torch.Tensor, y: torch.Tensor, p: torch.Tensor, dz: torch.Tensor, count: int,
               accumulate: bool) -> None:
        """Forward and backward over one block of rows: p and dz of its rows; the weight gradients of its rows
        written (the first block) or added (``accumulate``)."""
        w1, b1, w2, b2 = self._ordered_params()
        rows = x.shape[0]
        hidden, dh = self._hidden[:rows], self._dh[:rows]
        torch.addmm(b1, x, w1.t(), out=hidden)
        hidden.clamp_(min=0)
        torch.addmm(b2, hidden, w2.t(), out=p)
        p.sigmoid_()
        s = p * (1 - p)
        torch.sub(p, y, out=dz).mul_(s).div_(s.clamp_(min=1e-12)).div_(count)
        if self._broadcast_hidden_grad:
            # the hidden layer's gradient, dz @ w2 masked by the ReLU: the GEMM with K = outputs (2) ran at a few
            # GB/s (12% of the step at batch 4,096, hidden 1,024), and multiplying by a bool mask converted the
            # mask to floats first (10%); as a sum of broadcast products and ATen's own ReLU backward it is three
            # passes: 0.75x the step at batch 1,024 and 4,096, hidden 1,024 (one thread, Zen 4)
            torch.mul(dz[:, :1], w2[0], out=dh)
            for k in range(1, w2.shape[0]):
                dh.addcmul_(dz[:, k:k + 1], w2[k])
            torch.ops.aten.threshold_backward.grad_input(dh, hidden, 0, grad_input=dh)
        else:  # fewer calls where a call costs more than the passes (1.07x the step at batch 32, hidden 128)
            torch.mm(dz, w2, out=dh)
            dh.mul_(hidden > 0)
        if not accumulate:
            torch.mm(dz.t(), hidden, out=w2.grad)
            torch.mm(dh.t(), x, out=w1.grad)
            torch.sum(dh, 0, out=b1.grad)
            return
        grad_w1, grad_b1, grad_w2 = (cast(torch.Tensor, param.grad) for param in (w1, b1, w2))  # set in __init__
        grad_w2.addmm_(dz.t(), hidden)
        grad_w1.addmm_(dh.t(), x)
        grad_b1.add_(dh.sum(0))


@lru_cache(maxsize=1)
def compiler_missing() -> str | None:
    """Why ``compiled`` cannot run here, or None: inductor's CPU code is C++ built by the compiler it searches
    for (``CXX``, then ``g++``, as torch._inductor.config.cpp.cxx lists them); GPU kernels need a C compiler too."""
    import os

    from torch._inductor import config

    listed = config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else (config.cpp.cxx,)
    candidates = [os.environ.get("CXX")] + [c for c in listed if c]
    if any(c and shutil.which(c) for c in candidates):
        return None
    return ("torch.compile's inductor builds C++ and finds no compiler (tried "
            f"{', '.join(c for c in candidates if c)}); install g++ or set CXX")


def functional_step(params: list[torch.Tensor], mu: list[torch.Tensor], nu: list[torch.Tensor],
                    count: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lr: float, beta1: float, beta2: float,
                    eps: float) -> torch.Tensor:
    """The whole step as tensor ops that update parameters, moments and step count in place: no autograd,
    no torch.optim, nothing torch.compile must break its graph for, and nothing a CUDA graph cannot replay.

    The arithmetic is ``manual``'s (PyTorch's BCELoss backward) and torch.optim.Adam's; the step count is
    a float64 tensor so that the bias corrections are computed in double, as Adam computes them in Python,
    then rounded once to the parameters' dtype. It has shape (1,), not (): torch.compile 2.13 drops an
    in-place update of a 0-d CPU tensor input.
    """
    w1, b1, w2, b2 = params
    hidden = torch.relu(torch.addmm(b1, x, w1.t()))
    p = torch.sigmoid(torch.addmm(b2, hidden, w2.t()))
    loss = nn.functional.binary_cross_entropy(p, y)
    s = p * (1 - p)
    dz = (p - y) * s / s.clamp(min=1e-12) / y.numel()
    dh = (dz @ w2) * (hidden > 0)
    grads = (dh.t() @ x, dh.sum(0), dz.t() @ hidden, dz.sum(0))
    count.add_(1)
    step_size = (lr / (1 - torch.pow(beta1, count))).to(x.dtype)
    root_bc2 = torch.sqrt(1 - torch.pow(beta2, count)).to(x.dtype)
    for param, m, v, g in zip(params, mu, nu, grads):
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        param.sub_(step_size * m / (v.sqrt() / root_bc2 + eps))
    return loss


#: One compiled step per (device, dtype, shapes, hyperparameters), kept for the process: the K sessions of
#: a case, and later cases of the same shape, reuse it instead of compiling again.
_COMPILED_STEPS: dict[tuple[Any, ...], CompiledStep] = {}
#: From this many batch rows times hidden units (8 times the default step's), ``compiled`` takes one step
#: compiled with dynamic shapes, shared by every such shape, instead of one compilation per shape: a sweep of
#: seven large shapes compiles once (a few seconds each under inductor), and at these sizes the step's time is
#: its kernels', so neither the static shapes nor the dynamo-free calls of a static step are worth a compile.
DYNAMIC_SHAPES_FROM = 1 << 15


def compiled_step(device: str, key: tuple[Any, ...], dynamic: bool = False) -> CompiledStep:
    """``functional_step`` compiled whole by inductor, one per ``device`` and ``key`` (the config and the
    shapes; with ``dynamic``, the config and ranks only); callers pass only tensors matching that key."""
    if (device, key, dynamic) not in _COMPILED_STEPS:
        _COMPILED_STEPS[device, key, dynamic] = CompiledStep(device, dynamic)
    return _COMPILED_STEPS[device, key, dynamic]


def _tensors(args: Any) -> list[torch.Tensor]:
    """The tensors in ``args`` (nested lists and tuples), depth first: the order of a step's arguments."""
    if isinstance(args, torch.Tensor):
        return [args]
    if isinstance(args, (list, tuple)):
        return [t for item in args for t in _tensors(item)]
    return []


class CompiledStep:
    """``functional_step`` under torch.compile(fullgraph=True), called without dynamo after its first call.

    The first call goes through dynamo, which traces the step into one graph and hands it to a backend that
    compiles it with inductor (``compile_fx``, what the "inductor" backend runs) and keeps the compiled
    callable and the tensors the graph takes, in its order. Later calls pass the caller's tensors, in that
    order, straight to the compiled callable (AOTAutograd's runtime wrapper, which applies the in-place
    updates, then inductor's kernels). Dynamo's frame evaluation was about a seventh of a B32 step on a
    2-core CPU (paired rounds in one process: 117 against 139 µs). This is safe because each compiled step has
    its own copy of the code (a cache of its own in dynamo) and only ever sees tensors of its key's shapes,
    dtype and device, and because the step's only non-tensor arguments (the hyperparameters) are part of
    that key. Where the graph's inputs cannot be matched to the arguments, every call goes through dynamo.
    On CPU inductor's wrapper that calls the kernels is C++ too (``cpp_wrapper``): interleaved A/B runs here
    gave 7-45% less per step than its Python wrapper, for a few more seconds of compilation.
    """

    def __init__(self, device: str, dynamic: bool = False) -> None:
        from torch._inductor.compile_fx import compile_fx

        code = functional_step.__code__.replace()  # a distinct code object: a cache of its own in dynamo
        fn = types.FunctionType(code, functional_step.__globals__, functional_step.__name__)
        patches = {"cpp_wrapper": True} if device == "cpu" else {}
        self._graph: Callable[..., Any] | None = None
        self._graph_inputs: list[Any] = []
        self._order: list[int] | None = None
        self._dynamic = dynamic  # one graph for every shape: each call goes through dynamo's shape guards

        def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
            compiled = cast(Callable[..., Any], compile_fx(gm, example_inputs, config_patches=patches))
            self._graph, self._graph_inputs = compiled, list(example_inputs)
            return compiled

        self._dynamo = torch.compile(fn, backend=backend, fullgraph=True, dynamic=dynamic)

    @property
    def direct(self) -> bool:
        """Whether calls after the first bypass dynamo."""
        return self._order is not None

    def __call__(self, *args: Any) -> torch.Tensor:
        if self._order is not None and self._graph is not None:
            flat = _tensors(args)
            return self._graph(*[flat[i] for i in self._order])[0]
        loss = self._dynamo(*args)
        if self._graph is not None and self._order is None and not self._dynamic:
            flat = _tensors(args)
            order = [next((i for i, t in enumerate(flat) if t is given), -1) for given in self._graph_inputs]
            self._graph_inputs = []  # the first caller's tensors are not kept alive
            if -1 not in order and len(order) == len(set(order)):
                self._order = order
        return loss

    def bind(self, args: tuple[Any, ...]) -> Callable[[], torch.Tensor]:
        """The step on ``args`` as a call without arguments, for a caller whose tensors are updated in place
        and never replaced (a session's): the graph's inputs are put in order once, not at every call."""
        graph, order = self._graph, self._order
        if graph is None or order is None:
            return lambda: self(*args)
        flat = _tensors(args)
        inputs = [flat[i] for i in order]
        return lambda: graph(*inputs)[0]

class FunctionalTrainSession:
    """Parameters, Adam's moments and step count as plain tensors, updated in place by ``functional_step``."""

    def __init__(self, backend: TorchBackend, start: TrainStart, device: str) -> None:
        config = start.config
        self._backend = backend
        self._initial = [backend.from_numpy(value, device) for value in start.params]
        self._params = [value.clone() for value in self._initial]
        self._mu = [torch.zeros_like(value) for value in self._initial]
        self._nu = [torch.zeros_like(value) for value in self._initial]
        self._count = torch.zeros(1, dtype=torch.float64, device=device)
        self._x = backend.from_numpy(start.x, device)
        self._y = backend.from_numpy(start.y, device)
        self._hyper = (config.lr, config.beta1, config.beta2, config.eps)
        #: what a compiled step is specialised on (``compiled_step``'s key)
        self._compile_key = (config, *(tuple(p.shape) for p in self._params), tuple(self._x.shape))

    def arguments(self) -> tuple[Any, ...]:
        return (self._params, self._mu, self._nu, self._count, self._x, self._y, *self._hyper)

    def step(self) -> torch.Tensor:
        return functional_step(*self.arguments())

    def loss_value(self, loss: Any) -> float:
        return float(loss.item())

    def params(self) -> MLPParams:
        return MLPParams(*(self._backend.to_numpy(p) for p in self._params))

    def reset(self) -> None:
        """Starting values copied into the same tensors: a compiled or captured step keeps working on them."""
        with torch.no_grad():
            for param, value in zip(self._params, self._initial):
                param.copy_(value)
            for moment in (*self._mu, *self._nu, self._count):
                moment.zero_()

    def optimizer_state(self) -> tuple[int, MLPParams, MLPParams]:
        to_numpy = self._backend.to_numpy
        return (int(self._count.item()), MLPParams(*(to_numpy(m) for m in self._mu)),
                MLPParams(*(to_numpy(v) for v in self._nu)))


class CompiledTrainSession(FunctionalTrainSession):
    """``functional_step`` compiled whole by torch.compile (inductor: C++/OpenMP on CPU, Triton on GPUs)."""

    def __init__(self, backend: TorchBackend, start: TrainStart, device: str) -> None:
        reason = compiler_missing()
        if reason:
            raise RuntimeError(reason)
        super().__init__(backend, start, device)
        config = start.config
        if config.batch * config.hidden >= DYNAMIC_SHAPES_FROM:
            self.compiled = compiled_step(device, (replace(config, batch=0, hidden=0),), dynamic=True)
        else:
            self.compiled = compiled_step(device, self._compile_key)
        self._bound: Callable[[], torch.Tensor] | None = None

    def step(self) -> torch.Tensor:
        if self._bound is None:  # the first step compiles (or finds the step compiled), then binds
            loss = self.compiled(*self.arguments())
            self._bound = self.compiled.bind(self.arguments())
            return loss
        return self._bound()


class GraphedTrainSession(FunctionalTrainSession):
    """The whole step captured once in a CUDA graph and replayed: one launch per step, static buffers.

    What is captured is ``compiled``'s step (inductor's fused Triton kernels) where inductor can compile,
    else ``functional_step`` as eager kernels: by hand, what ``torch.compile(mode="reduce-overhead")`` does,
    which skips graphs whose inputs are mutated, as this step's parameters are. On an H200 the captured
    compiled step took 0.33x JAX's step at batch 32, the captured eager kernels 1.39x (README). The first
    step warms up, compiles and captures, so that all of it lands in ``first_call_s``. The loss comes back
    in the same tensor every step (the next replay overwrites it).
    """

    def __init__(self, backend: TorchBackend, start: TrainStart, device: str) -> None:
        if not device.startswith("cuda"):
            raise ValueError(f"graphed replays a CUDA graph and runs only on a CUDA device, not {device!r}")
        super().__init__(backend, start, device)
        self._device = device
        self._step: Callable[..., torch.Tensor] = functional_step
        self.captured = "eager"
        if compiler_missing() is None:
            self._step, self.captured = compiled_step(device, self._compile_key), "compiled"
        self._graph: torch.cuda.CUDAGraph | None = None

    def _capture(self) -> None:
        side = torch.cuda.Stream(self._device)
        side.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(side):  # warm-up (and compilation) off the capture: lazy set-up stays out of it
            for _ in range(3):
                self._step(*self.arguments())
        torch.cuda.current_stream(self._device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._loss = self._step(*self.arguments())
        self.reset()  # the warm-up and the capture moved the state: the first replay is the first step

    def step(self) -> torch.Tensor:
        if self._graph is None:
            self._capture()
        assert self._graph is not None
        self._graph.replay()
        return self._loss
