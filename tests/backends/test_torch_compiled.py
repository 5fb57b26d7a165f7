"""PyTorch's ``compiled`` (torch.compile of the whole step) and ``graphed`` (CUDA graph) training variants.

Compiling takes tens of seconds: one session is compiled once for the module, in the tutorial's shape and
float32, the key ``sigbench check`` in float32 then finds already compiled in the same process.
"""
import numpy as np
import pytest

from conftest import need
from sigbench.core.workloads import TrainConfig, train_start
from sigbench.execution.worker import train_check
from sigbench.measure.checks import train_verdict

pytestmark = pytest.mark.backend("torch")


@pytest.fixture(scope="module")
def compiled():
    backend = need("torch")
    reason = backend.train_variants()["compiled"]
    if reason:
        pytest.skip(reason)
    start = train_start(TrainConfig(), seed=7)
    return backend, start, backend.train_session("compiled", start, "cpu")


def test_compiled_steps_match_the_float64_reference_step_by_step(compiled):
    backend, start, session = compiled
    session.reset()
    _, diffs = train_check(session, start, 6, lambda: None)
    verdict = train_verdict(diffs, "float32")
    assert verdict.passed, verdict.message
    count, mu, nu = session.optimizer_state()
    assert count == 6
    assert all(np.all(v >= 0) for v in nu) and any(np.any(m != 0) for m in mu)


def test_compiled_reset_replays_the_same_run_without_compiling_again(compiled):
    from sigbench_backends import torch_backend

    backend, start, session = compiled
    session.reset()
    assert session.optimizer_state()[0] == 0
    for got, want in zip(session.params(), start.params):
        np.testing.assert_array_equal(got, want)
    first = [session.loss_value(session.step()) for _ in range(4)]
    session.reset()
    again = [session.loss_value(session.step()) for _ in range(4)]
    assert first == again and first[0] > first[-1]
    # a second session of the same shape reuses the compiled step (the K sessions of a run compile once)
    key = (start.config, *(tuple(p.shape) for p in start.params), tuple(start.x.shape))
    other = backend.train_session("compiled", start, "cpu")
    assert other.compiled is session.compiled is torch_backend.compiled_step("cpu", key)


def test_compiled_matches_the_same_step_uncompiled(compiled):
    from sigbench_backends.torch_backend import FunctionalTrainSession

    backend, start, session = compiled
    eager = FunctionalTrainSession(backend, start, "cpu")
    session.reset()
    for _ in range(3):
        assert session.loss_value(session.step()) == pytest.approx(eager.loss_value(eager.step()), rel=1e-6)
    for got, want in zip(session.params(), eager.params()):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_compiled_calls_bypass_dynamo_on_each_sessions_own_tensors(compiled):
    """After its first call the compiled step is called without dynamo, on the tensors of whichever session
    calls it: two sessions sharing it keep their own state, each matching the uncompiled step."""
    from sigbench_backends.torch_backend import FunctionalTrainSession

    backend, start, session = compiled
    session.reset()
    session.step()
    assert session.compiled.direct
    other = backend.train_session("compiled", start, "cpu")
    eager = FunctionalTrainSession(backend, start, "cpu")
    for _ in range(3):  # interleaved: a call for one session must not touch the other's tensors
        other.step()
        eager.step()
        session.step()
    assert other.optimizer_state()[0] == 3 and session.optimizer_state()[0] == 4
    for got, want in zip(other.params(), eager.params()):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert any(np.any(a != b) for a, b in zip(session.params(), other.params()))


def test_compiled_is_unavailable_with_the_reason_without_a_compiler(monkeypatch, capsys):
    backend = need("torch")
    import shutil

    from sigbench.cli import main
    from sigbench_backends import torch_backend

    # no compiler on the PATH (not a patch of torch's config object, whose undo would delete the entry)
    monkeypatch.setenv("CXX", "sigbench-no-such-c++")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    torch_backend.compiler_missing.cache_clear()
    try:
        reason = backend.train_variants()["compiled"]
        assert reason is not None and "no compiler" in reason and "sigbench-no-such-c++" in reason
        assert main(["info"]) == 0
        assert f"compiled (unavailable: {reason})" in capsys.readouterr().out
        with pytest.raises(RuntimeError, match="no compiler"):
            backend.train_session("compiled", train_start(TrainConfig(), 0), "cpu")
    finally:
        torch_backend.compiler_missing.cache_clear()


def test_graphed_replays_a_cuda_graph_or_says_why_not():
    backend = need("torch")
    import torch

    start = train_start(TrainConfig(), seed=8)
    assert "only on a CUDA device" in backend.train_variants("cpu")["graphed"]  # a GPU machine asked for cpu
    reason = backend.train_variants()["graphed"]
    if not torch.cuda.is_available():
        assert reason is not None and "CUDA" in reason
        with pytest.raises(ValueError, match="only on a CUDA device"):
            backend.train_session("graphed", start, "cpu")
        pytest.skip(reason)
    assert reason is None
    from sigbench_backends.torch_backend import compiler_missing

    session = backend.train_session("graphed", start, "cuda")
    assert session.captured == ("eager" if compiler_missing() else "compiled")  # inductor's kernels, captured
    _, diffs = train_check(session, start, 6, lambda: torch.cuda.synchronize())
    verdict = train_verdict(diffs, "float32")
    assert verdict.passed, verdict.message
    session.reset()
    first = [session.loss_value(session.step()) for _ in range(3)]
    session.reset()
    assert [session.loss_value(session.step()) for _ in range(3)] == first
