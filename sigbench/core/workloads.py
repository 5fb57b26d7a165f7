"""What every backend computes on: inputs, initial parameters and data, all made in NumPy from a seed.

Every backend converts these same arrays, so all of them start bit-identical.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from sigbench.core.errors import UsageError

#: Inputs every sigmoid check contains: saturation, overflow of exp(-x), subnormal results.
SIGMOID_SPECIAL_INPUTS: tuple[float, ...] = (
    -1000.0, -104.0, -100.0, -88.8, -88.7, -87.0, -50.0, -20.0, -11.2, -11.0, -2.0, -1.0,
    -1e-30, -0.0, 0.0, 1e-30, 1.0, 2.0, 11.0, 20.0, 50.0, 88.7, 100.0, 1000.0,
)


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype for a sigbench dtype name (bfloat16 through ml_dtypes, where installed)."""
    if dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise UsageError("bfloat16 needs the ml_dtypes package (it comes with jax)") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


#: Values drawn per chunk by ``sigmoid_input``: a float64 draw of 2^24 values in one piece costs four times
#: as much as in chunks (first touches of a 128 MiB temporary), and every worker draws its own input.
_INPUT_CHUNK = 1 << 18


def sigmoid_input(size: int, dtype: str, seed: int) -> np.ndarray:
    """``size`` seeded values, normal with scale 8, the special inputs first (as many as fit).

    Drawn in chunks: the same values as one ``standard_normal(size) * 8`` rounded to ``dtype``.
    """
    rng = np.random.default_rng([seed, size])
    out = np.empty(size, numpy_dtype(dtype))
    chunk = np.empty(max(1, min(size, _INPUT_CHUNK)))
    with np.errstate(over="ignore"):
        for start in range(0, size, chunk.size):
            values = chunk[: min(chunk.size, size - start)]
            rng.standard_normal(out=values)
            values *= 8.0
            out[start:start + values.size] = values
        special = SIGMOID_SPECIAL_INPUTS[:size]
        out[: len(special)] = special
    return out


@dataclass(frozen=True)
class TrainConfig:
    """The tutorial's network and optimiser; its values are the defaults."""

    batch: int = 32
    inputs: int = 64
    hidden: int = 128
    outputs: int = 2
    lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    dtype: str = "float32"

    def with_dtype(self, dtype: str) -> TrainConfig:
        return replace(self, dtype=dtype)

    def flops_per_step(self) -> int:
        """Multiply-adds counted as 2 FLOPs: forward, the two backward matmuls per layer, Adam."""
        b, i, h, o = self.batch, self.inputs, self.hidden, self.outputs
        matmul = 2 * b * (i * h + h * o)  # forward
        backward = 2 * matmul - 2 * b * i * h  # no gradient for the input
        return matmul + backward + 12 * self.parameter_count()

    def parameter_count(self) -> int:
        i, h, o = self.inputs, self.hidden, self.outputs
        return i * h + h + h * o + o

    def bytes_per_step(self) -> int:
        """The least memory traffic of a step fused as far as its layers allow, in bytes read plus written.

        Parameters, Adam's two moments: each read once and written once; the parameters' gradients: written
        once by the backward pass, read once by Adam; the inputs and targets: read once; the hidden activation:
        written once by the forward pass, read once by the backward; its gradient: written once, read once by
        the first layer's weight gradient. Everything of size batch x outputs is counted as staying in cache.
        """
        b, i, h, o = self.batch, self.inputs, self.hidden, self.outputs
        elements = 8 * self.parameter_count() + b * (i + o) + 4 * b * h
        return elements * numpy_dtype(self.dtype).itemsize


#: The training variant that is a reference row (NumPy's, one fused numba function), not an implementation.
REFERENCE_VARIANT = "reference"


def is_reference(row: Any) -> bool:
    """Whether a results row (a dict or a pandas row) is the training step's reference row."""
    return bool(row["workload"] == "train" and row["backend"] == "numpy" and row["variant"] == REFERENCE_VARIANT)


class MLPParams(NamedTuple):
    """Linear(inputs->hidden) -> ReLU -> Linear(hidden->outputs), in PyTorch's (out, in) layout."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def astype(self, dtype: npt.DTypeLike) -> MLPParams:
        return MLPParams(*(np.asarray(p, dtype=dtype) for p in self))


@dataclass(frozen=True)
class TrainStart:
    """The one starting point every backend converts: config, initial parameters, the batch."""

    config: TrainConfig
    params: MLPParams
    x: np.ndarray
    y: np.ndarray
    seed: int


def train_start(config: TrainConfig, seed: int) -> TrainStart:
    """PyTorch's default Linear init (uniform in +-1/sqrt(fan_in)), inputs in [0, 1), 0/1 targets."""
    rng = np.random.default_rng(seed)
    dtype = numpy_dtype(config.dtype)

    def linear(fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
        bound = 1.0 / math.sqrt(fan_in)
        weight = rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(dtype)
        bias = rng.uniform(-bound, bound, size=fan_out).astype(dtype)
        return weight, bias

    w1, b1 = linear(config.inputs, config.hidden)
    w2, b2 = linear(config.hidden, config.outputs)
    x = rng.random((config.batch, config.inputs)).astype(dtype)
    y = rng.integers(0, 2, size=(config.batch, config.outputs)).astype(dtype)
    return TrainStart(config, MLPParams(w1, b1, w2, b2), x, y, seed)
