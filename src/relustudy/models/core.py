"""The model registry and what every network shares: the registry, the checked factory
signature, building blocks and initialisers (the networks are in this package's family modules)."""

from __future__ import annotations

import functools
import inspect
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .. import activations as _activations
from ..registry import Registry

ActFactory = Callable[[int], nn.Module]

MODELS: Registry = Registry("model")

__all__ = [
    "MODELS",
    "SequentialNet",
    "Conv2dSame",
    "SpatialPyramidPool",
    "build_model",
    "count_parameters",
    "model_display_name",
    "model_params",
]


# -- building blocks -------------------------------------------------------------------------


class SequentialNet(nn.Sequential):
    """An ``nn.Sequential`` with named children, a ``probe_layers`` map and the model name."""

    def __init__(self, layers: OrderedDict[str, nn.Module], probe_layers: dict[str, str], arch: str):
        super().__init__(layers)
        names = dict(self.named_modules())
        for probe, target in probe_layers.items():
            if target not in names:  # a bug in a factory, not a user error
                raise AssertionError(f"{arch}: probe {probe!r} names missing module {target!r}")
        self.probe_layers: dict[str, str] = dict(probe_layers)
        self.arch = arch

    def probe_saturations(self) -> dict[str, str]:
        """For probes on a module without a saturation criterion of its own (a pooling layer, the
        convolution before an activation): the criterion of the nearest activation module before
        it, else after it (all conv activations of a model are the same arm)."""
        children = list(self.named_children())
        out: dict[str, str] = {}
        for probe, target in self.probe_layers.items():
            if getattr(self.get_submodule(target), "saturation", None) is not None:
                continue
            i = next(k for k, (name, _) in enumerate(children) if name == target)
            order = [m for _, m in reversed(children[:i])] + [m for _, m in children[i + 1 :]]
            sat = next((m.saturation for m in order if getattr(m, "saturation", None) is not None), None)
            if sat is not None:
                out[probe] = sat
        return out

    def __getitem__(self, idx):
        """Integer index -> that child; slice -> a plain ``nn.Sequential`` of those children
        (a part of a model has no probes of its own)."""
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)


class SpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling (He et al., SPP-net): max-pool the map to ``n x n`` bins for every
    level ``n`` and concatenate the flattened results (``C * sum(n**2)`` features).

    Bins are those of ``nn.AdaptiveMaxPool2d`` (start ``floor(i*H/n)``, end ``ceil((i+1)*H/n)``),
    which for sizes that are multiples of ``n`` equal SPP-net's windows; otherwise they differ
    only in how the border bins overlap.
    """

    def __init__(self, levels: Iterable[int] = (6, 3, 2, 1)):
        super().__init__()
        self.levels = tuple(int(n) for n in levels)
        self.pools = nn.ModuleList(nn.AdaptiveMaxPool2d(n) for n in self.levels)

    def out_features(self, channels: int) -> int:
        return channels * sum(n * n for n in self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pool(x).flatten(1) for pool in self.pools], dim=1)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


class Conv2dSame(nn.Conv2d):
    """Stride-1 convolution with TensorFlow/PyTorch 'same' padding for any kernel size: the
    total padding ``k - 1`` is split with the extra row/column at the bottom/right (what
    ``padding='same'`` does), done by an explicit ``F.pad`` so even kernels (He et al.'s 2x2)
    do not trigger PyTorch's "padding='same' with even kernel" copy warning."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=bias)
        total = kernel_size - 1
        before, after = total // 2, total - total // 2
        self._same_pad = (before, after, before, after)  # (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self._same_pad))

    def extra_repr(self) -> str:
        return super().extra_repr() + ", padding='same'"


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter elements of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# -- size arithmetic (PyTorch's formulas, so the flatten sizes are known before any forward) --


def _conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _pool_out(size: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    span = size + 2 * padding - kernel
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # last window must start inside
        out -= 1
    return out


def _need_size(model: str, in_shape: tuple[int, int, int], where: str, size: int, minimum: int = 1) -> None:
    if size < minimum:
        raise ValueError(
            f"model {model!r}: input shape {tuple(in_shape)} is too small "
            f"(spatial size {size} {where}, needs >= {minimum})"
        )


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


# -- initialisation --------------------------------------------------------------------------


def _weighted_layers(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _init_glorot_uniform(model: nn.Module) -> None:
    """Keras defaults: ``glorot_uniform`` kernels, zero biases."""
    for m in _weighted_layers(model):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _init_kaiming_normal(model: nn.Module) -> None:
    """He et al. 2015: N(0, 2/fan_in) weights (rectifier gain), zero biases."""
    for m in _weighted_layers(model):
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _init_normal(model: nn.Module, std: float) -> None:
    for m in _weighted_layers(model):
        nn.init.normal_(m.weight, mean=0.0, std=std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


# -- parameter checks ------------------------------------------------------------------------


def _check_width(model: str, width: object) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"model {model!r}: width must be a positive number, got {width!r}")
    return float(width)


def _check_in_shape(in_shape: object) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in in_shape)  # type: ignore[union-attr]
    except TypeError:
        raise ValueError(f"in_shape must be (channels, height, width), got {in_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"in_shape must be (channels, height, width) of positive ints, got {in_shape!r}")
    return shape  # type: ignore[return-value]


def _check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def model_params(name: str) -> dict[str, object]:
    """The model-specific params of ``name`` and their defaults (``{}`` when it has none)."""
    factory = MODELS.get(name)
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _check_params(name: str, params: dict) -> None:
    valid = model_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        listed = ", ".join(sorted(valid)) if valid else "(none)"
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for model {name!r}; valid parameters: {listed}"
        )


def _register(name: str, display: str):
    """Register a factory (shown on pages as ``display``); the registered callable checks its
    params and shapes first."""

    def wrap(factory):
        @functools.wraps(factory)
        def checked(act: ActFactory, in_shape, num_classes: int, **params) -> nn.Module:
            _check_params(name, params)
            return factory(act, _check_in_shape(in_shape), _check_num_classes(num_classes), **params)

        checked.display = display
        MODELS.register(name, checked)
        return checked

    return wrap


def model_display_name(name: str) -> str:
    """How a page names model ``name``; an unknown name raises the registry's error."""
    return MODELS.get(name).display


def build_model(
    name: str,
    activation: str = "relu",
    activation_params: dict | None = None,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    **params,
) -> nn.Module:
    """Build model ``name`` with every hidden activation (except where a source fixes it) made by
    ``activation_factory(activation, **activation_params)``."""
    factory = MODELS.get(name)
    _check_params(name, params)
    act = _activations.activation_factory(activation, **dict(activation_params or {}))
    return factory(act, in_shape, num_classes, **params)
