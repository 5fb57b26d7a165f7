"""The reference row of the training step: forward, BCELoss, backward and Adam as one numba function.

Not a NumPy implementation: it stands for what a step costs once a framework's per-call overhead is gone
(one call, no temporaries, every elementwise pass fused). The two large matmuls are BLAS calls from inside
the function (numba's ``np.dot``, which needs SciPy's BLAS); everything between them is one pass per row of
the batch, with the row in L1: bias and ReLU, the output layer, the sigmoid, BCE and its gradient, the output
layer's gradients and the hidden layer's, written over the hidden activation in place. Adam is one pass over
the flat parameters. So the hidden activation is written once (by the first matmul), read and rewritten once
(as its gradient) and read once (by the second): the traffic ``TrainConfig.bytes_per_step`` counts.

Rounding: float32 throughout, as the other implementations; sums may be reassociated (``fastmath`` reassoc, as
BLAS does), which the numerics check's rounding allowance covers. Imported only when the variant is used
(numba takes half a second to import); ``cache=True`` keeps the machine code for later worker processes.
"""
import numpy as np
from numba import njit, prange

#: reassoc: the row sums vectorise; contract: multiply-adds fuse; arcp: a division may be a multiplication by the
#: reciprocal (Adam's loop: 34 instead of 57 µs over the 8,578 parameters of the default step). Nothing that
#: changes log or exp.
_FASTMATH = {"contract", "reassoc", "arcp"}


def _step(x, y, params, grads, mu, nu, hidden, partial, count, lr, beta1, beta2, eps):
    """One step, in place: ``params``, ``mu`` and ``nu`` updated, ``grads`` and ``hidden`` scratch; returns the loss.

    ``params`` is w1 (h x i), b1, w2 (o x h), b2 flattened in that order, as are the others; ``partial`` holds
    one row of accumulators (gb1, gw2, gb2, loss) per chunk of the batch."""
    b, i = x.shape
    o = y.shape[1]
    h = hidden.shape[1]
    e1, e2, e3 = h * i, h * i + h, h * i + h + o * h
    w1, b1 = params[:e1].reshape((h, i)), params[e1:e2]
    w2, b2 = params[e2:e3].reshape((o, h)), params[e3:]
    gw1 = grads[:e1].reshape((h, i))
    chunks = partial.shape[0]
    one = np.ones(1, params.dtype)[0]  # constants in the parameters' dtype: float32 arithmetic stays float32
    zero = one - one
    tiny = one * 1e-12
    floor = one * -100
    inv_n = one / (b * o)

    np.dot(x, w1.T, hidden)
    for c in prange(chunks):
        acc = partial[c]
        acc[:] = 0
        gb1, gw2 = acc[:h], acc[h:h + o * h].reshape((o, h))
        z = np.empty(o, hidden.dtype)
        dz = np.empty(o, hidden.dtype)
        dh = np.empty(h, hidden.dtype)
        loss = 0.0
        for r in range(c * b // chunks, (c + 1) * b // chunks):
            row = hidden[r]
            for j in range(h):
                v = row[j] + b1[j]
                row[j] = v if v > zero else zero
            for k in range(o):
                s = b2[k]
                for j in range(h):
                    s += row[j] * w2[k, j]
                z[k] = s
            for k in range(o):
                p = one / (one + np.exp(-z[k]))
                t = y[r, k]
                log_p = max(np.log(p), floor)
                log_1mp = max(np.log1p(-p), floor)
                loss -= t * log_p + (one - t) * log_1mp
                s = (one - p) * p
                dz[k] = (p - t) * s / max(s, tiny) * inv_n
                acc[h + o * h + k] += dz[k]
            dh[:] = zero
            for k in range(o):
                d = dz[k]
                for j in range(h):
                    gw2[k, j] += d * row[j]
                    dh[j] += d * w2[k, j]
            for j in range(h):
                g = dh[j] if row[j] > zero else zero
                row[j] = g
                gb1[j] += g
        acc[h + o * h + o] = loss
    # the chunks' sums, in order, into the gradients after gw1
    grads[e1:] = 0
    total = 0.0
    for c in range(chunks):
        grads[e1:] += partial[c, :h + o * h + o]
        total += partial[c, h + o * h + o]
    np.dot(hidden.T, x, gw1)

    step_size = one * (lr / (1 - beta1 ** count))
    inv_root_bc2 = one / (one * np.sqrt(1 - beta2 ** count))
    b1s, b2s, c1, c2, e = one * beta1, one * beta2, one - one * beta1, one - one * beta2, one * eps
    n_params = params.shape[0]
    for c in prange(chunks):
        for j in range(c * n_params // chunks, (c + 1) * n_params // chunks):
            g = grads[j]
            m = mu[j] * b1s + c1 * g
            v = nu[j] * b2s + c2 * (g * g)
            mu[j] = m
            nu[j] = v
            params[j] -= step_size * (m / (np.sqrt(v) * inv_root_bc2 + e))
    return total / (b * o)


#: For batches large enough to share: chunks of the batch and of Adam over numba's threads.
step_parallel = njit(parallel=True, fastmath=_FASTMATH, cache=True)(_step)
#: For small batches: the same function with prange as range, no thread launch per step.
step_serial = njit(fastmath=_FASTMATH, cache=True)(_step)
