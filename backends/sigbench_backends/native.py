"""The native Ziv kernel (``ziv_kernel.c``) behind the float32 ``accurate`` sigmoid of PyTorch and JAX on CPU.

PyTorch's own operations do not reach Ziv's fast path at this speed (inductor's C++ ran it at about 63 ms for
2^24 inputs on one thread, the kernel at 38 ms). XLA's fusion of it matches the kernel per thread, but
flushes subnormal results and needs a second call to redo the hard inputs. So each framework gets what its
users write for this: a native kernel registered with the framework. PyTorch calls the C function on the
tensors' memory (ctypes releases the GIL); JAX calls it through the XLA FFI (``ziv_ffi.cc``), inside ``jit``.

Each library is built at first use with the system's compilers (``$CC`` or ``cc``; ``$CXX`` or ``c++`` for
the FFI) and ``-O3 -march=native``, then kept under ``$SIGBENCH_CACHE_DIR`` (default
``~/.cache/sigbench``) in ``native/``, named by a hash of the sources, flags, compiler, CPU and jaxlib
version, so a later process (each worker is one) loads it in milliseconds. A build is written under a
temporary name and renamed into place, so processes building at once never see half a file. Without a
compiler the backends keep their framework-only paths and say so in ``sigbench info``.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

_HERE = Path(__file__).parent
KERNEL_SOURCE = _HERE / "ziv_kernel.c"
FFI_SOURCE = _HERE / "ziv_ffi.cc"
#: -fno-trapping-math lets GCC turn the clamps into blends and vectorise the loop; it changes no value.
FLAGS = ("-O3", "-march=native", "-fno-trapping-math", "-fopenmp", "-fPIC", "-shared")
#: The C function's name and the FFI handler's.
KERNEL_SYMBOL = "sigbench_ziv_f32"
FFI_SYMBOL = "SigbenchZivF32"

_lock = threading.Lock()


class BuildError(RuntimeError):
    """The compiler was found but failed; the message carries its command and output."""


def compiler(language: str = "c") -> str | None:
    """The C (or C++) compiler a build would use, or None."""
    variable, default = ("CC", "cc") if language == "c" else ("CXX", "c++")
    return shutil.which(os.environ.get(variable) or default)


def status(language: str = "c") -> str:
    """What ``sigbench info`` says of the kernel: the compiler that builds it, or why it cannot run."""
    found = compiler(language)
    if found is None:
        variable, name = ("CC", "C") if language == "c" else ("CXX", "C++")
        return f"missing: no {name} compiler (set {variable}; float32 accurate takes the framework-only path)"
    return f"built at first use by {found} {' '.join(FLAGS[:3])}"


def cache_root() -> Path:
    """sigbench's cache folder: ``$SIGBENCH_CACHE_DIR``, else ``sigbench`` under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get("SIGBENCH_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "sigbench"


def cache_dir() -> Path:
    return cache_root() / "native"


def digest(*parts: str | list[str] | tuple[str, ...]) -> str:
    """16 hex digits of a SHA-256 over ``parts`` (strings, or sequences of them, each kept apart): the name of a
    cached build, so that a change to anything it depends on gives a new name."""
    hashed = hashlib.sha256()
    for part in parts:
        for text in [part] if isinstance(part, str) else part:
            hashed.update(text.encode() + b"\0")
    return hashed.hexdigest()[:16]


def write_once(target: Path, write: Callable[[str], object]) -> Path:
    """``target``, made by ``write(path)`` under a temporary name in its folder and renamed into place unless it
    is there already: processes making it at once never see half a file."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _cpu() -> str:
    """What -march=native depends on: the CPU model and its flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(dict.fromkeys(lines))


def _build(command: list[str], source: Path, name: str, key: tuple[str, ...] = ()) -> Path:
    """The library built from ``source`` by ``command`` (compiler and flags; output and input appended), from
    the cache when it is there; ``key``: what else the build depends on (sources it includes, versions)."""

    def compile_to(partial: str) -> None:
        full = [*command, "-o", partial, str(source), "-lm"]
        done = subprocess.run(full, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"building the native Ziv kernel failed ({' '.join(full)}):\n{done.stderr.strip()}")

    return write_once(cache_dir() / f"{name}-{digest(command, _cpu(), source.read_text(), key)}.so", compile_to)


@functools.cache
def _kernel_library() -> ctypes.CDLL:
    cc = compiler()
    if cc is None:
        raise BuildError(status())
    return ctypes.CDLL(str(_build([cc, *FLAGS], KERNEL_SOURCE, "ziv")))


def kernel() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """``kernel(x_ptr, out_ptr, n, threads) -> hard``: out = sigmoid(x), correctly rounded, for n contiguous
    float32 values on up to ``threads`` OpenMP threads; returns how many inputs took the exact path."""
    with _lock:
        library = _kernel_library()
    return kernel_in(library)


def kernel_in(library: ctypes.CDLL) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """``kernel``'s function, typed, from a built kernel library (the tests load builds with other flags)."""
    function = getattr(library, KERNEL_SYMBOL)
    function.restype = ctypes.c_int64
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    return function


def fast_path() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """``fast_path(x_ptr, wide_ptr, flag_ptr, n)``: the float64 value before rounding and the hard flag per
    input (uint8), for tests of the error bound."""
    with _lock:
        function = _kernel_library().sigbench_ziv_f32_fast_path
    function.restype = None
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return function


@functools.cache
def _ffi_library() -> ctypes.CDLL:
    import jax.ffi
    import jaxlib

    cxx = compiler("c++")
    if cxx is None:
        raise BuildError(status("c++"))
    command = [cxx, "-std=c++17", *FLAGS, f"-I{jax.ffi.include_dir()}", f"-I{_HERE}"]
    key = (KERNEL_SOURCE.read_text(), jaxlib.__version__)  # ziv_ffi.cc includes the kernel
    return ctypes.CDLL(str(_build(command, FFI_SOURCE, "ziv-ffi", key)))


def register_jax_target(name: str) -> None:
    """Register the FFI handler with XLA's CPU platform under ``name`` (once per process)."""
    import jax.ffi

    with _lock:
        library = _ffi_library()
        if name not in _registered:
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, FFI_SYMBOL)), platform="cpu")
            _registered.add(name)


_registered: set[str] = set()
