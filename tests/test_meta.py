"""The cross-source meta-analysis (relustudy.meta): DerSimonian-Laird pooling recovers a known
pooled effect and between-experiment spread on simulated experiments, the arms answering each
question are chosen by rule, and the per-experiment effects come from paired seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from synthetic_records import long_records

from relustudy import meta, sources  # noqa: F401  (sources registers the experiments)


def test_random_effects_recovers_a_known_pooled_effect_and_tau():
    rng = np.random.default_rng(0)
    k, mu, tau = 400, -0.02, 0.01
    se = rng.uniform(0.002, 0.006, size=k)
    effects = mu + tau * rng.standard_normal(k) + se * rng.standard_normal(k)
    p = meta.random_effects(effects, se)
    assert p.k == k and p.low < mu < p.high and p.estimate == pytest.approx(mu, abs=0.002)
    assert p.tau == pytest.approx(tau, rel=0.15) and p.i_squared > 0.8


def test_random_effects_without_spread_is_the_fixed_effect_and_no_heterogeneity():
    p = meta.random_effects([0.01, 0.01, 0.01], [0.002, 0.004, 0.003])
    assert p.estimate == pytest.approx(0.01) and p.tau == 0 and p.i_squared == 0
    half = 1.959964 / math.sqrt(1 / 0.002**2 + 1 / 0.004**2 + 1 / 0.003**2)
    assert (p.low, p.high) == (pytest.approx(0.01 - half), pytest.approx(0.01 + half))
    with pytest.raises(ValueError, match="positive standard errors"):
        meta.random_effects([0.1], [0.0])


def test_question_arms_are_chosen_by_rule():
    assert meta.question_arm("xu_cifar10_nin", "lrelu") == "Leaky ReLU, a=100"  # the table's first leaky row
    assert meta.question_arm("xu_cifar10_nin", "rrelu") == "RReLU"  # its evals setting changes no training
    assert meta.question_arm("he_cifar10_prelu", "prelu") == "PReLU"  # not the decay arm
    assert meta.question_arm("smith_cifar10_cnn", "rrelu") is None


def test_experiment_effects_pair_by_seed_and_skip_diagnostics():
    values = {"ReLU": {"test_error": 0.30}, "PReLU": {"test_error": 0.28}, "LReLU": {"test_error": 0.29}}
    noise = lambda i, seed, k, metric: 0.002 * ((seed * 3) % 5 - 2)  # noqa: E731  (shared by both arms of a seed)
    df = long_records("smith_cifar10_cnn", values, offset=noise, profile="paper")
    df.loc[df["arm"] == "PReLU", "value"] += [0.001, -0.001, 0.0, 0.002, -0.002]
    probes = long_records("smith_cifar10_cnn_probes", values, profile="paper")
    e = meta.experiment_effects(
        pd.concat([df, probes]), {"smith_cifar10_cnn": "paper", "smith_cifar10_cnn_probes": "paper"}
    )
    assert set(e["experiment"]) == {"smith_cifar10_cnn"}  # the diagnostic re-run does not count twice
    row = e.set_index("question").loc["prelu_vs_relu"]
    assert row["difference"] == pytest.approx(-0.02) and row["n"] == 5 and row["se"] > 0
    assert meta.meta_table(e).empty  # one experiment pools nothing
