"""Precision checks: an experiment trained again at another precision, and what that changed.

A *precision twin* is a diagnostic copy of an experiment (same arms, data, optimizer, seeds and
profiles) whose runs differ only in ``precision`` (e.g. forward passes under bf16 autocast). Its
runs are never pooled with the base experiment's: :func:`precision_effect_frame` pairs them with the
base's runs of the same arm and seed and tests whether the precision moved a metric by more than
the metric's margin (the registry's, the one the claims use): an equivalence test whose three
verdicts are "within the margin", "outside the margin" and "inconclusive" (with the difference the
runs could have detected).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import pandas as pd

from .claims import INCONCLUSIVE, NOT_REPLICATED, REPLICATED, comparison_verdict
from .config import PRECISIONS, ConfigError
from .experiments import EXPERIMENTS, Experiment, get_experiment
from .metrics import metric_label
from .stats import COMPLETE, detectable_difference, paired_comparison, with_arm
from .verdict_rules import margin

ALL_ARMS = "all arms"
EFFECT_WORDS = {
    REPLICATED: "within the margin",
    NOT_REPLICATED: "outside the margin",
    INCONCLUSIVE: "inconclusive",
}


def precision_twin(base: str, name: str, precision: str, profiles: Sequence[str] = ("smoke", "quick")) -> Experiment:
    """Register (as ``name``) and return ``base`` re-run at ``precision`` in ``profiles``."""
    exp = get_experiment(base)
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    base_precision = exp.settings(profiles[0]).get("precision", "fp32")
    if base_precision == precision:
        raise ConfigError(f"{base!r} already runs at {precision}: a twin must differ in precision")
    missing = [p for p in profiles if p not in exp.profiles]
    if missing:
        raise ConfigError(f"{base!r} has no profile {', '.join(missing)}; valid: {', '.join(exp.profiles)}")
    twin = dataclasses.replace(
        exp,
        name=name,
        title=f"{exp.title}, {precision}",
        common={**exp.common, "precision": precision},
        profiles={p: exp.profiles[p] for p in profiles},
        diagnostic=f"what {precision} changes against the same arms and seeds at {base_precision}",
        notes=exp.notes
        + (
            f'Diagnostic: the runs of "{exp.title}" ({exp.table}) again with precision {precision} '
            f"(forward passes under {precision} autocast, losses and optimizer state in float32), paired by arm "
            "and seed with those runs.",
        ),
    )
    return EXPERIMENTS.register(name, twin)


def _precision_of(experiment: str, profile: str) -> str:
    return str(get_experiment(experiment).settings(profile).get("precision", "fp32"))


def precision_effect_frame(
    results: pd.DataFrame, base: str, twin: str, profile: str, metric: str = "test_error"
) -> pd.DataFrame:
    """Per arm and over all arms (pairs by arm and seed): ``twin`` minus ``base`` on ``metric`` in
    ``profile``, its 95% t-interval, the equivalence verdict at the metric's margin, and the
    difference the pairs could have detected (80% power). Empty where no pair exists."""
    cols = ["arm", "pairs", "base", "twin", "difference", "ci_low", "ci_high", "detectable", "verdict"]
    if results is None or len(results) == 0:
        return pd.DataFrame(columns=cols)
    lo_prec, hi_prec = _precision_of(base, profile), _precision_of(twin, profile)
    d = with_arm(results)
    d = d[d["experiment"].isin([base, twin]) & (d["profile"] == profile)]
    d = d[(d["status"] == COMPLETE) & (d["metric"] == metric)]
    if d.empty:
        return pd.DataFrame(columns=cols)
    d = d.assign(precision=d["experiment"].map({base: lo_prec, twin: hi_prec}))
    arms = [a.label for a in get_experiment(base).arms if a.label in set(d["arm"])]
    groups = [(arm, d[d["arm"] == arm]) for arm in arms]
    pooled = d.assign(seed=d["arm"].astype(str) + "|" + d["seed"].astype(str))
    rows = []
    for arm, sub in [*groups, (ALL_ARMS, pooled)]:
        pc = paired_comparison(sub.assign(arm=sub["precision"]), metric, hi_prec, lo_prec)
        if pc.n == 0:
            continue
        rows.append(
            {
                "arm": arm,
                "pairs": pc.n,
                "base": pc.mean_b,
                "twin": pc.mean_a,
                "difference": pc.mean_diff,
                "ci_low": pc.ci_low,
                "ci_high": pc.ci_high,
                "detectable": detectable_difference(pc.n, pc.sd_diff),
                "verdict": EFFECT_WORDS[comparison_verdict(pc, "same", metric)],
            }
        )
    frame = pd.DataFrame(rows, columns=cols)
    frame.attrs.update(base=base, twin=twin, profile=profile, metric=metric, precisions=(lo_prec, hi_prec))
    return frame


def precision_effect_table(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``frame`` for the page: display labels, precisions in the headers, intervals as one cell."""
    if frame.empty:
        return pd.DataFrame()
    lo, hi = frame.attrs["precisions"]
    label = metric_label(frame.attrs["metric"])
    f = lambda v: "n/a" if not math.isfinite(v) else f"{v:+.{digits}f}"  # noqa: E731
    return pd.DataFrame(
        {
            "arm": frame["arm"],
            "pairs": frame["pairs"],
            f"{label}, {lo}": frame["base"].round(digits),
            f"{label}, {hi}": frame["twin"].round(digits),
            f"{hi} - {lo} (95% CI)": [
                f"{f(m)} [{f(a)}, {f(b)}]"
                for m, a, b in zip(frame["difference"], frame["ci_low"], frame["ci_high"], strict=True)
            ],
            "detectable (80% power)": [f(v).lstrip("+") for v in frame["detectable"]],
            f"verdict at margin ±{margin(frame.attrs['metric']):g}": frame["verdict"],
        }
    ).set_index("arm")


def precision_effect_markdown(frame: pd.DataFrame, skipped: str = "") -> str:
    """What the check found, in one paragraph computed from ``frame`` (or why it has no runs)."""
    if frame.empty:
        why = f" ({skipped})" if skipped else ""
        return f"No paired runs: the precision check was not run{why}."
    lo, hi = frame.attrs["precisions"]
    metric = frame.attrs["metric"]
    label, m = metric_label(metric), margin(metric)
    pooled = frame[frame["arm"] == ALL_ARMS].iloc[0]
    per_arm = frame[frame["arm"] != ALL_ARMS]
    counts = per_arm["verdict"].value_counts()
    arm_words = ", ".join(f"{int(counts[v])} {v}" for v in EFFECT_WORDS.values() if v in counts)
    head = (
        f"Over all arms, {hi} changes {label} by {pooled['difference']:+.4f} on average over {int(pooled['pairs'])} "
        f"pairs (95% CI {pooled['ci_low']:+.4f} to {pooled['ci_high']:+.4f}): **{pooled['verdict']}** of ±{m:g}, "
        f"the margin the claims use for {label}."
    )
    if pooled["verdict"] == EFFECT_WORDS[INCONCLUSIVE]:
        head += f" These pairs could have detected a difference of about {pooled['detectable']:.4f}."
    return f"{head} Per arm: {arm_words} (of {len(per_arm)})."
