"""Statistics over recorded runs: per-arm summaries and paired comparisons between arms.

Input is the tidy results table of :func:`relustudy.results.load_results` (one row per run and
metric; columns ``experiment, profile, arm, seed, run_id, status, metric, value, ...``).

Summaries (:func:`summarize`) use *complete* runs only: mean, sample sd (ddof=1), n, min and max
over seeds of one metric per group. Diverged runs are not averaged in; they are counted per group
in ``n_diverged`` (a diverged run counts whether or not it recorded the metric). A complete run
whose value is missing (NaN) is left out of n.

Paired comparisons (:func:`paired_comparison`). Within one experiment and profile, the same seed
means the same data subset and the same initialisation seed, so two arms are compared seed by seed:
``d_s = a_s - b_s`` over the seeds both arms completed (seeds only one arm has are dropped and
counted in ``n_unmatched``). Reported:

- mean difference and its two-sided t-interval ``mean(d) +- t_{1-alpha/2, n-1} sd(d)/sqrt(n)``
  (95% by default);
- the paired t-test's two-sided p-value (``scipy.stats.ttest_rel``);
- for ``n <= 12``, the exact sign-flip permutation p-value: under H0 the sign of each d_s is
  equally likely +/-, so all ``2**n`` sign patterns are enumerated and p is the fraction whose
  ``|mean|`` is at least the observed ``|mean|`` (the observed pattern included). It needs no
  normality assumption; note its floor ``2 / 2**n`` (0.0625 for 5 seeds).

With ``n < 2`` nothing can be estimated: CI and p-values are NaN and the verdict is
"inconclusive". With zero spread (all d_s equal) the interval collapses to the point ``mean(d)``;
the t-test p-value is then 0 (mean != 0) or 1 (all d_s zero).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as _st

COMPLETE = "complete"
DIVERGED = "diverged"
MAX_EXACT_PERMUTATION_N = 12


# ------------------------------------------------------------------------------------ helpers
def with_arm(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose ``arm`` column is filled: the arm label, else ``activation_label``/``activation``."""
    d = df.copy()
    fallback = None
    for col in ("activation_label", "activation"):
        if col in d.columns:
            fallback = d[col].astype(object)
            break
    if "arm" not in d.columns:
        if fallback is None:
            raise ValueError("results table has neither an 'arm' nor an 'activation' column")
        d["arm"] = fallback
    elif fallback is not None:
        arm = d["arm"].astype(object)
        empty = arm.isna() | (arm.astype(str) == "")
        d["arm"] = arm.where(~empty, fallback)
    return d


def _need_columns(df: pd.DataFrame, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"results table lacks column(s): {', '.join(missing)}; has: {', '.join(map(str, df.columns))}")


def _run_key(df: pd.DataFrame) -> str:
    return "run_id" if "run_id" in df.columns else "seed"


def _check_single_profile(df: pd.DataFrame, by: Sequence[str]) -> None:
    if "profile" in df.columns and "profile" not in by and df["profile"].nunique(dropna=True) > 1:
        profiles = ", ".join(sorted(map(str, df["profile"].dropna().unique())))
        raise ValueError(f"results mix profiles ({profiles}); filter to one profile or group by 'profile'")


# ---------------------------------------------------------------------------------- summarize
SUMMARY_COLUMNS = ("mean", "sd", "n", "min", "max", "n_diverged")


def summarize(df: pd.DataFrame, metric: str, by: Sequence[str] = ("experiment", "arm")) -> pd.DataFrame:
    """Mean, sd (ddof=1), n, min, max of ``metric`` over complete runs, per group; ``n_diverged``.

    Groups keep the order in which they first appear in ``df``. A group with only diverged runs
    appears with n = 0 and NaN statistics. Mixing profiles without grouping by ``profile``, or two
    complete records of the same seed in one group, raises ``ValueError``.
    """
    by = [by] if isinstance(by, str) else list(by)
    d = with_arm(df)
    _need_columns(d, [*by, "status", "metric", "value"])
    _check_single_profile(d, by)

    comp = d[(d["status"] == COMPLETE) & (d["metric"] == metric)]
    comp = comp[comp["value"].notna()]
    if "seed" in comp.columns and "seed" not in by:
        dup = comp[comp.duplicated([*by, "seed"], keep=False)]
        if not dup.empty:
            raise ValueError(
                f"duplicate complete records for the same seed in groups {dup[by + ['seed']].drop_duplicates().to_dict('records')}"
            )
    div = d[d["status"] == DIVERGED]
    key = _run_key(d)

    keys = pd.concat([comp[by], div[by]]).drop_duplicates()
    order = d[by].drop_duplicates().reset_index(drop=True)
    keys = order.merge(keys, on=by, how="inner")

    if comp.empty:
        agg = pd.DataFrame(columns=[*by, "mean", "sd", "n", "min", "max"])
    else:
        g = comp.groupby(by, sort=False, dropna=False)["value"]
        agg = g.agg(mean="mean", sd=lambda v: v.std(ddof=1), n="count", min="min", max="max").reset_index()
    ndiv = (
        div.groupby(by, sort=False, dropna=False)[key].nunique().rename("n_diverged").reset_index()
        if not div.empty
        else pd.DataFrame(columns=[*by, "n_diverged"])
    )

    out = keys.merge(agg, on=by, how="left").merge(ndiv, on=by, how="left")
    for col in ("mean", "sd", "min", "max"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("n", "n_diverged"):
        out[col] = pd.to_numeric(out[col], errors="coerce").fillna(0).astype(int)
    return out[[*by, *SUMMARY_COLUMNS]].reset_index(drop=True)


# ---------------------------------------------------------------------------- paired analysis
def t_interval(diffs: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the two-sided t-interval of the mean of ``diffs`` (NaN if n < 2)."""
    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(_st.t.ppf(0.5 + confidence / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(median, low, high)``: the distribution-free interval of the median of ``values`` from
    their order statistics (low = the j-th smallest, high = the j-th largest, with j the largest
    rank whose binomial(n, 1/2) tail keeps the coverage at least ``confidence``). Assumes the
    values independent draws of one distribution; needs no shape. NaN bounds when n is too small
    for the coverage (n < 6 at 95%)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = v.size
    if n == 0:
        return math.nan, math.nan, math.nan
    median = float(np.median(v))
    # P(x_(j) <= median <= x_(n+1-j)) = 1 - 2 P(Binomial(n, 1/2) <= j - 1)
    j = int(_st.binom.ppf((1 - confidence) / 2, n, 0.5))  # largest j with the tail <= (1 - c) / 2
    while j >= 1 and 2 * _st.binom.cdf(j - 1, n, 0.5) > 1 - confidence:
        j -= 1
    if j < 1:
        return median, math.nan, math.nan
    return median, float(v[j - 1]), float(v[n - j])


def detectable_difference(n: int, sd: float, confidence: float = 0.95, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t-test at ``confidence`` finds with
    probability ``power``, for ``n`` pairs whose differences have standard deviation ``sd``:
    ``(t_{1-a/2, n-1} + t_{power, n-1}) * sd / sqrt(n)`` (the usual t approximation). NaN if n < 2."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    t_a = float(_st.t.ppf(0.5 + confidence / 2, n - 1))
    t_b = float(_st.t.ppf(power, n - 1))
    return (t_a + t_b) * sd / math.sqrt(n)


def fieller_interval(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Fieller's ``confidence`` interval for mean(x) / mean(y) from paired samples (x_i, y_i): the
    ratios r for which the paired t-test of mean(x - r y) = 0 does not reject. ``(nan, nan)`` when
    the set is unbounded (mean(y) is not significantly different from 0) or n < 2."""
    xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xv)
    if n < 2 or len(yv) != n:
        return math.nan, math.nan
    t2 = float(_st.t.ppf(0.5 + confidence / 2, n - 1)) ** 2
    cov = np.cov(np.vstack([xv, yv]), ddof=1)
    mx, my = float(xv.mean()), float(yv.mean())
    a = my * my - t2 * cov[1, 1] / n
    b = mx * my - t2 * cov[0, 1] / n
    c = mx * mx - t2 * cov[0, 0] / n
    disc = b * b - a * c
    if a <= 0 or disc < 0:
        return math.nan, math.nan
    root = math.sqrt(disc)
    return (b - root) / a, (b + root) / a


def sign_flip_pvalue(diffs: Sequence[float]) -> float:
    """Exact two-sided sign-flip permutation p-value of mean(diffs) = 0 (n <= 12; NaN if n < 2)."""
    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n < 2:
        return math.nan
    if n > MAX_EXACT_PERMUTATION_N:
        raise ValueError(f"exact enumeration is limited to n <= {MAX_EXACT_PERMUTATION_N}, got n={n}")
    signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1  # every +/-1 pattern
    stat = np.abs(signs @ d)
    observed = abs(d.sum())
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    return float(np.mean(stat >= observed - tol))


@dataclass(frozen=True)
class PairedComparison:
    """``arm_a`` minus ``arm_b`` on ``metric``, paired by seed. See the module docstring."""

    experiment: str
    metric: str
    arm_a: str
    arm_b: str
    n: int  # matched pairs
    seeds: tuple = ()
    unmatched_seeds: tuple = ()  # seeds only one arm completed (dropped)
    n_a: int = 0  # complete runs of arm a (before pairing)
    n_b: int = 0
    n_diverged_a: int = 0
    n_diverged_b: int = 0
    mean_a: float = math.nan  # over the matched seeds
    mean_b: float = math.nan
    mean_diff: float = math.nan
    sd_diff: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    confidence: float = 0.95
    t_statistic: float = math.nan
    p_value: float = math.nan  # paired t-test, two-sided
    p_permutation: float = math.nan  # exact sign-flip, two-sided (n <= 12; else NaN)
    diffs: tuple = field(default=(), repr=False)

    @property
    def n_unmatched(self) -> int:
        return len(self.unmatched_seeds)

    @property
    def sign(self) -> int:
        """+1 if the CI lies above 0 (a > b), -1 if below (a < b), 0 if it contains 0 or is NaN."""
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return 0
        if self.ci_low > 0:
            return 1
        if self.ci_high < 0:
            return -1
        return 0

    @property
    def verdict(self) -> str:
        return {1: "a > b", -1: "a < b", 0: "inconclusive"}[self.sign]

    def describe(self, digits: int = 4, metric_label: str | None = None) -> str:
        """One line: the test used, difference, CI and both p-values. ``metric_label`` names the
        metric (default: its key; "" leaves it out, when the arms' labels already say it)."""
        name = self.metric if metric_label is None else metric_label
        head = f"{self.arm_a} - {self.arm_b}" + (f" on {name}" if name else "")
        extra = []
        if self.unmatched_seeds:
            extra.append(f"{self.n_unmatched} unmatched seed(s) dropped: {', '.join(map(str, self.unmatched_seeds))}")
        if self.n_diverged_a or self.n_diverged_b:
            extra.append(f"diverged runs: {self.arm_a} {self.n_diverged_a}, {self.arm_b} {self.n_diverged_b}")
        tail = f" ({'; '.join(extra)})" if extra else ""
        if self.n < 2:
            return f"{head}: only {self.n} paired seed(s), no test possible{tail}"
        f = lambda v: f"{v:+.{digits}f}"  # noqa: E731
        perm = f", exact sign-flip p {_fmt_p(self.p_permutation)}" if math.isfinite(self.p_permutation) else ""
        return (
            f"{head}: mean difference {f(self.mean_diff)} over {self.n} paired seeds, "
            f"{self.confidence:.0%} t-CI [{f(self.ci_low)}, {f(self.ci_high)}], "
            f"paired t-test p {_fmt_p(self.p_value)}{perm}{tail}"
        )


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "= n/a"
    return "< 0.0001" if p < 1e-4 else f"= {p:.4f}"


def _seed_values(d: pd.DataFrame, arm: str) -> pd.Series:
    sub = d[d["arm"] == arm]
    if sub["seed"].duplicated().any():
        seeds = sorted(sub.loc[sub["seed"].duplicated(), "seed"].unique().tolist())
        raise ValueError(f"arm {arm!r} has several complete records for seed(s) {seeds}")
    return pd.Series(sub["value"].to_numpy(dtype=float), index=sub["seed"].to_numpy())


def paired_comparison(
    df: pd.DataFrame,
    metric: str,
    arm_a: str,
    arm_b: str,
    experiment: str | None = None,
    profile: str | None = None,
    confidence: float = 0.95,
) -> PairedComparison:
    """Compare ``arm_a`` with ``arm_b`` on ``metric`` within one experiment, paired by seed.

    ``experiment`` (and ``profile``) filter the table when given; the rest of the table must then
    hold a single profile (else ``ValueError``). Row order does not matter.
    """
    d = with_arm(df)
    _need_columns(d, ["arm", "seed", "status", "metric", "value"])
    d = d[d["experiment"] == experiment] if experiment is not None and "experiment" in d.columns else d
    d = d[d["profile"] == profile] if profile is not None and "profile" in d.columns else d
    _check_single_profile(d, ())
    key = _run_key(d)
    div = d[d["status"] == DIVERGED]
    n_div = {arm: int(div.loc[div["arm"] == arm, key].nunique()) for arm in (arm_a, arm_b)}
    d = d[(d["status"] == COMPLETE) & (d["metric"] == metric) & d["value"].notna()]
    a, b = _seed_values(d, arm_a), _seed_values(d, arm_b)
    common = sorted(set(a.index) & set(b.index))
    unmatched = tuple(sorted(set(a.index) ^ set(b.index)))
    va, vb = a.loc[common].to_numpy(dtype=float), b.loc[common].to_numpy(dtype=float)
    diffs = va - vb
    n = len(common)
    base = dict(
        experiment=experiment or "",
        metric=metric,
        arm_a=arm_a,
        arm_b=arm_b,
        n=n,
        seeds=tuple(common),
        unmatched_seeds=unmatched,
        n_a=len(a),
        n_b=len(b),
        n_diverged_a=n_div[arm_a],
        n_diverged_b=n_div[arm_b],
        confidence=confidence,
        diffs=tuple(float(x) for x in diffs),
    )
    if n == 0:
        return PairedComparison(**base)
    mean, low, high = t_interval(diffs, confidence)
    res = dict(base, mean_a=float(va.mean()), mean_b=float(vb.mean()), mean_diff=mean)
    if n < 2:
        return PairedComparison(**res)
    sd = float(np.std(diffs, ddof=1))
    t_stat, p = _paired_t(va, vb, mean, sd)
    p_perm = sign_flip_pvalue(diffs) if n <= MAX_EXACT_PERMUTATION_N else math.nan
    return PairedComparison(
        **dict(res, sd_diff=sd, ci_low=low, ci_high=high, t_statistic=t_stat, p_value=p, p_permutation=p_perm)
    )


def _paired_t(va: np.ndarray, vb: np.ndarray, mean: float, sd: float) -> tuple[float, float]:
    """The paired t statistic and its two-sided p-value (a constant non-zero difference: infinite t, p 0)."""
    if sd == 0.0:
        return (math.copysign(math.inf, mean) if mean != 0 else math.nan), (0.0 if mean != 0 else 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tt = _st.ttest_rel(va, vb)
    return float(tt.statistic), float(tt.pvalue)


# ------------------------------------------------------------------------------------- format
def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean(a) - mean(b), low, high)``: the Welch t-interval of a difference of means between
    two independent groups (e.g. two profiles' runs, which share no pairing); NaN bounds when a
    group has fewer than 2 values."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) == 0 or len(y) == 0:
        return math.nan, math.nan, math.nan
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return diff, math.nan, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    if se == 0.0:
        return diff, diff, diff
    dof = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(_st.t.ppf(0.5 + confidence / 2, dof)) * se
    return diff, diff - half, diff + half


def format_mean_sd(mean: float, sd: float, n: int, digits: int = 3) -> str:
    """``"0.906 ± 0.004 (n=5)"``; without an sd (n=1) ``"0.906 (n=1)"``; no value ``"n/a (n=0)"``."""
    if mean is None or not math.isfinite(float(mean)):
        return f"n/a (n={n})"
    if sd is None or not math.isfinite(float(sd)):
        return f"{float(mean):.{digits}f} (n={n})"
    return f"{float(mean):.{digits}f} ± {float(sd):.{digits}f} (n={n})"


def mean_sd_cell(values: Sequence[float] | pd.Series, digits: int = 3, empty: str = "not run") -> str:
    """:func:`format_mean_sd` of ``values`` (sample sd), or ``empty`` when there are none."""
    v = pd.Series(values, dtype=float)
    return format_mean_sd(v.mean(), v.std(ddof=1), len(v), digits) if len(v) else empty
