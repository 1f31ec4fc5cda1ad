"""Network in Network (Xu et al.'s Table 1).

Network in Network as in Xu et al. 2015, Table 1 (from Lin et al. 2013's CIFAR model).

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

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .core import (
    ActFactory,
    SequentialNet,
    _check_width,
    _init_kaiming_normal,
    _init_normal,
    _need_size,
    _pool_out,
    _register,
    _scaled,
)

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
    """Network in Network as in Xu et al. 2015, Table 1: see the module docstring for the layers,
    the reading of the table, sizes, parameters and probes."""
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
