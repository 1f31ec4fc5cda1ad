"""The study's own answer across sources: a random-effects meta-analysis of the questions several
sources share (PReLU against ReLU, a fixed leak against ReLU, RReLU against ReLU and against a fixed
leak), over every experiment a page shows.

Each experiment contributes one paired difference per question (``arm - reference`` on the test
error, paired by seed: :func:`relustudy.stats.paired_comparison`) and its standard error
``sd / sqrt(n)``. The arms are chosen by rule, before any result is seen: the first arm in the
experiment's table order whose activation is the question's (``prelu``, ``lrelu``, ``rrelu``) and that
has no arm-specific training settings. Diagnostic experiments (``Experiment.diagnostic``) do not
count: they re-run another experiment's setup.

Pooling: DerSimonian and Laird's random-effects estimate (weights ``1 / (se^2 + tau^2)``), with its
normal 95% interval, the between-experiment standard deviation ``tau`` and ``I^2``, the share of the
spread beyond what the experiments' own errors explain. With 3-5 seeds an experiment's standard
error is itself uncertain, and the experiments differ in dataset, model and scale, so the pooled
number is a summary of these experiments, not an estimate of one true effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from scipy import stats as _st

from .book.figures import COLUMN_INCHES
from .experiments import EXPERIMENTS, get_experiment
from .reference import get_source
from .stats import paired_comparison, with_arm

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Question:
    key: str
    label: str  # how a page names it
    activation: str  # the arm's activation (registry name)
    reference: str  # the reference arm's activation


QUESTIONS = (
    Question("prelu_vs_relu", "PReLU minus ReLU", "prelu", "relu"),
    Question("lrelu_vs_relu", "LReLU (fixed leak) minus ReLU", "lrelu", "relu"),
    Question("rrelu_vs_relu", "RReLU minus ReLU", "rrelu", "relu"),
    Question("rrelu_vs_lrelu", "RReLU minus LReLU (fixed leak)", "rrelu", "lrelu"),
)
METRIC = "test_error"
TABLE_SETTINGS = {"evals"}  # arm settings that change what is measured, not how the arm trains


def question_arm(experiment: str, activation: str) -> str | None:
    """The label of the arm that answers for ``activation`` in ``experiment`` (the rule in the
    module docstring), or None."""
    for arm in get_experiment(experiment).arms:
        if arm.activation == activation and set(arm.settings) <= TABLE_SETTINGS:
            return arm.label
    return None


def experiment_effects(results: pd.DataFrame, shown: Mapping[str, str], metric: str = METRIC) -> pd.DataFrame:
    """One row per (question, experiment) with both arms recorded in the profile ``shown`` maps the
    experiment to: the paired difference, its standard error, 95% t-interval and number of pairs."""
    columns = ["question", "experiment", "profile", "arm", "reference", "n", "difference", "se", "low", "high"]
    rows = []
    d = with_arm(results) if len(results) else results
    for name, profile in shown.items():
        if name not in EXPERIMENTS or get_experiment(name).diagnostic:
            continue
        for q in QUESTIONS:
            arm, ref = question_arm(name, q.activation), question_arm(name, q.reference)
            if arm is None or ref is None or not len(d):
                continue
            pc = paired_comparison(d, metric, arm, ref, name, profile, CONFIDENCE)
            if pc.n < 2 or not (math.isfinite(pc.sd_diff) and pc.sd_diff > 0):
                continue  # no standard error: it cannot be weighted
            rows.append(
                dict(
                    question=q.key,
                    experiment=name,
                    profile=profile,
                    arm=arm,
                    reference=ref,
                    n=pc.n,
                    difference=pc.mean_diff,
                    se=pc.sd_diff / math.sqrt(pc.n),
                    low=pc.ci_low,
                    high=pc.ci_high,
                )
            )
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Pooled:
    k: int  # experiments
    estimate: float
    low: float
    high: float
    tau: float  # between-experiment standard deviation
    i_squared: float  # in [0, 1]
    q: float  # Cochran's Q


def random_effects(effects: Sequence[float], ses: Sequence[float], confidence: float = CONFIDENCE) -> Pooled:
    """DerSimonian-Laird pooling of ``effects`` with standard errors ``ses`` (all > 0)."""
    y, se = list(map(float, effects)), list(map(float, ses))
    k = len(y)
    if k == 0 or len(se) != k or not all(s > 0 for s in se):
        raise ValueError("random_effects needs as many positive standard errors as effects (at least one)")
    w = [1 / s**2 for s in se]
    fixed = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    q = sum(wi * (yi - fixed) ** 2 for wi, yi in zip(w, y, strict=True))
    c = sum(w) - sum(wi**2 for wi in w) / sum(w)
    tau2 = max(0.0, (q - (k - 1)) / c) if k > 1 else 0.0
    w_star = [1 / (s**2 + tau2) for s in se]
    pooled = sum(wi * yi for wi, yi in zip(w_star, y, strict=True)) / sum(w_star)
    half = float(_st.norm.ppf(0.5 + confidence / 2)) * math.sqrt(1 / sum(w_star))
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return Pooled(k, pooled, pooled - half, pooled + half, math.sqrt(tau2), i2, q)


def meta_table(effects: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Per question: the experiments pooled, the random-effects difference with its 95% interval,
    tau and I^2 (rows only for questions with at least two experiments)."""
    rows = []
    for q in QUESTIONS:
        sub = effects[effects["question"] == q.key]
        if len(sub) < 2:
            continue
        p = random_effects(sub["difference"], sub["se"])
        rows.append(
            {
                "question (test error)": q.label,
                "experiments": p.k,
                "pooled difference [95% CI]": f"{p.estimate:+.{digits}f} [{p.low:+.{digits}f}, {p.high:+.{digits}f}]",
                "tau (between experiments)": f"{p.tau:.{digits}f}",
                "I²": f"{100 * p.i_squared:.0f}%",
            }
        )
    return pd.DataFrame(rows).set_index("question (test error)") if rows else pd.DataFrame()


def experiment_label(name: str) -> str:
    """How a page names an experiment in the meta-analysis: its source and table, and its dataset."""
    exp = get_experiment(name)
    return f"{get_source(exp.source).label}, {exp.table} ({exp.dataset.replace('_', '-')})"


def forest_figure(effects: pd.DataFrame) -> plt.Figure | None:
    """One panel per question with at least two experiments: each experiment's paired difference in
    test error with its 95% t-interval, and the pooled random-effects estimate (a diamond)."""
    questions = [q for q in QUESTIONS if (effects["question"] == q.key).sum() >= 2]
    if not questions:
        return None
    heights = [len(effects[effects["question"] == q.key]) + 2 for q in questions]
    fig, axes = plt.subplots(
        len(questions),
        1,
        figsize=(COLUMN_INCHES, 0.42 * sum(heights) + 1),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, q in zip(axes[:, 0], questions, strict=True):
        sub = effects[effects["question"] == q.key].reset_index(drop=True)
        pooled = random_effects(sub["difference"], sub["se"])
        ys = list(range(len(sub), 0, -1))
        ax.errorbar(
            sub["difference"],
            ys,
            xerr=[sub["difference"] - sub["low"], sub["high"] - sub["difference"]],
            fmt="o",
            color="0.2",
            capsize=3,
        )
        ax.fill([pooled.low, pooled.estimate, pooled.high, pooled.estimate], [0, 0.3, 0, -0.3], color="tab:blue")
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        labels = [
            f"{experiment_label(e)} [{p}], n={n}"
            for e, p, n in zip(sub["experiment"], sub["profile"], sub["n"], strict=True)
        ]
        ax.set_yticks(
            [*ys, 0], [*labels, f"pooled (random effects), tau {pooled.tau:.3f}, I² {100 * pooled.i_squared:.0f}%"]
        )
        ax.set(title=f"{q.label}: test error (negative = the first arm errs less)", xlabel="difference in test error")
    fig.tight_layout()
    return fig
