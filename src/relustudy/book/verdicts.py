"""How verdicts read: the claims table, counts, failures, the forest and bar figures, takeaways."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ..claim_tables import published_values_markdown
from ..metrics import metric_label as _label
from ..metrics import metric_spec
from ..reference import get_source, source_label
from ..registry import UnknownNameError
from ..verdict_rules import VERDICTS, deciding_effect
from .base import _VERDICT_COLOURS, HtmlBlock, _unique
from .figures import COLUMN_INCHES

__all__ = [
    "claims_table",
    "verdict_counts_markdown",
    "claim_quotes_markdown",
    "verdict_matrix",
    "verdict_csv_frame",
    "failures_table",
    "verdict_forest",
    "verdict_bars",
    "VERDICT_PLOT_COLOURS",
    "takeaways_markdown",
]


def claims_table(claims: Any, *, with_source: bool = False, collapsed: bool = False) -> HtmlBlock:
    """Claims evaluated by :func:`relustudy.claims.evaluate_claims` as a table that fits the
    page's column: the tested statement (with its source and table), the source's numbers, ours
    and the coloured verdict; the rule, every comparison with its interval and p-values, the notes
    and the claim id fold into a "details" element under the statement. ``collapsed``: the whole
    table folds into one, which says how many claims it holds (the page's findings box has the
    counts and what did not replicate)."""
    if not len(claims):
        return HtmlBlock("<p>No claims.</p>")
    esc = html.escape
    rows = []
    for _, c in claims.iterrows():
        where = f"{source_label(c['source'])}, {c['table']}" if with_source else str(c["table"])
        parts = [p.strip() for p in str(c.get("detail", "")).split(" | ") if p.strip()]
        detail = "".join(f"<li>{esc(p)}</li>" for p in parts)
        note = f"<p>{esc(str(c['note']))}</p>" if str(c.get("note", "")).strip() else ""
        colour = _VERDICT_COLOURS.get(c["verdict"], "transparent")
        rows.append(
            "<tr>"
            f'<td><span class="claim-where">{esc(where)}</span>: {esc(str(c["tested"]))}'
            f"<details><summary>rule, intervals, notes</summary><ul>{detail}</ul>{note}"
            f"<p>claim <code>{esc(str(c['claim_id']))}</code></p></details></td>"
            f"<td>{esc(str(c['paper']))}</td><td>{esc(str(c['ours']))}</td>"
            f'<td style="background-color: {colour}; font-weight: bold;">{esc(str(c["verdict"]))}</td>'
            "</tr>"
        )
    opening, closing = "", ""
    if collapsed:
        opening = (
            f'<details class="relustudy-claims-all"><summary>All {len(claims)} claims, one row each: the sentence as '
            "tested, the source's numbers, ours, the verdict and its rule</summary>"
        )
        closing = "</details>"
    return HtmlBlock(
        opening
        + '<table class="relustudy-claims" style="table-layout: fixed; width: 100%; border-collapse: collapse;">'
        '<colgroup><col style="width: 42%"><col style="width: 19%"><col style="width: 25%"><col style="width: 14%">'
        "</colgroup><thead><tr><th>claim (as tested)</th><th>the source</th><th>ours</th><th>verdict</th></tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table>"
        "<style>.relustudy-claims td, .relustudy-claims th {text-align: left; vertical-align: top; padding: 4px 6px; "
        "border-bottom: 1px solid #ddd; overflow-wrap: anywhere; font-size: 0.9em;} "
        ".relustudy-claims details summary {cursor: pointer; color: #555; font-size: 0.9em;}</style>" + closing
    )


def verdict_counts_markdown(claims: Any) -> str:
    """ "11 claims on the smoke profile: 3 replicated, ..." (every verdict, zeros included)."""

    n = len(claims)
    if n == 0:
        return "No claims are registered yet."
    counts = claims["verdict"].value_counts()
    profiles = ", ".join(_unique(claims["profile"])) if "profile" in claims else "?"
    parts = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
    return f"**{n} claim{'s' if n != 1 else ''}** evaluated on the {profiles} profile: {parts}."


def _bounds_text(bounds: Sequence[float]) -> str:
    return " and ".join(f"{b:g}" for b in bounds)


def failures_table(claims: Any, values: Any) -> Any:
    """What did not replicate, at the top of the summary: every *not replicated* claim with the part
    that decided it (its difference and 95% interval, positive = the claimed side), and every
    published value outside our 95% prediction interval with ours minus the paper's."""

    rows = []
    for _, c in claims[claims["verdict"] == "not replicated"].iterrows() if len(claims) else ():
        e = deciding_effect(tuple(c.get("effects") or ()), c["verdict"])
        against = "" if not e or e.bounds == (0.0,) else f", against {_bounds_text(e.bounds)}"
        size = f"{e.estimate:+.4f} [{e.low:+.4f}, {e.high:+.4f}] ({e.label}{against})" if e else "see the detail"
        rows.append(
            {
                "what": "claim",
                "source": get_source(c["source"]).label,
                "statement or value": c["tested"],
                "size (95% interval)": size,
            }
        )
    for _, v in values[values["verdict"] == "not replicated"].iterrows() if len(values) else ():
        rows.append(
            {
                "what": "published value",
                "source": f"{get_source(v['source']).label}, {v['table']}",
                "statement or value": f"{v['arm']}, {str(v['metric']).replace('_', ' ')}: paper {v['paper']:g}, ours "
                f"{v['ours_mean']:.4f} (n={int(v['n'])})",
                "size (95% interval)": f"ours - paper {v['diff']:+.4f}; prediction interval [{v['pi_low']:.4f}, "
                f"{v['pi_high']:.4f}]",
            }
        )
    return pd.DataFrame(rows, columns=["what", "source", "statement or value", "size (95% interval)"])


def verdict_csv_frame(claims: Any) -> Any:
    """The verdict table as a reader downloads it: one row per claim, with the numbers of the part
    that decides its verdict (:func:`relustudy.verdict_rules.deciding_effect`): the compared difference
    (``effect``, turned so that positive is the claimed side, in the unit ``scale`` names -- accuracy
    and error as fractions here, in percentage points in the figure), its 95% interval, n, the rule and
    the thresholds it compares the interval with (the margin of a non-inferiority or equivalence
    claim), and how many parts the claim has."""
    cols = ["claim_id", "source", "table", "experiment", "profile", "tested", "paper", "ours", "verdict"]
    numbers = ["effect_of", "scale", "effect", "ci_low", "ci_high", "n", "rule", "thresholds", "parts", "detail"]
    if not len(claims):
        return pd.DataFrame(columns=cols + numbers)
    rows = []
    for _, c in claims.iterrows():
        effects = tuple(c.get("effects") or ())
        e = deciding_effect(effects, c["verdict"])
        rows.append(
            {
                **{k: c.get(k) for k in cols},
                "effect_of": e.label if e else "",
                "scale": effect_axis(e.metric)[0] if e else "",
                "effect": e.estimate if e else math.nan,
                "ci_low": e.low if e else math.nan,
                "ci_high": e.high if e else math.nan,
                "n": e.n if e else 0,
                "rule": c.get("rule", ""),
                "thresholds": _bounds_text(e.bounds) if e else "",
                "parts": len(effects),
                "detail": c.get("detail", ""),
            }
        )
    return pd.DataFrame(rows, columns=cols + numbers)


# Verdict colours of the figures (the tables use lighter ones, behind text).
VERDICT_PLOT_COLOURS = {
    "replicated": "#2e7d32",
    "not replicated": "#c62828",
    "inconclusive": "#9e9e9e",
    "not run": "#e0e0e0",
    "not obtainable": "#6d4c41",
}


def effect_axis(metric: str) -> tuple[str, float]:
    """The forest plot's panel for ``metric`` and the factor its differences are drawn at: accuracy
    and error in percentage points, throughput as a log ratio, everything else in its own unit."""
    spec = metric_spec(metric)
    if metric.endswith(("accuracy", "error")):
        return "accuracy or error difference (percentage points)", 100.0
    if metric.startswith("log_"):
        return "throughput, log ratio (0.1 ≈ 10% faster)", 1.0
    if metric.startswith("alpha."):
        return "PReLU coefficient a, difference", 1.0
    if spec.unit:
        return f"{spec.label.split(' (')[0]} difference ({spec.unit})", 1.0
    return f"{spec.label.split(',')[0]} difference", 1.0


def _test_words(bounds: Sequence[float]) -> str:
    """What a part's thresholds test, in a few characters: "> 0", "margin 0.01", "within ±0.01"."""
    if len(bounds) == 2:
        return f"within ±{bounds[1]:g}"
    if bounds and bounds[0] < 0:
        return f"margin {-bounds[0]:g}"
    return f"> {bounds[0]:g}" if bounds else "?"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _forest_rows(claims: Any, label_width: int) -> list[tuple[str, float, str, Any, str]]:
    """The forest plot's rows: (panel, scale, label, deciding effect, verdict) of every claim
    with a measured difference; a label two rows share gets a running number."""
    rows = []
    for _, c in claims.iterrows():
        e = deciding_effect(tuple(c.get("effects") or ()), c["verdict"])
        if e is None or not math.isfinite(e.estimate):
            continue
        axis, scale = effect_axis(e.metric)
        # what was compared (the deciding part's arms and metric), not the sentence's opening words,
        # so that two claims about one table do not read the same once shortened
        what = e.label if e.label else c["tested"]
        try:
            metric = _label(e.metric)
        except UnknownNameError:  # a difference claim's per-run quantity: its label says what it is
            metric = ""
        test = _test_words(e.bounds)
        label = _short(
            f"{source_label(c['source'])}, {c['table']}: {what}" + (f", {metric}" if metric else ""), label_width
        )
        rows.append((axis, scale, f"{label} ({test})", e, c["verdict"]))
    seen: dict[str, int] = {}
    for row in rows:
        seen[row[2]] = seen.get(row[2], 0) + 1
    numbered: dict[str, int] = {}
    for k, row in enumerate(rows):
        if seen[row[2]] > 1:
            numbered[row[2]] = numbered.get(row[2], 0) + 1
            rows[k] = (row[0], row[1], f"{row[2]} ({numbered[row[2]]})", *row[3:])
    return rows


def verdict_forest(claims: Any, *, label_width: int = 72) -> Any:
    """A forest plot of every claim with numbers: the part that decides its verdict, as its
    difference (dot) and 95% interval (bar), positive on the claimed side, coloured by verdict;
    dashed lines at the rule's thresholds (0, minus a margin, or ± a margin; for a published value:
    0, which must lie inside). One panel per unit (:func:`effect_axis`), rows in claim order.
    Claims without a measured difference (*not run*, *not obtainable*, or no paired seeds) are left
    out: the bars count them.
    Returns the figure (None if no claim has numbers)."""

    rows = _forest_rows(claims, label_width)
    if not rows:
        return None
    panels = list(dict.fromkeys(r[0] for r in rows))
    counts = [sum(r[0] == p for r in rows) for p in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(COLUMN_INCHES, 0.24 * len(rows) + 0.9 * len(panels) + 0.6),
        gridspec_kw={"height_ratios": [k + 1.6 for k in counts]},
        squeeze=False,
    )
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        mine = [r for r in rows if r[0] == panel]
        for y, (_axis, scale, _name, e, verdict) in enumerate(mine):
            colour = VERDICT_PLOT_COLOURS[verdict]
            lo, hi = (e.low * scale, e.high * scale) if math.isfinite(e.low) else (math.nan, math.nan)
            if math.isfinite(lo):
                ax.plot([lo, hi], [y, y], color=colour, lw=2, solid_capstyle="butt")
            ax.plot([e.estimate * scale], [y], "o", color=colour, ms=4)
            for b in e.bounds:
                ax.plot([b * scale] * 2, [y - 0.4, y + 0.4], ls="--", color="#555", lw=0.9)
        ax.axvline(0, color="#bbb", lw=0.8, zorder=0)
        ax.set_yticks(range(len(mine)), [r[2] for r in mine], fontsize=7.5)
        ax.set_ylim(len(mine) - 0.5, -0.5)
        ax.set_xlabel(panel, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#eee")
    handles = [
        plt.Line2D([], [], color=VERDICT_PLOT_COLOURS[v], marker="o", lw=2, label=v)
        for v in VERDICTS
        if any(r[4] == v for r in rows)
    ]
    handles.append(plt.Line2D([], [], color="#555", ls="--", lw=0.9, label="the rule's threshold(s)"))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    return fig


def verdict_bars(claims: Any) -> Any:
    """Claims per source, stacked by verdict (:func:`verdict_matrix`), as a horizontal bar figure."""

    per_source = verdict_matrix(claims).drop(index="all sources", errors="ignore").drop(columns="total")
    if not len(per_source):
        return None
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 0.45 * len(per_source) + 1.4))
    per_source.iloc[::-1].plot.barh(
        stacked=True, color=[VERDICT_PLOT_COLOURS[v] for v in per_source.columns], ax=ax, width=0.7
    )
    ax.set(xlabel="claims", ylabel="")
    ax.legend(title="verdict", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def verdict_matrix(claims: Any) -> Any:
    """Claims per source (rows, by the source's short label) and verdict (columns, every verdict,
    zeros included), with a total row and column: the results at a glance."""
    cols = list(VERDICTS)
    if not len(claims):
        return pd.DataFrame(columns=[*cols, "total"])
    labelled = claims.assign(source=claims["source"].map(source_label))
    m = pd.crosstab(labelled["source"], labelled["verdict"]).reindex(columns=cols, fill_value=0)
    m = m.reindex(list(dict.fromkeys(labelled["source"])))  # sources in registry order
    m.loc["all sources"] = m.sum()
    m["total"] = m.sum(axis=1)
    m.index.name = "source"
    m.columns.name = None
    return m.astype(int)


def takeaways_markdown(claims: Any, values: Any = None, *, limit: int = 6) -> str:
    """A MyST box opening a chapter: its verdict counts and, where given, the tally of published
    values (``values``: :func:`relustudy.claim_tables.published_values`), then the statements that
    replicated and those that did not (at most ``limit`` each, the rest counted), from ``claims``."""
    if not len(claims):
        return ""
    lines = [":::{admonition} What this chapter found", ":class: tip", "", verdict_counts_markdown(claims), ""]
    if values is not None:
        lines += [published_values_markdown(values), ""]
    for verdict, word in (("replicated", "Replicated"), ("not replicated", "Not replicated")):
        rows = claims[claims["verdict"] == verdict]
        if not len(rows):
            continue
        lines.append(f"**{word}:**")
        lines += [f"- {t}" for t in rows["tested"].head(limit)]
        if len(rows) > limit:
            lines.append(f"- ... and {len(rows) - limit} more (see the verdicts at the end)")
        lines.append("")
    rest = claims[~claims["verdict"].isin(["replicated", "not replicated"])]
    if len(rest):
        counts = rest["verdict"].value_counts()
        lines.append(
            "Undecided: "
            + ", ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts)
            + " (each row at the end says why: the difference its runs could have detected, or what is missing)."
        )
    lines.append(":::")
    return "\n".join(lines)


def claim_quotes_markdown(claims: Any) -> str:
    """The sources' sentences behind ``claims``, each once, quoted, with how many claims of the
    verdict table test it (the claim ids are in each row's details and in the CSV)."""
    if not len(claims):
        return ""
    out = []
    for quote, group in claims.groupby("claim", sort=False):
        n = len(group)
        out.append(f"> {quote}\n\ntested by {n} claim{'s' if n != 1 else ''} in the verdict table")
    return "\n\n".join(out)
