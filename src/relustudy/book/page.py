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
from .base import show_markdown
from .runs import ChapterRuns, choices_markdown, downloads_markdown, profile_banner, reproduce_markdown
from .verdicts import claim_quotes_markdown, claims_table, takeaways_markdown, verdict_counts_markdown

__all__ = ["chapter_header", "chapter_takeaways", "claims_section"]


def chapter_header(runs: ChapterRuns, choices: str, experiments: Sequence[str] | None = None) -> None:
    """The page's first results: the profile banner, the runs' provenance, the profile each
    experiment shows, the experiments skipped on this machine, then ``choices`` (the Markdown that
    introduces them) and where each setting of ``experiments`` (default: all the page's) comes from."""
    show_markdown(profile_banner(runs.profile))
    show_markdown(f"**Runs shown:** {runs.provenance()}")
    show_markdown(runs.profiles_markdown())
    show_markdown(runs.skipped_markdown())
    show_markdown(f"{choices}\n\n" + choices_markdown(list(experiments or runs.experiments)))


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
    """The page's verdicts: the source's sentences, the verdict counts, then the claims table
    (returned, so that the notebook cell displays it)."""
    show_markdown(claim_quotes_markdown(claims))
    show_markdown(verdict_counts_markdown(claims))
    return claims_table(claims)
