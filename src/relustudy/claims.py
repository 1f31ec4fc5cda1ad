"""The sources' claims, each checked against our recorded runs with one uniform set of rules.

A claim is registered in :data:`CLAIMS` (a :class:`~relustudy.registry.Registry`) under an id such
as ``smith.table3.prelu_best_on_all_metrics``. It carries the source, the table it is about, the
source's sentence quoted verbatim (``quote``), what exactly we test (``statement``), and
``evaluate(results_df, profile) -> ClaimResult``. The paper's numbers shown beside a claim are read
from :func:`relustudy.reference.paper_values` (never typed twice).

The rules that turn a comparison into a verdict are :mod:`relustudy.verdict_rules`; the tables
of a source's values beside ours are :mod:`relustudy.claim_tables`.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import reference
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
)
from .verdict_rules import (
    CONFIDENCE,
    HOLM_RANK_NOTE,
    HOLM_RANK_PART_NOTE,
    INCONCLUSIVE,
    NOT_OBTAINABLE,
    NOT_REPLICATED,
    NOT_RUN,
    RELATIONS,
    REPLICATED,
    RESULT_COLUMNS,
    RULES,
    ClaimResult,
    Effect,
    _better_sign,
    _directed,
    _higher_is_better,
    _profile_note,
    _select,
    arm_cells,
    combine,
    comparison_effect,
    comparison_verdict,
    holm_against,
    holm_survivors,
    margin_reason,
    not_run_reason,
    paper_effect_line,
    part_detail,
    sensitivity_line,
)


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

    def _paper_note(self) -> str:
        ok, failing = self.paper_supports()
        if self.paper_says:
            return "The source gives no numbers for this (figures only)."
        if ok:
            return "The paper's own numbers support the statement as tested."
        return "The paper's own numbers do not support the statement as tested (" + "; ".join(failing) + ")."

    def _rule(self) -> str:
        rule = RULES[self.relation].format(
            x=self.arm, m=", ".join(f"{metric_spec(m).margin or math.nan:g}" for m in self.metrics)
        )
        if self.relation in ("non_inferior", "same"):
            rule += "; " + "; ".join(margin_reason(m) for m in self.metrics)
        return rule

    def _ours_cells(self, d: pd.DataFrame, m: str, arms: Sequence[str]) -> str:
        """Each arm's mean ± sd (n) on metric ``m``, with its diverged runs counted."""
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
        return f"{self._column(m)}: " + ", ".join(cells)

    def _part_line(self, pc: PairedComparison, v: str, why: str, m: str, same_task: bool) -> str:
        line = part_detail(pc, v, why)
        if self.relation in ("non_inferior", "same") and pc.n >= 2:
            line += f"; {sensitivity_line(pc, self.relation, m)}"
        if v == INCONCLUSIVE and not self.paper_says:
            excluded = paper_effect_line(pc, self._paper(pc.arm_a, m) - self._paper(pc.arm_b, m), same_task)
            line += f"; {excluded}" if excluded else ""
        return line

    def evaluate(self, results_df: pd.DataFrame, profile: str) -> ClaimResult:
        d = _select(results_df, self.experiment, profile)
        arms = (self.arm, *self.others)
        paper_note, rule = self._paper_note(), self._rule()
        not_run = self._not_run_without(d, arms, profile, paper_note) or self._not_run_without_metrics(
            d, self.metrics, profile, paper_note
        )
        if not_run is not None:
            return not_run
        ours_parts, details = [], [f"Rule: {rule}."]
        parts: list[tuple[PairedComparison, str, str]] = []
        for m in self.metrics:
            ours_parts.append(self._ours_cells(d, m, arms))
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
        same_task = get_experiment(self.experiment).same_task
        verdicts = [v for _pc, v, _why in decided]
        details += [
            self._part_line(pc, v, why, m, same_task) for (pc, v, why), (_pc, m, _v) in zip(decided, parts, strict=True)
        ]
        effects = [
            comparison_effect(pc, self.relation, m, v)
            for (pc, v, _why), (_pc, m, _v) in zip(decided, parts, strict=True)
        ]
        ours = "; ".join(ours_parts) + f" [{profile} profile]"
        note = " ".join(s for s in (paper_note, _profile_note(self.experiment, profile, absolute=False)) if s)
        return self._result(profile, ours, combine(verdicts), " | ".join(details), note, rule, effects)


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

    def _verdict(self, claimed: int, against: int) -> str:
        """From the parts significantly on the claimed side (``claimed``) and against it, after Holm."""
        if claimed >= len(self.others) - self.k + 1:
            return REPLICATED
        if against >= self.k:
            return NOT_REPLICATED
        return INCONCLUSIVE

    def _rule(self, n_arms: int) -> str:
        side, n_others = ("best" if self.best else "worst"), len(self.others)
        return (
            f"Rule: among the {side} {self.k} of {n_arms} if {self.arm} is significantly "
            f"{'better' if self.best else 'worse'} than at least {n_others - self.k + 1} of the other {n_others} "
            f"(paired 95% CI excluding 0); not if at least {self.k} others are significantly "
            f"{'better' if self.best else 'worse'} than it; else inconclusive." + HOLM_RANK_NOTE
        )

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
        n_others = len(self.others)
        rule = self._rule(len(arms))
        claimed_side = (1 if _higher_is_better(self.metric) else -1) * (1 if self.best else -1)
        comparisons = [
            paired_comparison(d, self.metric, self.arm, other, self.experiment, profile, confidence=CONFIDENCE)
            for other in self.others
        ]
        # toward: +1 significantly on the claimed side, -1 against, 0 neither
        toward = [(_better_sign(pc, self.metric) if pc.n >= 2 else 0) * (1 if self.best else -1) for pc in comparisons]
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
        verdict = self._verdict(claimed, against)
        ahead, behind = (claimed, against) if self.best else (against, claimed)
        details.append(
            f"significantly better than {ahead}, significantly worse than {behind} of {n_others} (after Holm) "
            f"-> {verdict}"
        )
        ours = arm_cells(d, self.metric, arms) + f" [{profile} profile]"
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
        ours = arm_cells(long, "value", [f"{q.arm}: {q.name}" for q in quantities], label="per run") + (
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
