"""Float64 references, written plainly and apart from every backend, that backends are checked against."""
from __future__ import annotations

import numpy as np

from sigbench.workloads import MLPParams, TrainConfig, TrainStart

#: PyTorch clamps each log in BCELoss at -100, and divides by max(p(1-p), 1e-12) in its backward.
BCE_LOG_CLAMP = -100.0
BCE_BACKWARD_EPS = 1e-12


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The sigmoid in float64, computed without overflow on either side."""
    x = np.asarray(x, dtype=np.float64)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def forward(params: MLPParams, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations and output probabilities."""
    hidden = np.maximum(x @ params.w1.T + params.b1, 0.0)
    return hidden, sigmoid(hidden @ params.w2.T + params.b2)


def bce_loss(p: np.ndarray, y: np.ndarray) -> float:
    """``nn.BCELoss()``: the mean over all elements, each log clamped at -100."""
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), BCE_LOG_CLAMP)
        log_1mp = np.maximum(np.log1p(-p), BCE_LOG_CLAMP)
    return float(-np.mean(y * log_p + (1.0 - y) * log_1mp))


def loss_and_grads(params: MLPParams, x: np.ndarray, y: np.ndarray) -> tuple[float, MLPParams]:
    """Loss and gradients with PyTorch's BCELoss backward (including its 1e-12 guard)."""
    hidden, p = forward(params, x)
    s = p * (1.0 - p)
    dz = (p - y) * s / np.maximum(s, BCE_BACKWARD_EPS) / y.size
    dw2 = dz.T @ hidden
    db2 = dz.sum(axis=0)
    dh = (dz @ params.w2) * (hidden > 0)
    dw1 = dh.T @ x
    db1 = dh.sum(axis=0)
    return bce_loss(p, y), MLPParams(dw1, db1, dw2, db2)


def adam_step(
    params: MLPParams, m: MLPParams, v: MLPParams, grads: MLPParams, t: int, config: TrainConfig
) -> tuple[MLPParams, MLPParams, MLPParams]:
    """``torch.optim.Adam`` (no weight decay, no amsgrad), step number ``t`` counted from 1."""
    b1, b2 = config.beta1, config.beta2
    m = MLPParams(*(b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)))
    v = MLPParams(*(b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)))
    step_size = config.lr / (1 - b1**t)
    root_bc2 = np.sqrt(1 - b2**t)
    params = MLPParams(
        *(p - step_size * mi / (np.sqrt(vi) / root_bc2 + config.eps) for p, mi, vi in zip(params, m, v))
    )
    return params, m, v


def train_trajectory(start: TrainStart, steps: int) -> list[tuple[float, MLPParams]]:
    """(loss, parameters after the step) for each of ``steps`` steps, in float64."""
    params = start.params.astype(np.float64)
    x, y = start.x.astype(np.float64), start.y.astype(np.float64)
    m = MLPParams(*(np.zeros_like(p) for p in params))
    v = MLPParams(*(np.zeros_like(p) for p in params))
    out = []
    for t in range(1, steps + 1):
        loss, grads = loss_and_grads(params, x, y)
        params, m, v = adam_step(params, m, v, grads, t, start.config)
        out.append((loss, params))
    return out
