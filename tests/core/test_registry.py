import importlib.util
import warnings
from importlib.metadata import EntryPoint

import pytest

from conftest import BACKENDS
from sigbench.core import registry
from sigbench.core.errors import BackendUnavailable, UsageError
from sigbench.core.interface import Backend


def test_builtin_backends_are_known_and_installed_matches_find_spec():
    assert registry.names()[:3] == ["numpy", "torch", "jax"]
    for name, module in (("numpy", "numpy"), ("torch", "torch"), ("jax", "jax")):
        assert (name in registry.installed_names()) == (importlib.util.find_spec(module) is not None)


def test_unknown_backend_lists_known_ones():
    with pytest.raises(UsageError, match="unknown backend 'cupy'.*numpy, torch, jax"):
        registry.load("cupy")


def test_missing_framework_names_the_extra(monkeypatch):
    monkeypatch.setitem(registry.BUILTIN, "jax", registry.BackendSpec(
        "jax", "sigbench_backends.jax_backend:JaxBackend", ("surely_not_installed_module",), "jax"))
    registry.specs.cache_clear()
    monkeypatch.setattr(registry, "_loaded", {})
    try:
        with pytest.raises(BackendUnavailable, match=r"pip install 'sigbench\[jax\]'"):
            registry.load("jax")
    finally:
        registry.specs.cache_clear()


def test_loaded_backends_meet_the_protocol(backend):
    assert isinstance(backend, Backend)
    assert backend.devices()[0] == "cpu"
    assert set(backend.sigmoid_variants()) >= {"naive", "stable", "builtin", "fast"}
    assert list(backend.sigmoid_variants())[:4] == ["naive", "stable", "builtin", "fast"]


def _entry_points(entries):
    def fake(group=None):
        assert group == registry.ENTRY_POINT_GROUP
        return entries
    return fake


def test_entry_point_plugin_is_found_and_loaded(monkeypatch, tmp_path):
    (tmp_path / "sigbench_testplugin.py").write_text("class FakeBackend:\n    name = 'fake'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin = EntryPoint("fake", "sigbench_testplugin:FakeBackend", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points", _entry_points([plugin]))
    registry.specs.cache_clear()
    monkeypatch.setattr(registry, "_loaded", {})
    try:
        assert "fake" in registry.names()
        assert "fake" in registry.installed_names()
        assert registry.load("fake").name == "fake"
    finally:
        registry.specs.cache_clear()


def test_plugin_shadowing_a_builtin_is_ignored_with_a_warning(monkeypatch):
    plugin = EntryPoint("numpy", "elsewhere:Other", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points", _entry_points([plugin]))
    registry.specs.cache_clear()
    try:
        with pytest.warns(UserWarning, match="name 'numpy' is taken"):
            specs = registry.specs()
        assert specs["numpy"].target.startswith("sigbench_backends.")
    finally:
        registry.specs.cache_clear()


def test_failing_plugin_is_skipped_with_a_warning(monkeypatch):
    plugin = EntryPoint("broken", "json:NoSuchAttr", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points", _entry_points([plugin]))
    registry.specs.cache_clear()
    monkeypatch.setattr(registry, "_loaded", {})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert registry.load_all(["broken"]) == {}
        assert any("failed to load" in str(w.message) for w in caught)
    finally:
        registry.specs.cache_clear()


@pytest.mark.packaging
def test_backends_under_test_are_installed():
    for name in BACKENDS:
        assert registry.get_spec(name).installed, f"{name} was asked for but is not installed"
