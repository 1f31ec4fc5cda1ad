"""Which runs a chapter shows (training what is missing), their provenance, profiles, and the reproduce, download and cite boxes."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import CapabilityError
from ..data import DataError, dataset_available
from ..experiments import EXPERIMENTS, get_experiment, run_experiment
from ..metrics import metric_label as _label
from ..precision import precision_effect_frame
from ..provenance import build_stamp
from ..reference import bibliography_bibtex, source_label
from ..results import load_activation_stats, load_histories, load_results
from ..stats import format_mean_sd, welch_interval
from ..stepbench import (
    STEP_TIMINGS,
    read_train_step,
    step_timing_frame,
)
from ..store import ResultsStore
from .base import (
    TRAIN_ENV,
    _finite,
    _fmt_minutes,
    _fmt_num,
    _unique,
    arm_order,
    dataset_caveat,
    dataset_name,
    experiment_caption,
    experiment_name,
)

__all__ = [
    "run_records",
    "provenance",
    "profile_markdown",
    "ChapterRuns",
    "ensure_runs",
    "cite_markdown",
    "precision_check",
    "shown_profile",
    "TrainingNotAllowed",
    "profile_shift_table",
    "timing_table",
    "profiles_table",
    "notes_markdown",
    "profile_banner",
    "reproduce_markdown",
    "downloads_markdown",
    "choices_markdown",
    "regime_markdown",
]


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


class TrainingNotAllowed(RuntimeError):
    """A notebook would start a long training grid nobody asked for (one line: what, how long, the fix)."""

    def _render_traceback_(self) -> list[str]:
        return [f"TrainingNotAllowed: {self}"]


def _check_training_allowed(exp: Any, params: Any, store: ResultsStore, configs: Sequence[Any]) -> None:
    """A notebook run by hand (papermill, Jupyter) outside ``relustudy book`` trains only smoke
    runs unasked: for a larger profile with runs missing it stops first, saying how many, the
    estimated CPU time and what to pass. A dataset that is not here is left to the data check."""

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


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The non-empty frames one after another (the first, empty, frame when all are)."""
    full = [f for f in frames if len(f)]
    return pd.concat(full, ignore_index=True) if full else frames[0]


def _load_chapter_records(
    store: ResultsStore, experiments: Sequence[str], profiles: dict[str, str], run_ids: dict[str, set[str]]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict]]:
    """The records of each experiment's runs in the profile it shows: results (with its step
    timing rows), activation statistics, histories and the raw records."""
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
    return _concat(results), _concat(stats), _concat(histories), records


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
    results, stats, histories, records = _load_chapter_records(store, experiments, profiles, run_ids)
    expected = sum(len(ids) for ids in run_ids.values())
    runs = ChapterRuns(params.profile, experiments, results, stats, records, expected=expected, histories=histories)
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


def timing_table(runs: ChapterRuns) -> Any:
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
            "The numbers below come from the **quick** profile (its scale-downs are listed for each "
            "experiment) or, where all its records are committed, a more faithful one: `paper` (the "
            "source's own setup) or `regime` (the regime its claims are about, with a row saying whether "
            "the runs reached it), named below."
        )
    return f"The numbers below come from the **{profile}** profile."


def reproduce_markdown(runs: ChapterRuns, notebook: str) -> str:
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
