"""Implementation micro-benchmark of the activations (the benchmark chapter's timing table).

The Theano blog this study revisits timed ReLU written as ``max(x, 0)``, ``(x + |x|)/2`` and a
switch, and PReLU in max/min and abs forms, by timing whole MNIST training runs. Jan Schlueter
replied that the activation itself should be profiled, forward and backward separately. This
module does that, against a memory-bandwidth bound measured in the same run:

    benchmark_activations(names=None, shape=(128, 32, 28, 28), device="cpu",
                          dtype=torch.float32, repeats=7, min_run_time=0.2,
                          compile=False, threads=None) -> pandas.DataFrame

What is timed (one row per case and direction; see ``COLUMNS``)
- kind ``"variant"``: the registry's implementation variants ``VARIANTS`` and the Theano blog's
  forms as written ``AS_WRITTEN`` (plain autograd; ``relu_max[as written]``, ...) (relu, relu_max,
  relu_mask, relu_abs, relu_where, prelu, prelu_maxmin, prelu_abs, prelu_schluter, prelu_where), as built by
  ``build_activation(name, num_channels=shape[1])`` (PReLU channel-wise, a = 0.25).
- kind ``"builtin"``: PyTorch functions called directly, ``BUILTINS`` (F.relu, F.leaky_relu
  slope 0.01, F.prelu, F.rrelu in training and in eval mode, F.elu, torch.tanh).
- kind ``"module"``: every other registry activation (lrelu, rrelu, torch_rrelu, elu, tanh), as
  the models use it (modules in training mode, so the RReLUs sample noise).
- kind ``"compiled"`` (``compile=True`` only): every variant under ``torch.compile`` (default
  inductor backend; relu and prelu are included as the compiled references). A failure is
  recorded per variant in ``error`` ("compile failed: <one line>") with NaN times, never raised.
  Before timing, the compiled forward output and input/parameter gradients are compared with
  eager ones (``torch.testing.assert_close`` with dtype-default tolerances; PReLU's grad_a, a
  reduction the compiler may reorder, within 16 eps * sum|grad_out * x|, see ``_mismatches``)
  -> ``compiled_matches_eager``; a mismatch is recorded (and explained in ``error``) and the
  variant is still timed. Buffer donation of compiled backward graphs is switched off (it
  forbids the ``retain_graph=True`` the backward timing needs).
- kind ``"bound"``: ``name="copy"``, ``direction="copy"``: ``dst.copy_(src)`` into a
  preallocated tensor of the input's size (reads N and writes N elements); ``name="add"``,
  ``direction="backward"``: ``torch.add(src, grad_out, out=dst)`` (reads 2N, writes N: the streams
  of a backward pass); ``exp``, ``expm1`` and ``tanh`` (``direction="forward"``) into ``dst``.

Forward is ``f(x)`` with ``x.requires_grad=True``, i.e. the training forward as a network pays
it, including autograd's graph recording (and ``ctx.save_for_backward`` of the custom Functions);
the output is freed after each call. Backward is
``torch.autograd.grad(out, (x, *params), grad_out, retain_graph=True)`` on a graph built once
per measurement: it returns fresh gradients instead of accumulating into ``.grad`` (which
``out.backward(grad_out, retain_graph=True)`` would do, adding a read-modify-write of N
elements per call). For PReLU forms ``params`` is (a,), so the timed backward includes the
reduction of grad_a. Note (see ``relustudy.activations``) that relu_max, relu_abs,
prelu_maxmin, prelu_abs and prelu_schluter use Python-level autograd Functions (left derivative
at 0), which the backward times include.

Measurements. Each measurement is ``torch.utils.benchmark.Timer(...).blocked_autorange(
min_run_time)`` and its median time per call (the Timer synchronises the accelerator around each
block, so CUDA times are complete). There are ``repeats`` independent measurements per case and
direction, taken in interleaved rounds (round r measures every case once, copy included), so a
background load that comes and goes spreads over all cases instead of hitting a few. Reported:
median, IQR (75th - 25th percentile, linear interpolation), min and max over the ``repeats``,
in milliseconds. The Timer runs with ``threads`` intra-op threads (default: the current
``torch.get_num_threads()``).

Bytes and the bound. ``bytes`` is what an ideal implementation moves (N elements of
``itemsize`` bytes, C = number of PReLU coefficients):
- forward: read x, write y = 2 N itemsize (+ C itemsize to read a for PReLU forms);
- backward: read grad_out and x, write grad_in = 3 N itemsize (+ 2 C itemsize for PReLU forms:
  read a, write grad_a; the grad_a reduction reads nothing beyond grad_out and x);
- copy: 2 N itemsize.
The same model is used for every case so rows compare on one yardstick; for F.rrelu in training
(and our rrelu/torch_rrelu modules) it is a lower bound, since the sampled noise must also be
written for the backward. ``gbps = bytes / median_s / 1e9`` and
``bound_ratio = median_ms / (copy_median_ms * bytes / copy_bytes)``: the time relative to the copy
scaled to the same number of bytes (1 = as fast as a copy moving the same bytes; the copy row has
1). At small shapes the data sit in cache and per-call overhead dominates, so the ratio means
"relative to a copy of the same size on this machine", not "relative to DRAM bandwidth".

``limit_ratio`` is the time over the largest of the limits that apply to the pass, all measured in
the same rounds on the same tensors: the copy scaled to the pass's bytes (always); for a backward
pass the ``add`` scaled to its bytes, because a pass that streams three tensors has a working set
1.5 times a copy's, which at a size near the last-level cache no longer fits it (from memory the
two limits agree); for ELU's forward the vectorised ``expm1`` (ELU is alpha (exp(x) - 1), which
PyTorch's CPU kernel evaluates as expm1: exp minus 1 loses the digits near 0), for tanh's forward
the vectorised ``tanh``. ``bound_ratio`` stays the copy-only ratio, so both are on the record.

``names``: registry names and/or ``BUILTINS`` names; None = all of them. An unknown name raises
``relustudy.registry.UnknownNameError`` (the registry's error, listing the valid names) before
anything is measured. A device that is not available raises ``DeviceUnavailableError``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

# torch.utils.benchmark imports cpp_extension, which logs "No CUDA runtime is found" on a CPU-only
# machine with a CUDA wheel: noise in every notebook that imports this module.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
import torch._functorch.config as functorch_config  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from .activations import ACTIVATIONS, TORCH_RRELU_BOUNDS, build_activation, implementation  # noqa: E402
from .experiments import validate_profile
from .provenance import cpu_identity, device_description, git_info, utc_now
from .store import atomic_write, write_json
from .trainer import tune_allocator

__all__ = [
    "BUILTINS",
    "COLUMNS",
    "DeviceUnavailableError",
    "KERNEL_CASES",
    "STOCK",
    "TRAINED_ACTIVATIONS",
    "VARIANTS",
    "at_shape",
    "benchmark_activations",
    "case_names",
    "last_level_cache",
]

VARIANTS: tuple[str, ...] = (
    "relu",
    "relu_max",
    "relu_mask",
    "relu_abs",
    "relu_where",
    "prelu",
    "prelu_maxmin",
    "prelu_abs",
    "prelu_schluter",
    "prelu_where",
)
"""Registry implementation variants (kind ``"variant"``; compiled too when compile=True)."""

PRELU_INIT = 0.25
LEAKY_SLOPE = 0.01

# name -> (fn(x, a) -> y, uses the PReLU coefficient a)
BUILTINS: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], bool]] = {
    "F.relu": (lambda x, a: F.relu(x), False),
    "F.leaky_relu": (lambda x, a: F.leaky_relu(x, LEAKY_SLOPE), False),
    "F.prelu": (lambda x, a: F.prelu(x, a), True),
    "F.rrelu[train]": (lambda x, a: F.rrelu(x, *TORCH_RRELU_BOUNDS, training=True), False),
    "F.rrelu[eval]": (lambda x, a: F.rrelu(x, *TORCH_RRELU_BOUNDS, training=False), False),
    "F.elu": (lambda x, a: F.elu(x), False),
    "torch.tanh": (lambda x, a: torch.tanh(x), False),
}
"""PyTorch functions timed directly (kind ``"builtin"``); F.prelu gets a (C,) tensor a = 0.25."""

COLUMNS: list[str] = [
    "name",
    "kind",
    "direction",
    "median_ms",
    "iqr_ms",
    "min_ms",
    "max_ms",
    "gbps",
    "bound_ratio",
    "bytes",
    "device",
    "dtype",
    "threads",
    "shape",
    "torch_version",
    "repeats",
    "min_run_time",
    "compiled_matches_eager",
    "error",
    "layout",
    "implementation",
    "limit_ratio",
]
"""Columns of the table, in order. ``compiled_matches_eager`` is None except on compiled rows;
``error`` is "" unless the case failed (then the times are NaN). ``layout`` is the input's memory
format (contiguous or channels_last), ``implementation`` the code that ran
(``relustudy.activations.implementation``; "PyTorch" for the builtins), ``limit_ratio`` the time over
the largest limit that applies (see the module docstring): the copy of the same bytes, the
three-stream ``add`` for backward passes, this CPU's vectorised expm1 / tanh for ELU's / tanh's
forward (the ``add``, ``expm1`` and ``tanh`` bound rows); ``bound_ratio`` is over the copy alone."""

LAYOUTS = ("contiguous", "channels_last")
# Cases built from a registry name with parameters (not a registry name themselves).
PARAMETRISED = {"prelu[shared]": ("prelu", {"mode": "shared"})}
# The Theano blog's forms as it wrote them: plain expressions, differentiated by autograd itself
# (timed beside the study's left-derivative forms, eager and compiled: kind "variant").
AS_WRITTEN = {
    f"{name}[as written]": (name, {"as_written": True})
    for name in ("relu_max", "relu_abs", "prelu_maxmin", "prelu_abs")
}
PARAMETRISED.update(AS_WRITTEN)
# Forward passes limited by an elementwise function's vectorised throughput rather than by memory.
COMPUTE_LIMITS = {"elu": "expm1", "F.elu": "expm1", "tanh": "tanh", "torch.tanh": "tanh"}
# The backward's memory limit beside the scaled copy: the same three streams (two read, one written).
BACKWARD_LIMIT = "add"

COPY_NAME = "copy"


class DeviceUnavailableError(RuntimeError):
    """The requested device (e.g. ``"cuda"`` on a machine without a GPU) cannot be used."""


@dataclass
class _Case:
    name: str
    kind: str
    fn: Callable[[torch.Tensor], torch.Tensor] | None
    params: list[torch.Tensor] = field(default_factory=list)
    n_coeff: int = 0  # PReLU coefficients read in forward / written (grad) in backward
    error: str = ""
    matches: bool | None = None
    times: dict[str, list[float]] = field(default_factory=lambda: {"forward": [], "backward": []})


def case_names() -> list[str]:
    """Every name ``benchmark_activations`` accepts: registry names, parametrised cases, then ``BUILTINS``."""
    return [*ACTIVATIONS.names(), *PARAMETRISED, *BUILTINS]


def _kind_of(name: str) -> str:
    if name in BUILTINS:
        return "builtin"
    return "variant" if name in VARIANTS or name in AS_WRITTEN else "module"


def _resolve_names(names: Iterable[str] | None) -> list[str]:
    if names is None:
        return [*VARIANTS, *(n for n in ACTIVATIONS.names() if n not in VARIANTS), *PARAMETRISED, *BUILTINS]
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for name in names:
        if name not in BUILTINS and name not in PARAMETRISED:
            ACTIVATIONS.get(name)  # raises UnknownNameError listing the valid names
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("names is empty; give None for every activation")
    return out


def _check_args(shape, repeats, min_run_time, threads, dtype) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of integers, got {shape!r}") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"shape must have >= 2 positive dims (channels on dim 1), got {shape!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if not isinstance(min_run_time, (int, float)) or not (0 < min_run_time < math.inf):
        raise ValueError(f"min_run_time must be a positive number of seconds, got {min_run_time!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return shape


def _check_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {str(dev)!r} requested but CUDA is not available")
    try:
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError) as e:
        raise DeviceUnavailableError(f"device {str(dev)!r} is not usable: {_one_line(e)}") from e
    return dev


def _one_line(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip().splitlines()
    msg = f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _grad_inputs(x: torch.Tensor, case: _Case) -> tuple[torch.Tensor, ...]:
    return (x, *case.params)


def _build_cases(names: Sequence[str], channels: int, dev: torch.device, dtype: torch.dtype) -> list[_Case]:
    cases: list[_Case] = []
    a = torch.full((channels,), PRELU_INIT, device=dev, dtype=dtype, requires_grad=True)
    for name in names:
        kind = _kind_of(name)
        if kind == "builtin":
            fn2, uses_a = BUILTINS[name]
            fn = (lambda x, fn2=fn2: fn2(x, a)) if uses_a else (lambda x, fn2=fn2: fn2(x, None))
            cases.append(_Case(name, kind, fn, [a] if uses_a else [], channels if uses_a else 0))
        else:
            reg_name, params = PARAMETRISED.get(name, (name, {}))
            module = build_activation(reg_name, num_channels=channels, **params).to(device=dev, dtype=dtype)
            params = [p for p in module.parameters() if p.requires_grad]
            cases.append(_Case(name, kind, module, params, sum(p.numel() for p in params)))
    return cases


def _compiled_case(case: _Case, x: torch.Tensor, grad_out: torch.Tensor) -> _Case:
    """``torch.compile`` a variant, run it once (compiles forward and backward) and compare it
    with eager. Any failure is recorded, never raised."""
    out = _Case(case.name, "compiled", None, case.params, case.n_coeff)
    try:
        compiled = torch.compile(case.fn)
        inputs = _grad_inputs(x, case)
        y_c = compiled(x)
        g_c = torch.autograd.grad(y_c, inputs, grad_out)
    except Exception as e:  # noqa: BLE001 -- any compiler error becomes a table entry
        out.error = f"compile failed: {_one_line(e)}"
        return out
    out.fn = compiled
    y_e = case.fn(x)
    g_e = torch.autograd.grad(y_e, inputs, grad_out)
    problems = _mismatches(y_c, y_e, g_c, g_e, x, grad_out)
    out.matches = not problems
    if problems:
        out.error = ("compiled != eager: " + "; ".join(problems))[:300]
    return out


def _mismatches(y_c, y_e, g_c, g_e, x, grad_out) -> list[str]:
    """Compare compiled with eager. Output and grad_in are elementwise: ``assert_close`` with
    its dtype-default tolerances. Parameter gradients (PReLU's grad_a) are sums over N/C
    elements whose order the compiler may change, so they get an absolute tolerance of
    ``16 eps sum|grad_out * x|`` over the reduced elements (|dy/da| <= |x| for every PReLU
    form): reassociation errors stay far below it, a wrong formula does not."""
    problems: list[str] = []
    pairs = [("output", y_c, y_e), ("grad_in", g_c[0], g_e[0])]
    for what, c, e in pairs:
        try:
            torch.testing.assert_close(c, e)
        except AssertionError as err:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            problems.append(f"{what}: " + ", ".join(lines[1:3]))
    terms = (grad_out * x.detach()).abs()
    per_channel = terms.sum(dim=[d for d in range(terms.dim()) if d != 1])
    eps = torch.finfo(x.dtype).eps
    for i, (c, e) in enumerate(zip(g_c[1:], g_e[1:], strict=True)):
        scale = per_channel if c.numel() == per_channel.numel() else per_channel.sum()
        tol = 16 * eps * scale.reshape(-1) + 1e-5
        diff = (c.detach() - e.detach()).abs().reshape(-1)
        if not bool((diff <= tol).all()):
            worst = int((diff - tol).argmax())
            problems.append(f"param {i} grad: |diff| {diff[worst].item():.3g} > tol {tol[worst].item():.3g} at {worst}")
    return problems


def _measure(stmt: str, globals_: dict, threads: int, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt=stmt, globals=globals_, num_threads=threads)
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def _summary(times_s: list[float]) -> dict[str, float]:
    if not times_s:
        return dict(median_ms=math.nan, iqr_ms=math.nan, min_ms=math.nan, max_ms=math.nan)
    t = np.asarray(times_s) * 1e3
    q25, q50, q75 = np.percentile(t, [25, 50, 75])
    return dict(median_ms=float(q50), iqr_ms=float(q75 - q25), min_ms=float(t.min()), max_ms=float(t.max()))


LIMIT_STATEMENTS = {
    "copy": "dst.copy_(src)",
    "add": "torch.add(src, g, out=dst)",
    "exp": "torch.exp(src, out=dst)",
    "expm1": "torch.expm1(src, out=dst)",
    "tanh": "torch.tanh(src, out=dst)",
}
# name -> (direction, elements moved per tensor element): the bound rows after the copy
LIMIT_ROWS = {"add": ("backward", 3), "exp": ("forward", 2), "expm1": ("forward", 2), "tanh": ("forward", 2)}


def _measure_rounds(cases, x, grad_out, src, dst, repeats, threads, min_run_time) -> dict[str, list[float]]:
    """``repeats`` interleaved rounds: each measures the limits (``LIMIT_STATEMENTS`` into a
    preallocated tensor) and every case once, forward and backward, appending to ``case.times``;
    returns the limits' times. A failing case is recorded."""
    limits: dict[str, list[float]] = {k: [] for k in LIMIT_STATEMENTS}
    operands = {"dst": dst, "src": src, "g": grad_out, "torch": torch}
    for _ in range(repeats):
        for k, stmt in LIMIT_STATEMENTS.items():
            limits[k].append(_measure(stmt, operands, threads, min_run_time))
        for case in cases:
            if case.error and case.fn is None:
                continue
            try:
                case.times["forward"].append(_measure("f(x)", {"f": case.fn, "x": x}, threads, min_run_time))
                out = case.fn(x)
                g = {"grad": torch.autograd.grad, "out": out, "inputs": _grad_inputs(x, case), "g": grad_out}
                case.times["backward"].append(
                    _measure("grad(out, inputs, g, retain_graph=True)", g, threads, min_run_time)
                )
                del out, g
            except Exception as e:  # noqa: BLE001 -- one failing case must not lose the table
                case.error = f"failed: {_one_line(e)}"
                case.fn = None
                case.times = {"forward": [], "backward": []}
    return limits


def benchmark_activations(
    names: Iterable[str] | None = None,
    shape: Sequence[int] = (128, 32, 28, 28),
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    repeats: int = 7,
    min_run_time: float = 0.2,
    compile: bool = False,
    threads: int | None = None,
    layout: str = "contiguous",
) -> pd.DataFrame:
    """Time every activation implementation forward and backward (see the module docstring).

    Returns one row per (name, kind, direction) plus the ``copy`` bound row, columns ``COLUMNS``.
    Expect roughly ``repeats * 2 * (cases + 1) * min_run_time`` seconds (plus compilation).
    """
    shape = _check_args(shape, repeats, min_run_time, threads, dtype)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "channels_last" and len(shape) != 4:
        raise ValueError(f"layout channels_last needs a 4-d shape, got {shape!r}")
    names = _resolve_names(names)
    dev = _check_device(device)
    threads = torch.get_num_threads() if threads is None else threads

    gen = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x, grad_out, src = (
        torch.randn(shape, generator=gen, dtype=dtype).to(dev).contiguous(memory_format=fmt) for _ in "xgs"
    )
    x.requires_grad_()
    dst = torch.empty_like(src)

    cases = _build_cases(names, shape[1], dev, dtype)
    # Compiled backward graphs "donate" (reuse) saved buffers by default, which forbids the
    # retain_graph=True the backward timing needs; disabled while compiling and running.
    no_donation = nullcontext()
    if compile:
        no_donation = functorch_config.patch(donated_buffer=False)
    with no_donation:
        if compile:
            cases += [_compiled_case(c, x, grad_out) for c in cases if c.kind == "variant"]
        limits = _measure_rounds(cases, x, grad_out, src, dst, repeats, threads, min_run_time)

    common = dict(
        layout=layout,
        device=str(dev),
        dtype=str(dtype).removeprefix("torch."),
        threads=threads,
        shape="x".join(map(str, shape)),
        torch_version=torch.__version__,
        repeats=repeats,
        min_run_time=float(min_run_time),
    )
    sizes = _Sizes(math.prod(shape), torch.empty((), dtype=dtype).element_size(), _summary(limits["copy"])["median_ms"])
    rows = _bound_rows(limits, sizes, common)
    limit_ms = {k: _summary(v)["median_ms"] for k, v in limits.items()}
    for case in cases:
        rows += _case_rows(case, sizes, limit_ms, common, dev, dtype)
    return pd.DataFrame(rows, columns=COLUMNS)


@dataclass(frozen=True)
class _Sizes:
    """A benchmark's tensor size (elements, bytes per element) and its measured copy time."""

    n: int
    itemsize: int
    copy_ms: float

    @property
    def copy_bytes(self) -> int:
        return 2 * self.n * self.itemsize

    def memory_ms(self, nbytes: int) -> float:
        """The time moving ``nbytes`` takes at the copy's bandwidth."""
        return self.copy_ms * nbytes / self.copy_bytes


def _bound_rows(limits: dict[str, list[float]], sizes: _Sizes, common: dict) -> list[dict]:
    """The copy row and the other limits' rows, measured on the same tensors in the same rounds."""
    rows = []
    for k, (direction, streams) in {COPY_NAME: ("copy", 2), **LIMIT_ROWS}.items():
        s_k = _summary(limits["copy" if k == COPY_NAME else k])
        k_bytes = streams * sizes.n * sizes.itemsize
        rows.append(
            dict(
                name=k,
                kind="bound",
                direction=direction,
                **s_k,
                gbps=k_bytes / (s_k["median_ms"] * 1e-3) / 1e9,
                bound_ratio=1.0 if k == COPY_NAME else s_k["median_ms"] / sizes.memory_ms(k_bytes),
                bytes=k_bytes,
                **common,
                compiled_matches_eager=None,
                error="",
                implementation="PyTorch",
                limit_ratio=1.0,
            )
        )
    return rows


def _case_rows(
    case: _Case, sizes: _Sizes, limit_ms: dict[str, float], common: dict, dev: torch.device, dtype: torch.dtype
) -> list[dict]:
    """One case's forward and backward rows: time, bandwidth, and ratios to the copy bound and to
    the case's own limit (memory, or the compute limit that is slower)."""
    n, itemsize = sizes.n, sizes.itemsize
    impl = (
        "PyTorch"
        if case.kind == "builtin"
        else implementation(PARAMETRISED.get(case.name, (case.name,))[0], dev.type, dtype)
    )
    if case.kind == "compiled":
        impl = f"torch.compile of: {impl}"
    rows = []
    for direction in ("forward", "backward"):
        if direction == "forward":
            nbytes = (2 * n + case.n_coeff) * itemsize
        else:
            nbytes = (3 * n + 2 * case.n_coeff) * itemsize
        s = _summary(case.times[direction])
        med = s["median_ms"]
        memory_ms = sizes.memory_ms(nbytes)
        limit = memory_ms
        if direction == "forward" and case.name in COMPUTE_LIMITS:
            limit = max(memory_ms, limit_ms[COMPUTE_LIMITS[case.name]])
        if direction == "backward":
            limit = max(memory_ms, limit_ms[BACKWARD_LIMIT] * nbytes / (LIMIT_ROWS[BACKWARD_LIMIT][1] * n * itemsize))
        rows.append(
            dict(
                name=case.name,
                kind=case.kind,
                direction=direction,
                **s,
                gbps=nbytes / (med * 1e-3) / 1e9,
                bound_ratio=med / memory_ms,
                bytes=nbytes,
                **common,
                compiled_matches_eager=case.matches,
                error=case.error,
                implementation=impl,
                limit_ratio=med / limit,
            )
        )
    return rows


# ------------------------------------------------------------------------ recorded benchmarks
# The chapter's micro-benchmark table is a record like a training run: settings per profile, the
# table as CSV and a JSON beside it with the settings and provenance, written atomically under
# ``<results>/microbench/<profile>/<device type>/``. The book reads it; nothing is typed.
# The activations the study trains, as the models run them, and PyTorch's stock function for each:
# the rows measured again at a profile's ``memory_shape``.
TRAINED_ACTIVATIONS = ("relu", "lrelu", "prelu", "prelu[shared]", "rrelu", "elu", "tanh")
STOCK = {
    "relu": "F.relu",
    "lrelu": "F.leaky_relu",
    "prelu": "F.prelu",
    "rrelu": "F.rrelu[train]",
    "elu": "F.elu",
    "tanh": "torch.tanh",
}
KERNEL_CASES = (*TRAINED_ACTIVATIONS, *STOCK.values())

_MEASURED = dict(shape=(128, 32, 30, 30), compile=True, layouts=LAYOUTS, memory_shape=(128, 64, 30, 30))
BENCH_PROFILES: dict[str, dict] = {
    # smoke: a tiny tensor and short timings, eager only (compiling takes minutes): CI's check
    # that the whole path works, not a measurement.
    "smoke": dict(
        shape=(16, 8, 16, 16), repeats=3, min_run_time=0.01, compile=False, layouts=LAYOUTS, memory_shape=(8, 8, 8, 8)
    ),
    # quick/paper: the activations of radford_convnet's first layer at batch 128 (128 x 32 x 30 x 30,
    # 14.7 MB per fp32 tensor), with the compiled variants. On the project's CPU (32 MB of L3) a
    # copy's source and destination about fill the L3, so the copy bound sits partly in cache and
    # its time varied between runs by up to 2x (the quick records of 10995e1 and 1aecc23).
    # Both memory layouts; the compiled variants (minutes of compiling) in the contiguous one only.
    # memory_shape: the trained activations and their stock functions again, eager, at twice the
    # channels (29.5 MB per tensor: a copy moves 59 MB, well beyond the L3), where every pass runs
    # from memory and the copy bound is DRAM bandwidth.
    "quick": dict(_MEASURED, repeats=7, min_run_time=0.2),
    "paper": dict(_MEASURED, repeats=15, min_run_time=0.5),
}
BENCH_FOLDER = "microbench"
BENCH_TABLE = "benchmark.csv"
BENCH_RECORD = "benchmark.json"


def benchmark_dir(results_dir, profile: str, device: str = "cpu"):
    return Path(results_dir) / BENCH_FOLDER / validate_profile(profile) / torch.device(device).type


def record_benchmark(profile: str, results_dir, device: str = "cpu", force: bool = False) -> pd.DataFrame:
    """Run the micro-benchmark with ``BENCH_PROFILES[profile]`` on ``device`` and record it (or,
    unless ``force``, return the existing record). Returns the table."""

    folder = benchmark_dir(results_dir, profile, device)
    if not force and (folder / BENCH_RECORD).is_file():
        return load_benchmark(results_dir, profile, device)
    settings = BENCH_PROFILES[profile]
    # Time the activations with the memory setting the trainer runs them with (freed activations
    # kept in the process): with glibc's default every fresh output of a tensor this size is new
    # pages, faulted in and zeroed inside the timed call.
    allocator = tune_allocator()
    start, t0 = utc_now(), time.perf_counter()
    run = {k: v for k, v in settings.items() if k not in ("layouts", "memory_shape")}
    layouts = settings.get("layouts", ("contiguous",))
    tables = [
        benchmark_activations(device=device, **{**run, "compile": run["compile"] and i == 0}, layout=layout)
        for i, layout in enumerate(layouts)
    ]
    if settings.get("memory_shape"):
        memory = {**run, "shape": settings["memory_shape"], "compile": False}
        tables += [benchmark_activations(KERNEL_CASES, device=device, **memory, layout=layout) for layout in layouts]
    df = pd.concat(tables, ignore_index=True)
    wall = time.perf_counter() - t0
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / BENCH_TABLE, df.to_csv(index=False))
    # the JSON is written last: its presence marks a complete record
    write_json(
        folder / BENCH_RECORD,
        {
            "profile": profile,
            "settings": {
                **settings,
                "shape": list(settings["shape"]),
                **({"memory_shape": list(settings["memory_shape"])} if settings.get("memory_shape") else {}),
                "layouts": list(layouts),
            },
            "provenance": {
                **git_info(),
                "device": device_description(device),
                "cpu_identity": cpu_identity(),
                "torch_version": torch.__version__,
                "allocator": allocator,
                "last_level_cache": last_level_cache(),
                "start_time": start,
                "end_time": utc_now(),
                "wall_seconds": wall,
            },
        },
    )
    return load_benchmark(results_dir, profile, device)  # same table and attrs as a cached record


def last_level_cache() -> str:
    """The CPU's largest cache as the kernel reports it (Linux; "unknown" elsewhere), e.g. "32768K"."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            sizes.append((int((index / "level").read_text()), (index / "size").read_text().strip()))
        except (OSError, ValueError):
            continue
    return max(sizes)[1] if sizes else "unknown"


def at_shape(df: pd.DataFrame, which: str = "shape") -> pd.DataFrame:
    """The rows of a recorded table measured at its profile's ``"shape"`` (every case) or
    ``"memory_shape"`` (the trained activations, eager); a table without a record is returned whole."""
    if which not in ("shape", "memory_shape"):
        raise ValueError(f"which must be 'shape' or 'memory_shape', got {which!r}")
    shape = ((df.attrs.get("record") or {}).get("settings") or {}).get(which)
    if not shape:
        return df if which == "shape" else df.iloc[0:0]
    out = df[df["shape"].astype(str) == "x".join(map(str, shape))]
    out.attrs = df.attrs
    return out


def load_benchmark(results_dir, profile: str, device: str = "cpu") -> pd.DataFrame:
    """The recorded table with ``record`` (settings and provenance) in ``df.attrs``; a missing
    record raises FileNotFoundError naming the command that makes it."""

    folder = benchmark_dir(results_dir, profile, device)
    if not (folder / BENCH_RECORD).is_file():
        raise FileNotFoundError(
            f"no {profile} micro-benchmark record for {device} in {folder}; "
            f"run: relustudy bench --profile {profile} --device {device}"
        )
    # an empty error cell is "" (no error), not NaN
    df = pd.read_csv(
        folder / BENCH_TABLE,
        keep_default_na=False,
        na_values={c: ["", "nan", "NaN"] for c in COLUMNS if c not in ("error", "layout", "implementation")},
    )
    df["error"] = df["error"].astype(str)
    if "layout" not in df:  # records made before the layout column: contiguous tensors
        df["layout"] = "contiguous"
    if "implementation" not in df:
        df["implementation"] = ""
    if "limit_ratio" not in df:
        df["limit_ratio"] = df["bound_ratio"]
    df.attrs["record"] = json.loads((folder / BENCH_RECORD).read_text(encoding="utf-8"))
    return df


def speed_ratio(
    df: pd.DataFrame, a: str, b: str, direction: str, kind: str = "variant", layout: str = "contiguous"
) -> dict:
    """Time of ``a`` over time of ``b`` (median ratio) for one direction, and whether the two
    differ beyond the measurements' own spread: their [min, max] ranges over the repeats do not
    overlap -> "different", else "within noise". Rows at the profile's ``shape``."""
    df = at_shape(df)
    rows = df[(df["kind"] == kind) & (df["direction"] == direction)]
    if "layout" in rows:
        rows = rows[rows["layout"] == layout]
    rows = rows.set_index("name")
    ra, rb = rows.loc[a], rows.loc[b]
    overlap = ra["min_ms"] <= rb["max_ms"] and rb["min_ms"] <= ra["max_ms"]
    return {
        "a": a,
        "b": b,
        "direction": direction,
        "ratio": float(ra["median_ms"] / rb["median_ms"]),
        "verdict": "within noise" if overlap else "different",
    }
