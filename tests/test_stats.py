"""Tests for relustudy.stats: known values of the t-interval and the sign-flip test, pairing by seed,
summaries over complete runs, error paths and formatting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from relustudy import stats as S

T_975_DF2 = 4.302652729749464  # t_{0.975, 2}, from tables


def runs(
    values: dict[str, dict[int, float]],
    metric: str = "test_accuracy",
    experiment: str = "exp",
    profile: str = "quick",
    status: dict[tuple[str, int], str] | None = None,
) -> pd.DataFrame:
    """Tidy rows: values[arm][seed] -> value; status[(arm, seed)] overrides "complete"."""
    status = status or {}
    rows = []
    for arm, by_seed in values.items():
        for seed, v in by_seed.items():
            rows.append(
                dict(
                    experiment=experiment,
                    profile=profile,
                    dataset="d",
                    model="m",
                    activation=arm.lower(),
                    arm=arm,
                    activation_params="{}",
                    seed=seed,
                    run_id=f"{experiment}-{profile}-{arm}-{seed}",
                    status=status.get((arm, seed), "complete"),
                    metric=metric,
                    value=v,
                    device="cpu",
                    wall_seconds=1.0,
                    git_commit="abc",
                )
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ t-interval, t-test
def test_known_t_interval_and_t_test():
    df = runs({"A": {0: 1.0, 1: 2.0, 2: 3.0}, "B": {0: 0.0, 1: 0.0, 2: 0.0}})
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    assert pc.n == 3 and pc.seeds == (0, 1, 2)
    assert pc.mean_diff == pytest.approx(2.0)
    assert pc.sd_diff == pytest.approx(1.0)
    half = T_975_DF2 * 1.0 / math.sqrt(3)
    assert pc.ci_low == pytest.approx(2.0 - half, rel=1e-9)
    assert pc.ci_high == pytest.approx(2.0 + half, rel=1e-9)
    # t = 2 / (1/sqrt 3); with 2 df the two-sided p has the closed form 1 - t / sqrt(t^2 + 2)
    t = 2.0 * math.sqrt(3)
    assert pc.t_statistic == pytest.approx(t)
    assert pc.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-9)


def test_ci_containing_zero_is_inconclusive():
    df = runs({"A": {0: 1.0, 1: 2.0, 2: 3.0}, "B": {0: 0.0, 1: 0.0, 2: 0.0}})
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    # 2 - 4.303/sqrt(3) = -0.484 < 0 < 4.484: the CI contains 0
    assert pc.ci_low < 0 < pc.ci_high
    assert pc.sign == 0 and pc.verdict == "inconclusive"


def test_t_interval_function():
    mean, low, high = S.t_interval([1.0, 2.0, 3.0])
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - T_975_DF2 / math.sqrt(3), 2.0 + T_975_DF2 / math.sqrt(3)))
    assert math.isnan(S.t_interval([1.0])[1])


def test_direction_of_clear_differences():
    a = {s: 0.90 + 0.001 * s for s in range(5)}
    b = {s: 0.88 + 0.001 * s + (0.0005 if s % 2 else -0.0005) for s in range(5)}
    pc = S.paired_comparison(runs({"A": a, "B": b}), "test_accuracy", "A", "B", "exp")
    assert pc.sign == 1 and pc.verdict == "a > b" and pc.ci_low > 0
    pc = S.paired_comparison(runs({"A": a, "B": b}), "test_accuracy", "B", "A", "exp")
    assert pc.sign == -1 and pc.verdict == "a < b" and pc.ci_high < 0
    assert pc.mean_diff == pytest.approx(-0.02 - 0.0001, abs=1e-12)  # the +/-0.0005 pattern sums to -0.0005 in B


def test_zero_spread_collapses_interval():
    df = runs({"A": {s: 0.5 for s in range(4)}, "B": {s: 0.25 for s in range(4)}})
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    assert pc.ci_low == pc.ci_high == pytest.approx(0.25) and pc.p_value == 0.0 and pc.sign == 1
    same = S.paired_comparison(runs({"A": {0: 0.5, 1: 0.5}, "B": {0: 0.5, 1: 0.5}}), "test_accuracy", "A", "B")
    assert same.p_value == 1.0 and same.sign == 0


# ------------------------------------------------------------------------------ sign flips
def test_sign_flip_all_positive_n5_is_2_over_32():
    assert S.sign_flip_pvalue([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 32)
    df = runs({"A": {s: 1.0 + s for s in range(5)}, "B": {s: 0.0 for s in range(5)}})
    assert S.paired_comparison(df, "test_accuracy", "A", "B", "exp").p_permutation == pytest.approx(2 / 32)


def test_sign_flip_known_values():
    # +-1 +-2 +-3: sums 6, 4, 2, 0, 0, -2, -4, -6 -> |sum| >= 6 in 2 of 8
    assert S.sign_flip_pvalue([1.0, 2.0, 3.0]) == pytest.approx(0.25)
    # |sum| >= 2 for (1, 1, 1, -1): sums over 16 patterns; |sum| in {4: 2, 2: 8, 0: 6} -> 10/16
    assert S.sign_flip_pvalue([1.0, 1.0, 1.0, -1.0]) == pytest.approx(10 / 16)
    assert S.sign_flip_pvalue([1.0, -1.0]) == 1.0
    assert math.isnan(S.sign_flip_pvalue([1.0]))
    with pytest.raises(ValueError, match="n <= 12"):
        S.sign_flip_pvalue(np.ones(13))


def test_no_exact_permutation_above_12_pairs():
    df = runs({"A": {s: 1.0 + 0.1 * s for s in range(13)}, "B": {s: 0.0 for s in range(13)}})
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    assert pc.n == 13 and math.isnan(pc.p_permutation) and pc.p_value < 1e-6


# -------------------------------------------------------------------------------- pairing
def test_shuffled_rows_give_the_same_result():
    a = {0: 0.91, 1: 0.95, 2: 0.90, 3: 0.97, 4: 0.92}
    b = {0: 0.90, 1: 0.93, 2: 0.91, 3: 0.94, 4: 0.90}
    df = runs({"A": a, "B": b})
    ref = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    got = S.paired_comparison(shuffled, "test_accuracy", "A", "B", "exp")
    for name in ("n", "seeds", "mean_diff", "ci_low", "ci_high", "p_value", "p_permutation"):
        assert getattr(got, name) == pytest.approx(getattr(ref, name)), name
    # pairing by seed, not by position: differences are a[s] - b[s]
    assert ref.diffs == pytest.approx(tuple(a[s] - b[s] for s in range(5)))


def test_unmatched_seeds_dropped_and_counted():
    df = runs({"A": {0: 1.0, 1: 2.0, 2: 3.0, 4: 9.0}, "B": {0: 0.0, 1: 0.0, 2: 0.0, 7: 5.0}})
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    assert pc.n == 3 and pc.seeds == (0, 1, 2)
    assert pc.unmatched_seeds == (4, 7) and pc.n_unmatched == 2
    assert pc.n_a == 4 and pc.n_b == 4
    assert pc.mean_diff == pytest.approx(2.0)
    assert "2 unmatched seed(s) dropped" in pc.describe()


def test_diverged_runs_are_not_paired_but_counted():
    df = runs({"A": {0: 1.0, 1: 2.0, 2: 3.0}, "B": {0: 0.0, 1: 0.0, 2: 0.1}}, status={("B", 2): "diverged"})
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    assert pc.n == 2 and pc.unmatched_seeds == (2,) and pc.n_diverged_b == 1 and pc.n_diverged_a == 0


def test_other_experiments_metrics_and_profiles_are_filtered():
    df = pd.concat(
        [
            runs({"A": {0: 1.0, 1: 2.0}, "B": {0: 0.0, 1: 0.0}}),
            runs({"A": {0: 50.0, 1: 60.0}, "B": {0: 0.0, 1: 0.0}}, experiment="other"),
            runs({"A": {0: 70.0, 1: 80.0}, "B": {0: 0.0, 1: 0.0}}, metric="test_loss"),
        ]
    )
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    assert pc.mean_diff == pytest.approx(1.5)
    mixed = pd.concat([df, runs({"A": {0: 5.0}, "B": {0: 1.0}}, profile="paper")])
    with pytest.raises(ValueError, match="mix profiles"):
        S.paired_comparison(mixed, "test_accuracy", "A", "B", "exp")
    assert S.paired_comparison(mixed, "test_accuracy", "A", "B", "exp", profile="quick").mean_diff == pytest.approx(1.5)


def test_duplicate_seed_records_rejected():
    df = runs({"A": {0: 1.0, 1: 2.0}, "B": {0: 0.0, 1: 0.0}})
    df = pd.concat([df, df.iloc[[0]].assign(run_id="dup")])
    with pytest.raises(ValueError, match="several complete records"):
        S.paired_comparison(df, "test_accuracy", "A", "B", "exp")


@pytest.mark.parametrize("a,b", [({0: 1.0}, {0: 0.0}), ({0: 1.0}, {1: 0.0}), ({}, {})])
def test_fewer_than_two_pairs_is_inconclusive(a, b):
    df = runs({"A": a, "B": b}) if a or b else runs({"C": {0: 1.0}})
    pc = S.paired_comparison(df, "test_accuracy", "A", "B", "exp")
    assert pc.n < 2
    assert math.isnan(pc.p_value) and math.isnan(pc.p_permutation)
    assert math.isnan(pc.ci_low) and math.isnan(pc.ci_high)
    assert pc.verdict == "inconclusive" and pc.sign == 0
    assert "no test possible" in pc.describe()


def test_describe_reports_test_ci_and_both_p_values():
    df = runs({"A": {s: 1.0 + s for s in range(5)}, "B": {s: 0.0 for s in range(5)}})
    text = S.paired_comparison(df, "test_accuracy", "A", "B", "exp").describe()
    assert "paired t-test p" in text and "exact sign-flip p = 0.0625" in text and "95% t-CI" in text


def test_arm_falls_back_to_activation_label():
    df = runs({"A": {0: 1.0, 1: 2.0}, "B": {0: 0.0, 1: 0.5}})
    df["activation_label"] = df["arm"] + "*"
    df["arm"] = ""
    pc = S.paired_comparison(df, "test_accuracy", "A*", "B*", "exp")
    assert pc.n == 2 and pc.mean_diff == pytest.approx(1.25)


# ------------------------------------------------------------------------------ summarize
def test_summarize_known_values_and_order():
    df = runs({"tanh": {0: 0.1, 1: 0.3}, "ReLU": {0: 0.90, 1: 0.92, 2: 0.94}})
    out = S.summarize(df, "test_accuracy")
    assert list(out.columns) == ["experiment", "arm", "mean", "sd", "n", "min", "max", "n_diverged"]
    assert list(out["arm"]) == ["tanh", "ReLU"]  # first-appearance order, not alphabetical
    relu = out.set_index("arm").loc["ReLU"]
    assert relu["mean"] == pytest.approx(0.92) and relu["sd"] == pytest.approx(0.02)  # ddof=1
    assert (relu["n"], relu["min"], relu["max"], relu["n_diverged"]) == (3, 0.90, 0.94, 0)


def test_summarize_counts_diverged_separately():
    df = runs(
        {"A": {0: 0.9, 1: 0.8, 2: 0.1}, "B": {0: 0.1, 1: 0.1}},
        status={("A", 2): "diverged", ("B", 0): "diverged", ("B", 1): "diverged"},
    )
    # a diverged run that recorded no value of this metric still counts
    df = pd.concat([df, runs({"A": {3: 0.0}}, metric="train_loss", status={("A", 3): "diverged"})])
    out = S.summarize(df, "test_accuracy").set_index("arm")
    assert out.loc["A", "mean"] == pytest.approx(0.85) and out.loc["A", "n"] == 2
    assert out.loc["A", "n_diverged"] == 2
    assert out.loc["B", "n"] == 0 and math.isnan(out.loc["B", "mean"]) and out.loc["B", "n_diverged"] == 2


def test_summarize_single_seed_has_nan_sd_and_mixed_profiles_fail():
    df = runs({"A": {0: 0.5}})
    out = S.summarize(df, "test_accuracy", by="arm")
    assert out.loc[0, "n"] == 1 and math.isnan(out.loc[0, "sd"])
    mixed = pd.concat([df, runs({"A": {0: 0.7}}, profile="paper")])
    with pytest.raises(ValueError, match="mix profiles"):
        S.summarize(mixed, "test_accuracy")
    by_profile = S.summarize(mixed, "test_accuracy", by=("profile", "arm"))
    assert list(by_profile["mean"]) == pytest.approx([0.5, 0.7])
    with pytest.raises(ValueError, match="duplicate"):
        S.summarize(pd.concat([df, df]), "test_accuracy")
    with pytest.raises(ValueError, match="lacks column"):
        S.summarize(df.drop(columns=["status"]), "test_accuracy")


# ---------------------------------------------------------------------------------- format
def test_format_mean_sd():
    assert S.format_mean_sd(0.9061, 0.0042, 5) == "0.906 ± 0.004 (n=5)"
    assert S.format_mean_sd(0.9061, 0.0042, 5, digits=2) == "0.91 ± 0.00 (n=5)"
    assert S.format_mean_sd(0.9061, float("nan"), 1) == "0.906 (n=1)"
    assert S.format_mean_sd(float("nan"), float("nan"), 0) == "n/a (n=0)"


def test_welch_interval_known_value_and_edges():
    # two groups of 3: means 2 and 5, variances 1 and 4 -> se = sqrt(1/3 + 4/3), Welch dof 2.94
    diff, _, _ = S.welch_interval([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])
    assert diff == pytest.approx(3.0)
    d2, lo2, hi2 = S.welch_interval([1.0, 2.0, 3.0], [3.0, 5.0, 7.0])
    se = math.sqrt(1 / 3 + 4 / 3)
    dof = (1 / 3 + 4 / 3) ** 2 / ((1 / 3) ** 2 / 2 + (4 / 3) ** 2 / 2)

    half = st.t.ppf(0.975, dof) * se
    assert d2 == pytest.approx(-3.0) and (lo2, hi2) == pytest.approx((-3.0 - half, -3.0 + half))
    assert math.isnan(S.welch_interval([1.0], [2.0, 3.0])[1])  # one value: no interval
    assert math.isnan(S.welch_interval([], [2.0])[0])
    assert S.welch_interval([1.0, 1.0], [0.0, 0.0]) == (1.0, 1.0, 1.0)  # no spread: a point


def test_detectable_difference_known_value():
    # n = 5, sd 1: (t_{0.975,4} + t_{0.8,4}) / sqrt(5) = (2.7764 + 0.9410) / 2.2361
    assert S.detectable_difference(5, 1.0) == pytest.approx((2.776445 + 0.940965) / math.sqrt(5), rel=1e-5)
    assert S.detectable_difference(5, 0.02) == pytest.approx(0.02 * S.detectable_difference(5, 1.0))
    assert S.detectable_difference(20, 1.0) < S.detectable_difference(5, 1.0)  # more seeds see smaller effects
    assert math.isnan(S.detectable_difference(1, 1.0)) and math.isnan(S.detectable_difference(5, math.nan))


def test_median_interval_order_statistics_and_coverage():
    # n = 10 at 95%: the 2nd smallest and 2nd largest (coverage 1 - 2 * 11/1024 = 0.979; the 3rd would give 0.891)
    assert S.median_interval(list(range(10))) == (4.5, 1.0, 8.0)
    assert S.median_interval([3.0, 1.0, 2.0, 6.0, 5.0, 4.0]) == (3.5, 1.0, 6.0)  # n = 6: the extremes (0.969)
    m, lo, hi = S.median_interval([1.0, 2.0, 3.0, 4.0, 5.0])  # n = 5 cannot reach 95% (at most 0.9375)
    assert m == 3.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in S.median_interval([]))
    rng = np.random.default_rng(0)  # skewed data: the interval still covers the true median ~95%
    hits = [
        lo <= math.log(2) <= hi for lo, hi in (S.median_interval(rng.exponential(size=40))[1:] for _ in range(2000))
    ]
    assert 0.93 <= float(np.mean(hits)) <= 0.98
