"""The native Ziv kernel (``ziv_kernel.c``) behind the float32 ``accurate`` sigmoid of PyTorch and JAX on CPU.

PyTorch's own operations do not reach Ziv's fast path at this speed (inductor's C++ ran it at about 63 ms for
2^24 inputs on one thread, the kernel at 38 ms). XLA's fusion of it matches the kernel per thread, but
flushes subnormal results and needs a second call to redo the hard inputs. So each framework gets what its
users write for this: a native kernel registered with the framework. PyTorch calls the C function on the
tensors' memory (ctypes releases the GIL); JAX calls it through the XLA FFI (``ziv_ffi.cc``), inside ``jit``.

The kernel's fast path has three versions in one library, chosen at run time: AVX-512, AVX2+FMA and the plain
loop (``PATHS``; ``kernel_path()`` says which runs, ``$SIGBENCH_ZIV_PATH`` forces one the CPU has). On x86-64
the library is built for the baseline ISA (each vector path carries its own target attribute) and tuned with
``-mtune=native``; elsewhere, where only the plain loop exists, with ``-march=native``.

Each library is built at first use with the system's compilers (``$CC`` or ``cc``; ``$CXX`` or ``c++`` for
the FFI), then kept under ``$SIGBENCH_CACHE_DIR`` (default
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
#: Whether this is x86-64, where the kernel has its AVX2 and AVX-512 paths.
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
#: -fno-trapping-math lets GCC turn the clamps into blends and vectorise the loop; it changes no value. On
#: x86-64 the library must run on any CPU of the ISA, so -mtune, not -march: the paths choose their own.
FLAGS = ("-O3", "-mtune=native" if X86_64 else "-march=native", "-fno-trapping-math", "-fopenmp", "-fPIC",
         "-shared")
#: The kernel's paths, in order of preference (the names ``ziv_kernel.c`` gives them).
PATHS = ("avx512", "avx2-fma", "plain")
#: The environment variable that forces a path (one of PATHS that the CPU runs).
PATH_VARIABLE = "SIGBENCH_ZIV_PATH"
#: What each path needs, in /proc/cpuinfo's names (``ziv_kernel.c`` asks the CPU for the same).
_PATH_FLAGS = {"avx512": ("avx512f", "avx512vl", "avx512dq", "fma"), "avx2-fma": ("avx2", "fma"), "plain": ()}
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
    try:
        path = kernel_path()
    except ValueError as error:
        path = f"none ({error})"
    return f"built at first use by {found} {' '.join(FLAGS[:3])}; path {path}"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def available_paths() -> tuple[str, ...]:
    """The kernel paths this CPU runs, in order of preference: ``("avx512", "avx2-fma", "plain")`` on an
    AVX-512 CPU, ``("avx2-fma", "plain")`` on an AVX2 one, ``("plain",)`` elsewhere. Read from /proc/cpuinfo
    without building anything; a test holds it to the built kernel's own answer."""
    if not X86_64:
        return ("plain",)
    flags = _cpu_flags()
    return tuple(path for path in PATHS if all(flag in flags for flag in _PATH_FLAGS[path]))


def kernel_path() -> str:
    """The path the kernel runs in this process (``"avx512"``, ``"avx2-fma"`` or ``"plain"``): the one
    ``$SIGBENCH_ZIV_PATH`` forces, else the first this CPU runs. What a row ran, for its metadata; needs no
    build. Raises ValueError, with what is allowed, where the variable names a path that is not one or that
    this CPU lacks (the kernel would take another: a forced path never falls back silently)."""
    available = available_paths()
    wanted = os.environ.get(PATH_VARIABLE, "")
    if not wanted:
        return available[0]
    if wanted not in available:
        raise ValueError(f"{PATH_VARIABLE}={wanted!r}: this CPU runs {', '.join(available)} (of {', '.join(PATHS)});"
                         f" unset it or name one of those")
    return wanted


def numba_path() -> str:
    """The instruction set numba compiles NumPy's float32 ``accurate`` loop for, as ``kernel_path`` names them,
    with the CPU LLVM tunes for: ``"avx512 (numba, LLVM cpu znver4)"``. numba targets the host CPU's name and
    features, or ``$NUMBA_CPU_NAME`` and ``$NUMBA_CPU_FEATURES`` (the name alone keeps the host's features; its
    on-disk cache is keyed by both): ``numba_env(path)`` forces a path. Needs llvmlite (numba's), not numba."""
    import llvmlite.binding as llvm

    name = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
    features = os.environ.get("NUMBA_CPU_FEATURES") or llvm.get_host_cpu_features().flatten()
    enabled = {item[1:] for item in features.split(",") if item.startswith("+")}
    isa = next(path for path in PATHS if set(_PATH_FLAGS[path]) <= enabled) if X86_64 else "plain"
    return f"{isa} (numba, LLVM cpu {name})"


#: The LLVM features each path must not have, by prefix: what ``numba_env`` turns off in the host's list.
_NUMBA_OFF = {"avx512": (), "avx2-fma": ("avx512",), "plain": ("avx", "fma", "f16c", "vpclmulqdq", "vaes", "gfni",
                                                               "xop", "fma4", "amx")}


def numba_env(path: str) -> dict[str, str]:
    """The environment that makes numba compile for ``path`` (a new process's numba reads it at import):
    ``NUMBA_CPU_NAME`` (haswell for avx2-fma, x86-64 for plain, the host for its best) and
    ``NUMBA_CPU_FEATURES``, the host's features with those of wider paths turned off. ValueError where this
    CPU does not run ``path``."""
    import llvmlite.binding as llvm

    if path not in available_paths():
        raise ValueError(f"kernel path {path!r}: this CPU runs {', '.join(available_paths())}")
    host = llvm.get_host_cpu_features().flatten().split(",")
    off = _NUMBA_OFF[path]
    features = [f"-{item[1:]}" if item[1:].startswith(off) and off else item for item in host if item]
    name = llvm.get_host_cpu_name() if path == available_paths()[0] else {"avx2-fma": "haswell"}.get(path, "x86-64")
    return {"NUMBA_CPU_NAME": name, "NUMBA_CPU_FEATURES": ",".join(features)}


#: What each path caps the libraries' own dispatch at (``library_env``): NumPy's dispatch targets turned off,
#: ATen's CPU capability, XLA's widest instruction set for its generated code.
_LIBRARY_CAPS = {"avx2-fma": ("X86_V4 AVX512_ICL AVX512_SPR", "avx2", "AVX2"),
                 "plain": ("X86_V3 X86_V4 AVX512_ICL AVX512_SPR", "default", "SSE4_2")}


def library_env(path: str) -> dict[str, str]:
    """The environment that makes a new process look, to NumPy, PyTorch and JAX as to the kernels, like a CPU
    whose widest path is ``path``: ``numba_env(path)`` and ``$SIGBENCH_ZIV_PATH``, plus
    ``NPY_DISABLE_CPU_FEATURES`` (NumPy's runtime dispatch), ``ATEN_CPU_CAPABILITY`` (PyTorch's) and
    ``--xla_cpu_max_isa`` in ``XLA_FLAGS`` (XLA's code generation; other flags already set are kept). So
    ``fast`` and ``accurate`` are compared as an AVX2-only CPU would run them, on this one: an emulation of the
    instruction set, not of another CPU's caches, clock or execution units. The host's best path gives
    ``numba_env`` and the forced path only."""
    env = {PATH_VARIABLE: path, **numba_env(path)}
    if path == available_paths()[0]:
        return env
    numpy_off, aten, xla = _LIBRARY_CAPS[path]
    flags = os.environ.get("XLA_FLAGS", "")
    return {**env, "NPY_DISABLE_CPU_FEATURES": numpy_off, "ATEN_CPU_CAPABILITY": aten,
            "XLA_FLAGS": f"{flags} --xla_cpu_max_isa={xla}".strip()}


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
    float32 values on up to ``threads`` OpenMP threads, on ``kernel_path()``; returns how many inputs took the
    exact path."""
    kernel_path()  # a forced path the CPU lacks is an error here, not a silent fallback
    with _lock:
        library = _kernel_library()
    return kernel_in(library)


def kernel_for(path: str, ffi: bool = False) -> Callable[[int, int, int, int], int]:
    """``kernel`` on one path whatever ``$SIGBENCH_ZIV_PATH`` says (for tests and benchmarks across paths), from
    the C library or, with ``ffi``, from JAX's FFI library (the same source, built by the C++ compiler);
    ValueError where this CPU lacks it."""
    if path not in available_paths():
        raise ValueError(f"kernel path {path!r}: this CPU runs {', '.join(available_paths())} (of {', '.join(PATHS)})")
    with _lock:
        function = (_ffi_library() if ffi else _kernel_library()).sigbench_ziv_f32_on
    function.restype = ctypes.c_int64
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int]
    index = PATHS.index(path)

    def on_path(x: int, out: int, n: int, threads: int) -> int:
        hard = int(function(x, out, n, threads, index))
        if hard < 0:
            raise ValueError(f"kernel path {path!r}: the built kernel says this CPU cannot run it")
        return hard

    return on_path


def built_path() -> str:
    """The path the built C kernel itself chose (``sigbench_ziv_path`` in ``ziv_kernel.c``); builds it. The
    tests hold ``kernel_path()`` to it."""
    with _lock:
        function = _kernel_library().sigbench_ziv_path
    function.restype = ctypes.c_char_p
    function.argtypes = []
    return function().decode()


def kernel_in(library: ctypes.CDLL) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """``kernel``'s function, typed, from a built kernel library (the tests load builds with other flags)."""
    function = getattr(library, KERNEL_SYMBOL)
    function.restype = ctypes.c_int64
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    return function


def fast_path(path: str | None = None) -> Callable[[int, int, int, int], None]:
    """``fast_path(x_ptr, wide_ptr, flag_ptr, n)``: the float64 value before rounding and the hard flag per
    input (uint8), on ``path`` (default ``kernel_path()``), for tests of the error bound."""
    path = path or kernel_path()
    if path not in available_paths():
        raise ValueError(f"kernel path {path!r}: this CPU runs {', '.join(available_paths())}")
    with _lock:
        function = _kernel_library().sigbench_ziv_f32_fast_path_on
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    index = PATHS.index(path)

    def on_path(x: int, wide: int, flag: int, n: int) -> None:
        if function(x, wide, flag, n, index) != 0:
            raise ValueError(f"kernel path {path!r}: the built kernel says this CPU cannot run it")

    return on_path


@functools.cache
def _ffi_library() -> ctypes.CDLL:
    import jax.ffi
    import jaxlib

    cxx = compiler("c++")
    if cxx is None:
        raise BuildError(status("c++"))
    command = [cxx, "-std=c++17", *FLAGS, f"-I{jax.ffi.include_dir()}", f"-I{_HERE}"]
    key = (KERNEL_SOURCE.read_text(), jaxlib.__version__)  # ziv_ffi.cc includes the kernel
    # OpenMP's threads wait passively between calls here (libgomp reads this once, when the library loads it).
    # Inside XLA they would spin for their next team while XLA's own threads want the same cores: on a busy
    # 2-core machine 2 threads took 12 ms per call at n = 2^20 instead of 0.9 (1 thread: 0.9 ms).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return ctypes.CDLL(str(_build(command, FFI_SOURCE, "ziv-ffi", key)))


def register_jax_target(name: str) -> None:
    """Register the FFI handler with XLA's CPU platform under ``name`` (once per process)."""
    import jax.ffi

    kernel_path()  # a forced path the CPU lacks is an error here, not a silent fallback
    with _lock:
        library = _ffi_library()
        if name not in _registered:
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, FFI_SYMBOL)), platform="cpu")
            _registered.add(name)


_registered: set[str] = set()


def ffi_built_path() -> str:
    """``built_path`` of JAX's FFI library (its own copy of the kernel, so its own choice); builds it."""
    with _lock:
        function = _ffi_library().sigbench_ziv_path
    function.restype = ctypes.c_char_p
    function.argtypes = []
    return function().decode()
