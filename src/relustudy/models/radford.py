"""Alec Radford's MNIST convnet (the Theano blog)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .core import (
    ActFactory,
    SequentialNet,
    _conv_out,
    _init_normal,
    _need_size,
    _pool_out,
    _register,
)


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
