"""The TensorFlow blog's simple MLP, with or without batch normalization."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .core import (
    ActFactory,
    SequentialNet,
    _init_glorot_uniform,
    _register,
)


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
