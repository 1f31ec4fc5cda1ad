"""Experiment registry: each source table is a named grid with three profiles.

An :class:`Experiment` fixes the source, table, dataset, model and the activation *arms*; each
:class:`Profile` (``smoke``, ``quick``, ``paper``) fixes the seeds and the training settings, and
lists in plain words every way it departs from the source (``scale_downs``), which the book prints
beside the numbers.

``Experiment.configs(profile)`` expands the grid into :class:`~relustudy.config.RunConfig` objects;
``run_experiment`` trains them through the results store, skipping complete records.
"""

from __future__ import annotations

import fnmatch
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import PROFILES, REQUIRED_PROFILES, ConfigError, RunConfig
from .data import DATASETS
from .estimates import RateBook, StepRates, estimate
from .executors import TrainOptions, make_executor
from .provenance import cpu_identity
from .registry import SOURCES_MODULE, Registry
from .store import ResultsStore, RunClaimed
from .trainer import check_precision, resolve_device, train

EXPERIMENTS: Registry[Experiment] = Registry("experiment", filled_by=SOURCES_MODULE)

# The smoke profile every experiment shares (CI: seconds per run).
SMOKE = dict(epochs=1, batch_size=64, train_subset=512, test_subset=500)


@dataclass(frozen=True)
class Arm:
    """One activation choice in a grid (a row of the source's table)."""

    label: str  # the source's row name, e.g. "PReLU"
    activation: str  # name in the activation registry
    params: dict[str, Any] = field(default_factory=dict)
    model_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"batch_norm": True}
    settings: dict[str, Any] = field(default_factory=dict)  # RunConfig fields of this arm only, e.g. evals


# What a regime criterion can say of a profile's records.
REGIME_MET, REGIME_NOT_MET, REGIME_INCOMPLETE = "met", "not met", "incomplete"


@dataclass(frozen=True)
class RegimeVerdict:
    state: str  # REGIME_MET, REGIME_NOT_MET or REGIME_INCOMPLETE
    why: str  # one sentence from the records

    def markdown(self) -> str:
        answer = {REGIME_MET: "yes", REGIME_NOT_MET: "**no**", REGIME_INCOMPLETE: "not yet known"}[self.state]
        return f"**In the paper's regime:** {answer}. {self.why}"


@dataclass(frozen=True)
class RegimeCriterion:
    """When a profile's runs are in the regime its source's claims are about, checked from the
    complete records of the profile (``check`` sees every one of them, never a partial grid)."""

    text: str  # the criterion in words, printed on the chapter
    check: Callable[[list[dict[str, Any]]], RegimeVerdict]


def every_run_at_most(
    metric: str, limit: float, label: str, arms: tuple[str, ...] | None = None
) -> Callable[[list[dict[str, Any]]], RegimeVerdict]:
    """A check: every run's final ``metric`` is at most ``limit`` (``label``: the metric in words).
    ``metric`` may be an fnmatch pattern (``alpha.*.late_drift``): then every matching metric of a
    run counts, and a run is as bad as its worst one. ``arms``: only these arms' runs are checked."""

    def number(v: Any) -> float:  # a missing or non-finite value (JSON null) fails the criterion
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan

    def worst(metrics: dict[str, Any]) -> tuple[float, str]:
        names = sorted(k for k in metrics if fnmatch.fnmatchcase(k, metric)) if _is_pattern(metric) else [metric]
        values = [(number(metrics.get(k)), k) for k in names]
        if not values or any(not math.isfinite(v) for v, _ in values):
            return math.nan, next((k for v, k in values if not math.isfinite(v)), metric)
        return max(values)

    def check(records: list[dict[str, Any]]) -> RegimeVerdict:
        checked = [r for r in records if arms is None or r["config"].get("arm") in arms]
        values = [(*worst(r["metrics"]), r["config"].get("arm", ""), r["config"]["seed"]) for r in checked]
        bad = [b for b in values if not b[0] <= limit]
        finite = [v for v, *_ in values if math.isfinite(v)]
        span = (
            f"{label} {min(finite):.4f}-{max(finite):.4f} over {len(finite)} runs" if finite else f"no run has {label}"
        )
        if not values:
            return RegimeVerdict(REGIME_NOT_MET, f"No run of {', '.join(arms or ())} has a record to check {label}.")
        if not bad:
            return RegimeVerdict(REGIME_MET, f"Every run has {label} at or below {limit:g} ({span}).")
        value, name, arm, seed = max(bad, key=lambda b: b[0] if math.isfinite(b[0]) else math.inf)
        where = f" ({name})" if _is_pattern(metric) else ""
        return RegimeVerdict(
            REGIME_NOT_MET,
            f"{len(bad)} of {len(values)} runs have {label} above {limit:g} or none recorded (the worst: {arm} "
            f"seed {seed}{where}, {value:.4f}; {span}).",
        )

    return check


def _is_pattern(metric: str) -> bool:
    return any(c in metric for c in "*?[")


def all_of(*checks: Callable[[list[dict[str, Any]]], RegimeVerdict]) -> Callable[[list[dict[str, Any]]], RegimeVerdict]:
    """A check that is met when every one of ``checks`` is; its sentence joins theirs."""

    def check(records: list[dict[str, Any]]) -> RegimeVerdict:
        verdicts = [c(records) for c in checks]
        state = REGIME_MET if all(v.state == REGIME_MET for v in verdicts) else REGIME_NOT_MET
        return RegimeVerdict(state, " ".join(v.why for v in verdicts))

    return check


@dataclass(frozen=True)
class Profile:
    seeds: tuple[int, ...]
    settings: dict[str, Any]  # RunConfig fields for this profile (epochs, subsets, batch size, ...)
    scale_downs: tuple[str, ...] = ()  # how this profile departs from the source, in words
    criterion: RegimeCriterion | None = None  # a regime profile's test of its own regime

    def describe(self) -> str:
        return "; ".join(self.scale_downs) if self.scale_downs else "the source's own setup"


@dataclass(frozen=True)
class Experiment:
    name: str
    source: str  # key of the source in the reference data, e.g. "smith"
    table: str  # the source's table or figure, e.g. "Table 2"
    title: str
    dataset: str
    model: str
    arms: tuple[Arm, ...]
    common: dict[str, Any]  # RunConfig fields shared by every profile (optimizer, lr, ...)
    profiles: dict[str, Profile]
    notes: tuple[str, ...] = ()  # choices made where the source is silent or ambiguous
    # The source's published columns this experiment is compared on (None: every one it maps),
    # and whether "ours - paper" means anything (False when the source measured another task,
    # e.g. ImageNet numbers beside a CIFAR-10 re-run: shown for direction, not differenced).
    compared_metrics: tuple[str, ...] | None = None
    same_task: bool = True
    # A diagnostic experiment tests our setup, not a source's table (e.g. a learning-rate pilot): it
    # says here what it diagnoses, has no paper profile and no claims, and its page labels it so.
    diagnostic: str = ""

    @property
    def required_profiles(self) -> tuple[str, ...]:
        return ("smoke", "quick") if self.diagnostic else REQUIRED_PROFILES

    def profile(self, profile: str) -> Profile:
        if profile not in self.profiles:
            raise ConfigError(
                f"unknown profile {profile!r} for experiment {self.name!r}; valid: {', '.join(self.profiles)}"
            )
        return self.profiles[profile]

    def settings(self, profile: str) -> dict[str, Any]:
        """RunConfig fields shared by every arm of ``profile``: the common ones, overridden by the profile's."""
        return {**self.common, **self.profile(profile).settings}

    def configs(
        self, profile: str, seeds: Iterable[int] | None = None, device: str = "auto", num_threads: int | None = None
    ) -> list[RunConfig]:
        prof = self.profile(profile)
        seeds = tuple(prof.seeds if seeds is None else seeds)
        out = []
        for arm in self.arms:
            for seed in seeds:
                fields = {
                    **self.settings(profile),
                    "experiment": self.name,
                    "profile": profile,
                    "dataset": self.dataset,
                    "model": self.model,
                    "activation": arm.activation,
                    "arm": arm.label,
                    "activation_params": dict(arm.params),
                    "model_params": {
                        **self.common.get("model_params", {}),
                        **prof.settings.get("model_params", {}),
                        **arm.model_params,
                    },
                    "seed": int(seed),
                    "device": device,
                    "num_threads": num_threads,
                    **arm.settings,
                }
                out.append(RunConfig.from_dict(fields))
        return out

    def regime_verdict(self, profile: str, records: Iterable[dict[str, Any]]) -> RegimeVerdict | None:
        """``profile``'s regime criterion applied to ``records`` (the store's records of this
        experiment): None when the profile has no criterion; incomplete until every run of the
        grid has a complete record."""
        criterion = self.profile(profile).criterion
        if criterion is None:
            return None
        ids = {c.run_id() for c in self.configs(profile)}
        done = [r for r in records if r.get("run_id") in ids and r.get("status") == "complete"]
        if len(done) < len(ids):
            return RegimeVerdict(
                REGIME_INCOMPLETE,
                f"{len(done)} of {len(ids)} runs have a complete record; the criterion is {criterion.text}.",
            )
        verdict = criterion.check(done)
        return RegimeVerdict(verdict.state, f"{verdict.why} The criterion: {criterion.text}.")

    def train_images(self, profile: str) -> int:
        """Training images per epoch: the profile's (or the experiment's common) subset, else the full set."""

        return int(self.settings(profile).get("train_subset") or DATASETS.get(self.dataset).n_train)

    def width(self, profile: str) -> float:
        """The model's width multiplier in ``profile`` (1 where the profile sets none)."""
        return float(
            {**self.common.get("model_params", {}), **self.profile(profile).settings.get("model_params", {})}.get(
                "width", 1.0
            )
        )

    def estimate(
        self,
        profile: str,
        records: Iterable[dict[str, Any]] = (),
        cpu: str | None = None,
        step_record: dict[str, Any] | None = None,
    ) -> Any:
        """CPU cost of ``profile``'s grid (a :class:`relustudy.estimates.Estimate`), from the
        throughput the ``records`` measured (a store's complete records: this experiment's or any
        other's with the same model) where they can say, else from the whole-step benchmark's
        ``step_record`` (``relustudy bench train``)."""

        book = RateBook(records, cpu or cpu_identity())
        return estimate(self.configs(profile, device="cpu"), book, StepRates(step_record))


def get_experiment(name: str) -> Experiment:
    return EXPERIMENTS.get(name)


def validate_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return profile


# --------------------------------------------------------------------------------------------
# Paths: where records live by default.
# --------------------------------------------------------------------------------------------
def project_root(start: Path | None = None) -> Path:
    """The checkout's top folder (holding ``_config.yml`` and ``src/relustudy``), else the cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "src" / "relustudy").is_dir():
            return folder
    return here


def default_results_dir(profile: str) -> Path:
    """``results/`` (committed records) for quick/paper; smoke records are throwaway CI output."""
    env = os.environ.get("RELUSTUDY_RESULTS")
    if env:
        return Path(env)
    root = project_root()
    return root / "_build" / "smoke-results" if profile == "smoke" else root / "results"


def _check_run_options(
    jobs: Any, executor: str, address: str | None, seeds: list[int] | None, wait: Any, data_dir: str | None
) -> None:
    """One clear ConfigError for each bad scheduling option of :func:`run_experiment` (the executor's
    name is checked where it is made, :func:`relustudy.executors.make_executor`)."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1, got {jobs!r}")
    if address is not None and executor != "ray":
        raise ConfigError("--address names a Ray cluster: give it with --executor ray")
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must not repeat, got {seeds}")
    if wait is not None and not (isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > 0):
        raise ConfigError(f"wait must be a number of seconds > 0, got {wait!r}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir {data_dir} is not a folder (give the folder holding <dataset>.npz files)")


def run_experiment(
    name: str,
    profile: str,
    *,
    seeds: Iterable[int] | None = None,
    device: str = "auto",
    force: bool = False,
    results_dir: Path | str | None = None,
    data_dir: str | None = None,
    download: bool = False,
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
    num_threads: int | None = None,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    gpus_per_job: float | None = None,
    wait: float | None = None,
) -> list[dict]:
    """Train every run of the grid that has no complete record; return all records (grid order).

    ``jobs > 1`` trains that many runs at a time, each in its own worker process (spawned, so no
    state is shared); give ``num_threads`` so the workers do not oversubscribe the CPUs. A run's
    record does not depend on how it was scheduled: it is the one a sequential run with the same
    threads makes (tests/test_experiments.py). A run that another live process is training (its
    claim, see :class:`relustudy.store.RunClaim`) is skipped with one line and left to that one;
    with ``wait`` (seconds between looks) the call then waits for it: it takes the record when the
    other process finishes, or trains the run itself when the claim goes stale (its holder died).

    ``executor="ray"`` sends each run to a Ray cluster instead (``address``; a local one when None)
    as a task of ``num_threads`` CPUs (1 if not given) and, on CUDA, ``gpus_per_job`` of a GPU
    (default 1; a fraction shares one): see :mod:`relustudy.ray_executor`. ``jobs`` is then unused.
    """

    exp = get_experiment(name)
    validate_profile(profile)
    seeds = None if seeds is None else list(seeds)
    _check_run_options(jobs, executor, address, seeds, wait, data_dir)
    on_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    gpus_per_run = (1.0 if gpus_per_job is None else gpus_per_job) if on_cuda else 0.0
    # an unknown executor is one clear error before anything is read
    runner = make_executor(
        executor, jobs=jobs, address=address, cpus_per_run=num_threads or 1, gpus_per_run=gpus_per_run
    )
    configs = exp.configs(profile, seeds=seeds, device=device, num_threads=num_threads)
    if configs and not (executor == "ray" and device == "cuda"):  # a cluster's GPUs are its workers'
        resolve_device(device)  # a missing GPU is one clear error before anything trains
    store = ResultsStore(Path(results_dir) if results_dir else default_results_dir(profile))
    grid = _GridProgress(f"{name} {profile}", configs, log, parallel=jobs)
    todo = grid.read_records(store, force)
    if todo and executor != "ray":  # a cluster's workers check their own hardware
        check_precision(configs[todo[0]], resolve_device(device))  # bf16 without bf16 units: one line
    options = TrainOptions(force=force, data_dir=data_dir, download=download, progress=progress)
    if todo:
        runner.train([configs[i] for i in todo], store, options, *grid.callbacks(todo))
    if wait:
        grid.wait_for_held(store, options, wait)
    return [r for r in grid.records if r is not None]


class _GridProgress:
    """A grid's records as they arrive, one line per run (cached, trained, skipped) with what is
    done, running and left and an ETA from the runs this call trained."""

    def __init__(self, title: str, configs: list[RunConfig], log: Callable[[str], None] | None, parallel: int):
        self.title, self.configs, self.log, self.parallel = title, configs, log, parallel
        self.records: list[dict | None] = [None] * len(configs)
        self.todo = self.done = 0
        self.trained_seconds: list[float] = []  # of the runs this call trained: the ETA's throughput
        self.held: list[int] = []  # runs another live process is training

    def _say(self, i: int, what: str) -> None:
        if self.log:
            cfg = self.configs[i]
            self.log(f"[{i + 1}/{len(self.configs)}] {self.title} {cfg.arm or cfg.activation} seed={cfg.seed}: {what}")

    def read_records(self, store: ResultsStore, force: bool) -> list[int]:
        """Take the complete records the store holds (none when ``force``); the indices left to train."""
        todo = []
        for i, cfg in enumerate(self.configs):
            self.records[i] = None if force else store.load_record(cfg)
            if self.records[i] is not None:
                self.report(i, self.records[i], True, 0.0)
            else:
                todo.append(i)
        self.todo = len(todo)
        return todo

    def set_parallel(self, n: int) -> None:
        self.parallel = n  # runs training at once

    def callbacks(self, todo: list[int]) -> tuple[Callable[..., None], Callable[..., None], Callable[[int], None]]:
        """An executor's on_done, on_claimed and on_parallel for the runs ``todo`` (its k-th is grid run todo[k])."""
        return (
            lambda k, record, seconds: self.report(todo[k], record, False, seconds),
            lambda k, e: self.skipped(todo[k], e),
            self.set_parallel,
        )

    def report(self, i: int, record: dict, cached: bool, seconds: float) -> None:
        self.records[i] = record
        tail = ""
        if cached or record.get("_trained") is False:
            status = "cached" if cached else "cached (finished by another process)"
        else:
            status = f"{record.get('status')} in {seconds:.0f} s"
            self.trained_seconds.append(seconds)
        if not cached:
            self.done += 1
            left = self.todo - self.done
            running = min(self.parallel, left)
            tail = f" | done {self.done}, running {running}, left {left - running}"
            if self.trained_seconds and left:
                eta = statistics.mean(self.trained_seconds) * left / max(self.parallel, 1) / 60.0
                tail += f", ETA {eta:.0f} min"
        acc = record.get("metrics", {}).get("test_accuracy")
        acc_s = f" test_accuracy={acc:.4f}" if isinstance(acc, (int, float)) else ""
        self._say(i, f"{status}{acc_s}{tail}")

    def skipped(self, i: int, e: RunClaimed) -> None:
        """Another process holds run ``i``: leave it to that one."""
        self.done += 1
        self.held.append(i)
        self._say(i, f"skipped, {e}")

    def wait_for_held(self, store: ResultsStore, options: TrainOptions, wait: float) -> None:
        """Look every ``wait`` seconds until each held run has a record: the other process's, or
        this one's when the holder died and its claim went stale."""
        while self.held:
            time.sleep(wait)
            for i in list(self.held):
                record, t0 = store.load_record(self.configs[i]), time.perf_counter()
                if record is None:  # still held, or its holder died: try to take it over
                    try:
                        record = train(
                            self.configs[i],
                            store,
                            data_dir=options.data_dir,
                            download=options.download,
                            progress=options.progress,
                        )
                    except RunClaimed:
                        continue
                else:
                    record = {**record, "_trained": False}
                self.held.remove(i)
                self.done -= 1  # counted when it was skipped; report counts it again
                self.report(i, record, False, time.perf_counter() - t0)
