"""Optimisers and learning-rate schedules of a run: ``build_optimizer(config, model)`` and
``build_scheduler(config, optimizer)`` (see the trainer's docstring for what each name means)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .activations import no_weight_decay_parameters
from .config import RunConfig

__all__ = ["RMSpropTheano", "build_optimizer", "build_scheduler"]


class RMSpropTheano(torch.optim.Optimizer):
    """RMSprop as in Alec Radford's Theano tutorial (``Theano-Tutorials``, 5_convolutional_net)::

        acc = rho * acc + (1 - rho) * g**2
        p   = p - lr * g / sqrt(acc + eps)          # eps INSIDE the square root

    (torch's RMSprop puts eps outside: ``g / (sqrt(acc) + eps)``.) ``weight_decay`` adds
    ``wd * p`` to the gradient first (L2), as torch's optimisers do.
    """

    def __init__(self, params: Any, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0 <= rho < 1:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, rho, eps, wd = group["lr"], group["rho"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("RMSpropTheano does not support sparse gradients")
                if wd:
                    g = g.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                acc = state["square_avg"]
                acc.mul_(rho).addcmul_(g, g, value=1 - rho)
                p.addcdiv_(g, acc.add(eps).sqrt_(), value=-lr)
        return loss


def build_optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser of ``config`` with two groups: ``"decay"`` (weight decay = config's) and,
    when the model has learned activation coefficients, ``"no_decay"`` (weight decay 0), unless
    ``config.decay_activation_coefficients`` puts them in the decay group (He et al.'s ablation)."""
    no_decay = (
        []
        if config.decay_activation_coefficients
        else [p for p in no_weight_decay_parameters(model) if p.requires_grad]
    )
    skip = {id(p) for p in no_decay}
    decay = [p for p in model.parameters() if p.requires_grad and id(p) not in skip]
    groups: list[dict[str, Any]] = [{"params": decay, "weight_decay": config.weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    step = {"fused": True} if config.optimizer_step == "fused" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, **step)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, eps=config.eps, weight_decay=config.weight_decay, **step)
    if config.optimizer == "rmsprop_theano":
        return RMSpropTheano(
            groups, lr=config.lr, rho=config.momentum, eps=config.eps, weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}")  # config validation prevents this


def build_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer) -> Any:
    """Per-epoch LR scheduler, or None for ``constant``."""
    p = config.schedule_params
    if config.schedule == "constant":
        return None
    if config.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=[int(m) for m in p["milestones"]], gamma=float(p.get("gamma", 0.1))
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs, eta_min=float(p.get("eta_min", 0.0))
        )
    raise ValueError(f"unknown schedule {config.schedule!r}")
