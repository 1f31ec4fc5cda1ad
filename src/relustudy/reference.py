"""The sources' published numbers, packaged as reference data.

Each source's CSV beside its module (``relustudy/sources/<source>_values.csv``, named by
:attr:`Source.values_file`) holds every number it states in its text, transcribed from the
plain-text copies in ``shared/sources/`` (never invented, never recomputed). One row per number:
``source, table, row, column, value, note``.

- ``source``: ``smith``, ``xu2015``, ``he2015``, ``theano_blog``, ``tf_rrelu_blog`` (see
  :data:`SOURCES`).
- ``table``: the source's own table or section, e.g. ``"Table 3"`` or ``"Section 2.3"``; for the
  experiments this is the same string as :attr:`relustudy.experiments.Experiment.table`.
- ``row``: the source's row label (for Smith the arm label: ``tanh``, ``ReLU``, ``LReLU``,
  ``PReLU``); ``column``: the source's column in snake case (Smith: ``accuracy``,
  ``lifetime_sparsity``, ``dispersion``).
- ``value``: the number as a float. Percentages are stored as fractions (the note then gives the
  published form, e.g. "published as 33.82%"), so they compare directly with our metrics.
- ``note``: where it comes from and anything needed to read it.

What is (and is not) there. Smith Tables 2-4 (36 numbers); Xu et al. Tables 3-5 (error rates and
NDSB log-loss) and the 75.68% CIFAR-100 headline; He et al. (through the reading-group notes): the
ReLU/PReLU top-1/top-5 errors of the 14-layer model, the 4.94% headline and the learned-coefficient
table. The Theano blog states only one number in its text (Alec Radford's net, about 99.5% on
full MNIST after 30 epochs); its timings, accuracies and alphas are in figures and code listings
missing from the text copy. The TensorFlow RReLU blog states no results in its text (only figures),
so it has no rows.

Sources. Each source module in :mod:`relustudy.sources` registers a :class:`Source` in
:data:`SOURCES`: its citation, the label the book uses, ``paper_columns`` (our metric names, as in
the results store, -> the source's column names) and the rounding of its printed numbers; :func:`paper_column` and :func:`our_metric` translate one way or the
other. :func:`experiment_reference` maps an experiment name to its ``(source, table)``, read from
the experiment registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

from .experiments import EXPERIMENTS, get_experiment
from .registry import SOURCES_MODULE, Registry, UnknownNameError

COLUMNS = ("source", "table", "row", "column", "value", "note")
LOADED_COLUMNS = (*COLUMNS, "decimals")  # + the decimals the source printed (from the CSV's text)


@dataclass(frozen=True)
class Source:
    """One source of the study: how the book names it and how its published numbers read.

    Registered by its module in :mod:`relustudy.sources` (``SOURCES.register(key, Source(...))``).
    """

    key: str  # the ``source`` column of its values file, e.g. "smith"
    citation: str
    label: str  # how the book names it in running text and captions, e.g. "Theano blog"
    paper_columns: dict[str, str] = field(default_factory=dict)  # our metric -> the source's column
    rounding_half_unit: float = 0.0  # half a unit of the last digit the source prints
    chapter: str | None = None  # the notebook (notebooks/<chapter>.ipynb) of its chapter, if any
    # Its published numbers: a CSV beside its module in relustudy.sources (or an absolute path),
    # columns COLUMNS; empty for a source that states no numbers in its text.
    values_file: str = ""
    caption_note: str = ""  # a sentence the paper-vs-ours captions of its tables need
    # The bibliography entry (book/references.bib, cited in the chapters as {cite:p}`bib_key`):
    # its BibTeX type and fields, only what the source's own text or a public identifier states.
    bib_key: str = ""
    bib_type: str = "misc"
    bib_fields: dict[str, str] = field(default_factory=dict)


SOURCES: Registry[Source] = Registry("source", filled_by=SOURCES_MODULE)
BIB_FIELD_ORDER = ("author", "title", "booktitle", "journal", "year", "howpublished", "eprint", "archiveprefix")


def bibtex_entry(source: Source) -> str:
    """``source``'s BibTeX entry (fields in a fixed order, then the rest alphabetically)."""
    if not source.bib_key:
        raise ValueError(f"source {source.key!r} has no bibliography key")
    fields = source.bib_fields
    order = [k for k in BIB_FIELD_ORDER if k in fields] + sorted(k for k in fields if k not in BIB_FIELD_ORDER)
    body = ",\n".join(f"  {k} = {{{fields[k]}}}" for k in order)
    return f"@{source.bib_type}{{{source.bib_key},\n{body}\n}}\n"


def bibliography_bibtex() -> str:
    """Every registered source's entry, by source key (the entries of ``book/references.bib``)."""
    return "\n".join(bibtex_entry(SOURCES.get(k)) for k in SOURCES.names())


def get_source(key: str) -> Source:
    return SOURCES.get(key)


def source_label(source: str) -> str:
    """The short name of ``source`` for the book, e.g. ``"Theano blog"``."""
    return SOURCES.get(source).label


def _check_source(source: str) -> str:
    SOURCES.get(source)  # UnknownNameError listing the valid names
    return source


def _read_values(source: Source) -> pd.DataFrame:
    """``source``'s published numbers from its ``values_file`` (empty where it has none)."""
    if not source.values_file:
        return pd.DataFrame(columns=list(COLUMNS))
    path = Path(source.values_file)
    handle = path if path.is_absolute() else resources.files(SOURCES_MODULE).joinpath(source.values_file)
    with handle.open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{source.values_file} lacks column(s): {', '.join(sorted(missing))}")
    others = sorted(set(df["source"]) - {source.key})
    if others:
        raise ValueError(f"{source.values_file} holds rows of other sources ({', '.join(others)}): keep one per source")
    return df


@cache
def _source_values(key: str) -> pd.DataFrame:
    """One source's numbers, parsed (cached per source: a source module reads its own while it
    registers its claims, before the other sources exist)."""
    df = _read_values(SOURCES.get(key))
    df["decimals"] = df["value"].map(printed_decimals)
    df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
    return df[list(LOADED_COLUMNS)]


def _load(source: str | None = None) -> pd.DataFrame:
    keys = [source] if source is not None else SOURCES.names()
    frames = [_source_values(k) for k in keys]
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


def printed_decimals(text: str) -> int:
    """How many decimals a number is printed with: ``"0.00318"`` -> 5, ``"12"`` -> 0 (the CSV keeps
    each published number as the source prints it, so a table can show ours to the same precision)."""
    mantissa = text.strip().lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def paper_values(source: str | None = None, table: str | None = None) -> pd.DataFrame:
    """The published numbers (a copy), optionally of one source and one of its tables.

    An unknown source, or a table the source has no numbers for, raises
    :class:`~relustudy.registry.UnknownNameError` listing the valid names. A known source without
    numbers (``tf_rrelu_blog``) gives an empty frame.
    """
    df = _load(_check_source(source) if source is not None else None)
    if table is not None:
        sub = df[df["table"] == table]
        if sub.empty:
            valid = ", ".join(sorted(df["table"].unique())) or "(none)"
            where = f" of source {source!r}" if source is not None else ""
            raise UnknownNameError(f"unknown table {table!r}{where}; valid names: {valid}")
        df = sub
    return df.reset_index(drop=True).copy()


def paper_value(source: str, table: str, row: str, column: str) -> float:
    """One published number; raises UnknownNameError (listing what exists) if absent."""
    df = paper_values(source, table)
    hit = df[(df["row"] == row) & (df["column"] == column)]
    if hit.empty:
        rows = ", ".join(dict.fromkeys(df["row"]))
        cols = ", ".join(dict.fromkeys(df["column"]))
        raise UnknownNameError(
            f"no published value for row {row!r}, column {column!r} in {source} {table}; rows: {rows}; columns: {cols}"
        )
    return float(hit["value"].iloc[0])


def paper_table(source: str, table: str) -> pd.DataFrame:
    """One published table in the source's layout: rows x columns, in the CSV's order."""
    df = paper_values(source, table)
    wide = df.pivot(index="row", columns="column", values="value")
    return wide.loc[list(dict.fromkeys(df["row"])), list(dict.fromkeys(df["column"]))]


def paper_column(source: str, metric: str) -> str:
    """The source's column for our metric name (e.g. smith, test_accuracy -> accuracy)."""
    mapping = SOURCES.get(source).paper_columns
    if metric not in mapping:
        raise UnknownNameError(
            f"source {source!r} publishes no column for metric {metric!r}; "
            f"valid names: {', '.join(sorted(mapping)) or '(none)'}"
        )
    return mapping[metric]


def our_metric(source: str, column: str) -> str:
    """Our metric name for the source's column (e.g. smith, accuracy -> test_accuracy)."""
    inverse = {v: k for k, v in SOURCES.get(source).paper_columns.items()}
    if column not in inverse:
        raise UnknownNameError(
            f"source {source!r} has no column {column!r} mapped to a metric; "
            f"valid names: {', '.join(sorted(inverse)) or '(none)'}"
        )
    return inverse[column]


def experiment_reference(experiment: str) -> tuple[str, str]:
    """``(source, table)`` of a registered experiment, e.g. ``("smith", "Table 3")``."""

    exp = get_experiment(experiment)
    return exp.source, exp.table


def experiment_tables() -> dict[str, tuple[str, str]]:
    """Every registered experiment's ``(source, table)``."""

    return {name: (EXPERIMENTS.get(name).source, EXPERIMENTS.get(name).table) for name in EXPERIMENTS}
