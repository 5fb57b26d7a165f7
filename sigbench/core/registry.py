"""Which backends exist, which are installed, and loading them.

Built-in backends are found without importing their framework (``importlib.util.find_spec``);
third-party ones come from the entry-point group ``sigbench.backends``.
"""
from __future__ import annotations

import importlib
import importlib.util
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sigbench.core.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:
    from sigbench.core.interface import Backend

ENTRY_POINT_GROUP = "sigbench.backends"


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:attr"
    requires: tuple[str, ...]  # top-level modules that must be importable
    extra: str

    def missing(self) -> list[str]:
        return [module for module in self.requires if importlib.util.find_spec(module) is None]

    @property
    def installed(self) -> bool:
        return not self.missing()


BUILTIN: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("numpy", "sigbench_backends.numpy_backend:NumpyBackend", ("numpy",), "numpy"),
        BackendSpec("torch", "sigbench_backends.torch_backend:TorchBackend", ("torch",), "torch"),
        BackendSpec("jax", "sigbench_backends.jax_backend:JaxBackend", ("jax",), "jax"),
    )
}


@lru_cache(maxsize=1)
def specs() -> dict[str, BackendSpec]:
    """Built-in backends, then plugins; a plugin may not shadow an existing name."""
    from importlib.metadata import entry_points

    found = dict(BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            warnings.warn(
                f"sigbench: backend plugin {entry.value!r} ignored: the name {entry.name!r} is taken",
                stacklevel=2,
            )
            continue
        module = entry.value.split(":")[0].split(".")[0]
        dist = entry.dist.name if entry.dist is not None else entry.name
        found[entry.name] = BackendSpec(entry.name, entry.value, (module,), dist)
    return found


def names() -> list[str]:
    return list(specs())


def installed_names() -> list[str]:
    return [name for name, spec in specs().items() if spec.installed]


def install_hint(spec: BackendSpec) -> str:
    if spec.name in BUILTIN:
        return f"pip install 'sigbench[{spec.extra}]'"
    return f"pip install {spec.extra}"


def get_spec(name: str) -> BackendSpec:
    try:
        return specs()[name]
    except KeyError:
        raise UsageError(
            f"unknown backend {name!r}; known backends: {', '.join(names())}"
        ) from None


_loaded: dict[str, Backend] = {}


def load(name: str) -> Backend:
    """The backend object for ``name``, importing its framework on first use."""
    if name in _loaded:
        return _loaded[name]
    spec = get_spec(name)
    missing = spec.missing()
    if missing:
        raise BackendUnavailable(
            f"backend {name!r} is not installed (missing: {', '.join(missing)}); "
            f"install it with: {install_hint(spec)}"
        )
    module_name, _, attr = spec.target.partition(":")
    module = importlib.import_module(module_name)
    backend = getattr(module, attr)()
    _loaded[name] = backend
    return backend


def load_all(requested: list[str]) -> dict[str, Backend]:
    """The backends named (duplicates dropped). A built-in that fails raises; a failing third-party plugin
    is skipped with a warning, so one broken package cannot take sigbench down."""
    loaded: dict[str, Backend] = {}
    for name in dict.fromkeys(requested):
        try:
            loaded[name] = load(name)
        except UsageError:
            raise
        except Exception as error:
            if name in BUILTIN:
                raise
            warnings.warn(f"sigbench: backend plugin {name!r} failed to load: {error}", stacklevel=2)
    return loaded
