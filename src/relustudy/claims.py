"""The sources' claims, each checked against our recorded runs with one uniform set of rules.

A claim is registered in :data:`CLAIMS` (a :class:`~relustudy.registry.Registry`) under an id such
as ``smith.table3.prelu_best_on_all_metrics``. It carries the source, the table it is about, the
source's sentence quoted verbatim (``quote``), what exactly we test (``statement``), and
``evaluate(results_df, profile) -> ClaimResult``. The paper's numbers shown beside a claim are read
from :func:`relustudy.reference.paper_values` (never typed twice).

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

import fnmatch
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from scipy import stats as _st

from . import reference
from .data import dataset_available
from .experiments import get_experiment, validate_profile
from .metrics import metric_spec
from .registry import SOURCES_MODULE, Registry, UnknownNameError
from .stats import (
    PairedComparison,
    detectable_difference,
    fieller_interval,
    format_mean_sd,
    paired_comparison,
    summarize,
    t_interval,
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


# ------------------------------------------------------------------------------------ claims
@dataclass(frozen=True)
class Claim:
    """Base: identification, quote and the paper's numbers. Subclasses define ``evaluate``."""

    id: str
    source: str
    experiment: str  # our experiment reproducing the table the claim is about
    section: str  # where the sentence is, e.g. "5. Analysis"
    quote: str  # the source's words, verbatim
    statement: str  # what exactly we test
    note: str = ""

    @property
    def table(self) -> str:
        return reference.experiment_reference(self.experiment)[1]

    def paper_text(self) -> str:
        raise NotImplementedError

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        raise NotImplementedError

    def _result(
        self,
        profile: str,
        ours: str,
        verdict: str,
        detail: str,
        note: str,
        rule: str = "",
        effects: Sequence[Effect] = (),
    ) -> ClaimResult:
        return ClaimResult(
            claim_id=self.id,
            source=self.source,
            table=self.table,
            experiment=self.experiment,
            profile=profile,
            claim=self.quote,
            tested=self.statement,
            paper=self.paper_text(),
            ours=ours,
            verdict=verdict,
            detail=detail,
            note=" ".join(s for s in (self.note, note) if s),
            rule=rule,
            effects=tuple(effects),
        )

    def _not_run_without(
        self, d: pd.DataFrame, arms: Sequence[str], profile: str, note: str = ""
    ) -> ClaimResult | None:
        """The *not run* result when ``d`` (this claim's selected records) lacks any of ``arms``;
        None when every arm has records."""
        missing = list(dict.fromkeys(a for a in arms if d.empty or not (d["arm"] == a).any()))
        if not (d.empty or missing):
            return None
        why = not_run_reason(self.experiment, profile, "" if d.empty else f"arm(s) {', '.join(missing)}")
        return self._result(profile, f"not run ({profile} profile)", NOT_RUN, why, note)

    def _not_run_without_metrics(
        self, d: pd.DataFrame, metrics: Sequence[str], profile: str, note: str = ""
    ) -> ClaimResult | None:
        """The *not run* result when no complete record in ``d`` has one of ``metrics`` (the profile
        does not measure it, e.g. an eval-mode training error); None otherwise."""
        done = d[d["status"] == "complete"] if "status" in d.columns else d
        absent = [m for m in metrics if not (done["metric"] == m).any()]
        if not absent or done.empty:
            return None
        why = (
            f"The {profile} profile's records of {self.table} ({get_experiment(self.experiment).title}) do not measure "
            + ", ".join(metric_spec(m).label for m in absent)
            + "."
        )
        return self._result(profile, f"not measured ({profile} profile)", NOT_RUN, why, note)

    def _paper(self, arm: str, metric: str) -> float:
        src, table = reference.experiment_reference(self.experiment)
        return reference.paper_value(src, table, arm, reference.paper_column(src, metric))

    def _column(self, metric: str) -> str:
        """The source's name for ``metric`` (its column, readable); the registry's label where the
        source publishes none."""
        try:
            return reference.paper_column(self.source, metric).replace("_", " ")
        except UnknownNameError:
            return metric_spec(metric).label


@dataclass(frozen=True)
class ComparisonClaim(Claim):
    """``arm`` relates to each of ``others`` on each of ``metrics`` by ``relation``.

    ``relation``: "better", "not_worse" or "same" (see the module docstring); the parts combine
    by :func:`combine`.
    """

    arm: str = ""
    others: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("test_accuracy",)
    relation: str = "better"
    paper_says: str = ""  # for sources that state the claim without numbers (figures only)

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}; valid: {', '.join(RELATIONS)}")
        for m in self.metrics:
            _higher_is_better(m)
            if self.relation in ("same", "non_inferior") and metric_spec(m).margin is None:
                raise ValueError(f"no equivalence margin for metric {m!r}")

    def paper_text(self) -> str:
        if self.paper_says:
            return self.paper_says
        src, table = reference.experiment_reference(self.experiment)
        parts = []
        for m in self.metrics:
            vals = ", ".join(f"{a} {self._paper(a, m):.3f}" for a in (self.arm, *self.others))
            parts.append(f"{self._column(m)}: {vals}")
        return f"{'; '.join(parts)} ({table}, one run)"

    def paper_supports(self) -> tuple[bool, list[str]]:
        """Whether the source's own numbers satisfy the statement; the failing parts."""
        if self.paper_says:  # no numbers to check: the source's figures are its only evidence
            return True, []
        failing = []
        for m in self.metrics:
            x = self._paper(self.arm, m)
            for other in self.others:
                y = self._paper(other, m)
                better = (x - y) if _higher_is_better(m) else (y - x)  # > 0: arm better
                ok = {
                    "better": better > 0,
                    "not_worse": better >= 0,
                    "non_inferior": better > -(metric_spec(m).margin or 0.0),
                    "same": abs(x - y) <= (metric_spec(m).margin or 0.0),
                }[self.relation]
                if not ok:
                    failing.append(f"{self._column(m)}: {self.arm} {x:.3f} vs {other} {y:.3f}")
        return not failing, failing

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        d = _select(results_df, self.experiment, profile)
        arms = (self.arm, *self.others)
        ok, failing = self.paper_supports()
        paper_note = (
            "The source gives no numbers for this (figures only)."
            if self.paper_says
            else "The paper's own numbers support the statement as tested."
            if ok
            else "The paper's own numbers do not support the statement as tested (" + "; ".join(failing) + ")."
        )
        rule = RULES[self.relation].format(
            x=self.arm, m=", ".join(f"{metric_spec(m).margin or math.nan:g}" for m in self.metrics)
        )
        if self.relation in ("non_inferior", "same"):
            rule += "; " + "; ".join(margin_reason(m) for m in self.metrics)
        not_run = self._not_run_without(d, arms, profile, paper_note) or self._not_run_without_metrics(
            d, self.metrics, profile, paper_note
        )
        if not_run is not None:
            return not_run

        ours_parts, details, verdicts = [], [f"Rule: {rule}."], []
        parts: list[tuple[PairedComparison, str, str]] = []
        for m in self.metrics:
            summ = summarize(d, m, by=("arm",)).set_index("arm")
            cells = []
            for a in arms:
                if a in summ.index:
                    row = summ.loc[a]
                    txt = format_mean_sd(row["mean"], row["sd"], int(row["n"]))
                    if row["n_diverged"]:
                        txt += f" [{int(row['n_diverged'])} diverged]"
                else:
                    txt = "n/a (n=0)"
                cells.append(f"{a} {txt}")
            ours_parts.append(f"{self._column(m)}: " + ", ".join(cells))
            for other in self.others:
                pc = paired_comparison(d, m, self.arm, other, self.experiment, profile, confidence=CONFIDENCE)
                parts.append((pc, m, comparison_verdict(pc, self.relation, m)))
        decided = [(pc, v, "") for pc, _m, v in parts]
        if self.relation == "better" and len(parts) > 1:
            decided = holm_against(parts)
            details.append(
                f"Several comparisons ({len(parts)}): 'replicated' needs every one (an intersection-union test, no "
                "correction needed); a 'not replicated' part must survive Holm's correction over all of them "
                "(family-wise error 5%)."
            )
        effects = []
        same_task = get_experiment(self.experiment).same_task
        for (pc, v, why), (_pc, m, _v) in zip(decided, parts, strict=True):
            verdicts.append(v)
            line = part_detail(pc, v, why)
            if self.relation in ("non_inferior", "same") and pc.n >= 2:
                line += f"; {sensitivity_line(pc, self.relation, m)}"
            if v == INCONCLUSIVE and not self.paper_says:
                excluded = paper_effect_line(pc, self._paper(pc.arm_a, m) - self._paper(pc.arm_b, m), same_task)
                line += f"; {excluded}" if excluded else ""
            details.append(line)
            effects.append(comparison_effect(pc, self.relation, m, v))
        ours = "; ".join(ours_parts) + f" [{profile} profile]"
        note = " ".join(s for s in (paper_note, _profile_note(self.experiment, profile, absolute=False)) if s)
        return self._result(profile, ours, combine(verdicts), " | ".join(details), note, rule, effects)


def _arm_cells(d: pd.DataFrame, metric: str, arms: Sequence[str], label: str | None = None) -> str:
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


@dataclass(frozen=True)
class RankClaim(Claim):
    """``arm`` is among the best (``best=True``) or worst ``k`` of ``(arm, *others)`` on ``metric``.

    Ranks from means alone would call noise a ranking, so the verdict counts paired comparisons
    (95% CI of the seed-paired difference excluding 0): with N = len(others),
    replicated if ``arm`` is significantly on the claimed side of at least N - k + 1 others (at
    most k - 1 others can then be on that side of it); not replicated if at least k others are
    significantly on the claimed side of it (it then cannot rank within k); else inconclusive.
    """

    arm: str = ""
    others: tuple[str, ...] = ()
    metric: str = "test_accuracy"
    k: int = 1
    best: bool = True
    paper_says: str = ""

    def __post_init__(self) -> None:
        _higher_is_better(self.metric)
        if not 1 <= self.k <= len(self.others):
            raise ValueError(f"k must be in 1..{len(self.others)}, got {self.k}")

    def paper_text(self) -> str:
        return self.paper_says

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        d = _select(results_df, self.experiment, profile)
        arms = (self.arm, *self.others)
        missing = [a for a in arms if d.empty or not (d["arm"] == a).any()]
        if d.empty or missing:
            return self._result(
                profile,
                f"not run ({profile} profile)",
                NOT_RUN,
                not_run_reason(self.experiment, profile, f"arm(s) {', '.join(missing) or 'any'}"),
                "",
            )
        side = "best" if self.best else "worst"
        n_others = len(self.others)
        rule = (
            f"Rule: among the {side} {self.k} of {len(arms)} if {self.arm} is significantly "
            f"{'better' if self.best else 'worse'} than at least {n_others - self.k + 1} of the other {n_others} "
            f"(paired 95% CI excluding 0); not if at least {self.k} others are significantly "
            f"{'better' if self.best else 'worse'} than it; else inconclusive." + HOLM_RANK_NOTE
        )
        claimed_side = (1 if _higher_is_better(self.metric) else -1) * (1 if self.best else -1)
        comparisons, toward = [], []  # toward: +1 significantly on the claimed side, -1 against, 0 neither
        for other in self.others:
            pc = paired_comparison(d, self.metric, self.arm, other, self.experiment, profile, confidence=CONFIDENCE)
            sign = _better_sign(pc, self.metric) if pc.n >= 2 else 0
            comparisons.append(pc)
            toward.append(sign * (1 if self.best else -1))
        # "At least k others against" is a union of tests: each counts only if it survives Holm over
        # all N parts. So is "at least N - k + 1 for" when k > 1; with k = 1 it needs every part (an
        # intersection-union test, no correction needed).
        against_ok = holm_survivors([pc.p_value if t == -1 else 1.0 for pc, t in zip(comparisons, toward, strict=True)])
        for_ok = (
            {i for i, t in enumerate(toward) if t == 1}
            if self.k == 1
            else holm_survivors([pc.p_value if t == 1 else 1.0 for pc, t in zip(comparisons, toward, strict=True)])
        )
        details, effects = [rule], []
        for i, (pc, t) in enumerate(zip(comparisons, toward, strict=True)):
            if t == 1 and i in for_ok:
                part, why = REPLICATED, ""
            elif t == -1 and i in against_ok:
                part, why = NOT_REPLICATED, ""
            else:
                part, why = INCONCLUSIVE, (HOLM_RANK_PART_NOTE if t != 0 else "")
            details.append(part_detail(pc, part, why))
            est, lo, hi = _directed(pc, claimed_side)
            effects.append(Effect(f"{pc.arm_a} − {pc.arm_b}", self.metric, est, lo, hi, pc.n, (0.0,), part))
        claimed, against = len(for_ok), len(against_ok)
        if claimed >= n_others - self.k + 1:
            verdict = REPLICATED
        elif against >= self.k:
            verdict = NOT_REPLICATED
        else:
            verdict = INCONCLUSIVE
        ahead, behind = (claimed, against) if self.best else (against, claimed)
        details.append(
            f"significantly better than {ahead}, significantly worse than {behind} of {n_others} (after Holm) "
            f"-> {verdict}"
        )
        ours = _arm_cells(d, self.metric, arms) + f" [{profile} profile]"
        note = "" if self.paper_says else "The source gives no numbers for this (figures only). "
        return self._result(
            profile,
            ours,
            verdict,
            " | ".join(details),
            note + _profile_note(self.experiment, profile, absolute=False),
            rule.removeprefix("Rule: ").rstrip("."),
            effects,
        )


@dataclass(frozen=True)
class Quantity:
    """A per-run number a :class:`DifferenceClaim` compares: ``arm``'s ``metrics``, averaged per run
    when there are several (e.g. the mean PReLU coefficient of one stage's layers). ``label`` names
    an average on the page; a single metric is named by the metric registry."""

    arm: str
    metrics: tuple[str, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("a quantity needs at least one metric")
        for m in self.metrics:
            metric_spec(m)  # unknown names fail at registration, not on a page
        if len(self.metrics) > 1 and not self.label:
            raise ValueError("an average of several metrics needs a label")

    @property
    def name(self) -> str:
        return self.label or metric_spec(self.metrics[0]).label

    def rows(self, d: pd.DataFrame, key: str) -> pd.DataFrame:
        """One long-format row per run of ``arm``: ``arm`` = this quantity's display name, ``metric``
        = "value"; a complete run lacking one of the metrics is left out (it cannot be averaged)."""
        sub = d[(d["arm"] == self.arm) & d["metric"].isin(self.metrics)]
        cols = list(dict.fromkeys([key, "seed", "status"]))
        if sub.empty:
            return pd.DataFrame(columns=[*cols, "arm", "metric", "value"])
        g = sub.groupby(cols, dropna=False)["value"]
        out = pd.DataFrame({"value": g.mean(), "count": g.count()}).reset_index()
        out = out[(out["count"] == len(self.metrics)) | (out["status"] != "complete")]
        return out.drop(columns="count").assign(arm=f"{self.arm}: {self.name}", metric="value")


@dataclass(frozen=True)
class DifferenceClaim(Claim):
    """For each part ``(a, b)`` of :class:`Quantity`, ``a - b`` exceeds ``excess`` (in the
    quantities' unit), paired by seed: within one arm (conv1's coefficient against a deeper stage's
    average) or between arms (the mean coefficient without and with weight decay).

    Each part: replicated if the 95% CI of the paired difference lies above ``excess``, not
    replicated if it lies entirely below it (with ``excess`` 0: a significant difference the other
    way), else inconclusive; the parts combine by :func:`combine`. A negative ``excess`` states an
    upper bound on a fall: ``(final, first)`` with ``excess = -0.1`` claims the quantity fell by
    less than 0.1.
    """

    parts: tuple[tuple[Quantity, Quantity], ...] = ()
    excess: float = 0.0
    paper_says: str = ""

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a difference claim needs at least one part")
        if not math.isfinite(self.excess):
            raise ValueError(f"excess must be a finite number, got {self.excess!r}")

    def paper_text(self) -> str:
        return self.paper_says

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        d = _select(results_df, self.experiment, profile)
        quantities = list(dict.fromkeys(q for part in self.parts for q in part))
        not_run = self._not_run_without(d, [q.arm for q in quantities], profile)
        if not_run is not None:
            return not_run
        key = "run_id" if "run_id" in d.columns else "seed"
        long = pd.concat([q.rows(d, key) for q in quantities], ignore_index=True)
        rule = (
            f"replicated if the 95% CI of each paired difference lies above {self.excess:g}, not "
            f"replicated if it lies entirely below {self.excess:g}, else inconclusive"
        )
        details, verdicts, effects = [f"Rule: {rule}."], [], []
        for a, b in self.parts:
            pc = paired_comparison(
                long, "value", f"{a.arm}: {a.name}", f"{b.arm}: {b.name}", self.experiment, profile, CONFIDENCE
            )
            if pc.n < 2 or not (math.isfinite(pc.ci_low) and math.isfinite(pc.ci_high)):
                v = INCONCLUSIVE
            elif pc.ci_low > self.excess:
                v = REPLICATED
            elif pc.ci_high < self.excess:
                v = NOT_REPLICATED
            else:
                v = INCONCLUSIVE
            verdicts.append(v)
            details.append(part_detail(pc, v))
            est, lo, hi = _directed(pc, 1)
            effects.append(
                Effect(f"{a.arm}: {a.name} − {b.arm}: {b.name}", a.metrics[0], est, lo, hi, pc.n, (self.excess,), v)
            )
        ours = _arm_cells(long, "value", [f"{q.arm}: {q.name}" for q in quantities], label="per run") + (
            f" [{profile} profile]"
        )
        note = _profile_note(self.experiment, profile, absolute=False)
        return self._result(profile, ours, combine(verdicts), " | ".join(details), note, rule, effects)


def order_claim(*, arm: str, metrics: Sequence[str], **claim: str) -> DifferenceClaim:
    """Within ``arm``'s runs, ``metrics`` decrease in the given order: each one above the next,
    paired by seed (a :class:`DifferenceClaim` with one part per consecutive pair)."""
    if len(metrics) < 2:
        raise ValueError("an order needs at least two metrics")
    qs = [Quantity(arm, (m,)) for m in metrics]
    return DifferenceClaim(parts=tuple(itertools.pairwise(qs)), **claim)


@dataclass(frozen=True)
class GainRatioClaim(Claim):
    """``arm`` gets at least ``share`` of ``full``'s gain over ``reference`` on ``metric``, paired by
    seed: with g(a) = the per-seed gain of a over ``reference`` (positive = better),
    ratio = mean g(arm) / mean g(full), reported with Fieller's 95% interval.

    Rule: inconclusive unless ``full``'s own gain is significant (95% CI above 0: a share of no gain
    means nothing); then replicated if the 95% CI of mean(g(arm) - share * g(full)) lies above 0
    (Fieller's lower bound is then above ``share``), not replicated if it lies below 0, else
    inconclusive (the detail states the difference these seeds could have detected).
    """

    reference: str = ""
    arm: str = ""
    full: str = ""
    metric: str = "test_error"
    share: float = 0.5
    paper_says: str = ""

    def __post_init__(self) -> None:
        _higher_is_better(self.metric)
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share!r}")

    def paper_text(self) -> str:
        return self.paper_says

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        d = _select(results_df, self.experiment, profile)
        not_run = self._not_run_without(d, (self.reference, self.arm, self.full), profile)
        if not_run is not None:
            return not_run
        sign = 1 if _higher_is_better(self.metric) else -1
        gain_arm = paired_comparison(d, self.metric, self.arm, self.reference, self.experiment, profile, CONFIDENCE)
        gain_full = paired_comparison(d, self.metric, self.full, self.reference, self.experiment, profile, CONFIDENCE)
        seeds = sorted(set(gain_arm.seeds) & set(gain_full.seeds))
        g_arm = [sign * v for s, v in zip(gain_arm.seeds, gain_arm.diffs, strict=True) if s in seeds]
        g_full = [sign * v for s, v in zip(gain_full.seeds, gain_full.diffs, strict=True) if s in seeds]
        rule = (
            f"inconclusive unless {self.full}'s gain over {self.reference} is significant; then replicated if the "
            f"95% CI of the per-seed gain of {self.arm} minus {self.share:g} x {self.full}'s gain lies above 0, not "
            "replicated if below 0, else inconclusive"
        )
        n = len(seeds)
        full_sig = _better_sign(gain_full, self.metric) == 1 and gain_full.n >= 2
        details = [f"Rule: {rule}.", part_detail(gain_full, REPLICATED if full_sig else INCONCLUSIVE)]
        excess = [a - self.share * f for a, f in zip(g_arm, g_full, strict=True)]
        mean, lo, hi = t_interval(excess, CONFIDENCE)
        if not full_sig or n < 2 or not math.isfinite(lo):
            verdict = INCONCLUSIVE
        elif lo > 0:
            verdict = REPLICATED
        elif hi < 0:
            verdict = NOT_REPLICATED
        else:
            verdict = INCONCLUSIVE
        line = (
            f"gain of {self.arm} - {self.share:g} x gain of {self.full}: {mean:+.4f} over {n} paired seeds, 95% t-CI "
            f"[{lo:+.4f}, {hi:+.4f}] -> {verdict}"
        )
        if verdict == INCONCLUSIVE and n >= 2 and full_sig:
            sd = float(pd.Series(excess).std(ddof=1))
            line += f" (with {n} pairs, a true excess of {detectable_difference(n, sd, CONFIDENCE):.4f} would be found 80% of the time)"
        if not full_sig:
            line += f" ({self.full}'s own gain over {self.reference} is not significant: no share of it can be tested)"
        details.append(line)
        ratio = sum(g_arm) / sum(g_full) if n and sum(g_full) else math.nan
        r_lo, r_hi = fieller_interval(g_arm, g_full, CONFIDENCE)
        interval = (
            f"[{r_lo:.2f}, {r_hi:.2f}]" if math.isfinite(r_lo) else "unbounded (the full gain is not clearly non-zero)"
        )
        ours = (
            f"gain over {self.reference} ({metric_spec(self.metric).label}): {self.arm} {sum(g_arm) / n if n else math.nan:+.4f}, "
            f"{self.full} {sum(g_full) / n if n else math.nan:+.4f}; ratio {ratio:.2f}, Fieller 95% interval {interval} "
            f"(n={n}) [{profile} profile]"
        )
        effect = Effect(
            f"gain of {self.arm} − {self.share:g} × gain of {self.full}", self.metric, mean, lo, hi, n, (0.0,), verdict
        )
        note = _profile_note(self.experiment, profile, absolute=False)
        return self._result(profile, ours, verdict, " | ".join(details), note, rule, (effect,))


@dataclass(frozen=True)
class BoundsClaim(Claim):
    """Every run of ``arms`` keeps every metric matching ``lower_metrics`` above ``low`` and every
    metric matching ``upper_metrics`` below ``high`` (fnmatch patterns, e.g. ``alpha.*.min``).

    Rule: replicated if every recorded value of every complete run is strictly inside (low, high);
    not replicated if any is outside (the detail names them); a run with no matching metric cannot be
    checked and makes the claim inconclusive. A statement about every run, not a mean: no interval."""

    arms: tuple[str, ...] = ()
    lower_metrics: str = ""
    upper_metrics: str = ""
    low: float = -math.inf
    high: float = math.inf
    what: str = ""  # the values in words, e.g. "learned coefficients (every channel)"
    paper_says: str = ""
    context: tuple[tuple[str, str], ...] = ()  # (pattern, words): ranges the detail reports, not judged

    def __post_init__(self) -> None:
        if not self.arms or not (self.lower_metrics or self.upper_metrics) or not self.low < self.high:
            raise ValueError("a bounds claim needs arms, a metric pattern and low < high")

    def paper_text(self) -> str:
        return self.paper_says

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        d = _select(results_df, self.experiment, profile)
        not_run = self._not_run_without(d, self.arms, profile)
        if not_run is not None:
            return not_run
        done = d[(d["status"] == "complete") & d["arm"].isin(self.arms)]
        rule = (
            f"replicated if every {self.what} of every run lies inside ({self.low:g}, {self.high:g}), not replicated "
            "if any lies outside"
        )
        outside, unchecked, lowest, highest = [], [], math.inf, -math.inf
        key = "run_id" if "run_id" in done.columns else "seed"
        for (arm, seed, _), run in done.groupby(["arm", "seed", key]):
            lows = run[
                run["metric"].map(lambda m: bool(self.lower_metrics) and fnmatch.fnmatchcase(m, self.lower_metrics))
            ]
            highs = run[
                run["metric"].map(lambda m: bool(self.upper_metrics) and fnmatch.fnmatchcase(m, self.upper_metrics))
            ]
            if (self.lower_metrics and lows.empty) or (self.upper_metrics and highs.empty):
                unchecked.append(f"{arm} seed {seed}")
                continue
            for metric, value in zip(lows["metric"], lows["value"], strict=True):
                lowest = min(lowest, value)
                if not value > self.low:
                    outside.append(f"{arm} seed {seed}, {metric_spec(metric).label} = {value:.4f}")
            for metric, value in zip(highs["metric"], highs["value"], strict=True):
                highest = max(highest, value)
                if not value < self.high:
                    outside.append(f"{arm} seed {seed}, {metric_spec(metric).label} = {value:.4f}")
        n_runs = done.groupby(["arm", "seed"]).ngroups
        if outside:
            verdict = NOT_REPLICATED
        elif unchecked or not n_runs:
            verdict = INCONCLUSIVE
        else:
            verdict = REPLICATED
        details = [f"Rule: {rule}."]
        details.append(f"{len(outside)} value(s) outside" + (": " + "; ".join(outside[:6]) if outside else ""))
        if unchecked:
            details.append(f"{len(unchecked)} run(s) without the values: {', '.join(unchecked)}")
        for pattern, words in self.context:
            values = done.loc[[fnmatch.fnmatchcase(m, pattern) for m in done["metric"]], "value"]
            if len(values):
                details.append(f"for context, not judged: {words} range {values.min():.4f} to {values.max():.4f}")
        span = (
            f"lowest {lowest:.4f}, highest {highest:.4f}" if math.isfinite(lowest) or math.isfinite(highest) else "none"
        )
        ours = f"{self.what} over {n_runs} runs of {', '.join(self.arms)}: {span} [{profile} profile]"
        note = _profile_note(self.experiment, profile, absolute=True)
        return self._result(profile, ours, verdict, " | ".join(details), note, rule)


@dataclass(frozen=True)
class UnobtainableClaim(Claim):
    """A claim about data nobody can re-run (e.g. a closed competition's): listed, never tested.
    ``experiment`` is empty; ``table_name`` names the source's table and ``reason`` says why."""

    table_name: str = ""
    reason: str = ""
    paper_says: str = ""

    @property
    def table(self) -> str:
        return self.table_name

    def paper_text(self) -> str:
        return self.paper_says

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        return self._result(profile, "not obtainable", NOT_OBTAINABLE, self.reason, "")


@dataclass(frozen=True)
class NotRunClaim(UnobtainableClaim):
    """A claim about a setup the study does not re-run (a network it does not implement, data not
    on this machine): listed with its published number and the reason, verdict *not run*."""

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        return self._result(profile, "not run", NOT_RUN, self.reason, "")


CLAIMS: Registry[Claim] = Registry("claim", filled_by=SOURCES_MODULE)


def register(claim: Claim) -> Claim:
    return CLAIMS.register(claim.id, claim)


def get_claim(claim_id: str) -> Claim:
    return CLAIMS.get(claim_id)


@dataclass(frozen=True)
class ClaimSet:
    """A source's claims about one experiment and section, registered without repeating them:
    ``claims = ClaimSet("he2015", "he_cifar10_prelu", "2.3")`` then
    ``claims.better("prelu_beats_relu", quote=..., statement=..., arm="PReLU", others=("ReLU",))``
    registers ``he2015.prelu_beats_relu``. A call may pass ``experiment=`` or ``section=`` to
    override the set's; :meth:`where` gives a set with other defaults."""

    source: str
    experiment: str
    section: str = ""

    def where(self, *, experiment: str | None = None, section: str | None = None) -> ClaimSet:
        return ClaimSet(self.source, experiment or self.experiment, self.section if section is None else section)

    def add(self, kind: type[Claim], name: str, **fields: Any) -> Claim:
        """Register a claim of ``kind`` named ``<source>.<name>`` with the set's defaults."""
        fields.setdefault("experiment", self.experiment)
        fields.setdefault("section", self.section)
        return register(kind(id=f"{self.source}.{name}", source=self.source, **fields))

    def compare(self, relation: str, name: str, *, others: Sequence[str], metrics: Sequence[str], **fields: Any):
        return self.add(
            ComparisonClaim, name, relation=relation, others=tuple(others), metrics=tuple(metrics), **fields
        )

    def better(self, name: str, *, others: Sequence[str], metrics: Sequence[str] = ("test_accuracy",), **fields):
        return self.compare("better", name, others=others, metrics=metrics, **fields)

    def not_worse(self, name: str, *, others: Sequence[str], metrics: Sequence[str] = ("test_accuracy",), **fields):
        return self.compare("not_worse", name, others=others, metrics=metrics, **fields)

    def non_inferior(self, name: str, *, others: Sequence[str], metrics: Sequence[str] = ("test_accuracy",), **fields):
        return self.compare("non_inferior", name, others=others, metrics=metrics, **fields)

    def same(self, name: str, *, others: Sequence[str], metrics: Sequence[str] = ("test_accuracy",), **fields):
        return self.compare("same", name, others=others, metrics=metrics, **fields)

    def rank(self, name: str, *, others: Sequence[str], **fields: Any) -> Claim:
        return self.add(RankClaim, name, others=tuple(others), **fields)

    def difference(self, name: str, **fields: Any) -> Claim:
        return self.add(DifferenceClaim, name, **fields)

    def order(self, name: str, *, arm: str, metrics: Sequence[str], **fields: Any) -> Claim:
        fields.setdefault("experiment", self.experiment)
        fields.setdefault("section", self.section)
        return register(order_claim(id=f"{self.source}.{name}", source=self.source, arm=arm, metrics=metrics, **fields))

    def gain_ratio(self, name: str, **fields: Any) -> Claim:
        return self.add(GainRatioClaim, name, **fields)

    def bounds(self, name: str, **fields: Any) -> Claim:
        return self.add(BoundsClaim, name, **fields)

    def unobtainable(self, name: str, **fields: Any) -> Claim:
        return self.add(UnobtainableClaim, name, **fields)

    def not_run(self, name: str, **fields: Any) -> Claim:
        return self.add(NotRunClaim, name, **fields)


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
            rows.append(
                dict(
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
            )
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


def evaluate_claims(
    results_df: pd.DataFrame,
    profile: str,
    source: str | None = None,
    *,
    shown: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every registered claim (of one source, if given) evaluated for ``profile``: one row each.
    ``shown`` maps an experiment to the profile a chapter shows for it (``ChapterRuns.profiles``:
    a more faithful one where its records are complete); its claims are evaluated there."""
    validate_profile(profile)
    for p in (shown or {}).values():
        validate_profile(p)
    if source is not None:
        reference._check_source(source)
    rows = []
    for cid in CLAIMS.names():
        claim = CLAIMS.get(cid)
        if source is not None and claim.source != source:
            continue
        rows.append(claim.evaluate(results_df, (shown or {}).get(claim.experiment, profile)).to_dict())
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
