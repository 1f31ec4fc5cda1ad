"""Helpers the chapter notebooks call: which runs a chapter shows (training what is missing),
provenance lines, tables (paper vs ours, paired, timing, micro-benchmark), figure frames and styling."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from ..activations import ACTIVATIONS, build_activation, display_name
from ..claims import VERDICTS, deciding_effect, published_values_markdown
from ..config import CapabilityError
from ..data import DATASETS, DataError
from ..experiments import EXPERIMENTS, get_experiment, run_experiment
from ..metrics import METRICS, metric_spec
from ..metrics import metric_label as _label
from ..microbench import (
    BACKWARD_LIMIT,
    COMPUTE_LIMITS,
    LIMIT_STATEMENTS,
    STOCK,
    TRAINED_ACTIVATIONS,
    at_shape,
    record_benchmark,
)
from ..models import MODELS, model_display_name
from ..precision import precision_effect_frame
from ..provenance import build_stamp
from ..reference import bibliography_bibtex, get_source, source_label
from ..registry import UnknownNameError
from ..results import load_activation_stats, load_histories, load_results
from ..stats import format_mean_sd, paired_comparison, summarize
from ..stepbench import (
    STEP_TIMINGS,
    read_step_timing,
    read_train_step,
    step_label,
    step_timing_frame,
    step_timing_rows,
)
from ..store import ResultsStore

__all__ = [
    "effect_sizes_markdown",
    "dataset_name",
    "data_caveats",
    "dataset_caveat",
    "run_records",
    "provenance",
    "profile_markdown",
    "curve_frame",
    "ChapterRuns",
    "ensure_runs",
    "cite_markdown",
    "precision_check",
    "shown_profile",
    "TrainingNotAllowed",
    "TRAIN_ENV",
    "ensure_benchmark",
    "profile_shift_table",
    "benchmark_table",
    "kernel_table",
    "kernel_goal_markdown",
    "kernel_limits_markdown",
    "overhead_table",
    "OVERHEAD_BF16_RECORD",
    "overhead_goal_markdown",
    "OVERHEAD_GOALS",
    "OVERHEAD_RECORD",
    "timing_table",
    "spread_across_arms",
    "arm_summary_table",
    "profiles_table",
    "notes_markdown",
    "metric_label",
    "paired_table",
    "profile_banner",
    "experiment_caption",
    "experiment_name",
    "case_display_name",
    "arm_order",
    "caveats_markdown",
    "paper_vs_ours_wide",
    "paper_vs_ours_table",
    "claims_table",
    "verdict_counts_markdown",
    "claim_quotes_markdown",
    "verdict_matrix",
    "reproduce_markdown",
    "activation_curves",
    "study_activations",
    "CURVE_JOIN",
    "downloads_markdown",
    "verdict_csv_frame",
    "arm_palette",
    "FAMILY_SHADES",
    "curve_palette",
    "activation_family",
    "failures_table",
    "verdict_forest",
    "fault_suite_table",
    "fault_suite_markdown",
    "kernel_variants_table",
    "KERNEL_VARIANTS_RECORD",
    "scheduling_markdown",
    "allocator_markdown",
    "ALLOCATOR_RECORD",
    "SCHEDULING_RECORD",
    "FAULT_RECORD",
    "verdict_bars",
    "step_timing_table",
    "VERDICT_PLOT_COLOURS",
    "takeaways_markdown",
    "choices_markdown",
    "show_markdown",
    "markdown_html",
    "table_style",
    "regime_markdown",
    "train_step_table",
]


# ---------------------------------------------------------------------------------------------
# Helpers the chapter notebooks call
# ---------------------------------------------------------------------------------------------
def dataset_name(dataset: str) -> str:
    """The dataset's name on a page, from the dataset registry (the key itself if unregistered)."""
    return DATASETS.get(dataset).display_name if dataset in DATASETS else dataset


def data_caveats(experiment: str, runs: "ChapterRuns | None" = None) -> list[str]:
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


def dataset_caveat(experiment: str, runs: "ChapterRuns | None" = None, *, full: bool = False) -> str | None:
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


def run_records(results_dir: str | Path, experiments: Iterable[str], profile: str) -> list[dict[str, Any]]:
    """The complete records (parsed ``result.json``) of ``experiments`` under ``profile``."""

    store = ResultsStore(results_dir)
    return [rec for name in experiments for rec in store.records(name, profile)]


def provenance(runs: Any) -> str:
    """One sentence on where the numbers come from:

    "profile quick, 60 runs on cpu: 2 threads, <CPU>, torch 2.14.1, total wall time 84.2 min,
    commit abc1234."

    ``runs`` is a list of records (parsed ``result.json``, e.g. from :func:`run_records`; their
    ``provenance`` gives device, torch version, wall time and commit) or a
    :func:`relustudy.results.load_results` frame (one row per run and metric; runs are counted once
    by ``run_id``; torch is then given only if the frame has a ``torch_version`` column).
    Wall time is the sum over runs.
    """

    if isinstance(runs, pd.DataFrame):
        df = runs.drop_duplicates("run_id") if "run_id" in runs else runs
        rows = df.to_dict("records")
    else:
        rows = []
        for rec in runs or []:
            prov = dict(rec.get("provenance") or {})
            rows.append({"profile": rec.get("profile") or prov.get("profile"), **prov})
    if not rows:
        return "no runs recorded yet."
    n = len(rows)
    profiles = _unique(r.get("profile") for r in rows)
    devices = _unique(r.get("device") for r in rows)
    torches = _unique(r.get("torch_version") for r in rows)
    commits = _unique(str(c)[:7] if c != "unknown" else None for c in _unique(r.get("git_commit") for r in rows))
    dirty = any(r.get("git_dirty") is True for r in rows)
    wall = sum(float(w) for w in (r.get("wall_seconds") for r in rows) if _finite(w))
    parts = [
        f"profile {', '.join(profiles) or 'unknown'}",
        f"{n} run{'s' if n != 1 else ''} on {'; '.join(devices) or 'an unrecorded device'}",
    ]
    if torches:
        parts.append(f"torch {', '.join(torches)}")
    cpus = _unique(r.get("cpu_identity") for r in rows)
    if cpus:  # older records name only the CPU model
        unnamed = sum(1 for r in rows if not r.get("cpu_identity"))
        parts.append(f"CPU {'; '.join(cpus)}" + (f" ({unnamed} older runs: not recorded)" if unnamed else ""))
    parts.append(f"total wall time {_fmt_minutes(wall)}")
    if commits:
        parts.append(f"commit {', '.join(commits)}" + (" (with uncommitted changes)" if dirty else ""))
    else:
        parts.append("commit unknown (records made outside a git commit)")
    return ", ".join(parts) + "."


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def profile_markdown(experiment: str, profile: str, *, seeds: Sequence[int] | None = None, notes: bool = True) -> str:
    """Markdown listing how ``profile`` of ``experiment`` departs from the source (its
    scale-downs), and, with ``notes``, the choices made where the source is silent. ``seeds``:
    the seeds this build uses when they differ from the profile's. (The data
    caveat goes with the numbers: :func:`paper_vs_ours_table` puts it in the caption.)"""

    exp = get_experiment(experiment)
    prof = exp.profile(profile)
    chosen = ", ".join(str(s) for s in (prof.seeds if seeds is None else seeds))
    which = "" if seeds is None else ", chosen for this build"
    lines = [
        f"**{source_label(exp.source)} {exp.table}, {exp.title}**, profile `{profile}` (seeds {chosen}{which}).",
        "",
    ]
    if prof.scale_downs:
        lines.append("Scaled down from the source:")
        lines += [f"- {s}" for s in prof.scale_downs]
    else:
        lines.append("Runs the source's own setup.")
    if prof.criterion is not None:
        lines += ["", f"Regime criterion: {prof.criterion.text}."]
    if notes and exp.notes:
        lines += ["", "Choices where the source is silent or ambiguous:"]
        lines += [f"- {n}" for n in exp.notes]
    return "\n".join(lines)


def curve_frame(stats: Any, *, layer: str = "last_conv", points: int = 101, epoch: str | int = "last") -> Any:
    """Sorted activation-probability curves on a common grid, long form for seaborn.

    ``stats`` is a :func:`relustudy.results.load_activation_stats` frame (one row per run, epoch and
    layer, the sorted curve in the list column ``curve``). Each curve is resampled at ``points``
    evenly spaced unit ranks (fraction of the layer's units, 0 = most active unit) by linear
    interpolation. ``epoch="last"`` keeps each run's last measured epoch. Returns columns
    ``experiment, arm, seed, run_id, rank, probability``.
    """

    df = pd.DataFrame(stats)
    cols = ["experiment", "arm", "seed", "run_id", "rank", "probability"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    if "layer" in df:
        df = df[df["layer"] == layer]
    if "epoch" in df and len(df):
        if epoch == "last":
            df = df[df["epoch"] == df.groupby("run_id")["epoch"].transform("max")]
        else:
            df = df[df["epoch"] == int(epoch)]
    grid = np.linspace(0.0, 1.0, points)
    rows = []
    for rec in df.itertuples(index=False):
        curve = np.asarray(rec.curve, dtype=float)
        if curve.size == 0:
            continue
        curve = np.sort(curve)[::-1]  # decreasing, whatever order it was stored in
        x = np.linspace(0.0, 1.0, curve.size) if curve.size > 1 else np.zeros(1)
        y = np.interp(grid, x, curve) if curve.size > 1 else np.full(points, curve[0])
        rows.append(
            pd.DataFrame(
                {
                    "experiment": getattr(rec, "experiment", ""),
                    "arm": rec.arm,
                    "seed": rec.seed,
                    "run_id": getattr(rec, "run_id", ""),
                    "rank": grid,
                    "probability": y,
                }
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


class ChapterRuns:
    """The records a chapter shows: some experiments, each in one profile (``profiles``: the
    book's, or a more faithful one whose records are complete), the configured seeds only.

    ``results`` is the :func:`relustudy.results.load_results` frame, ``stats`` the
    :func:`relustudy.results.load_activation_stats` frame, ``histories`` the
    :func:`relustudy.results.load_histories` frame and ``records`` the parsed result.json
    records, all restricted to the run ids that the experiments' configs for this profile (and
    these seeds) produce, so records of other seeds in the same store are not mixed in.
    """

    def __init__(
        self,
        profile: str,
        experiments: Sequence[str],
        results: Any,
        stats: Any,
        records: list[dict[str, Any]],
        expected: int,
        histories: Any = None,
    ):
        self.histories = histories  # load_histories frame (one row per run and epoch), same run ids
        self.profile = profile
        self.experiments = list(experiments)
        self.results = results
        self.stats = stats
        self.records = records
        self.expected = expected  # runs the configs ask for
        self.skipped: dict[str, str] = {}  # experiment -> why it could not run (ensure_runs(skip_unavailable=True))
        self.profiles: dict[str, str] = {name: profile for name in self.experiments}  # the profile each one shows
        self.store: ResultsStore | None = None

    def profile_of(self, experiment: str) -> str:
        """The profile the chapter shows for ``experiment`` (the book's, or a more faithful one)."""
        return self.profiles.get(experiment, self.profile)

    def profiles_markdown(self) -> str:
        """Markdown naming the experiments shown in another profile than the book's ("" if none)."""
        other = {n: p for n, p in self.profiles.items() if p != self.profile}
        if not other:
            return ""
        return (
            f"Shown in a more faithful profile than this book's `{self.profile}`, because all its records exist:\n\n"
            + "\n".join(f"- {experiment_caption(n)}: profile `{p}`" for n, p in other.items())
        )

    def provenance(self) -> str:
        return provenance(self.records)

    def missing(self) -> int:
        return self.expected - len(self.records)

    def skipped_markdown(self) -> str:
        """Markdown naming the experiments that could not run here, and why ("" if none)."""
        if not self.skipped:
            return ""
        return "Not run in this build (their claims read *not run*):\n\n" + "\n".join(
            f"- {experiment_name(name)}: {why}" for name, why in self.skipped.items()
        )


# The order of faithfulness (quick < regime < paper): a book asked for ``quick`` shows ``paper`` for
# an experiment whose paper records are all there, else ``regime`` where that profile exists and is
# complete. ``smoke`` checks the code path and always shows its own runs.
MORE_FAITHFUL = {"quick": ("paper", "regime"), "regime": ("paper",)}


def shown_profile(experiment: str, profile: str, store: ResultsStore, *, device: str = "cpu") -> str:
    """The most faithful profile of ``experiment`` whose records are all complete in ``store``
    (``paper`` for a ``quick`` book when every paper run is recorded, else ``regime``), else
    ``profile`` itself."""
    exp = get_experiment(experiment)
    if profile not in exp.profiles:  # a regime book: an experiment without one shows its quick records
        profile = "quick"
    for better in MORE_FAITHFUL.get(profile, ()):
        if better not in exp.profiles:
            continue
        configs = exp.configs(better, device=device)
        if configs and all(store.is_complete(c) for c in configs):
            return better
    return profile


def regime_markdown(experiment: str, profile: str, store: ResultsStore) -> str:
    """The chapter's regime row for the profile it shows: "in the paper's regime: yes/no, and why"
    from the records, or what the profile is when it has no regime criterion ("" for smoke). The
    experiment is named as a reader knows it (its table and title), not by its key."""
    exp = get_experiment(experiment)
    name = f"{exp.table}, {exp.title} ({profile} profile)"
    verdict = exp.regime_verdict(profile, store.records(experiment, profile))
    if verdict is not None:
        return f"{name}. " + verdict.markdown()
    if profile == "smoke":
        return ""
    if profile == "paper":
        return f"{name}: the source's own setup."
    has_regime = "regime" in exp.profiles
    return f"{name}: not tested against the paper's regime" + (
        "; its regime profile is not completely recorded yet, and this page shows it once it is." if has_regime else "."
    )


TRAIN_ENV = "RELUSTUDY_TRAIN"  # "1": a notebook may train missing non-smoke runs (relustudy book sets it)


class TrainingNotAllowed(RuntimeError):
    """A notebook would start a long training grid nobody asked for (one line: what, how long, the fix)."""

    def _render_traceback_(self) -> list[str]:
        return [f"TrainingNotAllowed: {self}"]


def _check_training_allowed(exp: Any, params: Any, store: ResultsStore, configs: Sequence[Any]) -> None:
    """A notebook run by hand (papermill, Jupyter) outside ``relustudy book`` trains only smoke
    runs unasked: for a larger profile with runs missing it stops first, saying how many, the
    estimated CPU time and what to pass. A dataset that is not here is left to the data check."""
    from ..data import dataset_available

    if params.profile == "smoke" or os.environ.get(TRAIN_ENV) == "1" or not dataset_available(exp.dataset):
        return
    missing = [c for c in configs if not store.is_complete(c)]
    if not missing:
        return
    cost = exp.estimate(params.profile, store.records(), step_record=read_train_step(store.root))
    minutes = cost.cpu_minutes * len(missing) / max(len(configs), 1)
    raise TrainingNotAllowed(
        f"{len(missing)} of {len(configs)} runs of {exp.name} ({params.profile}) have no record in {store.root} "
        f"(about {minutes:.0f} CPU-minutes to train, from {', '.join(cost.basis)}); point results_dir at a checkout's results/ folder to use "
        f"its committed records, or set {TRAIN_ENV}=1 to train them (relustudy book does)"
    )


def ensure_runs(
    experiments: Sequence[str],
    params: Any,
    *,
    train: bool = True,
    skip_unavailable: bool = False,
    faithful: bool = True,
    log: Callable[[str], None] | None = None,
) -> ChapterRuns:
    """Make sure every run of ``experiments`` exists for ``params`` (a validated
    :class:`relustudy.notebook_params.NotebookParams`), training what has no complete record
    (quietly, no progress bars), then load the chapter's records.

    With ``faithful`` (and no seeds chosen), an experiment whose more faithful profile is
    completely recorded is shown in that profile instead (:func:`shown_profile`) and nothing is
    trained for it; ``ChapterRuns.profiles`` says which profile each experiment shows. With
    ``train=False`` nothing is trained: the chapter shows what the store holds. With
    ``skip_unavailable`` an experiment whose dataset cannot be found (``DataError``, e.g.
    CIFAR-100 offline) or that this machine cannot train (``CapabilityError``, e.g. bf16 on a CPU
    without bf16 units) is skipped and listed in ``ChapterRuns.skipped`` instead of failing
    (the summary uses this: claims without records then read "not run").
    """

    store = ResultsStore(params.results_dir)
    profiles = {
        name: shown_profile(name, params.profile, store, device=params.device)
        if faithful and params.seeds is None
        else params.profile
        for name in experiments
    }
    run_ids: dict[str, set[str]] = {}
    skipped: dict[str, str] = {}
    for name in experiments:
        exp = get_experiment(name)
        seeds = params.seeds if profiles[name] == params.profile else None
        configs = exp.configs(profiles[name], seeds=seeds, device=params.device)
        run_ids[name] = {c.run_id() for c in configs}
        if train and profiles[name] == params.profile:
            _check_training_allowed(exp, params, store, configs)
            try:
                run_experiment(name, params.profile, log=log, progress=False, **params.run_kwargs())
            except (DataError, CapabilityError) as e:
                if not skip_unavailable:
                    raise
                skipped[name] = str(e).splitlines()[0]
    results, stats, histories, records = [], [], [], []
    for name in experiments:
        ids, prof = run_ids[name], profiles[name]
        r = load_results(store, experiment=name, profile=prof)
        s = load_activation_stats(store, experiment=name, profile=prof)
        h = load_histories(store, experiment=name, profile=prof)
        results.append(r[r["run_id"].isin(ids)] if len(r) else r)
        steps = step_timing_frame(store.root, name, prof)
        if len(steps):
            results.append(steps)
        stats.append(s[s["run_id"].isin(ids)] if len(s) else s)
        histories.append(h[h["run_id"].isin(ids)] if len(h) else h)
        records += [rec for rec in store.records(name, prof) if rec.get("run_id") in ids]
    results_df = (
        pd.concat([r for r in results if len(r)], ignore_index=True) if any(len(r) for r in results) else results[0]
    )
    stats_df = pd.concat([s for s in stats if len(s)], ignore_index=True) if any(len(s) for s in stats) else stats[0]
    hist_df = (
        pd.concat([h for h in histories if len(h)], ignore_index=True)
        if any(len(h) for h in histories)
        else histories[0]
    )
    expected = sum(len(ids) for ids in run_ids.values())
    runs = ChapterRuns(params.profile, experiments, results_df, stats_df, records, expected=expected, histories=hist_df)
    runs.profiles = profiles
    runs.skipped = skipped
    runs.store = store
    return runs


def precision_check(params: Any, base: str, twin: str, metric: str = "test_error") -> tuple[pd.DataFrame, str]:
    """The paired precision check of ``twin`` against ``base`` (:mod:`relustudy.precision`) in the
    build's profile, or in quick where the twin has no such profile (a paper build), training what
    has no record unless this machine cannot (then the reason comes back beside an empty frame)."""
    twin_profiles = get_experiment(twin).profiles
    if params.profile not in twin_profiles:
        params = dataclasses.replace(params, profile="quick", seeds=None)
    runs = ensure_runs([base, twin], params, skip_unavailable=True, faithful=False)
    return precision_effect_frame(runs.results, base, twin, params.profile, metric), runs.skipped.get(twin, "")


def profile_shift_table(
    store: ResultsStore | str | Path,
    experiment: str,
    metrics: Sequence[str],
    *,
    lower: str = "quick",
    higher: str = "paper",
    digits: int = 3,
) -> Any:
    """How much the scale-down of ``lower`` moved each number: per arm and metric, both profiles'
    mean ± sd over their complete runs and ``higher - lower`` with its Welch 95% interval (the two
    profiles' runs are independent). Empty when either profile has no complete run."""
    from ..stats import welch_interval

    store = store if isinstance(store, ResultsStore) else ResultsStore(Path(store))
    frames = {}
    for prof in (lower, higher):
        ids = {c.run_id() for c in get_experiment(experiment).configs(prof)}
        r = load_results(store, experiment=experiment, profile=prof)
        r = r[r["run_id"].isin(ids) & (r["status"] == "complete")] if len(r) else r
        if not len(r):
            return pd.DataFrame()
        frames[prof] = r
    rows = []
    for arm in arm_order(experiment):
        for metric in metrics:
            vals = {
                p: f[(f["arm"] == arm) & (f["metric"] == metric)]["value"].dropna().to_numpy(dtype=float)
                for p, f in frames.items()
            }
            diff, lo, hi = welch_interval(vals[higher], vals[lower])
            cells = {
                p: format_mean_sd(
                    v.mean() if len(v) else math.nan, v.std(ddof=1) if len(v) > 1 else math.nan, len(v), digits
                )
                for p, v in vals.items()
            }
            rows.append(
                {
                    "activation": arm,
                    "metric": _label(metric),
                    f"{lower} profile": cells[lower],
                    f"{higher} profile": cells[higher],
                    f"{higher} - {lower} (Welch 95% CI)": f"{_fmt_num(diff, digits, True)} "
                    + (f"[{_fmt_num(lo, digits, True)}, {_fmt_num(hi, digits, True)}]" if _finite(lo) else "(n < 2)"),
                }
            )
    return pd.DataFrame(rows).set_index(["activation", "metric"])


def ensure_benchmark(params: Any) -> Any:
    """The activation micro-benchmark of ``params.profile`` on the CPU (measured and recorded in
    ``params.results_dir`` when there is no record yet), with the CUDA one when this machine has
    a GPU and ``params.device`` is not "cpu". Returns ``{device type: table}``."""

    tables = {"cpu": record_benchmark(params.profile, params.results_dir, device="cpu")}
    if params.device != "cpu" and torch.cuda.is_available():
        tables["cuda"] = record_benchmark(params.profile, params.results_dir, device="cuda")
    return tables


def benchmark_table(df: Any, *, digits: int = 3, layout: str = "contiguous") -> Any:
    """The micro-benchmark record as a display table for one memory layout: one row per case,
    forward and backward side by side (median ms with IQR, GB/s, ratio to the copy bound), the copy
    bound first."""

    rows = []
    df = at_shape(df)
    if "layout" in df:
        df = df[df["layout"] == layout]
    for r in df.itertuples(index=False):
        if r.kind == "bound" and r.name != "copy":
            continue  # the exp/tanh limits are shown in kernel_table
        if r.kind == "bound":
            rows.append(
                {
                    "case": f"{r.name} (bound)",
                    "kind": r.kind,
                    "direction": "copy",
                    "median ms": r.median_ms,
                    "IQR ms": r.iqr_ms,
                    "GB/s": r.gbps,
                    "x copy bound": r.bound_ratio,
                    "note": "",
                }
            )
            continue
        note = r.error or (
            ""
            if r.compiled_matches_eager in (None, "", True, "True") or pd.isna(r.compiled_matches_eager)
            else "compiled differs from eager"
        )
        rows.append(
            {
                "case": case_display_name(r.name),
                "kind": r.kind,
                "direction": r.direction,
                "median ms": r.median_ms,
                "IQR ms": r.iqr_ms,
                "GB/s": r.gbps,
                "x copy bound": r.bound_ratio,
                "note": note,
            }
        )
    out = pd.DataFrame(rows)
    for col in ("median ms", "IQR ms", "GB/s", "x copy bound"):
        out[col] = out[col].map(lambda v: _fmt_num(v, digits))
    wide = out.pivot_table(
        index=["case", "kind"],
        columns="direction",
        values=["median ms", "IQR ms", "GB/s", "x copy bound"],
        aggfunc="first",
        sort=False,
    )
    wide.columns = [f"{d} {m}" for m, d in wide.columns]
    order = [
        f"{d} {m}" for d in ("copy", "forward", "backward") for m in ("median ms", "IQR ms", "GB/s", "x copy bound")
    ]
    wide = wide[[c for c in order if c in wide.columns]].fillna("")
    notes = out.groupby(["case", "kind"], sort=False)["note"].agg(lambda v: "; ".join(dict.fromkeys(x for x in v if x)))
    wide["note"] = notes.reindex(wide.index).fillna("")
    return wide


def case_display_name(case: str) -> str:
    """A micro-benchmark case as a page names it: a registry activation by its display name
    ("relu_max[as written]" -> "ReLU (max), as written"); PyTorch's functions keep their code names."""
    base, _, tag = case.partition("[")
    tag = tag.rstrip("]")
    if base not in ACTIVATIONS:
        return case
    name = display_name(base)
    if tag == "shared":
        return display_name(case)
    return f"{name}, {tag}" if tag else name


def _tensors_label(shape: str, record: dict) -> str:
    """``shape`` with the bytes one copy of it moves, against the last-level cache the record names."""
    n = math.prod(int(d) for d in shape.split("x"))
    moved = 2 * n * 4 / 2**20  # fp32, read and write
    cache = str((record.get("provenance") or {}).get("last_level_cache", ""))
    where = ""
    if cache[:-1].isdigit() and cache[-1:] in "KM":
        l3 = int(cache[:-1]) / (1024 if cache[-1] == "K" else 1)
        where = f"; L3 {l3:.0f} MiB: " + ("from memory" if moved > 1.5 * l3 else "partly in cache")
    return f"{shape.replace('x', ' x ')} ({moved:.0f} MiB per copy{where})"


def kernel_table(df: Any, *, digits: int = 2) -> Any:
    """The activations the study trains, as the models run them, against their physical limit in
    both memory layouts and at each recorded tensor size (the profile's ``shape``, and its
    ``memory_shape`` where the record has one): forward and backward, the time over the largest
    limit that applies ("x limit", see :func:`kernel_limits_markdown`) and over the copy of the
    same bytes alone ("x copy"), with the implementation; PyTorch's stock functions beside them."""

    if "limit_ratio" not in df:
        return pd.DataFrame()
    record = df.attrs.get("record") or {}
    rows = []
    for which in ("shape", "memory_shape"):
        part = at_shape(df, which)
        for shape in dict.fromkeys(part["shape"].astype(str)):
            tensors = _tensors_label(shape, record)
            for layout in dict.fromkeys(part["layout"]):
                d = part[
                    (part["layout"] == layout) & (part["kind"] != "compiled") & (part["shape"].astype(str) == shape)
                ]
                for name in TRAINED_ACTIVATIONS:
                    for case, label in ((name, "ours"), (STOCK.get(name), "PyTorch stock")):
                        sub = d[d["name"] == case] if case else d.iloc[0:0]
                        if sub.empty:
                            continue
                        r = {
                            "activation": name,
                            "tensors": tensors,
                            "layout": layout,
                            "code": label,
                            "implementation": sub["implementation"].iloc[0] or "PyTorch",
                        }
                        for direction in ("forward", "backward"):
                            for column, label in (("limit_ratio", "x limit"), ("bound_ratio", "x copy")):
                                if column not in sub:
                                    continue  # a table without the copy-only column
                                v = sub[sub["direction"] == direction][column]
                                r[f"{direction} {label}"] = _fmt_num(v.iloc[0], digits) if len(v) else ""
                        rows.append(r)
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows)  # grouped by activation, in the study's order; sizes and layouts within
    out = out.iloc[out["activation"].map(TRAINED_ACTIVATIONS.index).argsort(kind="stable")]
    out["activation"] = out["activation"].map(display_name)
    return out.set_index(["activation", "tensors", "layout", "code"])


def kernel_limits_markdown(df: Any) -> str:
    """What each pass of ``kernel_table`` is held to, from the bound rows the record has (a record
    made before a limit was measured says so instead of naming it)."""
    have = set(df[df["kind"] == "bound"]["name"]) if len(df) and "kind" in df else set()
    compute = sorted(set(COMPUTE_LIMITS.values()))
    parts = [f'every pass: `{LIMIT_STATEMENTS["copy"]}` scaled to the pass\'s bytes ("x copy")']
    if BACKWARD_LIMIT in have:
        parts.append(
            f"backward passes also `{LIMIT_STATEMENTS[BACKWARD_LIMIT]}` scaled to their bytes (the same three "
            "streams: two tensors read, one written)"
        )
    else:
        parts.append("backward passes the copy alone (this record predates the three-stream limit)")
    for limit in compute:
        users = sorted(
            {display_name(n) for n, k in COMPUTE_LIMITS.items() if k == limit and not n.startswith(("F.", "torch."))}
        )
        if limit in have:
            parts.append(f"{', '.join(users)} forward also `{LIMIT_STATEMENTS[limit]}`")
        else:
            parts.append(f"{', '.join(users)} forward: this record predates the `{limit}` limit")
    return (
        'Limits ("x limit" is the time over the largest that applies, all measured in the same rounds): '
        + "; ".join(parts)
        + "."
    )


def kernel_goal_markdown(table: Any, goal: float = 2.0, against: str = "limit") -> str:
    """Per tensor size of ``kernel_table``'s output: how many of our cells (activation x layout x
    direction) are within ``goal`` times their limit (``against="limit"``) or the copy bound alone
    (``"copy"``), and which are not."""
    if against not in ("limit", "copy"):
        raise ValueError(f"against must be 'limit' or 'copy', got {against!r}")
    if table is None or len(table) == 0:
        return ""
    ours = table.xs("ours", level="code")
    what = "the limit" if against == "limit" else "the copy bound alone"
    out = []
    for tensors, part in ours.groupby(level="tensors", sort=False):
        cells = [
            (act, layout, direction.split()[0], v)
            for (act, _, layout), row in part.iterrows()
            for direction, v in row.items()
            if direction.endswith(f"x {against}") and v != ""
        ]
        if not cells:
            continue
        unmeasured = [f"{act} {d} ({layout})" for act, layout, d, v in cells if v == "n/a"]  # a failed case
        over = [f"{act} {d} ({layout}) {v}" for act, layout, d, v in cells if v != "n/a" and float(v) > goal]
        line = f"- {tensors}: {len(cells) - len(over) - len(unmeasured)} of {len(cells)} of our cells within {goal:g}x of {what}"
        line += f"; above it: {', '.join(over)}" if over else ""
        out.append(line + (f"; not measured: {', '.join(unmeasured)}." if unmeasured else "."))
    return "\n".join(out)


OVERHEAD_RECORD = "train_overhead.json"  # written by benchmarks/bench_train_overhead.py --json
OVERHEAD_BF16_RECORD = "train_overhead_bf16.json"  # the same under --precision bf16
# Our goals for the fused kernels' training overhead against ReLU (the performance issue).
OVERHEAD_GOALS = {"prelu": 0.05, "rrelu": 0.10}
# How records made before the step-interleaved design paired their arms.
_ROUNDS_DESIGN = (
    "interleaved rounds of several steps per arm; overhead = median over rounds of the round's step time over ReLU's"
)


def _overhead_cell(v: float, ci: Sequence[float] | None, quartiles: Sequence[float] | None) -> str:
    if ci and all(_finite(b) for b in ci):
        return f"{100 * v:+.1f}% (95% CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f})"
    if quartiles:
        return f"{100 * v:+.1f}% (quartiles {100 * quartiles[0]:+.1f} to {100 * quartiles[1]:+.1f})"
    return f"{100 * v:+.1f}%"


def overhead_table(results_dir: str | Path, profile: str, *, device: str = "cpu", record: str = OVERHEAD_RECORD) -> Any:
    """Training-step time of PReLU, Xu's RReLU and ELU against ReLU in the same models, same run
    (benchmarks/bench_train_overhead.py, whose ``--json`` file is ``record``), with the fused
    kernels and, where measured, with the PyTorch forms; empty when no such record exists.
    ``attrs["design"]``: how the record paired the arms (from the record)."""
    rec = _bench_record(results_dir, profile, device, record)
    if rec is None:
        return pd.DataFrame()
    rows = []
    for code, label in (("fused", "fused kernels"), ("torch", "PyTorch forms")):
        if code not in rec:
            continue
        for model, m in (rec.get(code) or {}).get("models", {}).items():
            row = {
                "model": model_display_name(model) if model in MODELS else model,
                "activation code": label,
                "threads": (rec.get(code) or {}).get("threads", ""),
                "ReLU step (ms)": f"{m['median_step_ms']['relu']:.1f}",
                "paired samples": m.get("cycles", m.get("rounds", "")),  # cycles, or rounds in older records
            }
            quartiles = m.get("overhead_quartiles", {})  # records before paired rounds have none
            intervals = m.get("overhead_ci95", {})  # records before the step-interleaved design have none
            for act, v in m["overhead_vs_relu"].items():
                row[f"{display_name(act)} vs ReLU"] = _overhead_cell(v, intervals.get(act), quartiles.get(act))
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame(rows).set_index(["model", "activation code"])
    out.attrs["design"] = (rec.get("fused") or {}).get("design", _ROUNDS_DESIGN)
    return out


def overhead_goal_markdown(
    results_dir: str | Path,
    profile: str,
    *,
    device: str = "cpu",
    record: str = OVERHEAD_RECORD,
    goals: dict[str, float] = OVERHEAD_GOALS,
) -> str:
    """Per model of the record's fused-kernel measurement and per activation in ``goals``: whether
    its training overhead against ReLU is within the goal (the 95% interval's upper end at or below
    it), over it (the lower end above it), or not resolved (the interval contains it, or the record
    has no interval); empty without a record."""
    rec = _bench_record(results_dir, profile, device, record)
    models = ((rec or {}).get("fused") or {}).get("models") or {}
    lines = []
    for model, m in models.items():
        verdicts = []
        for act, goal in goals.items():
            if act not in m.get("overhead_vs_relu", {}):
                continue
            v, ci = m["overhead_vs_relu"][act], (m.get("overhead_ci95") or {}).get(act)
            head = f"{display_name(act)} {100 * v:+.1f}% against a goal of {100 * goal:g}%: "
            if not ci or not all(_finite(b) for b in ci):
                verdicts.append(head + "not resolved (no 95% interval in this record)")
            elif ci[1] <= goal:
                verdicts.append(head + f"within it (95% CI up to {100 * ci[1]:+.1f}%)")
            elif ci[0] > goal:
                verdicts.append(head + f"over it (95% CI from {100 * ci[0]:+.1f}%)")
            else:
                verdicts.append(head + f"not resolved (95% CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}% contains it)")
        if verdicts:
            name = model_display_name(model) if model in MODELS else model
            lines.append(f"- {name}: " + "; ".join(verdicts) + ".")
    return "\n".join(lines)


def _activation_code(records: Sequence[dict]) -> str:
    """The code the records' activations ran, from their provenance: the non-PyTorch ones named."""
    named = [
        ((r.get("config") or {}).get("activation"), (r.get("provenance") or {}).get("activation_implementation"))
        for r in records
    ]
    special = _unique(f"{act}: {impl}" for act, impl in named if impl and impl != "PyTorch")
    if special:
        return "; ".join(special)
    return "PyTorch" if any(impl for _, impl in named) else "PyTorch (records made before the fused kernels)"


def timing_table(runs: "ChapterRuns") -> Any:
    """Where the chapter's CPU time went, from the records: per experiment the runs, their summed
    wall time, the median training throughput, the device(s), the code the activations ran (the
    records' ``activation_implementation``, where not plain PyTorch), and for comparison the
    estimated cost of the ``paper`` profile on the same machine (from the measured throughput,
    scaled by the squared width ratio where the paper profile is wider), with a total row."""

    rows = []
    steps = read_train_step(runs.store.root) if getattr(runs, "store", None) is not None else None
    for name in runs.experiments:
        recs = [r for r in runs.records if (r.get("config") or {}).get("experiment") == name]
        walls = [float((r.get("provenance") or {}).get("wall_seconds") or 0.0) for r in recs]
        ips = [
            float(r["metrics"]["images_per_second"])
            for r in recs
            if _finite((r.get("metrics") or {}).get("images_per_second"))
        ]
        exp = get_experiment(name)
        median_ips = float(pd.Series(ips).median()) if ips else None
        rows.append(
            {
                "experiment": f"{exp.table}: {exp.title}",
                "runs": len(recs),
                "wall time (min)": sum(walls) / 60.0,
                "median images/s": median_ips if median_ips else float("nan"),
                "device": ", ".join(_unique((r.get("provenance") or {}).get("device") for r in recs)),
                "activation code": _activation_code(recs),
                # a diagnostic has no paper profile: nothing to estimate
                "paper profile, estimated (min)": exp.estimate("paper", runs.records, step_record=steps).cpu_minutes
                if "paper" in exp.profiles
                else float("nan"),
            }
        )
    out = pd.DataFrame(rows)
    if len(out):
        total = {
            "experiment": "total",
            "runs": int(out["runs"].sum()),
            "wall time (min)": out["wall time (min)"].sum(),
            "median images/s": float("nan"),
            "device": "",
            "activation code": "",
            "paper profile, estimated (min)": out["paper profile, estimated (min)"].sum(),
        }
        out = pd.concat([out, pd.DataFrame([total])], ignore_index=True)
        for col in ("wall time (min)", "paper profile, estimated (min)"):
            out[col] = out[col].map(lambda v: f"{v:.1f}")
        out["median images/s"] = out["median images/s"].map(lambda v: f"{v:.0f}" if _finite(v) else "")
    return out.set_index("experiment") if len(out) else out


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


def profiles_table(profile: str | None = None) -> Any:
    """Every registered experiment x profile: seeds, epochs, batch size, training images and the
    scale-downs in words (from the experiment registry). ``profile`` marks the built one."""

    rows = []
    for name in EXPERIMENTS.names():
        exp = EXPERIMENTS.get(name)
        for pname, prof in exp.profiles.items():
            settings = exp.settings(pname)
            try:
                images = f"{exp.train_images(pname):,}"
            except Exception:  # the dataset registry may not know the set (e.g. not installed)
                images = str(settings.get("train_subset") or "all")
            rows.append(
                {
                    "experiment": exp.title,
                    "source": f"{source_label(exp.source)}, {exp.table}",
                    "profile": pname + (" (this build)" if pname == profile else ""),
                    "seeds": len(prof.seeds),
                    "epochs": settings.get("epochs"),
                    "batch": settings.get("batch_size"),
                    "training images": images,
                    "departs from the source by": prof.describe(),
                }
            )
    return pd.DataFrame(rows)


def notes_markdown(experiments: Iterable[str] | None = None) -> str:
    """Markdown: per experiment, the choices made where its source is silent (``notes``)."""

    lines = []
    for name in experiments or EXPERIMENTS.names():
        exp = EXPERIMENTS.get(name)
        lines.append(f"**{experiment_name(name)}**:")
        lines.append("")
        lines += [f"- {n}" for n in exp.notes] or ["- (none)"]
        caveat = dataset_caveat(name, full=True)
        if caveat:
            lines.append(f"- *{caveat}*")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def metric_label(metric: str) -> str:
    """The metric registry's label (relustudy.metrics.METRICS); never a raw key on a page."""

    return _label(metric, unit=True)


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


def _fmt_num(v: Any, digits: int = 3, signed: bool = False) -> str:
    if not _finite(v):
        return "n/a"
    return f"{float(v):+.{digits}f}" if signed else f"{float(v):.{digits}f}"


def _fmt_p(p: Any) -> str:
    if not _finite(p):
        return "n/a"
    return "< 0.001" if float(p) < 1e-3 else f"{float(p):.3f}"


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


def profile_banner(profile: str) -> str:
    """A MyST admonition for profiles whose numbers must not be read as results (``smoke``)."""
    if profile == "smoke":
        return (
            ":::{warning}\nThis page was built with the **smoke** profile: a few hundred images and one "
            "epoch, only to check that the pipeline runs. Its numbers say nothing about the "
            "activations; the published book uses the `quick` profile.\n:::"
        )
    if profile == "quick":
        return (
            "The numbers below come from the **quick** profile (the scale-downs are listed for each "
            "experiment), except for an experiment whose `paper` records are all committed: it is shown "
            "in the source's own setup, the `paper` profile, and named below; or, failing that, whose "
            "`regime` records are all committed: it is shown in the regime its source's claims are about, "
            "with a row saying whether its runs reached it."
        )
    return f"The numbers below come from the **{profile}** profile."


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
FAMILY_SHADES = {
    "relu": ("#1f4e99", "#4f7fcf", "#8fb0e6"),
    "lrelu": ("#d9730d", "#f29e4c", "#f7c48f"),
    "prelu": ("#b2182b", "#e05566", "#f09aa4", "#f7c6cc"),
    "rrelu": ("#1b7837", "#5aae61", "#a6dba0"),
    "elu": ("#6a3d9a", "#9e7bc4"),
    "tanh": ("#555555", "#999999"),
}
_OTHER_SHADES = ("#8c6d31", "#bd9e39", "#e7ba52")


def activation_family(name: str) -> str:
    """The colour family of an activation registry name (``relu_where`` -> relu, ``torch_rrelu`` -> rrelu)."""
    for family in ("prelu", "rrelu", "lrelu", "relu", "elu", "tanh"):  # longest names first
        if family in name:
            return family
    return "other"


def family_colours(arms: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Colour of each ``(label, activation registry name)`` in order: its activation family's
    colour, the family's later labels in lighter shades (a repeated label keeps its first)."""
    palette: dict[str, str] = {}
    used: dict[str, int] = {}
    for label, activation in arms:
        if label in palette:
            continue
        family = activation_family(activation)
        shades = FAMILY_SHADES.get(family, _OTHER_SHADES)
        palette[label] = shades[min(used.get(family, 0), len(shades) - 1)]
        used[family] = used.get(family, 0) + 1
    return palette


def arm_palette(experiments: str | Sequence[str]) -> dict[str, str]:
    """Colour of every arm label of ``experiments`` (seaborn ``palette=``), by :func:`family_colours`
    in the experiments' arm order."""
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    return family_colours((arm.label, arm.activation) for name in names for arm in get_experiment(name).arms)


def caveats_markdown(experiments: Iterable[str], runs: "ChapterRuns | None" = None) -> str:
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


# A published value against our seeds (:func:`relustudy.claims.value_verdict`), as a table cell marks it.
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
    """A :func:`relustudy.claims.paper_vs_ours` frame in the source's layout: one row per arm;
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
    pvo: Any, experiment: str, runs: "ChapterRuns | None" = None, *, digits: int | None = None
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


class HtmlBlock:
    """A piece of HTML a notebook displays as is (``_repr_html_``) and tests read (``to_html``)."""

    def __init__(self, html: str):
        self.html = html

    def to_html(self) -> str:
        return self.html

    def _repr_html_(self) -> str:
        return self.html


def claims_table(claims: Any, *, with_source: bool = False) -> HtmlBlock:
    """Claims evaluated by :func:`relustudy.claims.evaluate_claims` as a table that fits the
    page's column: the tested statement (with its source and table), the source's numbers, ours
    and the coloured verdict; the rule, every comparison with its interval and p-values, the notes
    and the claim id fold into a "details" element under the statement."""
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
    return HtmlBlock(
        '<table class="relustudy-claims" style="table-layout: fixed; width: 100%; border-collapse: collapse;">'
        '<colgroup><col style="width: 42%"><col style="width: 19%"><col style="width: 25%"><col style="width: 14%">'
        "</colgroup><thead><tr><th>claim (as tested)</th><th>the source</th><th>ours</th><th>verdict</th></tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table>"
        "<style>.relustudy-claims td, .relustudy-claims th {text-align: left; vertical-align: top; padding: 4px 6px; "
        "border-bottom: 1px solid #ddd; overflow-wrap: anywhere; font-size: 0.9em;} "
        ".relustudy-claims details summary {cursor: pointer; color: #555; font-size: 0.9em;}</style>"
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


# The activations the study trains, as the methods page draws them: (label, registry name, params).
CURVE_JOIN = " ≡ "  # between the names of activations that compute the same function (one curve)
# Parameters that change how an activation is computed or learned, not the function it starts as.
_CURVE_NEUTRAL_PARAMS = ("mode", "as_written")


def _curve_label(name: str, params: dict[str, Any]) -> str:
    """A function's name from the registry: a written form of ReLU or PReLU by its family's name
    (the forms compute the same function), then the parameters that shape it."""
    family = activation_family(name)
    base = display_name(family if name.startswith(f"{family}_") else name)
    shown = [f"{k} = {v:g}" if isinstance(v, (int, float)) else f"{k} = {v}" for k, v in sorted(params.items())
             if k not in _CURVE_NEUTRAL_PARAMS]  # fmt: skip
    return base + (f" ({', '.join(shown)})" if shown else "")


def study_activations() -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, registry name, parameters)`` of every distinct activation the experiments' arms
    train (from the experiment registry; the first arm of each kind, in registry order)."""
    seen: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for exp in EXPERIMENTS.names():
        for arm in get_experiment(exp).arms:
            label = _curve_label(arm.activation, dict(arm.params))
            seen.setdefault(label, (label, arm.activation, dict(arm.params)))
    return list(seen.values())


def curve_palette() -> dict[str, str]:
    """Colours of :func:`activation_curves`' functions by activation family (as the chapters' arms)."""
    return family_colours((label, name) for label, name in _curve_groups())


def _curve_groups() -> list[tuple[str, str]]:
    return [(label, name) for label, name, _ in _curves(-3.0, 3.0, 7)]


def _curves(lo: float, hi: float, points: int) -> list[tuple[str, str, pd.DataFrame]]:
    """The study's activations evaluated in eval mode; those that compute the same function (on
    this grid, values and derivatives) are one curve, labelled by all their names."""
    groups: dict[bytes, tuple[list[str], str, pd.DataFrame]] = {}
    for label, name, params in study_activations():
        act = build_activation(name, 1, **params).eval().double()
        x = torch.linspace(lo, hi, points, dtype=torch.float64).reshape(1, 1, -1).requires_grad_(True)
        y = act(x)
        (dy,) = torch.autograd.grad(y.sum(), x)
        key = torch.cat([y.detach().flatten(), dy.flatten()]).round(decimals=12).numpy().tobytes()
        frame = pd.DataFrame({"x": x.detach().flatten().numpy(), "y": y.detach().flatten().numpy(),
                              "dy/dx": dy.flatten().numpy()})  # fmt: skip
        groups.setdefault(key, ([], name, frame))[0].append(label)
    return [(CURVE_JOIN.join(labels), name, frame) for labels, name, frame in groups.values()]


def activation_curves(lo: float = -3.0, hi: float = 3.0, points: int = 601) -> Any:
    """Every distinct activation function the study trains (:func:`study_activations`) and its
    derivative on a grid of x, computed by the registry's modules and autograd in eval mode (so
    RReLU in its test-time form, PReLU at its initial coefficients). Long frame: activation, x, y,
    dy/dx."""
    return pd.concat([f.assign(activation=label) for label, _, f in _curves(lo, hi, points)], ignore_index=True)[
        ["activation", "x", "y", "dy/dx"]
    ]


def reproduce_markdown(runs: "ChapterRuns", notebook: str) -> str:
    """A "reproduce this page" box: the ``relustudy run`` command of each experiment in the
    profile the page shows, the papermill command of this chapter, and the records' wall time,
    hardware and data (from their provenance)."""
    lines = [":::{admonition} Reproduce this page", ":class: dropdown", ""]
    lines.append("Train (or reuse) the runs shown, then re-execute the chapter:")
    lines.append("")
    lines.append("```bash")
    for name in runs.experiments:
        lines.append(f"relustudy run {name} --profile {runs.profile_of(name)} --jobs 2 --threads-per-job 1")
        if name in STEP_TIMINGS and runs.profile_of(name) in STEP_TIMINGS.get(name).profiles:
            # the speed claims' interleaved step timing, on a machine with nothing else running
            lines.append(f"relustudy bench steps --experiment {name} --profile {runs.profile_of(name)} --threads 1")
    lines.append(f".venv/bin/papermill notebooks/{notebook}.ipynb /tmp/{notebook}.ipynb -p profile {runs.profile}")
    lines.append("```")
    lines.append("")
    lines.append(f"The records behind it: {runs.provenance()}")
    datasets = _unique(dataset_name(get_experiment(n).dataset) for n in runs.experiments)
    lines.append(f"Data: {', '.join(datasets)} (sources and checksums on the methods page).")
    lines.append(":::")
    return "\n".join(lines)


DOWNLOADS_DIR = Path("book") / "chapters" / "data"


def downloads_markdown(frames: dict[str, Any], stem: str, *, root: str | Path | None = None) -> str:
    """Write each frame as ``book/chapters/data/<stem>-<name>.csv`` and return Markdown links
    that the built page serves as downloads. Only where the notebook runs from a book's root
    (``_toc.yml`` and ``book/chapters`` beside it, as ``relustudy book`` runs it): elsewhere
    (nbval, a copy) nothing is written, so a test never replaces a built book's files."""
    root = Path.cwd() if root is None else Path(root)
    if not ((root / "_toc.yml").is_file() and (root / "book" / "chapters").is_dir()):
        return ""
    out = root / DOWNLOADS_DIR
    out.mkdir(parents=True, exist_ok=True)
    links = []
    for name, frame in frames.items():
        if frame is None or not len(frame):
            continue
        path = out / f"{stem}-{name}.csv"
        frame.to_csv(path, index=False)
        links.append(f"{{download}}`{name} (CSV) <data/{path.name}>`")
    return ("**Download:** " + ", ".join(links)) if links else ""


def _bounds_text(bounds: Sequence[float]) -> str:
    return " and ".join(f"{b:g}" for b in bounds)


def failures_table(claims: Any, values: Any) -> Any:
    """What did not replicate, at the top of the summary: every *not replicated* claim with the part
    that decided it (its difference and 95% interval, positive = the claimed side), and every
    published value outside our 95% prediction interval with ours minus the paper's."""
    from ..reference import get_source

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
    that decides its verdict (:func:`relustudy.claims.deciding_effect`): the compared difference
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


def verdict_forest(claims: Any, *, label_width: int = 72) -> Any:
    """A forest plot of every claim with numbers: the part that decides its verdict, as its
    difference (dot) and 95% interval (bar), positive on the claimed side, coloured by verdict;
    dashed lines at the rule's thresholds (0, minus a margin, or ± a margin; for a published value:
    0, which must lie inside). One panel per unit (:func:`effect_axis`), rows in claim order.
    Claims without a measured difference (*not run*, *not obtainable*, or no paired seeds) are left
    out: the bars count them.
    Returns the figure (None if no claim has numbers)."""
    import matplotlib.pyplot as plt

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
        label = f"{label} ({test})"
        rows.append((axis, scale, label, e, c["verdict"]))
    if not rows:
        return None
    seen: dict[str, int] = {}
    for row in rows:  # any label still shared gets a running number
        seen[row[2]] = seen.get(row[2], 0) + 1
    numbered: dict[str, int] = {}
    for k, row in enumerate(rows):
        if seen[row[2]] > 1:
            numbered[row[2]] = numbered.get(row[2], 0) + 1
            rows[k] = (row[0], row[1], f"{row[2]} ({numbered[row[2]]})", *row[3:])
    panels = list(dict.fromkeys(r[0] for r in rows))
    counts = [sum(r[0] == p for r in rows) for p in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(9, 0.24 * len(rows) + 0.9 * len(panels) + 0.6),
        gridspec_kw={"height_ratios": [k + 1.6 for k in counts]},
        squeeze=False,
    )
    for ax, panel in zip(axes[:, 0], panels):
        mine = [r for r in rows if r[0] == panel]
        for y, (_axis, scale, label, e, verdict) in enumerate(mine):
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


# The committed record of the fault-injection suite (`make faults`), relative to the project root.
FAULT_RECORD = Path("results") / "faults" / "fault_suite.json"
_OUTCOME_LABELS = {
    "survived": "survived",
    "lost": "records lost",
    "wrong_complete": "wrong record counted complete",
    "mismatch": "resumed record differs",
    "leftover": "files left behind",
    "escaped": "touched outside the store",
    "blocked": "blocked by a stale claim",
}


def _committed_record(relative: Path, root: str | Path | None) -> dict[str, Any] | None:
    """A committed JSON record at ``relative`` under the project root (or ``root``; an absolute
    path is read as it is); None when it is missing or unreadable."""
    from ..experiments import project_root

    try:
        return json.loads((Path(root or project_root()) / relative).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _bench_record(results_dir: str | Path, profile: str, device: str, name: str) -> dict[str, Any] | None:
    """A benchmark script's JSON record beside the micro-benchmark's; None when missing or damaged
    (the page then says there is no record instead of failing)."""
    return _committed_record(Path(results_dir) / "microbench" / profile / device / name, None)


KERNEL_VARIANTS_RECORD = "kernel_variants.json"  # written by benchmarks/bench_kernels.py --json
TRAIN_STEP_GOALS = {"trainer_overhead": 0.03, "share_of_layer_ceiling": 0.60}  # the throughput issue's goals


def train_step_table(results_dir: str | Path, profile: str = "quick") -> Any:
    """The whole-step benchmark (``relustudy bench train``): per study model its FLOP per image,
    images/s, GFLOP/s as a share of the machine's sgemm and of its own layers timed alone, and the
    trainer's overhead over a bare loop; ``attrs["summary"]``: one line on the record and the goals
    (or how to make the record). Empty without a record."""
    from ..stepbench import STEP_RECORD

    rec = _bench_record(results_dir, profile, "cpu", STEP_RECORD)
    if not rec or not rec.get("models"):
        out = pd.DataFrame()
        out.attrs["summary"] = (
            f"No whole-step record for the `{profile}` profile yet: `relustudy bench train --profile {profile}` "
            "makes it (with nothing else running on the machine)."
        )
        return out
    rows = [
        {
            "model": m["label"].replace(m["model"], model_display_name(m["model"]), 1)
            if m["model"] in MODELS
            else m["label"],
            "MFLOP per image (fwd + bwd)": m["flop_per_image"] / 1e6,
            "bare loop images/s": m["bare_images_per_second"],
            "GFLOP/s": m["gflops"],
            "share of sgemm": m["share_of_sgemm"],
            "its layers alone: share of sgemm": m["layers_alone_share_of_sgemm"],
            "share of its layers' ceiling": m["share_of_layer_ceiling"],
            "trainer images/s": m["trainer_images_per_second"],
            "trainer overhead": m["trainer_overhead"],
            **_compiled_columns(m.get("compiled")),
            "bf16 speed-up (ReLU)": (m.get("bf16") or {}).get("speedup", math.nan),
        }
        for m in rec["models"]
    ]
    out = pd.DataFrame(rows).set_index("model")
    out = out.dropna(axis=1, how="all")  # a record without compiled or bf16 timings leaves those out
    prov = rec["provenance"]
    over = [r["model"] for r in rows if r["trainer overhead"] > TRAIN_STEP_GOALS["trainer_overhead"]]
    below = [r["model"] for r in rows if r["share of its layers' ceiling"] < TRAIN_STEP_GOALS["share_of_layer_ceiling"]]
    out.attrs["summary"] = (
        f"Measured at commit `{str(prov.get('git_commit', ''))[:7]}` on {prov.get('cpu_identity', 'an unnamed CPU')}, "
        f"{rec['settings']['threads']} thread(s), fp32, channels_last; sgemm 2048: {rec['sgemm_gflops']:.0f} GFLOP/s. "
        f"Trainer within {TRAIN_STEP_GOALS['trainer_overhead']:.0%} of the bare loop: "
        f"{len(rows) - len(over)} of {len(rows)} models"
        + (f" (not: {', '.join(over)})" if over else "")
        + f". At least {TRAIN_STEP_GOALS['share_of_layer_ceiling']:.0%} of its own layers' rate: "
        f"{len(rows) - len(below)} of {len(rows)}"
        + (f" (not: {', '.join(below)})" if below else "")
        + ". The trainer and the bare loop are timed one after the other, not interleaved step by step, so "
        "a negative overhead, or one that changes sign between models, is that design's noise: the trainer "
        "goal is not judged from this column." + _compile_summary(rec)
    )
    return out


def _compiled_columns(compiled: dict | None) -> dict[str, Any]:
    if not compiled:
        return {}
    return {
        "compiled images/s": compiled["images_per_second"],
        "compiled speed-up": compiled["speedup"],
        "compile time (s)": compiled["compile_seconds"],
        "compile pays within a run": "yes" if compiled["pays_within_a_run"] else "no",
        "compiled losses agree": "yes" if compiled["losses_agree"] else "no",
    }


def _compile_summary(rec: dict) -> str:
    """One sentence on torch.compile from the whole-step record: where it pays and whether its
    losses agreed with eager's (or nothing, for a record without compiled timings)."""
    timed = [m for m in rec["models"] if m.get("compiled")]
    if not timed:
        return ""
    pays = [m for m in timed if m["compiled"]["pays_within_a_run"]]
    disagree = [m for m in timed if not m["compiled"]["losses_agree"]]
    c = timed[0]["compiled"]
    adopted = (
        "every run trains eager"
        if not pays
        else "the trainer still trains them eager (compiling runs is not built): "
        + ", ".join(model_display_name(m["model"]) for m in pays)
        + " would gain"
    )
    return (
        f" Under torch.compile (inductor), {len(pays)} of {len(timed)} models earn their compile time back within "
        f"the shortest run that trains them, and {adopted}; {len(timed) - len(disagree)} of {len(timed)} give "
        f"eager's losses over "
        f"{c['loss_check_steps']} steps within a relative {c['loss_tolerance']:g}"
        + (f" (not: {', '.join(model_display_name(m['model']) for m in disagree)})" if disagree else "")
        + "."
    )


def kernel_variants_table(results_dir: str | Path, profile: str, *, device: str = "cpu") -> Any:
    """The kernels' before-and-after measurement (benchmarks/bench_kernels.py, whose ``--json``
    file is :data:`KERNEL_VARIANTS_RECORD`): one row per case, its median time and its time over
    the copy bound of the same run (``attrs["record"]``: the record); None without a record."""
    rec = _bench_record(results_dir, profile, device, KERNEL_VARIANTS_RECORD)
    if not rec or not rec.get("rows"):
        return None
    df = pd.DataFrame(rec["rows"]).rename(columns={"median_ms": "median (ms)", "bound_ratio": "x copy bound"})
    df = df[["case", "pass", "median (ms)", "x copy bound"]].set_index("case")
    df["median (ms)"] = df["median (ms)"].map("{:.3f}".format)
    df["x copy bound"] = df["x copy bound"].map("{:.2f}".format)
    df.attrs["record"] = rec
    return df


def fault_suite_table(root: str | Path | None = None) -> Any:
    """The fault suite's last recorded run (:data:`FAULT_RECORD`) as a table: one row per fault
    (its description), the trials and each outcome; None when there is no readable record."""
    rec = _committed_record(FAULT_RECORD, root)
    if rec is None:
        return None
    rows = []
    for fault, counts in rec["by_fault"].items():
        rows.append(
            {
                "fault": rec["faults"].get(fault, fault),
                "trials": sum(counts.values()),
                **{_OUTCOME_LABELS[o]: counts.get(o, 0) for o in _OUTCOME_LABELS},
            }
        )
    table = pd.DataFrame(rows)
    table.loc[len(table)] = {"fault": "all faults", **table.drop(columns="fault").sum().to_dict()}
    return table.set_index("fault")


def _containment_counts(rec: dict[str, Any]) -> str:
    """The containment part of a fault record (symbolic links, stale claims, the sentinel outside
    the store); empty for records made before the suite had it."""
    if "files_outside_changed" not in rec:
        return ""
    total = rec["total"]
    return (
        f", **{total.get('escaped', 0)} that changed or trusted anything outside the store** through a "
        f"symbolic link, {total.get('blocked', 0)} blocked by a stale claim, and "
        f"**{rec['files_outside_changed']} files changed** in a sentinel folder outside every store"
    )


def fault_suite_markdown(root: str | Path | None = None) -> str:
    """One paragraph on the fault suite's last recorded run: trials, records lost, wrong records
    counted complete, and its provenance; or how to make the record."""
    rec = _committed_record(FAULT_RECORD, root)
    if rec is None:
        return f"No fault-suite record in `{FAULT_RECORD}` yet: `make faults` runs the suite and writes it."
    total, prov = rec["total"], rec["provenance"]
    git = prov.get("git") or {}
    commit = str(git.get("git_commit", "unknown"))[:10] + (
        " with uncommitted changes" if git.get("git_dirty") is True else ""
    )
    return (
        f"The suite's last recorded run: **{rec['trials']} trials**, {total['survived']} survived, "
        f"**{total['lost']} records lost**, **{total['wrong_complete']} wrong records counted complete**, "
        f"{total['mismatch']} resumed records that differ from an uninterrupted run, {total['leftover']} with "
        f"files left behind{_containment_counts(rec)} (commit {commit}, {prov.get('cpu', 'unknown CPU')}, torch {prov.get('torch', '?')}, "
        f"{prov.get('finished', '?')}, {_fmt_minutes(float(prov.get('wall_seconds', 0)))}; the tiny run under test "
        f"took {float(prov.get('child_run_seconds', 0)):.0f} s and wrote {prov.get('file_writes_per_run', '?')} files)."
    )


# The committed measurement of benchmarks/bench_jobs.py, relative to the project root.
SCHEDULING_RECORD = Path("results") / "microbench" / "quick" / "cpu" / "jobs_vs_sequential.json"


def scheduling_markdown(root: str | Path | None = None) -> str:
    """What the scheduling measurement (:data:`SCHEDULING_RECORD`) found: the wall-time ratio of
    ``--jobs N`` with one thread each over a sequential grid with N threads per run, and whether
    the thread count changed the runs' numbers; or how to make the record."""
    rec = _committed_record(SCHEDULING_RECORD, root)
    if rec is None:
        return f"No scheduling measurement in `{SCHEDULING_RECORD}` yet: `benchmarks/bench_jobs.py --out ...` makes it."
    prov, ratios = rec["provenance"], rec["ratio_jobs_over_sequential"]
    faster = "faster" if max(ratios) < 1 else "slower" if min(ratios) > 1 else "neither faster nor slower"
    numbers = (
        "gave the same numbers"
        if rec["identical_numbers"]
        else f"did not give the same numbers: {rec['runs_whose_numbers_differ']} of {rec['runs_per_way']} runs "
        "differ (other thread counts sum in another order, and training amplifies the last bits, as a change "
        "of CPU does), so a record states its threads and a rerun reproduces it only with the same ones"
    )
    what = rec["what"]
    for key in EXPERIMENTS.names():  # the record names its experiment by key; a page by name
        what = re.sub(rf"(?<![\w.]){re.escape(key)}(?![\w])", experiment_name(key), what)
    return (
        f"Measured on {prov.get('cpu', 'this CPU')} ({prov.get('cpus', '?')} CPUs), {what}: wall time of "
        f"`--jobs` over sequential {', '.join(f'{r:.2f}' for r in ratios)} ({len(ratios)} paired "
        f"measurement{'s' if len(ratios) != 1 else ''}), so `--jobs` was {faster}; the two schedules {numbers} "
        f"({prov.get('finished', '?')}, commit {str(prov.get('git_commit', 'unknown'))[:10]})."
    )


ALLOCATOR_RECORD = Path("results/microbench/quick/cpu/allocator.json")  # benchmarks/bench_allocator.py


def allocator_markdown(root: str | Path | None = None) -> str:
    """What the allocator measurement (:data:`ALLOCATOR_RECORD`) found: wall, system time and
    minor page faults of the same run with glibc's malloc as it is and with freed memory kept."""
    rec = _committed_record(ALLOCATOR_RECORD, root)
    if rec is None or len(rec.get("median", {})) != 2:
        return f"No allocator measurement in `{ALLOCATOR_RECORD}` yet: `benchmarks/bench_allocator.py --json ...` makes it."
    (name_a, a), (name_b, b) = rec["median"].items()
    prov, exp = rec.get("provenance", {}), rec["experiment"]
    return (
        f"The same run ({experiment_name(exp) if exp in EXPERIMENTS else exp}, {rec['profile']} profile) in fresh "
        f"processes, {rec['rounds']} "
        f"round(s): with {name_a} it took {a['wall_s']:.1f} s ({a['sys_s']:.1f} s of it in the kernel, "
        f"{a['minor_faults']:,.0f} minor page faults); with freed memory {name_b} {b['wall_s']:.1f} s "
        f"({b['sys_s']:.1f} s, {b['minor_faults']:,.0f}) ({prov.get('date', '?')}, commit "
        f"{str(prov.get('git_commit', 'unknown'))[:10]})."
    )


def verdict_bars(claims: Any) -> Any:
    """Claims per source, stacked by verdict (:func:`verdict_matrix`), as a horizontal bar figure."""
    import matplotlib.pyplot as plt

    per_source = verdict_matrix(claims).drop(index="all sources", errors="ignore").drop(columns="total")
    if not len(per_source):
        return None
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(per_source) + 1.4))
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
    values (``values``: :func:`relustudy.claims.published_values`), then the statements that
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


def choices_markdown(experiments: Sequence[str]) -> str:
    """The experiments' notes (choices where the source is silent) without repetition: the
    notes every listed experiment shares first, then each experiment's own."""

    exps = [get_experiment(n) for n in experiments]
    if not exps:
        return ""
    common = [n for n in exps[0].notes if all(n in e.notes for e in exps[1:])]
    lines = [f"- {n}" for n in common]
    rest = list(dict.fromkeys(n for e in exps for n in e.notes if n not in common))
    for note in rest:
        having = [e for e in exps if note in e.notes]
        where = ", ".join(f"{e.table} ({e.title})" for e in having)
        lines.append(f"- Only {where}: {note}")
    return "\n".join(lines)


def markdown_html(text: str) -> Any:
    """``text`` (Markdown) as an IPython HTML object: what a page pasting it from another page
    (``{glue:any}`` with ``:doc:``) renders, where a Markdown object would paste as its repr."""
    from IPython.display import HTML
    from markdown_it import MarkdownIt

    return HTML(MarkdownIt().render(text))


STUDY_TITLE = "relu-study: a re-executable study of rectified activations"


def cite_markdown(profile: str) -> str:
    """The "how to cite" block: this build's BibTeX entry (its year, version, commit and profile
    from :func:`relustudy.provenance.build_stamp`) and the sources' entries."""
    stamp = build_stamp(profile)
    entry = (
        "@misc{relustudy,\n"
        "  author = {{the relu-study developers}},\n"
        f"  title = {{{STUDY_TITLE}}},\n"
        f"  year = {{{stamp['year']}}},\n"
        f"  note = {{Version {stamp['version']}, commit {stamp['commit']}, {stamp['profile']} profile, "
        f"built {stamp['date']}}}\n"
        "}"
    )
    return (
        f"This build: version **{stamp['version']}**, commit **{stamp['commit']}**, the **{stamp['profile']}** "
        f"profile, built on {stamp['date']}.\n\n```bibtex\n{entry}\n```\n\n"
        "The sources, as `book/references.bib` holds them (written from the source registry):\n\n"
        f"```bibtex\n{bibliography_bibtex().strip()}\n```\n"
    )


def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown in a notebook; nothing at all when it is empty (an empty
    ``Markdown`` object would show its Python repr in the book)."""
    if text and text.strip():
        from IPython.display import Markdown, display

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


def step_timing_table(results_dir: str | Path, experiment: str, profile: str) -> Any:
    """One row per timed form of ``experiment``'s step-timing record: the median step time (ms,
    mean over seeds of each seed's median) eager and compiled, and compiled over eager; the
    record's provenance in ``attrs["caption"]``. Empty where there is no record."""
    record = read_step_timing(results_dir, experiment, profile)
    if record is None:
        return pd.DataFrame()
    frame = pd.DataFrame(step_timing_rows(record))
    spec = STEP_TIMINGS.get(experiment)
    batch = record["batch_size"]
    ms = frame.assign(ms=1e3 * batch / np.exp(frame["value"])).groupby("arm")["ms"].mean()
    rows = []
    for arm in spec.arms:
        row = {"form": arm.label}
        for variant in record["settings"]["variants"]:
            row[f"{variant} step (ms)"] = ms.get(step_label(arm.label, variant), np.nan)
        if {"eager", "compiled"} <= set(record["settings"]["variants"]):
            row["compiled / eager"] = f"{row['compiled step (ms)'] / row['eager step (ms)']:.2f}"
        for variant in record["settings"]["variants"]:
            row[f"{variant} step (ms)"] = _fmt_num(row[f"{variant} step (ms)"], 1)
        rows.append(row)
    out = pd.DataFrame(rows).set_index("form")
    prov, st = record["provenance"], record["settings"]
    out.attrs["caption"] = (
        f"Median step time, mean over seeds ({profile} profile: {len(st['seeds'])} seeds x {st['cycles']} cycles, batch {batch}, {prov['device']}, "
        f"torch {prov['torch_version']}, load average {prov['load_average_at_start'][0]:.1f} at the start, "
        f"commit {prov.get('git_commit', '?')[:7]}, {prov['end_time'][:10]}, {prov['wall_seconds'] / 60:.0f} min). "
        + spec.note
    )
    return out
