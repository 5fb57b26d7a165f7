"""PyTorch backend: sigmoid variants and the tutorial's nn.Module / BCELoss / Adam training step."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from sigbench.workloads import MLPParams, TrainStart

# Cross-checks compare against float64: no TF32 shortcuts in float32 matmuls on GPUs.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


class TorchBackend:
    name = "torch"
    extra = "torch"

    def versions(self) -> dict[str, str]:
        found = {"torch": str(torch.__version__)}
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

    def train_variants(self) -> dict[str, str | None]:
        return {"eager": None, "foreach": None, "fused": None, "manual": None}

    def train_session(self, variant: str, start: TrainStart, device: str) -> TorchTrainSession:
        if variant not in self.train_variants():
            raise KeyError(variant)
        if variant == "manual":
            return ManualTrainSession(self, start, device)
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
    """torch.sigmoid in float64, rounded once to the input's dtype, into one reused buffer: blocks handed out
    to a pool of Python threads (one per intra-op thread; ATen releases the GIL), each block converted, computed
    and rounded by its own thread in its own float64 scratch.

    Correctly rounded except where the float64 value (a few float64 ULPs off) lies that close to a rounding
    midpoint. float16 and bfloat16 go through float32 rounded to odd, because PyTorch converts float64 to
    them through float32, and a plain double rounding would be wrong near their midpoints.
    """

    def __init__(self) -> None:
        self._out: torch.Tensor | None = None
        self._threads = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="sigbench-torch-accurate")
        self._scratch = threading.local()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self._out
        if out is None or out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
            out = self._out = torch.empty_like(x)
        if x.dtype == torch.float64:
            return torch.sigmoid(x, out=out)
        flat_in, flat_out = x.reshape(-1), out.view(-1)
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
    """

    def __init__(self, backend: TorchBackend, start: TrainStart, device: str) -> None:
        super().__init__(backend, "fused", start, device)
        for param in self._ordered_params():
            param.requires_grad_(False)
            param.grad = torch.zeros_like(param)
        config = start.config
        dtype = _DTYPES[config.dtype]
        self._hidden = torch.empty(config.batch, config.hidden, dtype=dtype, device=device)
        self._p = torch.empty(config.batch, config.outputs, dtype=dtype, device=device)

    def step(self) -> torch.Tensor:
        w1, b1, w2, b2 = self._ordered_params()
        x, y, hidden, p = self._x, self._y, self._hidden, self._p
        torch.addmm(b1, x, w1.t(), out=hidden)
        hidden.clamp_(min=0)
        torch.addmm(b2, hidden, w2.t(), out=p)
        p.sigmoid_()
        loss = nn.functional.binary_cross_entropy(p, y)
        s = p * (1 - p)
        dz = (p - y).mul_(s).div_(s.clamp_(min=1e-12)).div_(y.numel())
        torch.mm(dz.t(), hidden, out=w2.grad)
        torch.sum(dz, 0, out=b2.grad)
        dh = (dz @ w2).mul_(hidden > 0)
        torch.mm(dh.t(), x, out=w1.grad)
        torch.sum(dh, 0, out=b1.grad)
        self.optimizer.step()
        return loss
