"""Smith's networks: the 3-layer CNN (Tables 2-3) and the CNN of three VGG blocks (Table 4)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .core import (
    ActFactory,
    SequentialNet,
    _conv_out,
    _init_glorot_uniform,
    _need_size,
    _pool_out,
    _register,
)

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
