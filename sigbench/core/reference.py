"""Float64 references, written plainly and apart from every backend, that backends are checked against."""
from __future__ import annotations

import numpy as np

from sigbench.core.workloads import MLPParams, TrainConfig, TrainStart

#: PyTorch clamps each log in BCELoss at -100, and divides by max(p(1-p), 1e-12) in its backward.
BCE_LOG_CLAMP = -100.0
BCE_BACKWARD_EPS = 1e-12


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The sigmoid in float64, computed without overflow on either side."""
    x = np.asarray(x, dtype=np.float64)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """sigma'(x) = e^-|x| / (1 + e^-|x|)^2 in float64: never 1 - s, which rounds to 0 for large x."""
    z = np.exp(-np.abs(np.asarray(x, dtype=np.float64)))
    return z / ((1.0 + z) * (1.0 + z))


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


def gradient_noise(params: MLPParams, x: np.ndarray, y: np.ndarray, unit_roundoff: float) -> MLPParams:
    """How far rounding alone can move each gradient element in a float computation with that unit roundoff.

    The a-priori bound of a float dot product, n u sum|a_i b_i|, taken for every gradient with n counting
    the summations it passes through; plus, for each sample whose ReLU input is itself within rounding of
    0 (it may land on either side of the kink), that sample's whole contribution.
    """
    hidden_pre = x @ params.w1.T + params.b1
    hidden = np.maximum(hidden_pre, 0.0)
    p = sigmoid(hidden @ params.w2.T + params.b2)
    dz = (np.abs(p - y) + unit_roundoff) / y.size
    n = x.shape[1] + params.w1.shape[0] + params.w2.shape[0] + x.shape[0] + 10
    nu = n * unit_roundoff
    kink = np.abs(hidden_pre) <= nu * (np.abs(x) @ np.abs(params.w1.T) + np.abs(params.b1))
    dh_all = dz @ np.abs(params.w2)
    dh = dh_all * (hidden_pre > 0)
    dh_kink = dh_all * kink
    return MLPParams(
        w1=(nu * dh + dh_kink).T @ np.abs(x),  # one product for both terms: the bound's largest GEMM
        b1=nu * dh.sum(axis=0) + dh_kink.sum(axis=0),
        w2=nu * (dz.T @ hidden) + dz.T @ (np.abs(hidden_pre) * kink),
        b2=nu * dz.sum(axis=0),
    )


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


def adam_sensitivity(
    m: MLPParams, v: MLPParams, grads: MLPParams, t: int, config: TrainConfig
) -> MLPParams:
    """|d update / d gradient| of ``adam_step`` at step t, per element: how much Adam amplifies a gradient error.

    Adam divides by the gradient's own running magnitude, so where that magnitude is near zero a rounding
    error in the gradient moves the parameter by up to the learning rate.
    """
    b1, b2 = config.beta1, config.beta2
    root_bc2 = np.sqrt(1 - b2**t)
    step_size = config.lr / (1 - b1**t)
    out = []
    for mi, vi, g in zip(m, v, grads):
        m_new = b1 * mi + (1 - b1) * g
        v_new = b2 * vi + (1 - b2) * g * g
        root_v = np.sqrt(v_new)
        denom = root_v / root_bc2 + config.eps
        with np.errstate(divide="ignore", invalid="ignore"):
            d_denom = np.where(root_v > 0, (1 - b2) * g / (root_v * root_bc2), 0.0)
        out.append(step_size * np.abs((1 - b1) / denom - m_new * d_denom / denom**2))
    return MLPParams(*out)


def step_from(
    params: MLPParams, m: MLPParams, v: MLPParams, count: int, x: np.ndarray, y: np.ndarray, config: TrainConfig,
    unit_roundoff: float,
) -> tuple[float, MLPParams, MLPParams]:
    """One float64 step from a backend's own state: (loss, parameters after it, allowance per element).

    The allowance is how far a correct implementation in a float type with ``unit_roundoff`` may land from
    the float64 step: the gradient's rounding noise times Adam's amplification of it (capped at 2 lr, the
    most one step can move an element).
    """
    loss, grads = loss_and_grads(params, x, y)
    noise = gradient_noise(params, x, y, unit_roundoff)
    sensitivity = adam_sensitivity(m, v, grads, count + 1, config)
    new_params, _, _ = adam_step(params, m, v, grads, count + 1, config)
    cap = 2 * config.lr / (1 - config.beta1 ** (count + 1))
    allowance = MLPParams(*(np.minimum(s * nz, cap) for s, nz in zip(sensitivity, noise)))
    return loss, new_params, allowance


def train_trajectory(start: TrainStart, steps: int) -> list[tuple[float, MLPParams]]:
    """(loss, parameters after the step) for each of ``steps`` steps, in float64 from the start."""
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
