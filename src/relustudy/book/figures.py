"""Figure frames: activation curves of the study's activations, and statistics by epoch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ..activations import build_activation, display_name
from ..experiments import EXPERIMENTS, get_experiment
from .base import activation_colour, activation_family

__all__ = ["curve_frame", "activation_curves", "study_activations", "CURVE_JOIN", "curve_palette"]


def curve_frame(stats: Any, *, layer: str = "last_conv", points: int = 101, epoch: str | int = "last") -> Any:
    """Sorted activation-probability curves on a common grid, long form for seaborn.

    ``stats`` is a :func:`relustudy.results.load_activation_stats` frame (one row per run, epoch and
    layer, the sorted curve in the list column ``curve``). Each curve is resampled at ``points``
    evenly spaced unit ranks (fraction of the layer's units, 0 = most active unit) by linear
    interpolation. ``epoch="last"`` keeps each run's last measured epoch. Returns columns
    ``experiment, arm, seed, run_id, rank, probability``.
    """

    df = pd.DataFrame(stats)
    cols = ["experiment", "arm", "seed", "run_id", "rank", "probability"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    if "layer" in df:
        df = df[df["layer"] == layer]
    if "epoch" in df and len(df):
        if epoch == "last":
            df = df[df["epoch"] == df.groupby("run_id")["epoch"].transform("max")]
        else:
            df = df[df["epoch"] == int(epoch)]
    grid = np.linspace(0.0, 1.0, points)
    rows = []
    for rec in df.itertuples(index=False):
        curve = np.asarray(rec.curve, dtype=float)
        if curve.size == 0:
            continue
        curve = np.sort(curve)[::-1]  # decreasing, whatever order it was stored in
        x = np.linspace(0.0, 1.0, curve.size) if curve.size > 1 else np.zeros(1)
        y = np.interp(grid, x, curve) if curve.size > 1 else np.full(points, curve[0])
        rows.append(
            pd.DataFrame(
                {
                    "experiment": getattr(rec, "experiment", ""),
                    "arm": rec.arm,
                    "seed": rec.seed,
                    "run_id": getattr(rec, "run_id", ""),
                    "rank": grid,
                    "probability": y,
                }
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


# The activations the study trains, as the methods page draws them: (label, registry name, params).
CURVE_JOIN = " ≡ "  # between the names of activations that compute the same function (one curve)


# Parameters that change how an activation is computed or learned, not the function it starts as.
_CURVE_NEUTRAL_PARAMS = ("mode", "as_written")


def _curve_label(name: str, params: dict[str, Any]) -> str:
    """A function's name from the registry: a written form of ReLU or PReLU by its family's name
    (the forms compute the same function), then the parameters that shape it."""
    family = activation_family(name)
    base = display_name(family if name.startswith(f"{family}_") else name)
    shown = [f"{k} = {v:g}" if isinstance(v, (int, float)) else f"{k} = {v}" for k, v in sorted(params.items())
             if k not in _CURVE_NEUTRAL_PARAMS]  # fmt: skip
    return base + (f" ({', '.join(shown)})" if shown else "")


def study_activations() -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, registry name, parameters)`` of every distinct activation the experiments' arms
    train (from the experiment registry; the first arm of each kind, in registry order)."""
    seen: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for exp in EXPERIMENTS.names():
        for arm in get_experiment(exp).arms:
            label = _curve_label(arm.activation, dict(arm.params))
            seen.setdefault(label, (label, arm.activation, dict(arm.params)))
    return list(seen.values())


def curve_palette() -> dict[str, str]:
    """Colours of :func:`activation_curves`' functions: each curve its first activation's colour on
    the chapters' pages (:func:`~relustudy.book.base.activation_colour`)."""
    return {label: activation_colour(name, params) for label, name, params, _ in _curves(-3.0, 3.0, 7)}


def _curves(lo: float, hi: float, points: int) -> list[tuple[str, str, dict[str, Any], pd.DataFrame]]:
    """The study's activations evaluated in eval mode; those that compute the same function (on
    this grid, values and derivatives) are one curve, labelled by all their names:
    ``(label, first registry name, its parameters, frame)``."""
    groups: dict[bytes, tuple[list[str], str, dict[str, Any], pd.DataFrame]] = {}
    for label, name, params in study_activations():
        act = build_activation(name, 1, **params).eval().double()
        x = torch.linspace(lo, hi, points, dtype=torch.float64).reshape(1, 1, -1).requires_grad_(True)
        y = act(x)
        (dy,) = torch.autograd.grad(y.sum(), x)
        key = torch.cat([y.detach().flatten(), dy.flatten()]).round(decimals=12).numpy().tobytes()
        frame = pd.DataFrame({"x": x.detach().flatten().numpy(), "y": y.detach().flatten().numpy(),
                              "dy/dx": dy.flatten().numpy()})  # fmt: skip
        groups.setdefault(key, ([], name, params, frame))[0].append(label)
    return [(CURVE_JOIN.join(labels), name, params, frame) for labels, name, params, frame in groups.values()]


def activation_curves(lo: float = -3.0, hi: float = 3.0, points: int = 601) -> Any:
    """Every distinct activation function the study trains (:func:`study_activations`) and its
    derivative on a grid of x, computed by the registry's modules and autograd in eval mode (so
    RReLU in its test-time form, PReLU at its initial coefficients). Long frame: activation, x, y,
    dy/dx."""
    return pd.concat([f.assign(activation=label) for label, _, _, f in _curves(lo, hi, points)], ignore_index=True)[
        ["activation", "x", "y", "dy/dx"]
    ]
