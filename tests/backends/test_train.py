import numpy as np
import pytest

from conftest import BACKENDS, need
from sigbench.cli import main
from sigbench.core import reference
from sigbench.core.workloads import MLPParams, TrainConfig, train_start
from sigbench.execution.plan import DEFAULT_BATCHES, DEFAULT_HIDDENS


def _start64(seed=0, **kwargs):
    return train_start(TrainConfig(dtype="float64", **kwargs), seed)


def _numpy_grads(start):
    from sigbench_backends.numpy_backend import NumpyTrainSession

    session = NumpyTrainSession(start)
    loss, grads = session.loss_and_grads()
    return float(loss), MLPParams(*(g.copy() for g in grads))


def test_reference_and_numpy_gradients_against_central_differences():
    start = _start64(seed=1, batch=8, hidden=16)
    x, y = start.x, start.y
    params = start.params
    hidden_pre = x @ params.w1.T + params.b1
    kink = np.abs(hidden_pre).min(axis=0) < 1e-4  # units at the ReLU kink have no derivative there
    _, ref_grads = reference.loss_and_grads(params, x, y)
    _, np_grads = _numpy_grads(start)
    rng = np.random.default_rng(0)
    h = 1e-6
    for index, name in enumerate(MLPParams._fields):
        for _ in range(12):
            coord = tuple(rng.integers(0, n) for n in params[index].shape)
            if name in ("w1", "b1") and kink[coord[0]]:
                continue
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[index][coord] += h
            minus[index][coord] -= h
            numeric = (reference.bce_loss(reference.forward(MLPParams(*plus), x)[1], y)
                       - reference.bce_loss(reference.forward(MLPParams(*minus), x)[1], y)) / (2 * h)
            assert ref_grads[index][coord] == pytest.approx(numeric, rel=1e-5, abs=1e-9), (name, coord)
            assert np_grads[index][coord] == pytest.approx(numeric, rel=1e-5, abs=1e-9), (name, coord)


@pytest.mark.backend("torch")
def test_numpy_gradients_match_torch_autograd():
    need("torch")
    import torch

    start = _start64(seed=2)
    loss, grads = _numpy_grads(start)
    tensors = [torch.tensor(p, requires_grad=True) for p in start.params]
    w1, b1, w2, b2 = tensors
    p = torch.sigmoid(torch.relu(torch.tensor(start.x) @ w1.T + b1) @ w2.T + b2)
    torch_loss = torch.nn.BCELoss()(p, torch.tensor(start.y))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-13)
    for mine, t in zip(grads, tensors):
        np.testing.assert_allclose(mine, t.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.backend("jax")
def test_numpy_gradients_match_jax_grad():
    backend = need("jax")
    import jax

    from sigbench_backends import jax_backend

    start = _start64(seed=3)
    loss, grads = _numpy_grads(start)
    with jax_backend._x64("float64"):
        params = tuple(backend.from_numpy(p, "cpu") for p in start.params)
        x, y = backend.from_numpy(start.x, "cpu"), backend.from_numpy(start.y, "cpu")
        jax_loss, jax_grads = jax.value_and_grad(
            lambda ps: jax_backend.bce_loss(jax_backend.forward(ps, x), y))(params)
        jax_loss, jax_grads = float(jax_loss), [np.asarray(g) for g in jax_grads]
    assert loss == pytest.approx(jax_loss, rel=1e-13)
    for mine, theirs in zip(grads, jax_grads):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-15)


@pytest.mark.backend("jax")
def test_jax_gradients_stay_finite_when_the_sigmoid_saturates():
    backend = need("jax")
    import jax
    import jax.numpy as jnp

    from sigbench_backends import jax_backend

    p = jnp.array([[0.0, 1.0], [1e-30, 1 - 1e-7]], dtype=jnp.float32)
    y = jnp.array([[1.0, 0.0], [1.0, 1.0]], dtype=jnp.float32)
    loss, grad = jax.value_and_grad(jax_backend.bce_loss)(p, y)
    assert float(loss) == pytest.approx((100 + 100 + -np.log(np.float32(1e-30)) + 1e-7) / 4, rel=1e-3)
    assert np.all(np.isfinite(np.asarray(grad)))
    del backend


@pytest.mark.backend("torch")
def test_torch_eager_matches_tutorial_code_epoch_by_epoch():
    backend = need("torch")
    import torch
    from torch import nn

    start = train_start(TrainConfig(), seed=4)
    # the tutorial, as a user writes it
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 2), nn.Sigmoid())
    with torch.no_grad():
        for param, value in zip(model.parameters(), start.params):
            param.copy_(torch.from_numpy(value))
    criterion = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    inputs, targets = torch.from_numpy(start.x), torch.from_numpy(start.y)
    tutorial = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        tutorial.append(loss.item())
    session = backend.train_session("eager", start, "cpu")
    ours = [session.loss_value(session.step()) for _ in range(10)]
    assert ours == tutorial


@pytest.mark.meet
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_check_passes_for_every_backend(dtype, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    args = ["check", "--steps", "10", "--dtype", dtype]
    for name in BACKENDS:
        args += ["--backend", name]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("PASS") >= len(BACKENDS)


@pytest.mark.backend("numpy")
def test_check_catches_adam_with_eps_inside_the_square_root(monkeypatch, capsys):
    need("numpy")
    from sigbench_backends import numpy_backend

    def wrong_adam(grads, state, lr, beta1, beta2, eps):
        count = state.steps + 1
        g, m, v = grads, state.mu, state.nu
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        g[...] = -lr * (m / (1 - beta1**count)) / np.sqrt(v / (1 - beta2**count) + eps)
        return grads, numpy_backend.AdamState(count, state.mu, state.nu)

    monkeypatch.setattr(numpy_backend, "adam_update", wrong_adam)
    assert main(["check", "--backend", "numpy", "--steps", "10"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.backend("jax")
def test_float64_in_jax_does_not_change_later_float32_runs():
    backend = need("jax")
    import jax.numpy as jnp

    s64 = backend.train_session("jit", train_start(TrainConfig(dtype="float64"), 0), "cpu")
    s64.step()
    assert s64.params().w1.dtype == np.float64
    assert jnp.asarray(1.0).dtype == jnp.float32
    s32 = backend.train_session("jit", train_start(TrainConfig(), 0), "cpu")
    s32.step()
    assert s32.params().w1.dtype == np.float32
    fn = backend.sigmoid("stable", "float32", "cpu")
    assert backend.to_numpy(fn(backend.from_numpy(np.zeros(3, np.float32), "cpu"))).dtype == np.float32

@pytest.mark.backend("jax")
def test_jax_step_compiles_once_per_shape_and_starts_from_optax_state():
    """The session makes Adam's starting state itself (zeros, committed to the device): it must be what optax's
    own init gives, and a second step or a reset must not compile the step again."""
    backend = need("jax")
    import jax
    import optax
    from jax._src import compiler

    config = TrainConfig(batch=48, hidden=24)
    session = backend.train_session("jit", train_start(config, 3), "cpu")
    count, mu, nu = session.optimizer_state()
    own = optax.adam(config.lr).init(tuple(jax.numpy.asarray(p) for p in session.params()))[0]
    assert count == int(own.count) == 0
    for mine, theirs in zip([*mu, *nu], [*own.mu, *own.nu]):
        assert mine.dtype == np.asarray(theirs).dtype and np.array_equal(mine, np.asarray(theirs).reshape(mine.shape))
    compiles = []
    original = compiler.backend_compile_and_load

    def counting(*args, **kwargs):
        compiles.append(1)
        return original(*args, **kwargs)

    compiler.backend_compile_and_load = counting
    try:
        for _ in range(3):
            session.step()
        session.reset()
        session.step()
    finally:
        compiler.backend_compile_and_load = original
    assert len(compiles) == 1


def test_train_prints_the_tutorial_lines(backend_name, capsys):
    assert main(["train", "--backend", backend_name, "--epochs", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    for k, line in enumerate(lines, 1):
        assert line.startswith(f"Epoch [{k}/10], Loss: ")
        float(line.rsplit(" ", 1)[1])
    ref = reference.train_trajectory(train_start(TrainConfig(), 0), 10)
    assert float(lines[-1].rsplit(" ", 1)[1]) == pytest.approx(ref[-1][0], abs=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "must be at least 1"),
    (["train", "--epochs", "-3"], "must be at least 1"),
    (["train", "--epochs", "2.5"], "not a whole number"),
    (["check", "--steps", "0"], "must be at least 1"),
    (["check", "--steps", "x"], "not a whole number"),
    (["train", "--batch", "0"], "must be at least 1"),
    (["train", "--hidden", "-1"], "must be at least 1"),
    (["run", "--batch", "1.5"], "not a whole number"),
])
def test_bad_training_numbers_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_training_variant_and_dtype_exit_2(backend_name, capsys):
    assert main(["train", "--backend", backend_name, "--variant", "nope"]) == 2
    assert "unknown training variant 'nope'" in capsys.readouterr().err
    assert main(["train", "--backend", backend_name, "--dtype", "int8"]) == 2
    assert "float32 or float64" in capsys.readouterr().err


def test_float32_gradients_stay_within_the_rounding_noise_bound():
    from sigbench_backends.numpy_backend import NumpyTrainSession

    for shape in (dict(), dict(batch=256, hidden=512)):
        start = train_start(TrainConfig(**shape), seed=5)
        _, g32 = NumpyTrainSession(start).loss_and_grads()
        p64 = start.params.astype(np.float64)
        x, y = start.x.astype(np.float64), start.y.astype(np.float64)
        _, g64 = reference.loss_and_grads(p64, x, y)
        noise = reference.gradient_noise(p64, x, y, 2.0**-24)
        for name, a, b, bound in zip(MLPParams._fields, g32, g64, noise):
            error = np.abs(a.astype(np.float64) - b)
            assert np.all(error <= bound), (name, float((error - bound).max()))
            assert np.median(bound) < 1e-2 * np.median(np.abs(b)), name  # and it is not vacuous


@pytest.mark.parametrize("batch, rows", [(256, 64), (250, 64), (64, 64), (32, 32)])
def test_numpy_step_blocked_over_the_batch_is_the_same_step(monkeypatch, batch, rows):
    """With L2 made 4 KiB, hidden 16 runs in blocks of 64 rows (the last one short where 64 does not divide the
    batch): loss and gradients stay within float32's rounding bound of the float64 ones, and ten steps stay
    with the one-block session's."""
    from sigbench.core import blocking
    from sigbench_backends import numpy_backend

    start = train_start(TrainConfig(batch=batch, hidden=16), seed=9)
    whole = numpy_backend.NumpyTrainSession(start)
    monkeypatch.setattr(blocking, "l2_cache_bytes", lambda: 4096)
    blocked = numpy_backend.NumpyTrainSession(start)
    assert (whole.rows, blocked.rows) == (batch, rows)
    loss32, g32 = blocked.loss_and_grads()
    p64 = start.params.astype(np.float64)
    x, y = start.x.astype(np.float64), start.y.astype(np.float64)
    loss64, g64 = reference.loss_and_grads(p64, x, y)
    noise = reference.gradient_noise(p64, x, y, 2.0**-24)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for name, a, b, bound in zip(MLPParams._fields, g32, g64, noise):
        assert np.all(np.abs(a.astype(np.float64) - b) <= bound), name
    for _ in range(10):
        assert blocked.step() == pytest.approx(whole.step(), rel=1e-5)
    for a, b in zip(blocked.params(), whole.params()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


@pytest.mark.parametrize("backend_and_variant", [
    pytest.param(("jax", "jit"), marks=pytest.mark.backend("jax"), id="jax"),
    pytest.param(("torch", "manual"), marks=pytest.mark.backend("torch"), id="torch")])
@pytest.mark.parametrize("batch, rows, hidden", [(256, 64, 16), (250, 64, 16), (32, 32, 16), (250, 64, 256)])
def test_framework_step_blocked_over_the_batch_is_the_same_step(monkeypatch, backend_and_variant, batch, rows,
                                                                 hidden):
    """As NumPy's: with L2 made 4 KiB, JAX's jitted step scans blocks of 64 rows (plus the rows left over where
    64 does not divide the batch), PyTorch's ``manual`` loops over them (at hidden 256 with its hidden gradient as
    broadcast products); each of five steps passes the float64 check, and the parameters stay with the one-block
    session's."""
    name, variant = backend_and_variant
    backend = need(name)
    from sigbench.core import blocking
    from sigbench.execution.worker import train_check
    from sigbench.measure.checks import train_verdict

    start = train_start(TrainConfig(batch=batch, hidden=hidden), seed=9)
    monkeypatch.setattr(blocking, "l2_cache_bytes", lambda: 1 << 30)
    whole = backend.train_session(variant, start, "cpu")
    monkeypatch.setattr(blocking, "l2_cache_bytes", lambda: 4096)
    blocked = backend.train_session(variant, start, "cpu")
    assert (whole.rows, blocked.rows) == (batch, rows)
    if name == "torch":
        assert blocked._broadcast_hidden_grad == (hidden == 256)
    _, diffs = train_check(blocked, start, 5, lambda: None)
    assert train_verdict(diffs, "float32").passed
    for _ in range(5):
        whole.step()
    for a, b in zip(blocked.params(), whole.params()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_adam_sensitivity_is_the_derivative_of_the_step():
    rng = np.random.default_rng(6)
    config = TrainConfig()
    shape = (5,)
    m = MLPParams(*(rng.normal(0, 1e-3, shape) for _ in range(4)))
    v = MLPParams(*(rng.uniform(1e-8, 1e-6, shape) for _ in range(4)))
    g = MLPParams(*(rng.normal(0, 1e-3, shape) for _ in range(4)))
    params = MLPParams(*(np.zeros(shape) for _ in range(4)))
    t, h = 3, 1e-9
    sensitivity = reference.adam_sensitivity(m, v, g, t, config)
    plus, _, _ = reference.adam_step(params, m, v, MLPParams(*(gi + h for gi in g)), t, config)
    minus, _, _ = reference.adam_step(params, m, v, MLPParams(*(gi - h for gi in g)), t, config)
    for s, p, q in zip(sensitivity, plus, minus):
        np.testing.assert_allclose(s, np.abs(p - q) / (2 * h), rtol=1e-4)


@pytest.mark.slow
@pytest.mark.meet
def test_check_passes_at_larger_shapes_where_adam_amplifies_rounding(capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    args = ["check", "--steps", "5", "--batch", "512", "--hidden", "512"]
    for name in BACKENDS:
        args += ["--backend", name]
    assert main(args) == 0, capsys.readouterr().out


def _check(session, start, steps):
    from sigbench.execution.worker import train_check
    from sigbench.measure.checks import train_verdict

    _, diffs = train_check(session, start, steps, lambda: None)
    return train_verdict(diffs, start.config.dtype)


@pytest.mark.slow
@pytest.mark.parametrize("hidden", DEFAULT_HIDDENS)
def test_every_shape_of_the_default_sweep_passes_the_numerics_check(backend_name, hidden):
    """The run's own check (``worker.train_check``, as many steps as ``run`` takes) at each batch of the sweep,
    for every training variant this backend runs on a CPU."""
    from sigbench.execution.worker import run_train_check_steps

    backend = need(backend_name)
    variants = [v for v, reason in backend.train_variants("cpu").items() if reason is None]
    for batch in DEFAULT_BATCHES:
        config = TrainConfig(batch=batch, hidden=hidden)
        start = train_start(config, 0)
        for variant in variants:
            verdict = _check(backend.train_session(variant, start, "cpu"), start, run_train_check_steps(config))
            assert verdict.passed, (variant, batch, hidden, verdict.message)


@pytest.mark.backend("numpy")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch, hidden", [(8, 16), (32, 128), (300, 256)])
def test_reference_row_matches_the_float64_step_step_by_step(dtype, batch, hidden):
    """The fused numba step (serial at the small shapes, on numba's threads at the largest) against float64."""
    backend = need("numpy")
    reason = backend.train_variants("cpu")["reference"]
    if reason:
        pytest.skip(reason)
    start = train_start(TrainConfig(batch=batch, hidden=hidden, dtype=dtype), 5)
    session = backend.train_session("reference", start, "cpu")
    verdict = _check(session, start, 6)
    assert verdict.passed, verdict.message
    # the same starting point as the hand-written step: after a reset, the first step's loss is theirs
    session.reset()
    handwritten = backend.train_session("handwritten", start, "cpu")
    assert session.loss_value(session.step()) == pytest.approx(handwritten.loss_value(handwritten.step()),
                                                               rel=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.backend("numpy")
def test_reference_row_says_why_it_cannot_run_without_numba(monkeypatch):
    backend = need("numpy")
    from sigbench_backends import numpy_backend

    real = numpy_backend.importlib.util.find_spec
    monkeypatch.setattr(numpy_backend.importlib.util, "find_spec", lambda name: None if name == "numba" else real(name))
    reason = backend.train_variants("cpu")["reference"]
    assert reason and "numba" in reason
    with pytest.raises(RuntimeError, match="numba"):
        backend.train_session("reference", train_start(TrainConfig(batch=4, hidden=8), 0), "cpu")
