"""Cost estimates from measured throughput: what a grid will take, derived from recorded runs.

A run's work is its training images (images x epochs) and its evaluated images (test passes every
``eval_every`` epochs, activation statistics, the end-of-run evaluations). Each complete record
measures both rates: CPU-seconds per training image (its epochs' own seconds x threads) and per
evaluated image (the rest of its wall time). An estimate takes, per run, the rates of records with
the same model, width, dataset, batch size, activation and precision, preferring this machine's CPU
model and, among those, the grid's own records (they ran as it runs: threads, jobs at a time);
else another CPU model's, scaled by the two CPUs' ratio where both measured the same kind of run
of the model; else the same at another width, scaled by the square of the width ratio (conv FLOPs grow
with in x out channels); else the whole-step benchmark's measured rate for the model
(``relustudy bench train``, :class:`StepRates`); else a guess. Each estimate says which basis it
used.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .activations import RReLU
from .config import ConfigError, RunConfig
from .data import DATASETS

# Bases of an estimate, most trustworthy first.
SAME_CPU, OTHER_CPU = "records on this CPU", "records on another CPU"
OTHER_CPU_SCALED = "records on another CPU, scaled by the two CPUs' measured ratio on the same model"
OTHER_WIDTH = "records at another width"
BENCH = "the whole-step benchmark (relustudy bench train: ReLU, fp32, at the record's threads)"
BENCH_WIDTH = "the whole-step benchmark at another width, scaled by the square of the width ratio"
GUESS = "a guess of 1,000 images/s (no record and no whole-step benchmark of the model)"
GUESS_RATE = 1000.0  # images/s
# Test passes of the "rrelu_rules" evaluation (one per rule and Monte-Carlo pass).
_RULE_PASSES = sum(passes for _, passes in RReLU.TEST_RULES.values())


def run_work(config: RunConfig) -> tuple[int, int]:
    """(training images, evaluated images) of one run of ``config``."""
    spec = DATASETS.get(config.dataset)
    n_train = config.train_subset or spec.n_train
    n_test = config.test_subset or spec.n_test
    # every eval_every epochs, and always after the last
    evaluations = config.epochs // config.eval_every + (1 if config.epochs % config.eval_every else 0)
    evaluated = evaluations * n_test + len(config.stats_epochs) * n_test
    if "train_set" in config.evals:
        evaluated += n_train
    if "rrelu_rules" in config.evals and config.activation == "rrelu":
        evaluated += _RULE_PASSES * n_test
    return n_train * config.epochs, evaluated


def rate_key(config: RunConfig) -> tuple:
    """What a run's cost per image depends on: the model and its parameters (the width second, for
    :meth:`RateBook.lookup`'s width fallback), data, batch, activation and its parameters, precision."""
    others = json.dumps({k: v for k, v in config.model_params.items() if k != "width"}, sort_keys=True)
    return (
        config.model,
        float(config.model_params.get("width", 1.0)),
        others,
        config.dataset,
        config.batch_size,
        config.activation,
        json.dumps(config.activation_params, sort_keys=True),
        config.precision,
    )


@dataclass(frozen=True)
class Rate:
    train_cpu_s: float  # CPU-seconds per training image
    eval_cpu_s: float  # CPU-seconds per evaluated image
    cpu: str  # the record's CPU model
    grid: tuple[str, str] = ("", "")  # the record's experiment and profile


def _epoch_seconds(run_dir: Path) -> float | None:
    try:
        with open(run_dir / "history.csv", newline="") as f:
            return sum(float(row["epoch_seconds"]) for row in csv.DictReader(f))
    except (OSError, KeyError, ValueError):
        return None


def cpu_model(identity: str) -> str:
    """The CPU model of a provenance's ``cpu_identity`` or ``device`` text ("AMD EPYC (family 25 ...)",
    "cpu: 2 threads, AMD EPYC" -> "AMD EPYC"): rates are compared within one CPU model only."""
    text = identity.split(", ", 1)[1] if identity.startswith("cpu:") and ", " in identity else identity
    return text.split(" (", 1)[0].strip()


def record_cpu(record: dict[str, Any]) -> str:
    prov = record.get("provenance") or {}
    return cpu_model(prov.get("cpu_identity") or prov.get("device") or "")


def record_rate(record: dict[str, Any]) -> Rate | None:
    """The two rates one complete record measured (None where it cannot say)."""
    if record.get("status") != "complete" or "_dir" not in record:
        return None
    try:
        config = RunConfig.from_dict(record["config"])
    except (ConfigError, KeyError, TypeError):
        return None
    prov = record.get("provenance", {})
    wall, threads = prov.get("wall_seconds"), prov.get("num_threads") or 1
    train_s = _epoch_seconds(Path(record["_dir"]))
    if not isinstance(wall, (int, float)) or not train_s or train_s <= 0:
        return None
    trained, evaluated = run_work(config)
    rest = max(wall - train_s, 0.0)
    return Rate(
        threads * train_s / trained,
        threads * rest / max(evaluated, 1),
        record_cpu(record),
        (config.experiment, config.profile),
    )


class RateBook:
    """Measured rates by :func:`rate_key`, from a store's complete records."""

    def __init__(self, records: Iterable[dict[str, Any]], cpu: str):
        self.cpu = cpu_model(cpu)
        self.rates: dict[tuple, list[Rate]] = {}
        for rec in records:
            rate = record_rate(rec)
            if rate is not None:
                self.rates.setdefault(rate_key(RunConfig.from_dict(rec["config"])), []).append(rate)

    def _median(self, rates: list[Rate]) -> tuple[float, float]:
        return statistics.median(r.train_cpu_s for r in rates), statistics.median(r.eval_cpu_s for r in rates)

    def cpu_factor(self, other: str, model: str) -> float | None:
        """This CPU's training CPU-seconds per image over ``other``'s, for ``model``: the median over
        the kinds of run (:func:`rate_key`) both CPU models have records of; None where none."""
        ratios = []
        for key, rates in self.rates.items():
            mine = [r.train_cpu_s for r in rates if r.cpu == self.cpu]
            theirs = [r.train_cpu_s for r in rates if r.cpu == other]
            if key[0] == model and mine and theirs:
                ratios.append(statistics.median(mine) / statistics.median(theirs))
        return statistics.median(ratios) if ratios else None

    def lookup(self, config: RunConfig) -> tuple[float, float, str] | None:
        """(train CPU-s per image, eval CPU-s per image, basis) for ``config``, or None."""
        key = rate_key(config)
        found = self.rates.get(key, [])
        same = [r for r in found if r.cpu == self.cpu]
        if same:
            # The grid's own records where it has some: they ran as it runs (threads, jobs at a time).
            own = [r for r in same if r.grid == (config.experiment, config.profile)]
            return (*self._median(own or same), SAME_CPU)
        if found:  # the CPU model with the most records of this kind, never a mix of CPUs
            cpus = [r.cpu for r in found]
            most = max(set(cpus), key=cpus.count)
            on_most = [r for r in found if r.cpu == most]
            own = [r for r in on_most if r.grid == (config.experiment, config.profile)]
            train, ev = self._median(own or on_most)
            factor = self.cpu_factor(most, key[0])
            if factor is not None:
                return train * factor, ev * factor, OTHER_CPU_SCALED
            return train, ev, OTHER_CPU
        width = key[1]
        others = [(k, v) for k, v in self.rates.items() if k[:1] + k[2:] == key[:1] + key[2:]]
        if others:
            k, rates = min(others, key=lambda kv: abs(math.log(kv[0][1] / width)))
            scale = (width / k[1]) ** 2
            same = [r for r in rates if r.cpu == self.cpu]
            train, ev = self._median(same or rates)
            return train * scale, ev * scale, OTHER_WIDTH
        return None


@dataclass(frozen=True)
class Estimate:
    cpu_minutes: float
    basis: tuple[str, ...]  # the bases its runs used, most trustworthy first

    def describe(self) -> str:
        return f"{self.cpu_minutes:.0f} CPU-minutes (from {', '.join(self.basis)})"


class StepRates:
    """Training CPU-seconds per image by (model, width, batch size) from the whole-step record
    (``relustudy bench train``): the trainer's own epoch loop on the model, ReLU, fp32."""

    def __init__(self, record: dict[str, Any] | None):
        self.rates: dict[tuple[str, float, int], float] = {}
        threads = int(((record or {}).get("settings") or {}).get("threads") or 1)
        for m in (record or {}).get("models", []):
            ips = m.get("trainer_images_per_second")
            if isinstance(ips, (int, float)) and ips > 0:
                self.rates[(m["model"], float(m["width"]), int(m["batch_size"]))] = threads / ips

    def lookup(self, config: RunConfig) -> tuple[float, str] | None:
        """(train CPU-s per image, basis) for ``config``'s model, or None where none was measured."""
        width = float(config.model_params.get("width", 1.0))
        exact = self.rates.get((config.model, width, config.batch_size))
        if exact is not None:
            return exact, BENCH
        same = [(k, v) for k, v in self.rates.items() if k[0] == config.model]
        if not same:
            return None
        (_, w, batch), rate = min(same, key=lambda kv: (abs(math.log(kv[0][1] / width)), kv[0][2] != config.batch_size))
        return rate * (width / w) ** 2, BENCH_WIDTH


def estimate(configs: list[RunConfig], book: RateBook, steps: StepRates | None = None) -> Estimate:
    """CPU-minutes of ``configs``: each run from ``book`` where it has a rate, else from the
    whole-step benchmark's rate for its model (``steps``), else :data:`GUESS_RATE`; evaluation
    counted at 3x the training rate where no record measured it."""
    seconds, bases = 0.0, set()
    for config in configs:
        trained, evaluated = run_work(config)
        found = book.lookup(config)
        if found is None:
            bench = steps.lookup(config) if steps else None
            train_s, basis = bench if bench else (1.0 / GUESS_RATE, GUESS)
            eval_s = train_s / 3.0
        else:
            train_s, eval_s, basis = found
        seconds += trained * train_s + evaluated * eval_s
        bases.add(basis)
    order = (SAME_CPU, OTHER_CPU_SCALED, OTHER_CPU, OTHER_WIDTH, BENCH, BENCH_WIDTH, GUESS)
    return Estimate(seconds / 60.0, tuple(b for b in order if b in bases))
