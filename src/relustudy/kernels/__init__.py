"""Fused CPU kernels (``rectifiers.c``), compiled once with the system C compiler, called via ctypes.

Why: on this torch build, ``torch.where`` and PReLU's backward run at 20-35x the time of a copy of
the same tensors (the micro-benchmark, ``relustudy bench``), which made PReLU and Xu's RReLU the slowest
arms of every training run. One C pass per direction reaches the memory bound.

The library is built on first use into ``<cache>/kernels/<hash>/`` (``RELUSTUDY_CACHE``, see
:func:`relustudy.data.default_cache_dir`), keyed by the source text and the compiler command, with
an exclusive temporary file renamed into place, so two processes never see a half-written
library. Where no compiler is found or the build fails, :func:`library` returns None with the
reason in :func:`unavailable_reason`, and the activations fall back to their PyTorch compositions
(``relustudy.activations.implementation`` names which one a run used).

``RELUSTUDY_KERNELS=torch`` forces the fallback (to compare, or to rule the kernels out).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch

from ..data import default_cache_dir

ENV_SWITCH = "RELUSTUDY_KERNELS"
SOURCE_NAME = "rectifiers.c"
# -fno-trapping-math lets the compiler evaluate both sides of `x > 0 ? x : a * x` (vector selects);
# AVX2 gives the loops 8 float lanes (the noise hash's 32-bit multiplies need it), so it is used
# where the CPU has it.
CFLAGS = ("-O3", "-fno-trapping-math", "-fno-math-errno", "-fopenmp", "-fPIC", "-shared", "-std=c11")

# The storage dtypes with kernels, and their names' suffix in rectifiers.c.
SUFFIXES = {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16"}

_reason: list[str] = []


def _source(name: str = SOURCE_NAME) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _cpu_has_avx2() -> bool:
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


@lru_cache(maxsize=1)
def cflags() -> tuple[str, ...]:
    return CFLAGS + (("-mavx2", "-mfma") if _cpu_has_avx2() else ())


def source_hash() -> str:
    """Short hash of the kernel source and flags: names the implementation in provenance."""
    return hashlib.sha256((_source() + " ".join(cflags())).encode()).hexdigest()[:12]


def _cache_root() -> Path:
    return default_cache_dir() / "kernels"


def _build(target: Path, source_name: str = SOURCE_NAME, flags: tuple[str, ...] | None = None) -> None:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise OSError("no C compiler (gcc/cc) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / source_name
        src.write_text(_source(source_name))
        out = Path(tmp) / "lib.so"
        cmd = [cc, *(cflags() if flags is None else flags), str(src), "-o", str(out), "-lm", "-ldl"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OSError(
                f"{cc} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
            )
        os.replace(out, target)  # atomic: a reader sees no library or the whole one


LOOPBACK_SOURCE = "loopback.c"
LOOPBACK_FLAGS = ("-O2", "-fPIC", "-shared", "-std=gnu11")


@lru_cache(maxsize=1)
def loopback_library() -> Path:
    """The built ``loopback.c`` (an ``LD_PRELOAD`` library that keeps a process's servers on the
    loopback interface; see the file), compiled once into the cache like the kernels; OSError
    where it cannot be built."""
    digest = hashlib.sha256((_source(LOOPBACK_SOURCE) + " ".join(LOOPBACK_FLAGS)).encode()).hexdigest()[:12]
    target = _cache_root() / digest / "libloopback.so"
    if not target.is_file():
        _build(target, LOOPBACK_SOURCE, LOOPBACK_FLAGS)
    return target


def _declare(lib: ctypes.CDLL) -> None:
    p, i64, i32, u64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_uint64
    signatures = {
        "prelu_forward": lambda real: [p, p, p, i64, i64, i64, i32],
        "prelu_backward": lambda real: [p, p, p, p, p, i64, i64, i64, i32],
        "rrelu_forward": lambda real: [p, p, i64, u64, real, real, i32],
        "rrelu_backward": lambda real: [p, p, p, i64, u64, real, real, i32],
        "rrelu_noise": lambda real: [p, i64, u64, real, real],
        "elu_backward": lambda real: [p, p, p, i64, real, i32],
        "elu_forward": lambda real: [p, p, i64, real, i32],
    }
    lib.elu_float_path.argtypes, lib.elu_float_path.restype = [i32], i32
    for dtype, sfx in SUFFIXES.items():
        real = ctypes.c_double if dtype == torch.float64 else ctypes.c_float  # bf16 computes in float32
        for name, argtypes in signatures.items():
            if name == "rrelu_noise" and dtype == torch.bfloat16:
                continue  # the divisors are float32's (rrelu_noise_f32)
            fn = getattr(lib, f"{name}_{sfx}")
            fn.argtypes, fn.restype = argtypes(real), None


@lru_cache(maxsize=1)
def library() -> ctypes.CDLL | None:
    """The loaded kernel library, or None (see :func:`unavailable_reason`)."""
    if os.environ.get(ENV_SWITCH, "").lower() == "torch":
        _reason.append(f"{ENV_SWITCH}=torch")
        return None
    target = _cache_root() / source_hash() / "librectifiers.so"
    try:
        if not target.is_file():
            _build(target)
        lib = ctypes.CDLL(str(target))
        _declare(lib)
        return lib
    except OSError as e:
        _reason.append(f"kernels unavailable: {e}")
        return None


# The float32 ELU forward at alpha = 1 (rectifiers.c): its paths by number; any other alpha, and
# a build without FMA, takes path 0.
ELU_FLOAT_PATHS = {
    0: "expm1 in float64, 4 lanes",
    1: "expm1 in float32, AVX2 (8 lanes)",
    2: "expm1 in float32, AVX-512 (16 lanes)",
}


def elu_float_path(force: str | None = None) -> str:
    """The path the float32 ELU forward at alpha = 1 takes in this process (the widest the CPU
    has, unless forced): one of ELU_FLOAT_PATHS' values. ``force`` (a value of ELU_FLOAT_PATHS)
    switches it, for tests and benchmarks; a path the CPU lacks falls back to the next one."""
    lib = library()
    if lib is None:
        return "PyTorch"
    if force is None:
        return ELU_FLOAT_PATHS[lib.elu_float_path(-1)]
    numbers = {v: k for k, v in ELU_FLOAT_PATHS.items()}
    if force not in numbers:
        raise ValueError(f"unknown ELU path {force!r}; valid: {', '.join(numbers)}")
    return ELU_FLOAT_PATHS[lib.elu_float_path(numbers[force])]


def unavailable_reason() -> str:
    return _reason[-1] if _reason else ""


def supports(x: torch.Tensor) -> bool:
    """Whether the fused kernels take ``x``: a CPU float32, float64 or bfloat16 tensor (CUDA tensors
    use the PyTorch path)."""
    return x.device.type == "cpu" and x.dtype in SUFFIXES and library() is not None


def suffix(x: torch.Tensor) -> str:
    return SUFFIXES[x.dtype]


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the kernels compute ``x``'s pass in (and take coefficients in): bfloat16 tensors
    are widened to float32 and their outputs rounded once to bfloat16."""
    return torch.float32 if x.dtype == torch.bfloat16 else x.dtype


def layout(x: torch.Tensor, coefficients: int) -> tuple[torch.Tensor, int, int, int]:
    """``(x', outer, C, inner)``: x' shares memory with x when x is contiguous in NCHW or in
    channels_last (else a contiguous copy), and its memory is (outer, C, inner)."""
    if coefficients > 1 and (x.dim() < 2 or x.shape[1] != coefficients):
        raise ValueError(f"expected input with {coefficients} channels on dim 1, got shape {tuple(x.shape)}")
    if coefficients == 1:
        x = x if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last) else x.contiguous()
        return x, x.numel(), 1, 1
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        n, c, h, w = x.shape
        return x, n * h * w, c, 1
    x = x.contiguous()
    n, c = x.shape[0], x.shape[1]
    return x, n, c, x.numel() // max(n * c, 1)
