"""The parts every chapter page shares, so that a chapter notebook holds only what is its own:
:func:`chapter_header` (what the page shows and where its settings come from),
:func:`chapter_takeaways` (its claims evaluated, the findings box, how to reproduce and download)
and :func:`claims_section` (the verdicts at the end of the page)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..claim_tables import published_values
from ..claims import evaluate_claims
from ..experiments import get_experiment
from ..reference import get_source
from ..verdict_rules import INCONCLUSIVE, NOT_REPLICATED, REPLICATED
from .base import experiment_name, show_markdown
from .runs import ChapterRuns, choices_markdown, downloads_markdown, profile_banner, reproduce_markdown
from .verdicts import claim_quotes_markdown, claims_table, takeaways_markdown, verdict_counts_markdown

__all__ = ["chapter_header", "chapter_takeaways", "claims_section", "abstract_markdown"]


def _dropdown(title: str, body: str) -> str:
    """``body`` (Markdown) folded under ``title``: a page's detail, open on a click ("" for no body)."""
    if not body.strip():
        return ""
    return f":::{{admonition}} {title}\n:class: dropdown\n\n{body}\n:::"


def chapter_header(runs: ChapterRuns, choices: str, experiments: Sequence[str] | None = None) -> None:
    """The page's first results: the profile banner, the runs' provenance, the profile each
    experiment shows, the experiments skipped on this machine, then ``choices`` (the Markdown that
    introduces them) and where each setting of ``experiments`` (default: all the page's) comes from."""
    show_markdown(profile_banner(runs.profile))
    show_markdown(runs.profiles_markdown())
    show_markdown(_dropdown("The runs shown: how many, on what machine, from which commit", runs.provenance()))
    show_markdown(runs.skipped_markdown())
    show_markdown(_dropdown(choices, choices_markdown(list(experiments or runs.experiments))))


def chapter_takeaways(runs: ChapterRuns, sources: str | Sequence[str], notebook: str) -> pd.DataFrame:
    """Evaluate the claims of ``sources`` on the page's runs (each experiment in the profile it
    shows), show the findings box, the reproduce box and the downloads; return the claims."""
    keys = [sources] if isinstance(sources, str) else list(sources)
    claims = pd.concat(
        [evaluate_claims(runs.results, runs.profile, source=s, shown=runs.profiles) for s in keys], ignore_index=True
    )
    values = published_values(runs.results, runs.profiles, source=keys[0] if len(keys) == 1 else None)
    show_markdown(takeaways_markdown(claims, values))
    show_markdown(reproduce_markdown(runs, notebook))
    show_markdown(downloads_markdown({"records": runs.results}, notebook))
    return claims


def claims_section(claims: pd.DataFrame) -> Any:
    """The page's verdicts: the source's sentences, the verdict counts, then the claims table,
    folded (returned, so that the notebook cell displays it)."""
    show_markdown(verdict_counts_markdown(claims))
    show_markdown(_dropdown("The sentences we test, as the source wrote them", claim_quotes_markdown(claims)))
    return claims_table(claims, collapsed=True)


def abstract_markdown(claims: pd.DataFrame, runs: ChapterRuns, *, named: int = 8) -> str:
    """The book's answer in one screen (the introduction pastes it): how many claims replicated,
    which did not (named, up to ``named``), how many the runs could not decide, the scale each
    source's experiments ran at (profile, seeds, runs), and what a verdict rests on."""
    if not len(claims):
        return "No claims were evaluated in this build."
    counts = claims["verdict"].value_counts()
    failed = claims[claims["verdict"] == NOT_REPLICATED]
    lines = [
        f"**Of {len(claims)} claims tested, {counts.get(REPLICATED, 0)} replicated, {len(failed)} did not and "
        f"{counts.get(INCONCLUSIVE, 0)} were inconclusive** (the runs could not tell the claim from its opposite); "
        "the rest were not run or cannot be run here."
    ]
    if len(failed):
        lines.append("\n**Did not replicate:**\n")
        for _, c in failed.head(named).iterrows():
            lines.append(f"- {get_source(c['source']).label}, {c['table']}: {c['tested']}")
        if len(failed) > named:
            lines.append(f"- and {len(failed) - named} more (What replicates lists them all)")
    done = runs.results[runs.results["status"] == "complete"] if len(runs.results) else runs.results
    scale = []
    for name, profile in runs.profiles.items():
        mine = done[done["experiment"] == name] if len(done) else done
        if len(mine) and not get_experiment(name).diagnostic:
            scale.append(
                f"{experiment_name(name)}: `{profile}` profile, {mine['seed'].nunique()} seeds, "
                f"{mine['run_id'].nunique()} runs"
            )
    if scale:
        lines.append("\n**The scale of the runs:** " + "; ".join(scale) + ".")
    lines.append(
        "\n**How sure:** every comparison pairs the arms seed by seed and decides on its 95% interval (Holm's "
        "correction where one claim has several parts); a published number is judged against our 95% prediction "
        "interval for one run; an inconclusive verdict says what difference its runs could have detected."
    )
    return "\n".join(lines)
