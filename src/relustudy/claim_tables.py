"""A source's published values beside ours: the tables a chapter shows next to its claims."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from . import reference
from .experiments import get_experiment, validate_profile
from .registry import UnknownNameError
from .stats import (
    summarize,
)
from .verdict_rules import (
    NOT_REPLICATED,
    NOT_RUN,
    REPLICATED,
    _select,
    value_verdict,
)

# --------------------------------------------------------------------------- tables for books
PAPER_VS_OURS_COLUMNS = (
    "arm",
    "metric",
    "our_metric",
    "paper",
    "ours_mean",
    "ours_sd",
    "n",
    "n_diverged",
    "diff",
    "pi_low",
    "pi_high",
    "verdict",
    "paper_decimals",  # decimals the source printed the value with
)


def _paper_vs_ours_row(
    d: pd.DataFrame, summ: pd.DataFrame, hit: pd.DataFrame, arm: str, col: str, metric: str, half_unit: float
) -> dict[str, Any]:
    """One published cell (``hit``: its reference row, or none) beside our summary of ``arm``."""
    paper = float(hit["value"].iloc[0]) if not hit.empty else math.nan
    decimals = int(hit["decimals"].iloc[0]) if not hit.empty else None
    if arm in summ.index:
        r = summ.loc[arm]
        mean, sd, n, ndiv = float(r["mean"]), float(r["sd"]), int(r["n"]), int(r["n_diverged"])
    else:
        mean, sd, n, ndiv = math.nan, math.nan, 0, 0
    ran = not d.empty and bool((d["arm"] == arm).any())
    if not ran:
        verdict, low, high = NOT_RUN, math.nan, math.nan
    elif not math.isfinite(paper):
        verdict, low, high = None, math.nan, math.nan
    else:
        verdict, low, high = value_verdict(paper, mean, sd, n, half_unit)
    return dict(
        arm=arm,
        metric=col,
        our_metric=metric,
        paper=paper,
        paper_decimals=decimals,
        ours_mean=mean,
        ours_sd=sd,
        n=n,
        n_diverged=ndiv,
        diff=mean - paper,
        pi_low=low,
        pi_high=high,
        verdict=verdict,
    )


def paper_vs_ours(results_df: pd.DataFrame, experiment: str, profile: str) -> pd.DataFrame:
    """Every published cell of the experiment's table beside our mean ± sd over seeds.

    One row per arm and published column that maps to one of our metrics (``metric`` is the
    paper's column name, ``our_metric`` ours). ``diff = ours_mean - paper``; ``pi_low``/``pi_high``
    and ``verdict`` follow :func:`value_verdict` ("not run" when the experiment has no records for
    the profile or the arm has none). Arms come in the experiment's order; published rows without
    an arm of ours follow.
    """
    validate_profile(profile)
    exp = get_experiment(experiment)
    source, table = exp.source, exp.table
    pv = reference.paper_values(source, table)
    mapping = reference.get_source(source).paper_columns
    inverse = {v: k for k, v in mapping.items()}
    columns = [
        c
        for c in dict.fromkeys(pv["column"])
        if c in inverse and (exp.compared_metrics is None or inverse[c] in exp.compared_metrics)
    ]
    arms = list(dict.fromkeys([a.label for a in exp.arms] + list(pv["row"])))
    d = _select(results_df, experiment, profile)
    half_unit = reference.get_source(source).rounding_half_unit
    rows = []
    for col in columns:
        metric = inverse[col]
        summ = summarize(d, metric, by=("arm",)).set_index("arm") if not d.empty else pd.DataFrame()
        for arm in arms:
            hit = pv[(pv["row"] == arm) & (pv["column"] == col)]
            rows.append(_paper_vs_ours_row(d, summ, hit, arm, col, metric, half_unit))
    out = pd.DataFrame(rows, columns=list(PAPER_VS_OURS_COLUMNS))
    # arm-major order (the paper's layout): rows of one arm together, metrics in the paper's order
    out["_a"] = out["arm"].map({a: i for i, a in enumerate(arms)})
    out["_m"] = out["metric"].map({c: i for i, c in enumerate(columns)})
    return out.sort_values(["_a", "_m"], kind="stable").drop(columns=["_a", "_m"]).reset_index(drop=True)


def published_values(results_df: pd.DataFrame, shown: Mapping[str, str], source: str | None = None) -> pd.DataFrame:
    """Every published value checked against our runs (:func:`paper_vs_ours`), over the experiments
    ``shown`` maps to a profile: only those shown in the ``paper`` profile (a scaled-down profile
    moves absolute numbers by design) and measured on the source's own task (``same_task``). One
    row per value with a verdict, with ``experiment``, ``profile`` and ``table``."""
    frames = []
    for name, profile in shown.items():
        exp = get_experiment(name)
        if (source and exp.source != source) or profile != "paper" or not exp.same_task or exp.diagnostic:
            continue
        try:
            rows = paper_vs_ours(results_df, name, profile)
        except UnknownNameError:  # a source that publishes no numbers (figures only)
            continue
        rows = rows[rows["verdict"].isin([REPLICATED, NOT_REPLICATED])]
        if len(rows):
            frames.append(rows.assign(experiment=name, profile=profile, table=exp.table, source=exp.source))
    if not frames:
        return pd.DataFrame(columns=[*PAPER_VS_OURS_COLUMNS, "experiment", "profile", "table", "source"])
    return pd.concat(frames, ignore_index=True)


def published_values_markdown(values: pd.DataFrame) -> str:
    """ "Published values inside our 95% prediction interval: k of n" (or why none is compared)."""
    if not len(values):
        return (
            "Published values: none compared (only experiments shown in the paper profile, on the source's own "
            "task, are compared value by value)."
        )
    inside = int((values["verdict"] == REPLICATED).sum())
    return (
        f"**Published values inside our 95% prediction interval: {inside} of {len(values)}** (paper-profile "
        f"experiments on the source's own task; {len(values) - inside} outside)."
    )
