"""He et al.'s 14-layer net and the plain deep nets of the initialisation study.

``he_net``: The 14-layer model of He et al. 2015 ("Delving Deep into Rectifiers", Table 1 there;
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

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from .core import (
    ActFactory,
    Conv2dSame,
    SequentialNet,
    SpatialPyramidPool,
    _check_width,
    _init_kaiming_normal,
    _need_size,
    _pool_out,
    _register,
    _scaled,
    _weighted_layers,
)


@_register("he_net", "He et al.'s 14-layer net")
def he_net(
    act: ActFactory,
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    width: float = 1.0,
    dropout: float = 0.5,
) -> nn.Module:
    """The 14-layer model of He et al. 2015, adapted to 32x32 inputs: see the module docstring for
    the original, the adaptation, sizes and parameters."""
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
    for s, (n_convs, ch) in enumerate(zip(per_stage, channels, strict=True), 1):
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
