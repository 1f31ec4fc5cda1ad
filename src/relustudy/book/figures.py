"""Figure frames: activation curves of the study's activations, and statistics by epoch; and the
PNG a page shows of a figure, which records its smallest text (:func:`figure_png`)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from ..activations import build_activation, display_name
from ..experiments import EXPERIMENTS, get_experiment
from .base import activation_colour, activation_family

__all__ = [
    "curve_frame",
    "activation_curves",
    "study_activations",
    "CURVE_JOIN",
    "curve_palette",
    "figure_png",
    "panels",
    "COLUMN_INCHES",
    "smallest_text_points",
    "TEXT_SIZE_KEY",
]

# A figure this wide (at the figures' 100 dpi) is shown at its own size in the content column of a
# 1400 px wide page (768 px), not scaled down: its text keeps the size it was drawn at (our choice
# of layout, a little under the column for legends the tight bounding box adds).
COLUMN_INCHES = 7.6


def panels(n: int, *, height: float = 3.4, ncols: int | None = None, **subplots: Any) -> tuple[Figure, list[Any]]:
    """A figure of ``n`` panels sized for the page's column: one column of panels for up to two
    (their titles are sentences), two columns beyond; ``height`` inches a row. Returns the figure
    and its ``n`` axes (unused cells of the grid are hidden)."""
    ncols = ncols or (1 if n <= 2 else 2)
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(COLUMN_INCHES, height * nrows), squeeze=False, **subplots)
    axes = list(grid.flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


# The PNG text chunk where a figure's smallest text is recorded, in the image's own pixels: the
# browser check scales it by the size the page renders the image at (tests/browser_check.py).
TEXT_SIZE_KEY = "relustudy:smallest-text-px"


def smallest_text_points(fig: Figure) -> float:
    """The font size (points) of the figure's smallest visible, non-empty text: tick labels,
    labels, titles, legends, annotations. NaN for a figure without text."""
    fig.canvas.draw()  # tick labels exist once drawn
    sizes = [t.get_fontsize() for t in _visible_texts(fig)]
    return min(sizes) if sizes else float("nan")


def _visible_texts(artist: Any) -> Any:
    """The non-empty texts under ``artist`` that are drawn (an artist hidden hides its children)."""
    if not artist.get_visible():
        return
    if isinstance(artist, Text) and artist.get_text().strip():
        yield artist
    for child in artist.get_children():
        yield from _visible_texts(child)


def figure_png(fig: Figure) -> bytes:
    """The PNG a notebook shows of ``fig`` (as the inline backend draws it: tight bounding box, the
    figure's dpi), with its smallest text's height in image pixels recorded in the PNG
    (``TEXT_SIZE_KEY``)."""
    smallest = smallest_text_points(fig)
    dpi = matplotlib.rcParams["savefig.dpi"]
    dpi = fig.dpi if dpi == "figure" else float(dpi)
    buf = io.BytesIO()
    fig.canvas.print_figure(
        buf,
        format="png",
        bbox_inches="tight",
        facecolor=fig.get_facecolor(),
        metadata={TEXT_SIZE_KEY: f"{smallest * dpi / 72:.2f}"},
    )
    return buf.getvalue()


def show_figures_with_text_size() -> bool:
    """In a notebook kernel, show every matplotlib figure as :func:`figure_png` draws it (so the
    page's image records its smallest text); False outside one."""
    try:
        from IPython import get_ipython  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return False
    # pyplot loads its backend with the first figure, and the inline backend then registers its own
    # PNG formatter: load it now, so that this one comes after it.
    plt.close(plt.figure())
    ip.display_formatter.formatters["image/png"].for_type(Figure, figure_png)
    return True


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
