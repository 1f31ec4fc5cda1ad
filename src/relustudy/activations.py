"""Activation registry.

Every activation is built by name from one registry, ``ACTIVATIONS``; each factory has the
uniform signature ``factory(num_channels: int | None = None, **params) -> nn.Module``.

Public API other modules rely on:
- ``ACTIVATIONS: Registry``
- ``build_activation(name, num_channels=None, **params) -> nn.Module``
- ``activation_factory(name, **params) -> Callable[[int], nn.Module]``: validates the params
  immediately (raises ValueError / UnknownNameError before any model is built) and returns a
  callable mapping a channel count to a fresh module. Models call it once per placement.
- ``no_weight_decay_parameters(model) -> list[nn.Parameter]``: the learned activation
  coefficients (PReLU's a), which the trainer puts in an optimizer group without weight decay.
- Every module built here subclasses ``Activation`` and carries ``saturation``: ``"rectifier"``
  (a unit is inactive/saturated when its output <= 0) or ``"tanh"`` (saturated when
  |output| >= 0.95), used by ``relustudy.metrics``.

Registered names and their parameters (unknown names raise ``UnknownNameError``; unknown or
out-of-range parameters raise ``ValueError`` naming the valid parameters / the constraint):

==============  ======================================  ==========================================
name            parameters (default)                    y for x < 0
==============  ======================================  ==========================================
relu            -                                       0                     (``F.relu``)
relu_max        ``as_written`` (False)                  0   ``torch.maximum(x, 0)``
relu_mask       -                                       0   ``x * (x > 0)``
relu_abs        ``as_written`` (False)                  0   ``(x + |x|) / 2``
relu_where      -                                       0   ``torch.where(x > 0, x, 0)``
lrelu           ``a`` in (1, inf) *or* ``slope`` in     x / a (Xu et al.) or slope * x
                [0, 1) (``slope=0.01``)
prelu           ``mode`` channel|shared (channel),      a * x, a learned (``F.prelu``)
                ``init`` (0.25)
prelu_maxmin    as prelu, ``as_written`` (False)        ``max(0, x) + a * min(0, x)``
prelu_abs       as prelu, ``as_written`` (False)        ``(x + |x|)/2 + a * (x - |x|)/2``
prelu_schluter  as prelu                                ``0.5 (1 + a) x + 0.5 (1 - a) |x|``
prelu_where     as prelu                                ``torch.where(x > 0, x, a * x)``
rrelu           ``lower`` (3), ``upper`` (8),           x / a, a ~ U(lower, upper) (Xu et al.)
                1 < lower <= upper
torch_rrelu     ``lower`` (1/8), ``upper`` (1/3),       s * x, s ~ U(lower, upper) (``nn.RReLU``)
                0 <= lower <= upper < 1
elu             ``alpha`` (1), alpha > 0                alpha * (exp(x) - 1)
tanh            -                                       tanh(x)            (saturation ``"tanh"``)
==============  ======================================  ==========================================

The ``relu_*`` and ``prelu_*`` entries are *implementation variants* for the benchmark chapter
(the Theano-blog comparison of ReLU/PReLU formulations): the same function, written differently.

Gradient at exactly x = 0 (decision). Every activation here uses the *left* derivative, i.e.
the x < 0 branch, which is what PyTorch's own kernels do: ``F.relu`` gives 0, ``F.leaky_relu``
gives the slope, ``F.prelu`` gives d/dx = a and d/da = x = 0, ``F.rrelu`` gives the sampled
slope, ``F.elu`` gives alpha. Two autograd primitives break this and are replaced where the
variants use them, keeping each formulation's forward:
- ``torch.maximum``/``torch.minimum`` split the gradient 0.5/0.5 at ties, so ``maximum(x, 0)``
  has gradient 0.5 at 0 -> ``_max0``/``_min0`` (custom autograd Functions, left derivative).
- ``abs``' gradient at 0 is sign(0) = 0, so ``(x + |x|)/2`` has gradient 0.5 at 0 ->
  ``_abs0``, an ``abs`` whose gradient at 0 is -1 (its left derivative); with it every abs
  formulation gives exactly the left derivative (0 for relu_abs, a for the PReLU forms).
``relu_mask`` and ``relu_where`` already give 0 at 0 with plain autograd. The benchmark chapter
should note that relu_max/relu_abs/prelu_maxmin/prelu_abs/prelu_schluter pay for a Python-level
autograd Function in the backward pass; ``as_written=True`` (relu_max, relu_abs, prelu_maxmin,
prelu_abs) runs the blog's plain expression with autograd's own backward instead (see ``_AsWritten``).

Implementations. On the CPU in fp32/fp64, ``prelu`` and ``rrelu`` run fused one-pass kernels
(``relustudy.kernels``, plain C compiled on first use): this torch build's PReLU backward and
``torch.where`` take 20-35x the time of a copy. ``prelu``'s forward is bit-identical to
``F.prelu`` and its grad_x to the reference; grad_a is summed in another order (double partial
sums), equal to the float64 reference within float rounding. ``rrelu`` draws its divisors from a
counter-based hash of (element index, a seed drawn from torch's generator every training pass)
instead of torch's ``uniform_``: the same law, a ~ U(lower, upper) on a 2^-24 grid, fresh every
pass, and the backward recomputes them instead of saving them. ``elu`` runs a fused forward
(at alpha 1 in float32 lanes, AVX-512 or AVX2 with the same bits, faithfully rounded; any other
alpha in double, rounded once; both within 1 ulp of ``F.elu`` and of the float64 reference,
``benchmarks/check_elu_float.py``, ``benchmarks/bench_elu_forward.py``) and a backward from its
output. Without a C compiler they fall back to the PyTorch forms below;
``implementation(name)`` says which one runs, and records store it.

Slopes of the leaky ReLU in the literature: Maas et al. 2013 use 0.01 (our default); Xu et al.
2015 write y = x/a with a = 100 ("leaky") and a = 5.5 ("very leaky"); Keras' ``LeakyReLU``
defaults to 0.3. The sources' own slopes live in their modules (``relustudy.sources``).

RReLU. ``rrelu`` is Xu et al. 2015 exactly: in training, for every element and every forward
pass a ~ U(lower=3, upper=8) and y = x / a for x < 0; in eval y = x / ((lower + upper) / 2) =
x / 5.5. ``torch_rrelu`` is PyTorch's ``nn.RReLU``: the *slope* s ~ U(1/8, 1/3) and eval slope
(1/8 + 1/3) / 2 = 0.22917. These are different: Xu's slope 1/a with a uniform is not uniform
on [1/8, 1/3] (its mean is E[1/a] = ln(8/3)/5 = 0.19616, not 0.22917), and the eval slopes
differ (1/5.5 = 0.18182 vs 0.22917). Noise comes from the torch RNG, so ``torch.manual_seed``
makes runs repeatable.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from relustudy import kernels
from relustudy.kernels.autograd import _fused_elu, _FusedELUBackward, _FusedPReLU, _FusedRReLU, _rrelu_seed, rrelu_noise
from relustudy.registry import Registry

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ELU",
    "PRELU_DEFAULT_INIT",
    "LeakyReLU",
    "MAAS_LRELU_SLOPE",
    "PReLU",
    "PReLUAbs",
    "PReLUMaxMin",
    "PReLUSchluter",
    "ReLU",
    "ReLUAbs",
    "ReLUMask",
    "ReLUMax",
    "ReLUWhere",
    "RReLU",
    "TORCH_RRELU_BOUNDS",
    "Tanh",
    "TorchRReLU",
    "RRELU_DEFAULT_BOUNDS",
    "activation_factory",
    "build_activation",
    "display_name",
    "implementation",
    "no_weight_decay_parameters",
    "rrelu_noise",
]

ACTIVATIONS: Registry = Registry("activation")

MAAS_LRELU_SLOPE = 0.01  # Maas et al. 2013; our default when neither a nor slope is given
RRELU_DEFAULT_BOUNDS = (3.0, 8.0)  # RReLU's divisor a ~ U(3, 8), eval a = 5.5 (the form Xu et al. define)
TORCH_RRELU_BOUNDS = (1.0 / 8.0, 1.0 / 3.0)  # nn.RReLU defaults (slope, not divisor)
PRELU_DEFAULT_INIT = 0.25  # PReLU's initial coefficient (the value He et al. introduced it with)


# ---------------------------------------------------------------------------------------------
# Validation helpers: every message starts with the registry name, so a bad config says which
# activation it was for.
# ---------------------------------------------------------------------------------------------
def _real(owner: str, key: str, value: Any) -> float:
    # bool is an int subclass; True as a slope is surely a config mistake.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{owner}: {key} must be a finite number, got {value!r}")
    return float(value)


def _flag(owner: str, key: str, value: Any) -> bool:
    _require(isinstance(value, bool), owner, f"{key} must be True or False, got {value!r}")
    return value


def _require(cond: bool, owner: str, message: str) -> None:
    if not cond:
        raise ValueError(f"{owner}: {message}")


def _check_num_channels(owner: str, num_channels: Any) -> int | None:
    ok = num_channels is None or (
        isinstance(num_channels, int) and not isinstance(num_channels, bool) and num_channels >= 1
    )
    _require(ok, owner, f"num_channels must be None or an integer >= 1, got {num_channels!r}")
    return num_channels


def _fmt(v: float) -> str:
    return f"{v:.6g}"


# ---------------------------------------------------------------------------------------------
# Autograd primitives with the left derivative at 0 (see "Gradient at exactly x = 0" above).
# Backward passes are written with torch ops, so they are themselves differentiable in
# grad_output (double backward works; the masks have zero derivative almost everywhere).
# ---------------------------------------------------------------------------------------------
class _Max0(torch.autograd.Function):
    """``torch.maximum(x, 0)`` with gradient 0 at x == 0 (torch.maximum would give 0.5)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.maximum(x, x.new_zeros(()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, grad, 0.0)


class _Min0(torch.autograd.Function):
    """``torch.minimum(x, 0)`` with gradient 1 at x == 0 (torch.minimum would give 0.5)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.minimum(x, x.new_zeros(()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, 0.0, grad)


class _Abs0(torch.autograd.Function):
    """``|x|`` with gradient -1 at x == 0 (torch.abs gives sign(0) = 0)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.abs()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, grad, -grad)


def _max0(x: torch.Tensor) -> torch.Tensor:
    return _Max0.apply(x)


def _min0(x: torch.Tensor) -> torch.Tensor:
    return _Min0.apply(x)


def _abs0(x: torch.Tensor) -> torch.Tensor:
    return _Abs0.apply(x)


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------
class Activation(nn.Module):
    """Base of every activation built here.

    ``name`` is the registry name (set by registration), ``saturation`` tells
    ``relustudy.metrics`` how to count inactive/saturated units.
    """

    name: str = "activation"
    display: str = "activation"
    saturation: str = "rectifier"

    def __init__(self, num_channels: int | None = None):
        super().__init__()
        self.num_channels = _check_num_channels(self.name, num_channels)


def _register(name: str, display: str | None = None):
    """Register an Activation class under ``name`` (shown on pages as ``display``, default the
    name); the class itself is the factory."""

    def add(cls: type[Activation]) -> type[Activation]:
        cls.name = name
        cls.display = display or name
        return ACTIVATIONS.register(name, cls)

    return add


def display_name(name: str) -> str:
    """How a page names activation ``name`` (a registry name, or ``prelu[shared]`` for PReLU's
    channel-shared form); an unknown name raises the registry's error listing the valid ones."""
    if name.endswith("[shared]"):
        return f"{display_name(name.removesuffix('[shared]'))} (channel-shared)"
    return ACTIVATIONS.get(name).display


@_register("relu", "ReLU")
class ReLU(Activation):
    """max(0, x) via ``F.relu``; the reference every ``relu_*`` variant must equal."""

    formula = "F.relu(x)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)

    def extra_repr(self) -> str:
        return f"formula={self.formula!r}"


class _AsWritten:
    """``as_written=True`` runs the plain expression as the Theano blog wrote it, differentiated by
    autograd itself (no custom backward): the form the blog timed, for the benchmark. Its gradient
    at exactly x == 0 is autograd's (0.5 for ``maximum`` ties and ``(x + |x|)/2``), not the left
    derivative every other activation here uses; x == 0 has probability 0 for real inputs."""

    as_written: bool = False

    def _set_as_written(self, value: Any) -> None:
        self.as_written = _flag(self.name, "as_written", value)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", as written (plain autograd)" if self.as_written else "")


class _AsWrittenReLU(_AsWritten, ReLU):
    """A ReLU form with the ``as_written`` switch (its only parameter)."""

    def __init__(self, num_channels: int | None = None, *, as_written: bool = False):
        super().__init__(num_channels)
        self._set_as_written(as_written)


@_register("relu_max", "ReLU (max)")
class ReLUMax(_AsWrittenReLU):
    formula = "torch.maximum(x, 0)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.as_written:
            return torch.maximum(x, x.new_zeros(()))
        return _max0(x)  # custom backward: torch.maximum splits the gradient 0.5 at the tie


@_register("relu_mask", "ReLU (mask)")
class ReLUMask(ReLU):
    formula = "x * (x > 0)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (x > 0)  # plain autograd already gives 0 at 0


@_register("relu_abs", "ReLU (abs)")
class ReLUAbs(_AsWrittenReLU):
    formula = "(x + |x|) / 2"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.as_written:
            return (x + x.abs()) * 0.5
        return (x + _abs0(x)) * 0.5  # _abs0: torch.abs would give gradient 0.5 at 0


@_register("relu_where", "ReLU (switch)")
class ReLUWhere(ReLU):
    formula = "torch.where(x > 0, x, 0)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, 0.0)  # plain autograd already gives 0 at 0


@_register("lrelu", "LReLU")
class LeakyReLU(Activation):
    """Leaky ReLU in either parameterization (exactly one of ``a`` or ``slope``).

    ``a``: Xu et al. 2015, y = x / a for x < 0, a in (1, inf) (they use 100 and 5.5).
    ``slope``: y = slope * x for x < 0, slope in [0, 1) (Maas 0.01, Smith 0.1, Keras 0.3).
    Neither given: slope = ``MAAS_LRELU_SLOPE`` = 0.01. Computed with ``F.leaky_relu`` and
    slope = 1/a, so the a-form equals x / a to within one rounding.
    """

    def __init__(self, num_channels: int | None = None, *, a: float | None = None, slope: float | None = None):
        super().__init__(num_channels)
        _require(
            a is None or slope is None,
            self.name,
            f"give exactly one of a (Xu et al.'s y = x/a) or slope (y = slope*x), got a={a!r} and slope={slope!r}",
        )
        if a is not None:
            a = _real(self.name, "a", a)
            _require(a > 1, self.name, f"a must be > 1 (Xu et al.'s y = x/a), got {a!r}")
            self.a: float | None = a
            self.slope = 1.0 / a
        else:
            slope = MAAS_LRELU_SLOPE if slope is None else _real(self.name, "slope", slope)
            _require(0 <= slope < 1, self.name, f"slope must be in [0, 1) (y = slope*x for x < 0), got {slope!r}")
            self.a = None
            self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.slope)

    def extra_repr(self) -> str:
        if self.a is not None:
            return f"a={_fmt(self.a)} (slope={_fmt(self.slope)})"
        return f"slope={_fmt(self.slope)}"


@_register("prelu", "PReLU")
class PReLU(Activation):
    """PReLU (He et al. 2015): y = x for x > 0, a * x otherwise, with a learned.

    ``mode="channel"`` (default, as He et al.) learns one a per channel and needs
    ``num_channels``; ``mode="shared"`` learns one a for the layer. The coefficient is the
    parameter ``weight`` of shape (C,) or (1,), initialised to ``init`` (0.25). Channels are
    dim 1, so (N, C) and (N, C, H, W) inputs both work. Exclude ``weight`` from weight decay
    (``no_weight_decay_parameters``), as He et al. do.
    """

    MODES = ("channel", "shared")
    formula = "F.prelu(x, a)"

    def __init__(self, num_channels: int | None = None, *, mode: str = "channel", init: float = PRELU_DEFAULT_INIT):
        super().__init__(num_channels)
        _require(mode in self.MODES, self.name, f"mode must be one of {self.MODES}, got {mode!r}")
        init = _real(self.name, "init", init)
        if mode == "channel":
            _require(
                num_channels is not None,
                self.name,
                "mode='channel' learns one a per channel and needs num_channels (or use mode='shared')",
            )
        self.mode = mode
        self.init = init
        size = num_channels if mode == "channel" else 1
        self.weight = nn.Parameter(torch.full((size,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.supports(x):
            return _FusedPReLU.apply(x, self.weight)
        return F.prelu(x, self.weight)

    def _a(self, x: torch.Tensor) -> torch.Tensor:
        """``weight`` shaped to broadcast over x with channels on dim 1 (for the variants)."""
        w = self.weight
        if w.numel() == 1:
            return w
        if x.dim() < 2 or x.shape[1] != w.numel():
            raise ValueError(
                f"{self.name}: expected input with {w.numel()} channels on dim 1, got shape {tuple(x.shape)}"
            )
        return w.view(-1, *([1] * (x.dim() - 2)))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, num_parameters={self.weight.numel()}, init={_fmt(self.init)}, formula={self.formula!r}"


class _AsWrittenPReLU(_AsWritten, PReLU):
    """A PReLU form with the ``as_written`` switch beside PReLU's own parameters."""

    def __init__(
        self,
        num_channels: int | None = None,
        *,
        mode: str = "channel",
        init: float = PRELU_DEFAULT_INIT,
        as_written: bool = False,
    ):
        super().__init__(num_channels, mode=mode, init=init)
        self._set_as_written(as_written)


@_register("prelu_maxmin", "PReLU (max/min)")
class PReLUMaxMin(_AsWrittenPReLU):
    formula = "max(0, x) + a * min(0, x)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.as_written:
            zero = x.new_zeros(())
            return torch.maximum(x, zero) + self._a(x) * torch.minimum(x, zero)
        # _max0/_min0: torch.maximum/minimum would split the gradient at 0 (0.5 + 0.5a)
        return _max0(x) + self._a(x) * _min0(x)


@_register("prelu_abs", "PReLU (abs)")
class PReLUAbs(_AsWrittenPReLU):
    formula = "(x + |x|)/2 + a * (x - |x|)/2"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ax = x.abs() if self.as_written else _abs0(x)  # _abs0: torch.abs gives d/dx = (1 + a)/2 at 0, not a
        return (x + ax) * 0.5 + self._a(x) * ((x - ax) * 0.5)


@_register("prelu_where", "PReLU (switch)")
class PReLUWhere(PReLU):
    """A switch PReLU, ``torch.where(x > 0, x, a * x)``: Theano's ``T.switch`` form carried over to
    PReLU (ours: the Theano blog adapts only the max and abs forms)."""

    formula = "torch.where(x > 0, x, a * x)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self._a(x) * x)  # plain autograd already gives a (and d/da = 0) at 0


@_register("prelu_schluter", "PReLU (Schlüter)")
class PReLUSchluter(PReLU):
    formula = "0.5 (1 + a) x + 0.5 (1 - a) |x|"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self._a(x)
        return 0.5 * (1 + a) * x + 0.5 * (1 - a) * _abs0(x)  # _abs0: as in prelu_abs


@_register("rrelu", "RReLU (Xu)")
class RReLU(Activation):
    """Randomized leaky ReLU exactly as Xu et al. 2015.

    Training: a ~ U(lower, upper) drawn afresh for every element and every forward pass
    (torch RNG), y = x / a for x < 0. Eval: y = x / ((lower + upper) / 2), i.e. x / 5.5 for
    the paper's lower = 3, upper = 8. Not PyTorch's nn.RReLU (that is ``torch_rrelu``).
    """

    # Test-time rules (Xu et al.'s open question 4): name -> (divisor rule, passes). "paper":
    # y = x / ((l + u) / 2), the paper's; "mean_slope": y = x * E[1/a] = x * ln(u/l) / (u - l) (0.196
    # for U(3, 8), not 1/5.5 = 0.182); "mcK": the softmax averaged over K stochastic passes (dropout
    # off, the noise as in training). relustudy.trainer evaluates them when a run asks for them.
    TEST_RULES = {
        "paper": ("paper", 1),
        "mean_slope": ("mean_slope", 1),
        "mc1": ("noise", 1),
        "mc4": ("noise", 4),
        "mc16": ("noise", 16),
    }

    def __init__(
        self,
        num_channels: int | None = None,
        *,
        lower: float = RRELU_DEFAULT_BOUNDS[0],
        upper: float = RRELU_DEFAULT_BOUNDS[1],
    ):
        super().__init__(num_channels)
        lower, upper = _real(self.name, "lower", lower), _real(self.name, "upper", upper)
        _require(
            1 < lower <= upper,
            self.name,
            f"need 1 < lower <= upper (y = x/a, a ~ U(lower, upper)), got lower={lower!r}, upper={upper!r}",
        )
        self.lower, self.upper = lower, upper
        self.eval_a = (lower + upper) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.supports(x):
            if self.training:
                return _FusedRReLU.apply(x, self.lower, self.upper, _rrelu_seed())
            # a = lower + 0 * u = eval_a exactly: y = x / 5.5, one pass, no noise
            return _FusedRReLU.apply(x, self.eval_a, self.eval_a, 0)
        if self.training:
            # One draw per element (also for x > 0, where it is unused: simpler and cheap).
            a = torch.empty_like(x).uniform_(self.lower, self.upper)
        else:
            a = self.eval_a
        # Divide (not multiply by 1/a) so the eval output is exactly x / 5.5 as in the paper;
        # torch.where gives the left derivative 1/a at x == 0, like F.rrelu.
        return torch.where(x > 0, x, x / a)

    def extra_repr(self) -> str:
        return f"lower={_fmt(self.lower)}, upper={_fmt(self.upper)}, eval_a={_fmt(self.eval_a)} (y = x/a for x < 0)"


@_register("torch_rrelu", "RReLU (PyTorch)")
class TorchRReLU(Activation):
    """PyTorch's ``nn.RReLU``: slope s ~ U(lower, upper) in training (y = s * x for x < 0),
    slope (lower + upper) / 2 in eval; defaults 1/8 and 1/3 (eval slope 0.22917)."""

    def __init__(
        self,
        num_channels: int | None = None,
        *,
        lower: float = TORCH_RRELU_BOUNDS[0],
        upper: float = TORCH_RRELU_BOUNDS[1],
    ):
        super().__init__(num_channels)
        lower, upper = _real(self.name, "lower", lower), _real(self.name, "upper", upper)
        _require(
            0 <= lower <= upper < 1,
            self.name,
            f"need 0 <= lower <= upper < 1 (slopes), got lower={lower!r}, upper={upper!r}",
        )
        self.lower, self.upper = lower, upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rrelu(x, self.lower, self.upper, training=self.training)

    def extra_repr(self) -> str:
        return f"lower={_fmt(self.lower)}, upper={_fmt(self.upper)}, eval_slope={_fmt((self.lower + self.upper) / 2)}"


@_register("elu", "ELU")
class ELU(Activation):
    """ELU (Clevert et al. 2016): alpha * (exp(x) - 1) for x <= 0; a control, not a rectifier
    proper, but its units are counted inactive at output <= 0 like the rectifiers."""

    def __init__(self, num_channels: int | None = None, *, alpha: float = 1.0):
        super().__init__(num_channels)
        alpha = _real(self.name, "alpha", alpha)
        _require(alpha > 0, self.name, f"alpha must be > 0, got {alpha!r}")
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.supports(x):
            return _FusedELUBackward.apply(x, self.alpha) if x.requires_grad else _fused_elu(x, self.alpha)
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={_fmt(self.alpha)}"


@_register("tanh", "tanh")
class Tanh(Activation):
    """tanh, the saturating control (saturated when |output| >= 0.95)."""

    saturation = "tanh"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    def extra_repr(self) -> str:
        return "saturation='tanh'"


# ---------------------------------------------------------------------------------------------
# Public builders
# ---------------------------------------------------------------------------------------------
def _param_names(factory: Callable[..., nn.Module]) -> list[str]:
    """Keyword parameters a factory accepts (num_channels is passed separately)."""
    sig = inspect.signature(factory)
    return sorted(
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "num_channels")
    )


def build_activation(name: str, num_channels: int | None = None, **params: Any) -> nn.Module:
    """Build the activation registered as ``name`` (see the module docstring for params)."""
    factory = _checked_factory(name, params)
    return factory(num_channels, **params)


def _checked_factory(name: str, params: dict[str, Any]) -> Callable[..., nn.Module]:
    """The factory for ``name``, after checking that ``params`` only names its parameters."""
    factory = ACTIVATIONS.get(name)  # UnknownNameError listing the valid names
    valid = _param_names(factory)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"{name}: unknown parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(valid) or '(none)'}"
        )
    return factory


def activation_factory(name: str, **params: Any) -> Callable[[int], nn.Module]:
    """Validate ``name``/``params`` now and return ``C -> fresh module``.

    Validation builds one throw-away module (with 1 channel, so channel-wise PReLU can be
    checked too), so a bad config fails before any model is built.
    """
    params = dict(params)  # later edits to the caller's dict must not change the models
    _checked_factory(name, params)(1, **params)  # (num_channels in params: "unknown", not TypeError)

    def make(num_channels: int) -> nn.Module:
        return build_activation(name, num_channels, **params)

    make.activation_name = name  # type: ignore[attr-defined]  # for logs/introspection
    make.activation_params = params  # type: ignore[attr-defined]
    return make


# Activations with passes in relustudy.kernels on the CPU, in fp32 and under bf16 autocast (the
# others run PyTorch's own kernels, and every activation does on CUDA): name -> which passes, and
# what runs where the kernels are unavailable.
FUSED_ON_CPU = {
    "prelu": ("fused CPU kernel", "PyTorch composition"),
    "rrelu": ("fused CPU kernel", "PyTorch composition"),
    "elu": ("fused CPU kernel", "PyTorch"),
}


def implementation(name: str, device_type: str = "cpu", dtype: torch.dtype = torch.float32) -> str:
    """Which implementation ``name`` trains with on ``device_type`` for activations of ``dtype``
    (bfloat16 under bf16 autocast): recorded in provenance so a timing names the code it measured."""
    ACTIVATIONS.get(name)
    if name in FUSED_ON_CPU and device_type == "cpu" and dtype in kernels.SUFFIXES:
        fused, fallback = FUSED_ON_CPU[name]
        if kernels.library() is not None:
            path = (
                f"; forward at alpha 1: {kernels.elu_float_path()}" if name == "elu" and dtype != torch.float64 else ""
            )
            return f"{fused} (relustudy.kernels {kernels.source_hash()}{path})"
        return f"{fallback} ({kernels.unavailable_reason() or 'kernels unavailable'})"
    return "PyTorch"


def no_weight_decay_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters owned by ``Activation`` submodules (PReLU's a), found by module type.

    Shared modules/parameters are returned once, in ``model.modules()`` order.
    """
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, Activation):
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
    return out
