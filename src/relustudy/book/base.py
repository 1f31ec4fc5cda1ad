"""Shared by the book's helpers: display names, caveats, the palette by activation family, table styling and display."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt

from ..data import DATASETS
from ..experiments import EXPERIMENTS, get_experiment, project_root
from ..metrics import metric_label as _label
from ..reference import source_label

if TYPE_CHECKING:  # annotations only: runs imports this module
    from .runs import ChapterRuns

__all__ = [
    "dataset_name",
    "data_caveats",
    "dataset_caveat",
    "TRAIN_ENV",
    "metric_label",
    "experiment_caption",
    "experiment_name",
    "arm_order",
    "caveats_markdown",
    "arm_palette",
    "activation_colour",
    "FAMILY_COLOURS",
    "activation_family",
    "show_markdown",
    "markdown_html",
    "table_style",
]


# ---------------------------------------------------------------------------------------------
# Helpers the chapter notebooks call
# ---------------------------------------------------------------------------------------------
def dataset_name(dataset: str) -> str:
    """The dataset's name on a page, from the dataset registry (the key itself if unregistered)."""
    return DATASETS.get(dataset).display_name if dataset in DATASETS else dataset


def data_caveats(experiment: str, runs: ChapterRuns | None = None) -> list[str]:
    """The caveats of the data behind ``experiment``'s numbers.

    From the records in ``runs`` when it has any for the experiment (each record keeps the
    caveats of the copy it was trained on, ``provenance.data_caveats``); otherwise from the
    dataset registry (the caveats of the project's reference copy). Empty for lossless data.
    """

    if runs is not None:
        recs = [r for r in runs.records if r.get("experiment") == experiment]
        if recs:
            return _unique(c for r in recs for c in ((r.get("provenance") or {}).get("data_caveats") or []))
    try:
        return list(DATASETS.get(get_experiment(experiment).dataset).caveats)
    except Exception:  # an unknown dataset has no registered caveat
        return []


def dataset_caveat(experiment: str, runs: ChapterRuns | None = None, *, full: bool = False) -> str | None:
    """The sentence a page must print next to ``experiment``'s numbers (None: lossless data):
    the main caveat (e.g. CIFAR-10's JPEG quality 75), or with ``full`` every caveat."""

    caveats = data_caveats(experiment, runs)
    if not caveats:
        return None
    if not full:
        caveats = caveats[:1]
    return f"{dataset_name(get_experiment(experiment).dataset)} data caveat: our copy was " + "; ".join(caveats) + "."


def _fmt_minutes(seconds: float) -> str:
    minutes = seconds / 60.0
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes:.1f} min"
    return f"{minutes / 60:.1f} h"


def _unique(values: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        s = str(v)
        if s and s not in out:
            out.append(s)
    return out


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


TRAIN_ENV = "RELUSTUDY_TRAIN"  # "1": a notebook may train missing non-smoke runs (relustudy book sets it)


def metric_label(metric: str) -> str:
    """The metric registry's label (relustudy.metrics.METRICS); never a raw key on a page."""

    return _label(metric, unit=True)


def _fmt_num(v: Any, digits: int = 3, signed: bool = False) -> str:
    if not _finite(v):
        return "n/a"
    return f"{float(v):+.{digits}f}" if signed else f"{float(v):.{digits}f}"


def _fmt_p(p: Any) -> str:
    if not _finite(p):
        return "n/a"
    return "< 0.001" if float(p) < 1e-3 else f"{float(p):.3f}"


def experiment_name(experiment: str) -> str:
    """How a page names an experiment: its source's table and its title, e.g. "Smith, Table 3
    (3-layer CNN on CIFAR-10)"; the registry key stays in commands and CSVs."""
    exp = get_experiment(experiment)
    return f"{source_label(exp.source)}, {exp.table} ({exp.title})"


def experiment_caption(experiment: str) -> str:
    """Short title for a figure panel: "Table 3: 3-layer CNN on CIFAR-10 (JPEG q75)"."""

    exp = get_experiment(experiment)
    tag = DATASETS.get(exp.dataset).caveat_tag
    return f"{exp.table}: {exp.title}" + (f" ({tag})" if tag else "")


def arm_order(experiment: str) -> list[str]:
    """The experiment's arm labels in the source's row order."""

    return [arm.label for arm in get_experiment(experiment).arms]


# One colour per activation family on every page (the arms of one family in shades of it), so that
# ReLU is the same blue in every chapter and figure: family -> shades, darkest first.
# Each activation family's colour; an arm's own shade of it comes from activation_colour.
FAMILY_COLOURS = {
    "relu": "#1f4e99",
    "lrelu": "#d9730d",
    "prelu": "#b2182b",
    "rrelu": "#1b7837",
    "elu": "#6a3d9a",
    "tanh": "#555555",
}
_OTHER_COLOUR = "#8c6d31"


def activation_family(name: str) -> str:
    """The colour family of an activation registry name (``relu_where`` -> relu, ``torch_rrelu`` -> rrelu)."""
    for family in ("prelu", "rrelu", "lrelu", "relu", "elu", "tanh"):  # longest names first
        if family in name:
            return family
    return "other"


def _arm_key(activation: str, params: Any) -> tuple[str, str]:
    return activation, json.dumps(dict(params or {}), sort_keys=True)


def _family_variants() -> dict[str, list[tuple[str, str]]]:
    """Every distinct (activation, parameters) the experiments' arms train, per family: the family's
    own activation without parameters first, then the rest in name and parameter order."""
    keys = {_arm_key(a.activation, a.params) for n in EXPERIMENTS.names() for a in get_experiment(n).arms}
    out: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(keys, key=lambda k: (k[0] != activation_family(k[0]), k)):
        out.setdefault(activation_family(key[0]), []).append(key)
    return out


def _lighter(colour: str, share: float) -> str:
    """``colour`` mixed with white (``share`` of white, 0-1)."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in rgb)


def activation_colour(activation: str, params: Any = None) -> str:
    """The colour of an activation with its parameters on every page: its family's colour, in a
    shade that is this (activation, parameters)'s own across the whole study (so one arm keeps its
    colour from chapter to chapter, and two kinds of one family never share one)."""
    family = activation_family(activation)
    base = FAMILY_COLOURS.get(family, _OTHER_COLOUR)
    variants = _family_variants().get(family, [])
    key = _arm_key(activation, params)
    index = variants.index(key) if key in variants else len(variants)
    return _lighter(base, 0.72 * index / max(len(variants), 1))


def arm_palette(experiments: str | Sequence[str]) -> dict[str, str]:
    """Colour of every arm label of ``experiments`` (seaborn ``palette=``): each arm's
    :func:`activation_colour` (a label used by two kinds of arm keeps its first)."""
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    palette: dict[str, str] = {}
    for name in names:
        for arm in get_experiment(name).arms:
            palette.setdefault(arm.label, activation_colour(arm.activation, arm.params))
    return palette


def caveats_markdown(experiments: Iterable[str], runs: ChapterRuns | None = None) -> str:
    """The dataset caveats that apply to numbers of ``experiments`` (each once), as Markdown."""
    seen: list[str] = []
    for name in experiments:
        caveat = dataset_caveat(name, runs)
        if caveat and caveat not in seen:
            seen.append(caveat)
    return "\n\n".join(f"*{c}*" for c in seen)


_VERDICT_COLOURS = {
    "replicated": "#d9f2d9",
    "not replicated": "#f8d7d7",
    "inconclusive": "#fff3cd",
    "not run": "#e9ecef",
    "not obtainable": "#e9ecef",
}


_TABLE_STYLES = [
    {
        "selector": "caption",
        "props": "caption-side: top; text-align: left; font-weight: normal; padding-bottom: 0.4em;",
    },
    {"selector": "th", "props": "text-align: center; padding: 3px 8px;"},
    {"selector": "td", "props": "text-align: right; white-space: nowrap; padding: 3px 8px;"},
]


class HtmlBlock:
    """A piece of HTML a notebook displays as is (``_repr_html_``) and tests read (``to_html``)."""

    def __init__(self, html: str):
        self.html = html

    def to_html(self) -> str:
        return self.html

    def _repr_html_(self) -> str:
        return self.html


def _committed_record(relative: Path, root: str | Path | None) -> dict[str, Any] | None:
    """A committed JSON record at ``relative`` under the project root (or ``root``; an absolute
    path is read as it is); None when it is missing or unreadable."""

    try:
        return json.loads((Path(root or project_root()) / relative).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _bench_record(results_dir: str | Path, profile: str, device: str, name: str) -> dict[str, Any] | None:
    """A benchmark script's JSON record beside the micro-benchmark's; None when missing or damaged
    (the page then says there is no record instead of failing)."""
    return _committed_record(Path(results_dir) / "microbench" / profile / device / name, None)


def markdown_html(text: str) -> Any:
    """``text`` (Markdown) as an IPython HTML object: what a page pasting it from another page
    (``{glue:any}`` with ``:doc:``) renders, where a Markdown object would paste as its repr."""
    from IPython.display import HTML  # noqa: PLC0415 (optional dependency)

    return HTML(MarkdownIt().render(text))


def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown in a notebook; nothing at all when it is empty (an empty
    ``Markdown`` object would show its Python repr in the book)."""
    if text and text.strip():
        from IPython.display import Markdown, display  # noqa: PLC0415 (optional dependency)

        display(Markdown(text))


def table_style(df: Any, *, hide_index: bool = False, wrap: bool = True) -> Any:
    """A pandas Styler for a plain display table: left-aligned text that wraps (a DataFrame's
    HTML would cut long strings at 50 characters), optionally without the row numbers."""
    styler = df.style.set_table_styles(
        [
            *_TABLE_STYLES[:2],
            {
                "selector": "td",
                "props": "text-align: left; vertical-align: top; padding: 3px 8px;"
                + (" white-space: normal;" if wrap else " white-space: nowrap;"),
            },
        ]
    )
    return styler.hide(axis="index") if hide_index else styler
