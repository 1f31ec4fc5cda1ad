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

from . import he, mlp, nin, radford, smith  # noqa: F401  (each family registers its networks)
from .core import (
    MODELS,
    Conv2dSame,
    SequentialNet,
    SpatialPyramidPool,
    build_model,
    count_parameters,
    model_display_name,
    model_params,
)
from .he import PLAIN_INITS
from .nin import NIN_INITS
from .smith import SMITH_PROBES

__all__ = [
    "MODELS",
    "NIN_INITS",
    "PLAIN_INITS",
    "SMITH_PROBES",
    "Conv2dSame",
    "SequentialNet",
    "SpatialPyramidPool",
    "build_model",
    "count_parameters",
    "model_display_name",
    "model_params",
]
