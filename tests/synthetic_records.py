"""Synthetic results for the claim tests: the tidy long format of ``load_results`` (one row per
complete run and metric), built from chosen values plus a chosen seed-dependent offset."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

# offset(seed index, seed, metric index, metric) -> value added to the chosen value
Offset = Callable[[int, int, int, str], float]


def long_records(
    experiment: str,
    values: dict[str, dict[str, float]],
    *,
    seeds: Iterable[int] = range(5),
    offset: Offset = lambda i, seed, k, metric: 0.0,
    drop: tuple = (),
    profile: str = "quick",
) -> pd.DataFrame:
    """``values[arm][metric] + offset(...)`` for every arm, seed and metric, all complete; the
    ``(arm, seed, metric)`` triples in ``drop`` are left out (a run missing one metric)."""
    rows = []
    for arm, by_metric in values.items():
        for i, seed in enumerate(seeds):
            for k, (metric, v) in enumerate(by_metric.items()):
                if (arm, seed, metric) in drop:
                    continue
                rows.append(
                    dict(
                        experiment=experiment,
                        profile=profile,
                        arm=arm,
                        seed=seed,
                        run_id=f"{arm}-{seed}",
                        status="complete",
                        metric=metric,
                        value=v + offset(i, seed, k, metric),
                    )
                )
    return pd.DataFrame(rows)
