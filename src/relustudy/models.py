"""Model registry: the networks of the five sources, built by name.

``MODELS: Registry``; each factory has the uniform signature
``factory(act: Callable[[int], nn.Module], in_shape: tuple[int, int, int], num_classes: int, **params) -> nn.Module``
where ``act`` comes from ``relustudy.activations.activation_factory`` and is called once per
activation placement with that placement's channel (or unit) count.

``build_model(name, activation="relu", activation_params=None, in_shape=(1, 28, 28), num_classes=10, **params)``
looks the model up (unknown names raise ``UnknownNameError`` listing the valid ones), checks the
model params (unknown ones raise ``ValueError`` naming the valid ones), builds the activation
factory (which validates the activation params) and calls the model factory.

Every model has an attribute ``probe_layers: dict[str, str]`` mapping a probe name (at least
``"last_conv"`` for conv nets, ``"last_hidden"`` for MLPs) to the qualified module name (as in
``model.named_modules()``) of the activation module whose output the Smith metrics measure.
All models are ``SequentialNet`` (an ``nn.Sequential`` with readable child names such as
``conv1``/``act1``), so a probe name is a top-level child name. Every model returns logits
(softmax lives in the loss).

Parameter counts (trainable, default params, 10 classes) are stated in each factory's docstring
and checked in ``tests/test_models.py``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections import OrderedDict
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from . import activations as _activations
from .registry import Registry

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

    def __init__(self, layers: "OrderedDict[str, nn.Module]", probe_layers: dict[str, str], arch: str):
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


# -- the models ------------------------------------------------------------------------------


# Smith measures "the last convolutional layer"; the diagnostic probes (``probes="diagnostic"``) add
# the places a reader of that sentence might also have measured, to look for the source of a gap.
SMITH_PROBES = ("paper", "diagnostic")


def _smith_probes(model: str, probes: str, first: str, last: str, conv: str, pool: str) -> dict[str, str]:
    if probes not in SMITH_PROBES:
        raise ValueError(f"{model}: probes must be one of {', '.join(SMITH_PROBES)}, got {probes!r}")
    layers = {"last_conv": last}
    if probes == "diagnostic":  # the first conv activation; the last conv before its activation; its pool
        layers.update(first_conv=first, last_conv_input=conv, last_pool=pool)
    return layers


@_register("smith_cnn", "Smith's CNN")
def smith_cnn(act: ActFactory, in_shape: tuple[int, int, int], num_classes: int, *, probes: str = "paper") -> nn.Module:
    """Smith's "3-layer CNN" (Table 1; TensorFlow/Keras).

    ``conv1`` 32 3x3 valid -> ``act1`` -> ``pool1`` max 2x2 -> ``conv2`` 32 3x3 valid -> ``act2``
    -> ``pool2`` max 2x2 -> ``flatten`` -> ``fc1`` 128 -> ``relu_fc1`` -> ``fc2`` num_classes.
    The chosen activation is used for the conv layers only: "All twelve of these models use the
    same two activation functions, ReLU and softmax, in their final two fully-connected layers",
    so ``relu_fc1`` is always a plain ``nn.ReLU`` (not an ``Activation``) and the softmax is in
    the loss. Keras defaults: pools floor ('valid'), Glorot-uniform kernels, zero biases.
    Probe ``last_conv`` = ``act2`` (Smith measures the last convolutional layer); ``probes=
    "diagnostic"`` adds ``first_conv`` (``act1``), ``last_conv_input`` (``conv2``, before its
    activation) and ``last_pool`` (``pool2``).

    Parameters (relu): (1, 28, 28) -> 113,386 (flatten 32*5*5 = 800);
    (3, 32, 32) -> 159,018 (flatten 32*6*6 = 1152). Channel-wise PReLU adds 64 (32 + 32).
    """
    c, h, w = in_shape
    sizes = []
    for size in (h, w):
        size = _pool_out(_conv_out(size, 3), 2, 2)
        size = _pool_out(_conv_out(size, 3), 2, 2)
        _need_size("smith_cnn", in_shape, "after the second pool", size)
        sizes.append(size)
    flat = 32 * sizes[0] * sizes[1]
    layers = OrderedDict(
        conv1=nn.Conv2d(c, 32, 3),
        act1=act(32),
        pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(32, 32, 3),
        act2=act(32),
        pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(),
        fc1=nn.Linear(flat, 128),
        relu_fc1=nn.ReLU(),
        fc2=nn.Linear(128, num_classes),
    )
    model = SequentialNet(layers, _smith_probes("smith_cnn", probes, "act1", "act2", "conv2", "pool2"), "smith_cnn")
    _init_glorot_uniform(model)
    return model


@_register("smith_vgg3", "Smith's VGG-style net")
def smith_vgg3(
    act: ActFactory, in_shape: tuple[int, int, int], num_classes: int, *, probes: str = "paper"
) -> nn.Module:
    """Smith's "3-VGG block CNN" (Table 1; TensorFlow/Keras).

    Blocks b = 1, 2, 3 with widths 32, 64, 128: ``conv{b}_1`` 3x3 same -> ``act{b}_1`` ->
    ``conv{b}_2`` 3x3 same -> ``act{b}_2`` -> ``pool{b}`` max 2x2; then ``flatten`` -> ``fc1`` 128
    -> ``relu_fc1`` (always plain ReLU, as in smith_cnn) -> ``fc2`` num_classes. Glorot-uniform
    kernels, zero biases. Probe ``last_conv`` = ``act3_2`` (after the 6th conv); ``probes=
    "diagnostic"`` adds ``first_conv`` (``act1_1``), ``last_conv_input`` (``conv3_2``) and
    ``last_pool`` (``pool3``).

    Parameters (relu): (3, 32, 32) -> 550,570 (flatten 128*4*4 = 2048); (1, 28, 28) -> 435,306
    (flatten 128*3*3 = 1152). Channel-wise PReLU adds 448 (2*32 + 2*64 + 2*128).
    """
    c, h, w = in_shape
    hs, ws = h, w
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    in_ch = c
    for block, width in enumerate((32, 64, 128), start=1):
        for i in (1, 2):
            layers[f"conv{block}_{i}"] = nn.Conv2d(in_ch, width, 3, padding=1)
            layers[f"act{block}_{i}"] = act(width)
            in_ch = width
        layers[f"pool{block}"] = nn.MaxPool2d(2)
        hs, ws = _pool_out(hs, 2, 2), _pool_out(ws, 2, 2)
        _need_size("smith_vgg3", in_shape, f"after pool{block}", min(hs, ws))
    layers["flatten"] = nn.Flatten()
    layers["fc1"] = nn.Linear(128 * hs * ws, 128)
    layers["relu_fc1"] = nn.ReLU()
    layers["fc2"] = nn.Linear(128, num_classes)
    model = SequentialNet(
        layers, _smith_probes("smith_vgg3", probes, "act1_1", "act3_2", "conv3_2", "pool3"), "smith_vgg3"
    )
    _init_glorot_uniform(model)
    return model


NIN_INITS = ("kaiming", "caffe")


@_register("nin", "Network in Network")
def nin(
    act: ActFactory,
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    width: float = 1.0,
    init: str = "kaiming",
) -> nn.Module:
    """Network in Network as in Xu et al. 2015, Table 1 (from Lin et al. 2013's CIFAR model).

    ``conv1`` 5x5 192 pad 2 -> ``cccp1`` 1x1 160 -> ``cccp2`` 1x1 96 -> ``pool1`` max 3x3 /2
    -> ``drop1`` 0.5 -> ``conv2`` 5x5 192 pad 2 -> ``cccp3`` 1x1 192 -> ``cccp4`` 1x1 192 ->
    ``pool2`` avg 3x3 /2 -> ``drop2`` 0.5 -> ``conv3`` 3x3 192 pad 1 -> ``cccp5`` 1x1 192 ->
    ``cccp6`` 1x1 num_classes -> ``pool3`` global avg -> ``flatten`` (logits).

    Reading of the table: its caption says "Activation function is followed by each
    convolutional layer", so all 9 convs, including ``cccp6`` that outputs the class maps, are
    followed by the chosen activation (``act1``, ``act_cccp1``, ... ``act_cccp6``), as in the
    original NIN Caffe model (relu after cccp6, then the 8x8 average pool). Logits of a rectifier
    NIN are therefore >= 0 for ReLU.

    Sizes: paddings keep 32x32 through the first stage; the pools use kernel 3, stride 2 and
    ``ceil_mode=True`` (Caffe's rounding), so 32 -> 16 -> 8 as in the table; the final pool is
    ``AdaptiveAvgPool2d(1)`` (exactly the 8x8 average for 32x32 input, and still global for
    other sizes, e.g. 28 -> 14 -> 7).

    Params: ``width`` multiplies the hidden widths (192, 160, 96; not the classes conv);
    ``init``: ``"kaiming"`` (default; He normal fan_in with rectifier gain, zero biases, which
    keeps the 9-layer stack's signal scale stable for raw, unwhitened images as Xu et al. use) or
    ``"caffe"`` (N(0, 0.05) weights, zero biases: the NIN Caffe model's fillers).
    Probes: ``last_conv`` = ``act_cccp6`` (the literal last conv: num_classes channels) and
    ``penultimate_conv`` = ``act_cccp5`` (the last 192-channel hidden representation).

    Parameters (relu, width 1): (3, 32, 32) -> 966,986 (independent of the input size for this
    all-convolutional net). Channel-wise PReLU adds 1,418 (192+160+96+192+192+192+192+192+10).
    """
    width = _check_width("nin", width)
    if init not in NIN_INITS:
        raise ValueError(f"model 'nin': init must be one of {NIN_INITS}, got {init!r}")
    c, h, w = in_shape
    for size in (h, w):
        size = _pool_out(_pool_out(size, 3, 2, ceil_mode=True), 3, 2, ceil_mode=True)
        _need_size("nin", in_shape, "after pool2", size)
    w192, w160, w96 = (_scaled(n, width) for n in (192, 160, 96))
    layers = OrderedDict(
        conv1=nn.Conv2d(c, w192, 5, padding=2),
        act1=act(w192),
        cccp1=nn.Conv2d(w192, w160, 1),
        act_cccp1=act(w160),
        cccp2=nn.Conv2d(w160, w96, 1),
        act_cccp2=act(w96),
        pool1=nn.MaxPool2d(3, stride=2, ceil_mode=True),
        drop1=nn.Dropout(0.5),
        conv2=nn.Conv2d(w96, w192, 5, padding=2),
        act2=act(w192),
        cccp3=nn.Conv2d(w192, w192, 1),
        act_cccp3=act(w192),
        cccp4=nn.Conv2d(w192, w192, 1),
        act_cccp4=act(w192),
        pool2=nn.AvgPool2d(3, stride=2, ceil_mode=True),
        drop2=nn.Dropout(0.5),
        conv3=nn.Conv2d(w192, w192, 3, padding=1),
        act3=act(w192),
        cccp5=nn.Conv2d(w192, w192, 1),
        act_cccp5=act(w192),
        cccp6=nn.Conv2d(w192, num_classes, 1),
        act_cccp6=act(num_classes),
        pool3=nn.AdaptiveAvgPool2d(1),
        flatten=nn.Flatten(),
    )
    model = SequentialNet(layers, {"last_conv": "act_cccp6", "penultimate_conv": "act_cccp5"}, "nin")
    if init == "kaiming":
        _init_kaiming_normal(model)
    else:
        _init_normal(model, 0.05)
    return model


@_register("radford_convnet", "Radford's convnet")
def radford_convnet(act: ActFactory, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Alec Radford's Theano-Tutorials ``5_convolutional_net.py`` (the net of the Theano
    ReLU/PReLU benchmark blog post, "identical to that of Alec's original net").

    ``conv1`` 32 3x3 'full' (pad 2) -> ``act1`` -> ``pool1`` max 2 -> ``drop1`` 0.2 ->
    ``conv2`` 64 3x3 valid -> ``act2`` -> ``pool2`` max 2 -> ``drop2`` 0.2 -> ``conv3`` 128 3x3
    valid -> ``act3`` -> ``pool3`` max 2 -> ``flatten`` -> ``drop3`` 0.2 -> ``fc1`` 625 ->
    ``act_fc1`` -> ``drop_fc1`` 0.5 -> ``fc2`` num_classes (logits).

    As in the tutorial: no biases anywhere; all weights N(0, 0.01) (``randn * 0.01``); the dense
    layer uses the same ``rectify`` as the convs, so it gets the chosen activation (a PReLU there
    has 625 coefficients in channel mode). Theano 0.7's ``max_pool_2d`` defaults to
    ``ignore_border=False``, i.e. partial windows are kept: all three pools use
    ``ceil_mode=True`` (28 -> 30 -> 15 -> 13 -> 7 -> 5 -> 3, giving the tutorial's 128*3*3
    flatten). Theano's ``conv2d`` flips kernels (true convolution); with random weights that is
    the same model family. Probe ``last_conv`` = ``act3``.

    Parameters (relu): (1, 28, 28) -> 818,698 (288 + 18,432 + 73,728 + 1152*625 + 625*10).
    Channel-wise PReLU adds 849 (32 + 64 + 128 + 625).
    """
    c, h, w = in_shape
    sizes = []
    for size in (h, w):
        size = _pool_out(_conv_out(size, 3, padding=2), 2, 2, ceil_mode=True)
        size = _pool_out(_conv_out(size, 3), 2, 2, ceil_mode=True)
        size = _conv_out(size, 3)
        _need_size("radford_convnet", in_shape, "before conv3's pool", size)
        sizes.append(_pool_out(size, 2, 2, ceil_mode=True))
    flat = 128 * sizes[0] * sizes[1]
    layers = OrderedDict(
        conv1=nn.Conv2d(c, 32, 3, padding=2, bias=False),
        act1=act(32),
        pool1=nn.MaxPool2d(2, ceil_mode=True),
        drop1=nn.Dropout(0.2),
        conv2=nn.Conv2d(32, 64, 3, bias=False),
        act2=act(64),
        pool2=nn.MaxPool2d(2, ceil_mode=True),
        drop2=nn.Dropout(0.2),
        conv3=nn.Conv2d(64, 128, 3, bias=False),
        act3=act(128),
        pool3=nn.MaxPool2d(2, ceil_mode=True),
        flatten=nn.Flatten(),
        drop3=nn.Dropout(0.2),
        fc1=nn.Linear(flat, 625, bias=False),
        act_fc1=act(625),
        drop_fc1=nn.Dropout(0.5),
        fc2=nn.Linear(625, num_classes, bias=False),
    )
    model = SequentialNet(layers, {"last_conv": "act3"}, "radford_convnet")
    _init_normal(model, 0.01)
    return model


@_register("simple_mlp_bn", "the TensorFlow blog's MLP")
def simple_mlp_bn(
    act: ActFactory,
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    batch_norm: bool = False,
    hidden: int = 256,
) -> nn.Module:
    """The "very simple neural network" of the RReLU TensorFlow blog post (with and without batch
    normalization). Its code is not available, so this is a documented choice:

    ``flatten`` -> ``fc1`` hidden -> [``bn1`` BatchNorm1d] -> ``act1`` -> ``fc2`` hidden ->
    [``bn2``] -> ``act2`` -> ``fc3`` num_classes (logits). Batch norm sits between the linear
    map and the activation (Ioffe & Szegedy's placement); the linear layers keep their biases.
    Glorot-uniform weights and zero biases (the TensorFlow/Keras dense defaults).
    Probe ``last_hidden`` = ``act2``.

    Params: ``batch_norm`` (bool, default False), ``hidden`` (positive int, default 256).
    Parameters (relu, hidden 256): (1, 28, 28) -> 269,322; with ``batch_norm=True`` 270,346
    (+ 2 * 2 * 256 BN scale/shift). Channel-wise PReLU adds 512 (256 + 256).
    """
    if not isinstance(batch_norm, bool):
        raise ValueError(f"model 'simple_mlp_bn': batch_norm must be a bool, got {batch_norm!r}")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"model 'simple_mlp_bn': hidden must be a positive int, got {hidden!r}")
    c, h, w = in_shape
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    in_features = c * h * w
    for i in (1, 2):
        layers[f"fc{i}"] = nn.Linear(in_features, hidden)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm1d(hidden)
        layers[f"act{i}"] = act(hidden)
        in_features = hidden
    layers["fc3"] = nn.Linear(hidden, num_classes)
    model = SequentialNet(layers, {"last_hidden": "act2"}, "simple_mlp_bn")
    _init_glorot_uniform(model)
    return model


@_register("he_net", "He et al.'s 14-layer net")
def he_net(
    act: ActFactory,
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    width: float = 1.0,
    dropout: float = 0.5,
) -> nn.Module:
    """The 14-layer model of He et al. 2015 ("Delving Deep into Rectifiers", Table 1 there;
    the learned-coefficient table in the reading-group notes), adapted to 32x32 inputs.

    ImageNet original: conv1 7x7 64 /2, pool1 3x3 /3, conv2_1..4 2x2 128, pool2 2x2 /2,
    conv3_1..6 2x2 256, SPP {6,3,2,1}, fc1 4096, fc2 4096, fc3 classes; the activation follows
    every conv and fc1/fc2 (13 placements: the "13 extra free parameters" of channel-shared
    PReLU); dropout 50% on the first two fc layers (He et al.'s training details).

    Adaptation to small inputs (documented choice): ``conv1`` is 3x3 stride 1 pad 1 and ``pool1``
    is max 2x2 /2 (a 7x7/2 conv plus a 3x3/3 pool would shrink 32 -> 5 before the 2x2 stages);
    the 2x2 convs use 'same' padding (PyTorch pads the extra row/column at the bottom/right) so
    they keep the size; ``pool2`` is max 2x2 /2. For 32x32: 32 -> 16 -> 8 before the SPP
    (``spp``: adaptive max pools to 6x6, 3x3, 2x2, 1x1 -> 50 * 256 = 12,800 features); for
    28x28: 28 -> 14 -> 7. The input must leave >= 6 before the SPP.
    Init: Kaiming normal (fan_in, rectifier gain sqrt(2)), zero biases, on all conv/fc layers.

    Names: ``conv1``/``act1``/``pool1``, ``conv2_1``..``conv2_4`` with ``act2_k``, ``pool2``,
    ``conv3_1``..``conv3_6`` with ``act3_k``, ``spp``, ``fc1``/``act_fc1``/``drop_fc1``,
    ``fc2``/``act_fc2``/``drop_fc2``, ``fc3``. Probe ``last_conv`` = ``act3_6``.
    Params: ``width`` (positive float, default 1) multiplies the conv widths (64, 128, 256) and
    the fc widths (4096); ``dropout`` (probability in [0, 1), default 0.5).

    Parameters (relu, width 1): (3, 32, 32) -> 70,930,186 (fc1 alone 52,432,896; convs
    1,675,008); (1, 28, 28) -> 70,929,034 (conv1 has 1 input channel; the SPP makes the rest
    independent of the input size).
    Channel-wise PReLU adds 10,304 (64 + 4*128 + 6*256 + 2*4096); channel-shared adds 13.
    """
    width = _check_width("he_net", width)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"model 'he_net': dropout must be a probability in [0, 1), got {dropout!r}")
    c, h, w = in_shape
    levels = (6, 3, 2, 1)
    for size in (h, w):
        size = _pool_out(_pool_out(size, 2, 2), 2, 2)
        _need_size("he_net", in_shape, "before the SPP", size, minimum=max(levels))
    c1, c2, c3, fc = (_scaled(n, width) for n in (64, 128, 256, 4096))
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Conv2d(c, c1, 3, padding=1),
        act1=act(c1),
        pool1=nn.MaxPool2d(2),
    )
    in_ch = c1
    for k in range(1, 5):
        layers[f"conv2_{k}"] = Conv2dSame(in_ch, c2, 2)
        layers[f"act2_{k}"] = act(c2)
        in_ch = c2
    layers["pool2"] = nn.MaxPool2d(2)
    for k in range(1, 7):
        layers[f"conv3_{k}"] = Conv2dSame(in_ch, c3, 2)
        layers[f"act3_{k}"] = act(c3)
        in_ch = c3
    spp = SpatialPyramidPool(levels)
    layers["spp"] = spp
    in_features = spp.out_features(c3)
    for k in (1, 2):
        layers[f"fc{k}"] = nn.Linear(in_features, fc)
        layers[f"act_fc{k}"] = act(fc)
        layers[f"drop_fc{k}"] = nn.Dropout(float(dropout))
        in_features = fc
    layers["fc3"] = nn.Linear(fc, num_classes)
    model = SequentialNet(layers, {"last_conv": "act3_6"}, "he_net")
    _init_kaiming_normal(model)
    return model


PLAIN_INITS = ("kaiming", "xavier")


@_register("plain_net", "the plain deep net")
def plain_net(
    act: ActFactory,
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    depth: int = 22,
    width: float = 1.0,
    init: str = "kaiming",
) -> nn.Module:
    """A plain deep rectifier network (no batch norm, no shortcuts) for He et al.'s initialisation
    experiment (their 22- and 30-layer models, scaled to 32x32 inputs).

    ``depth`` weighted layers: ``depth - 1`` 3x3 convs (padding 1, activation after each) in three
    stages of 16, 32 and 64 channels times ``width`` (the first stages take the remainder, e.g. 21
    convs -> 7/7/7, 29 -> 10/10/9), a 2x2 max pool after stages 1 and 2, a global average pool and
    one linear layer. ``init``: ``"kaiming"`` -- N(0, 2/n) with n = fan-in (He et al., rectifier
    gain sqrt 2); ``"xavier"`` -- N(0, 1/n), the "Xavier" initialisation He et al. compare with
    (Caffe's fan-in variant). Biases zero. Names ``conv{s}_{k}``/``act{s}_{k}``, ``pool1``,
    ``pool2``, ``gap``, ``flatten``, ``fc``.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 4:
        raise ValueError(f"model 'plain_net': depth must be an integer >= 4, got {depth!r}")
    if init not in PLAIN_INITS:
        raise ValueError(f"model 'plain_net': init must be one of {PLAIN_INITS}, got {init!r}")
    width = _check_width("plain_net", width)
    convs = depth - 1
    per_stage = [convs // 3 + (1 if s < convs % 3 else 0) for s in range(3)]
    channels = [_scaled(n, width) for n in (16, 32, 64)]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    in_ch = in_shape[0]
    for s, (n_convs, ch) in enumerate(zip(per_stage, channels), 1):
        for k in range(1, n_convs + 1):
            layers[f"conv{s}_{k}"] = nn.Conv2d(in_ch, ch, 3, padding=1)
            layers[f"act{s}_{k}"] = act(ch)
            in_ch = ch
        if s < 3:
            layers[f"pool{s}"] = nn.MaxPool2d(2)
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(in_ch, num_classes)
    model = SequentialNet(layers, {}, "plain_net")
    gain = 2.0 if init == "kaiming" else 1.0
    for m in _weighted_layers(model):
        fan_in = m.weight[0].numel()
        nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(gain / fan_in))
        nn.init.zeros_(m.bias)
    return model
