"""Result tables: per-arm summaries, paired comparisons, spreads, and the sources' values beside ours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..experiments import get_experiment
from ..metrics import METRICS, metric_spec
from ..reference import get_source
from ..stats import format_mean_sd, paired_comparison, summarize
from .base import _TABLE_STYLES, _finite, _fmt_num, _fmt_p, arm_order, dataset_caveat, metric_label

if TYPE_CHECKING:  # annotations only: runs imports this module
    from .runs import ChapterRuns

__all__ = [
    "effect_sizes_markdown",
    "spread_across_arms",
    "arm_summary_table",
    "paired_table",
    "paper_vs_ours_wide",
    "paper_vs_ours_table",
]


def spread_across_arms(results: Any, experiment: str, arms: Sequence[str], metric: str = "test_accuracy") -> Any:
    """Per seed, the largest difference of ``metric`` between ``arms`` (max - min over the arms
    that completed that seed): 0 means the arms' runs ended identically."""

    d = (
        results[
            (results["experiment"] == experiment)
            & (results["metric"] == metric)
            & results["arm"].isin(arms)
            & (results["status"] == "complete")
        ]
        if len(results)
        else results
    )
    if len(d) == 0:
        return pd.DataFrame(columns=["seed", "arms", f"max - min {metric_label(metric)}"]).set_index("seed")
    g = d.groupby("seed")["value"]
    return pd.DataFrame(
        {"arms": d.groupby("seed")["arm"].nunique(), f"max - min {metric_label(metric)}": g.max() - g.min()}
    )


def arm_summary_table(
    results: Any, experiment: str, metrics: Sequence[str], *, digits: int = 3, labels: dict[str, str] | None = None
) -> Any:
    """Arms (in the source's order) x metrics: "mean ± sd (n=...)" over the complete runs."""

    sub = results[results["experiment"] == experiment] if len(results) else results
    table = pd.DataFrame(index=pd.Index(arm_order(experiment), name="arm"))
    for metric in metrics:
        col = (labels or {}).get(metric, metric_label(metric))
        if sub.empty:
            table[col] = "n/a (n=0)"
            continue
        summ = summarize(sub, metric, by=("arm",)).set_index("arm")
        table[col] = [
            format_mean_sd(summ.loc[a, "mean"], summ.loc[a, "sd"], int(summ.loc[a, "n"]), digits)
            if a in summ.index
            else "n/a (n=0)"
            for a in table.index
        ]
    return table


def effect_sizes_markdown() -> str:
    """The metric registry's smallest effects of interest: every metric with a margin, its size and
    why that size. Every non-inferiority and equivalence test takes its margin from here."""
    lines = [
        "| metric | smallest effect of interest | why this size |",
        "|---|---|---|",
    ]
    for name in METRICS.names():
        spec = metric_spec(name)
        if spec.margin is not None:
            unit = f" {spec.unit}" if spec.unit else ""
            lines.append(f"| {spec.label} | {spec.margin:g}{unit} | {spec.margin_reason} |")
    return "\n".join(lines) + "\n"


def paired_table(
    results: Any, experiments: Sequence[str], arm_a: str, arm_b: str, metrics: Sequence[str], *, digits: int = 3
) -> Any:
    """``arm_a`` minus ``arm_b``, paired by seed, for every experiment and metric, as a display
    table indexed by (source table, dataset / model): metric, n pairs, both means, difference,
    95% t-interval, the paired t-test p-value and the exact sign-flip p-value (see
    :mod:`relustudy.stats`)."""

    rows = []
    for name in experiments:
        exp = get_experiment(name)
        for metric in metrics:
            sub = results[results["experiment"] == name] if len(results) else results
            try:
                pc = paired_comparison(sub, metric, arm_a, arm_b, experiment=name)
            except ValueError as e:  # e.g. no records yet
                rows.append(
                    {
                        "table": exp.table,
                        "dataset / model": exp.title,
                        "metric": metric_label(metric),
                        "n pairs": 0,
                        f"{arm_a} mean": "n/a",
                        f"{arm_b} mean": "n/a",
                        f"difference ({arm_a} - {arm_b})": "n/a",
                        "95% CI": str(e),
                        "p (paired t)": "n/a",
                        "p (sign-flip)": "n/a",
                    }
                )
                continue
            ci = (
                f"[{_fmt_num(pc.ci_low, digits, True)}, {_fmt_num(pc.ci_high, digits, True)}]"
                if _finite(pc.ci_low)
                else "n/a (n < 2)"
            )
            rows.append(
                {
                    "table": exp.table,
                    "dataset / model": exp.title,
                    "metric": metric_label(metric),
                    "n pairs": pc.n,
                    f"{arm_a} mean": _fmt_num(pc.mean_a, digits),
                    f"{arm_b} mean": _fmt_num(pc.mean_b, digits),
                    f"difference ({arm_a} - {arm_b})": _fmt_num(pc.mean_diff, digits, True),
                    "95% CI": ci,
                    "p (paired t)": _fmt_p(pc.p_value),
                    "p (sign-flip)": _fmt_p(pc.p_permutation),
                }
            )
    return pd.DataFrame(rows).set_index(["table", "dataset / model"])


# A published value against our seeds (:func:`relustudy.verdict_rules.value_verdict`), as a table cell marks it.
VALUE_MARKS = {"replicated": "✓", "not replicated": "✗", "inconclusive": "?"}


VALUE_MARKS_NOTE = (
    "✓: the paper's value lies inside our 95% prediction interval for one run (mean ± t·sd·√(1+1/n), "
    "widened by half a unit of the last digit the paper prints); ✗: it lies outside; ?: fewer than 2 seeds."
)


def _cell_digits(paper_decimals: Any, digits: int | None) -> int:
    """Decimals of one cell: ``digits`` if given, else one more than the paper printed (3 without a
    published value)."""
    if digits is not None:
        return digits
    return int(paper_decimals) + 1 if _finite(paper_decimals) else 3


def paper_vs_ours_wide(pvo: Any, *, digits: int | None = None, differences: bool = True) -> Any:
    """A :func:`relustudy.claim_tables.paper_vs_ours` frame in the source's layout: one row per arm;
    per published column three sub-columns: the paper's value as printed, ours as "mean ± sd (n=k)"
    and the difference ours - paper marked with the cell's value verdict (:data:`VALUE_MARKS`); all
    display strings. Ours and the difference show one decimal more than the paper printed for that
    cell (``digits`` fixes it instead). Without ``differences``, two sub-columns and no marks."""

    arms = list(dict.fromkeys(pvo["arm"]))
    metrics = list(dict.fromkeys(pvo["metric"]))
    label = {m: m.replace("_", " ") for m in metrics}
    data: dict[tuple[str, str], list[str]] = {}
    for m in metrics:
        sub = pvo[pvo["metric"] == m].set_index("arm")
        paper, ours, diff = [], [], []
        for arm in arms:
            r = sub.loc[arm] if arm in sub.index else None
            if r is None:
                paper.append("n/a"), ours.append("n/a"), diff.append("n/a")
                continue
            printed = r.get("paper_decimals")
            places = _cell_digits(printed, digits)
            paper.append(_fmt_num(r["paper"], int(printed) if _finite(printed) else places))
            txt = format_mean_sd(r["ours_mean"], r["ours_sd"], int(r["n"]), places)
            if int(r.get("n_diverged", 0) or 0):
                txt += f" [{int(r['n_diverged'])} diverged]"
            ours.append(txt)
            mark = VALUE_MARKS.get(r.get("verdict"), "") if _finite(r["diff"]) else ""
            diff.append(f"{_fmt_num(r['diff'], places, signed=True)} {mark}".strip())
        data[(label[m], "paper")] = paper
        data[(label[m], "ours (mean ± sd)")] = ours
        if differences:
            data[(label[m], "ours − paper")] = diff
    wide = pd.DataFrame(data, index=pd.Index(arms, name="activation"))
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    return wide


def paper_vs_ours_table(
    pvo: Any, experiment: str, runs: ChapterRuns | None = None, *, digits: int | None = None
) -> Any:
    """:func:`paper_vs_ours_wide` as a captioned pandas Styler for the book: the caption names
    the source table, the profile, what the numbers are and (for CIFAR-10) the JPEG caveat."""

    exp = get_experiment(experiment)
    source = get_source(exp.source)
    wide = paper_vs_ours_wide(pvo, digits=digits, differences=exp.same_task)
    caption = (
        f"{source.label} {exp.table}, {exp.title}: the paper's value (one run), ours "
        f"(mean ± sd over n seeds) and the difference ours − paper. {VALUE_MARKS_NOTE}"
        if exp.same_task
        else f"{source.label} {exp.table}, {exp.title}: the paper's value (one run, on another task: shown for the "
        "direction of the effect, not differenced) and ours (mean ± sd over n seeds)."
    )
    if source.caption_note:
        caption += " " + source.caption_note
    caveat = dataset_caveat(experiment, runs)
    if caveat:
        caption += " " + caveat
    return wide.style.set_caption(caption).set_table_styles(_TABLE_STYLES)
