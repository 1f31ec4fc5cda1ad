"""How a claim's comparisons become verdicts: the rules every claim uses.

Verdicts: "replicated", "not replicated", "inconclusive", "not run".

"not run"
    The experiment has no records for that profile, or one of the arms the claim needs has none.

Comparisons are paired by seed (:func:`relustudy.stats.paired_comparison`): for each seed both arms
completed, ``d = X - Y``; the 95% t-interval (CI) of mean(d) decides. "Better" follows the metric's
direction (``higher_is_better`` in :data:`relustudy.metrics.METRICS`): higher accuracy; *lower* error, loss, lifetime sparsity and
dispersion (Smith, Section 5, calls PReLU's higher sparsity and dispersion "worse" and its lower
dispersion "better"). Fewer than 2 pairs gives no CI and the component is "inconclusive".

"X performs better than Y"
    replicated if the CI excludes 0 on X's better side; not replicated if it excludes 0 on X's
    worse side; inconclusive otherwise (the difference is inside the seed-to-seed noise).
"X does not perform worse than Y"
    not replicated if the CI lies entirely on X's worse side; otherwise replicated. This is
    lenient (no margin): few seeds give wide CIs that cannot fail it, so the detail prints the CI.
"X performs about the same as Y"
    an equivalence test with margin ``m`` (the metric registry's ``margin``; 0.01 accuracy = one
    percentage point, which covers the gaps Smith calls "about the same", 0.002 and 0.008):
    replicated if the CI lies inside [-m, m]; not replicated if it lies entirely outside
    (|difference| > m with confidence); inconclusive otherwise.
"X is non-inferior to Y"
    a non-inferiority test with margin ``m``: replicated if the CI lies above -m on X's better
    side, not replicated if it lies entirely below -m, else inconclusive.
Several comparisons in one claim (X vs several arms, several metrics) combine as a conjunction:
not replicated if any part is not replicated; replicated if every part is replicated; otherwise
inconclusive. For "better" claims a part's "not replicated" must survive Holm's correction over the
claim's parts (:func:`holm_against`); each part is listed in ``detail``.

Each tested part is also kept as numbers (:class:`Effect`, ``ClaimResult.effects``): its estimate
and interval turned so that positive is the claimed side, and the thresholds of its rule -- what
the summary's forest plot draws and the verdict CSV holds.

A claimed value (a published number, e.g. Smith's accuracy 0.906), :func:`value_verdict`
    The source reports a single run, so its number is one draw from its own run-to-run
    distribution. We ask whether it is a plausible single run of *our* setup: it must lie inside
    our 95% prediction interval for one new run, ``mean +- t_{0.975, n-1} * sd * sqrt(1 + 1/n)``,
    widened by half a unit of the source's last printed digit (0.0005 for Smith's three decimals).
    Inside: replicated; outside: not replicated; fewer than 2 complete seeds: inconclusive. (With
    5 seeds the half-width is about 3 sd, wider than the "mean +- 2 sd" rule of thumb, because sd
    itself is uncertain with so few seeds.) The difference ``ours - paper`` is always reported.

Profiles. "quick" (and "smoke") runs are scaled down (fewer epochs, larger batches, subsets; see
``Experiment.profile(p).scale_downs``), so *absolute* values are expected to differ from the
paper; value verdicts are only meaningful for the "paper" profile, while comparisons between arms
remain meaningful as statements about the scaled-down setup. Each result's ``note`` says so.

Each comparative claim is also checked against the paper's own (single-run) numbers; the note says
whether the source's table supports the sentence as we test it (Smith's Table 3 does not fully:
tanh's dispersion, 0.078, is lower than PReLU's, 0.110).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd
from scipy import stats as _st

from .data import dataset_available
from .experiments import get_experiment
from .metrics import metric_spec
from .registry import UnknownNameError
from .stats import (
    PairedComparison,
    detectable_difference,
    format_mean_sd,
    summarize,
    with_arm,
)

VERDICTS = ("replicated", "not replicated", "inconclusive", "not run", "not obtainable")
REPLICATED, NOT_REPLICATED, INCONCLUSIVE, NOT_RUN, NOT_OBTAINABLE = VERDICTS


def margin_reason(metric: str) -> str:
    """Why ``metric``'s margin has its size, in words for a rule line (the metric registry's reason)."""
    size, spec = margin(metric), metric_spec(metric)  # margin() refuses a metric without one
    return f"margin {size:g} on {spec.label}, the smallest effect of interest: {spec.margin_reason}"


def margin(metric: str) -> float:
    """The equivalence / non-inferiority margin of ``metric`` (the metric registry's)."""
    m = metric_spec(metric).margin
    if m is None:
        raise UnknownNameError(f"no equivalence margin for metric {metric!r}")
    return m


CONFIDENCE = 0.95

RESULT_COLUMNS = (
    "claim_id",
    "source",
    "table",
    "experiment",
    "profile",
    "claim",
    "tested",
    "paper",
    "ours",
    "verdict",
    "detail",
    "note",
    "rule",
    "effects",
)


@dataclass(frozen=True)
class Effect:
    """One tested part of a claim as numbers. ``estimate``, ``low`` and ``high`` are the difference
    and its 95% interval in ``metric``'s unit, turned so that positive is the side the claim states
    (for an equivalence or a published value, where no side is claimed: ours minus the other, as
    is). ``bounds`` are the thresholds the rule compares the interval with: ``(0,)`` for "better",
    ``(-margin,)`` for non-inferiority, ``(-margin, margin)`` for equivalence, ``(excess,)`` for a
    difference claim, ``(0,)`` for a published value (which must lie inside the interval)."""

    label: str
    metric: str
    estimate: float
    low: float
    high: float
    n: int
    bounds: tuple[float, ...]
    verdict: str


def _directed(pc: PairedComparison, sign: int) -> tuple[float, float, float]:
    """``pc``'s mean difference and CI multiplied by ``sign`` (+1 or -1), as (estimate, low, high)."""
    lo, hi = sorted((sign * pc.ci_low, sign * pc.ci_high))
    return sign * pc.mean_diff, lo, hi


def comparison_effect(pc: PairedComparison, relation: str, metric: str, verdict: str) -> Effect:
    """The :class:`Effect` of one paired comparison tested by ``relation``."""
    if relation == "same":
        sign, bounds = 1, (-margin(metric), margin(metric))
    else:
        sign = 1 if _higher_is_better(metric) else -1
        bounds = (-margin(metric),) if relation == "non_inferior" else (0.0,)
    est, lo, hi = _directed(pc, sign)
    return Effect(f"{pc.arm_a} − {pc.arm_b}", metric, est, lo, hi, pc.n, bounds, verdict)


def deciding_effect(effects: Sequence[Effect], verdict: str) -> Effect | None:
    """The part that decides a claim's ``verdict``: among the parts with that verdict (all parts if
    none has it) the one whose interval's lower end lies lowest relative to its first threshold --
    for *replicated*, the closest call; for *not replicated*, the clearest failure."""
    if not effects:
        return None
    pool = [e for e in effects if e.verdict == verdict] or list(effects)
    finite = [e for e in pool if math.isfinite(e.low)] or pool
    return min(finite, key=lambda e: (e.low - e.bounds[0]) if math.isfinite(e.low) else math.inf)


@dataclass(frozen=True)
class ClaimResult:
    claim_id: str
    source: str
    table: str
    experiment: str
    profile: str
    claim: str  # the source's sentence, quoted
    tested: str  # what exactly we test
    paper: str  # the source's number(s), from paper_values
    ours: str  # mean ± sd (n seeds) per arm and metric, and the profile
    verdict: str
    detail: str  # the rule, the test(s) used, CI and p-values
    note: str = ""
    rule: str = ""  # the rule alone (also the first entry of detail)
    effects: tuple[Effect, ...] = ()  # each tested part as numbers

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["effects"] = self.effects  # kept as Effect objects (asdict would turn them into dicts)
        return d


def _better_sign(pc: PairedComparison, metric: str) -> int:
    """+1: arm a is significantly better than b; -1: significantly worse; 0: neither."""
    return pc.sign if _higher_is_better(metric) else -pc.sign


def _higher_is_better(metric: str) -> bool:
    direction = metric_spec(metric).higher_is_better
    if direction is None:
        raise UnknownNameError(f"no direction known for metric {metric!r} (the metric registry gives none)")
    return direction


def combine(verdicts: Sequence[str]) -> str:
    """Conjunction: any "not replicated" -> not replicated; all "replicated" -> replicated."""
    if not verdicts:
        return INCONCLUSIVE
    if NOT_RUN in verdicts:
        return NOT_RUN
    if NOT_REPLICATED in verdicts:
        return NOT_REPLICATED
    if all(v == REPLICATED for v in verdicts):
        return REPLICATED
    return INCONCLUSIVE


def comparison_verdict(pc: PairedComparison, relation: str, metric: str, margin_value: float | None = None) -> str:
    """The verdict of one paired comparison (arm a vs arm b) for ``relation``; see the docstring.
    ``margin_value`` replaces the registry's margin (the sensitivity line's half and double)."""
    if pc.n < 2 or not (math.isfinite(pc.ci_low) and math.isfinite(pc.ci_high)):
        return INCONCLUSIVE
    if relation == "better":
        return {1: REPLICATED, -1: NOT_REPLICATED, 0: INCONCLUSIVE}[_better_sign(pc, metric)]
    if relation == "not_worse":
        return NOT_REPLICATED if _better_sign(pc, metric) == -1 else REPLICATED
    if relation == "non_inferior":
        m = margin(metric) if margin_value is None else margin_value
        # the CI of (a - b) turned so that positive means "a better"
        lo, hi = (pc.ci_low, pc.ci_high) if _higher_is_better(metric) else (-pc.ci_high, -pc.ci_low)
        if lo > -m:
            return REPLICATED
        if hi < -m:
            return NOT_REPLICATED
        return INCONCLUSIVE
    if relation == "same":
        m = margin(metric) if margin_value is None else margin_value
        if -m <= pc.ci_low and pc.ci_high <= m:
            return REPLICATED
        if pc.ci_low > m or pc.ci_high < -m:
            return NOT_REPLICATED
        return INCONCLUSIVE
    raise ValueError(f"unknown relation {relation!r}; valid: {', '.join(RELATIONS)}")


HOLM_NOTE = "significant on the worse side alone, not after Holm's correction over the claim's comparisons"
HOLM_RANK_PART_NOTE = "significant alone, not after Holm's correction over the claim's comparisons"
HOLM_RANK_NOTE = (
    " A comparison counts against the rank only if its p-value survives Holm's correction over the "
    "claim's comparisons (family-wise error 5%); so does one for it when the rank allows k > 1."
)


def holm_survivors(p_values: Sequence[float], alpha: float = 1 - CONFIDENCE) -> set[int]:
    """Indices of ``p_values`` that Holm's step-down rejects at family-wise ``alpha`` (a NaN counts as 1)."""
    ps = [p if math.isfinite(p) else 1.0 for p in p_values]
    survives = set()
    for rank, i in enumerate(sorted(range(len(ps)), key=lambda i: ps[i])):
        if ps[i] < alpha / (len(ps) - rank):
            survives.add(i)
        else:
            break  # step-down: every larger p-value fails too
    return survives


def holm_against(parts: list[tuple[PairedComparison, str, str]], alpha: float = 1 - CONFIDENCE) -> list:
    """Holm's step-down over the "not replicated" decisions of a claim's parts
    ``(comparison, metric, verdict)``: a part significantly on the worse side keeps its verdict
    only if its paired t-test p-value survives Holm at ``alpha`` among all the parts (the others
    count with p = 1); else it becomes inconclusive. Returns ``(comparison, verdict, note)``."""
    survives = holm_survivors([pc.p_value if v == NOT_REPLICATED else 1.0 for pc, _m, v in parts], alpha)
    return [
        (pc, INCONCLUSIVE, HOLM_NOTE) if v == NOT_REPLICATED and i not in survives else (pc, v, "")
        for i, (pc, _m, v) in enumerate(parts)
    ]


def sensitivity_line(pc: PairedComparison, relation: str, metric: str) -> str:
    """For a margin-based test: the verdict at half and at twice the metric's margin, so that a
    reader sees whether the verdict rests on the margin's exact value."""
    m = margin(metric)
    at = {f"{k:g}": comparison_verdict(pc, relation, metric, k) for k in (m / 2, 2 * m)}
    return "sensitivity: " + ", ".join(f"at margin {k} -> {v}" for k, v in at.items())


def paper_effect_line(pc: PairedComparison, paper_difference: float, same_task: bool) -> str:
    """For an inconclusive comparison: whether its interval excludes the paper's own difference
    (``arm_a - arm_b`` in the paper's table), i.e. whether an effect as large as the paper's is
    ruled out by our runs; "" when the paper has no such number or the interval contains it."""
    if not (math.isfinite(paper_difference) and math.isfinite(pc.ci_low) and math.isfinite(pc.ci_high)):
        return ""
    if pc.ci_low <= paper_difference <= pc.ci_high:
        return ""
    task = "" if same_task else " (measured on the source's own task, not this one)"
    # the paper's difference beyond the interval's far end from 0: an effect that large is ruled out
    if (paper_difference > pc.ci_high and paper_difference > 0) or (
        paper_difference < pc.ci_low and paper_difference < 0
    ):
        return f"the interval excludes an effect as large as the paper's ({paper_difference:+.4f}){task}"
    return f"the interval lies beyond the paper's difference ({paper_difference:+.4f}): ours is larger{task}"


def _metric_words(metric: str) -> str:
    """How a comparison line names its metric: the registry's label (no internal key on a page);
    "" for a difference claim's per-run quantities (metric "value"), whose labels say it."""
    if metric == "value":
        return ""
    try:
        return metric_spec(metric).label
    except UnknownNameError:
        return metric


def part_detail(pc: PairedComparison, verdict: str, why: str = "") -> str:
    """One comparison's line in a claim's detail: the test, its verdict, and for an inconclusive
    one the difference these runs could have detected (80% power) -- is the effect small, or
    the study too small to see it? -- and, at n <= 3, that the exact sign-flip test cannot
    decide (its smallest two-sided p is 2 / 2^n >= 0.25), so the verdict rests on the t-interval."""
    line = f"{pc.describe(metric_label=_metric_words(pc.metric))} -> {verdict}" + (f" ({why})" if why else "")
    if verdict == INCONCLUSIVE and pc.n >= 2:
        mde = detectable_difference(pc.n, pc.sd_diff, CONFIDENCE)
        line += (
            f" (with {pc.n} pairs and this seed spread, a true difference of {mde:.4f} would be found 80% of the time)"
        )
    if 2 <= pc.n <= 3:
        line += f" [n = {pc.n}: the exact sign-flip test cannot go below p = {2 / 2**pc.n:.2f}; the t-interval decides]"
    return line


RELATIONS = ("better", "not_worse", "non_inferior", "same")

RULES = {
    "better": "replicated if the 95% CI of the paired difference excludes 0 on {x}'s better side, "
    "not replicated if it excludes 0 on the worse side, else inconclusive",
    "not_worse": "not replicated only if the 95% CI of the paired difference lies entirely on {x}'s worse side "
    "(no margin), else replicated",
    "non_inferior": "non-inferiority with margin {m}: replicated if the 95% CI of the paired difference lies "
    "above -{m} on {x}'s better side, not replicated if it lies entirely below -{m}, else inconclusive",
    "same": "replicated if the 95% CI of the paired difference lies inside ±{m}, not replicated if it lies "
    "entirely outside, else inconclusive",
    "value": "replicated if the paper's value lies inside our 95% prediction interval for one run "
    "(mean ± t·sd·sqrt(1+1/n), widened by the paper's rounding), else not replicated; "
    "n < 2: inconclusive",
}


def value_verdict(
    paper: float, mean: float, sd: float, n: int, half_unit: float = 0.0, confidence: float = CONFIDENCE
) -> tuple[str, float, float]:
    """``(verdict, low, high)`` for a claimed value against our seeds (see the module docstring)."""
    if n < 2 or not (math.isfinite(mean) and math.isfinite(sd)) or not math.isfinite(paper):
        return INCONCLUSIVE, math.nan, math.nan
    half = float(_st.t.ppf(0.5 + confidence / 2, n - 1)) * sd * math.sqrt(1 + 1 / n) + half_unit
    low, high = mean - half, mean + half
    return (REPLICATED if low <= paper <= high else NOT_REPLICATED), low, high


def _profile_note(experiment: str, profile: str, absolute: bool) -> str:
    if profile == "paper":
        return ""
    try:
        desc = get_experiment(experiment).profile(profile).describe()
    except Exception:  # an experiment without that profile: keep the generic caveat
        desc = "scaled down"
    what = (
        "absolute values are expected to differ from the paper"
        if absolute
        else "the comparison is about the scaled-down setup"
    )
    return f"{profile} profile ({desc}): {what}."


def not_run_reason(experiment: str, profile: str, what: str = "") -> str:
    """Why a claim has no records: the dataset is not on this machine, or the runs were not made."""

    exp = get_experiment(experiment)
    missing = f"no records for {what or 'experiment ' + repr(experiment)} in {experiment!r}, profile {profile!r}"
    if not dataset_available(exp.dataset):
        return (
            f"not run: data not available on this machine ({exp.dataset}; with internet, "
            f"`relustudy run {experiment} --profile {profile} --download`): {missing}"
        )
    return missing


def _select(results_df: pd.DataFrame, experiment: str, profile: str) -> pd.DataFrame:
    if results_df is None or results_df.empty or "experiment" not in results_df.columns:
        return pd.DataFrame(columns=["experiment", "profile", "arm", "seed", "status", "metric", "value"])
    d = with_arm(results_df)
    d = d[d["experiment"] == experiment]
    if "profile" in d.columns:
        d = d[d["profile"] == profile]
    return d


def arm_cells(d: pd.DataFrame, metric: str, arms: Sequence[str], label: str | None = None) -> str:
    """Each arm's mean ± sd (n) on ``metric``, after the metric's label."""
    summ = summarize(d, metric, by=("arm",)).set_index("arm") if not d.empty else pd.DataFrame()
    cells = []
    for a in arms:
        if a in summ.index:
            row = summ.loc[a]
            cells.append(f"{a} {format_mean_sd(row['mean'], row['sd'], int(row['n']))}")
        else:
            cells.append(f"{a} n/a (n=0)")
    if label is None:  # the registry's name for the metric, never its key
        try:
            label = metric_spec(metric).label
        except UnknownNameError:
            label = metric
    return f"{label}: " + ", ".join(cells)
