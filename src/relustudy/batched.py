"""Several seeds of one arm trained as one batched model (a design for the GPU, exact on the CPU).

Small networks such as the study's use a fraction of a large GPU, one run at a time; training the
seeds of an arm together keeps it busy. :class:`StackedSeeds` stacks K identically shaped models
(``torch.func.stack_module_state``: every parameter gains a leading dimension of K) and runs them
with ``torch.func.vmap`` over that dimension, each seed on its own batch. The summed loss has, for
each seed's slice of the parameters, exactly that seed's gradient (a seed's loss depends on its
own slice only), so one backward pass and one optimizer step over the stacked parameters train
all K seeds as K separate runs would, up to floating-point summation order.

Limits of the sketch: the activations must be vmappable (ReLU, leaky ReLU, ELU, tanh; the fused
PReLU/RReLU kernels are autograd Functions without a vmap rule), dropout draws its masks with
vmap's ``randomness="different"`` (not the separate runs' draws), and batch-norm running statistics
are not stacked into the models again. ``benchmarks/bench_batched_seeds.py`` measures it against
the same seeds trained one after the other.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .config import ConfigError


class StackedSeeds:
    """K models of one architecture as one: ``loss(x, y)`` with x of shape (K, batch, ...) and y of
    shape (K, batch) gives the K losses; ``params`` are the stacked leaf tensors to optimise."""

    def __init__(self, models: Sequence[nn.Module]):
        if len(models) < 1:
            raise ConfigError("StackedSeeds needs at least one model")
        shapes = {tuple((n, tuple(p.shape)) for n, p in m.named_parameters()) for m in models}
        if len(shapes) != 1:
            raise ConfigError("StackedSeeds needs models of one architecture (their parameters differ in shape)")
        self.k = len(models)
        params, buffers = stack_module_state(list(models))
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
        self.buffers = buffers
        self._base = copy.deepcopy(models[0]).to("meta")  # the architecture only; weights come from params
        self._base.train(models[0].training)

    def _one(self, params, buffers, x, y):
        return F.cross_entropy(functional_call(self._base, (params, buffers), (x,)), y)

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.k or y.shape[0] != self.k:
            raise ConfigError(
                f"expected a leading dimension of {self.k} seeds, got x {tuple(x.shape)}, y {tuple(y.shape)}"
            )
        return vmap(self._one, randomness="different")(self.params, self.buffers, x, y)

    def model(self, i: int, like: nn.Module) -> nn.Module:
        """Seed ``i``'s weights loaded into a copy of ``like`` (for evaluation or checking)."""
        out = copy.deepcopy(like)
        out.load_state_dict(
            {n: p[i].detach() for n, p in self.params.items()} | {n: b[i] for n, b in self.buffers.items()},
            strict=False,
        )
        return out
