"""Run configuration: a small validated dataclass, hashed to key the results store.

Unknown keys and bad values are rejected with a message that names the field (nanoGPT-style).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# In increasing faithfulness to the source: smoke (CI's code path), quick (laptop-sized), regime
# (the regime a source's claims are about, at a size our CPUs reach in hours), paper (the source's
# own setup). Every experiment has smoke, quick and paper; regime only where quick misses the regime.
PROFILES = ("smoke", "quick", "regime", "paper")
REQUIRED_PROFILES = ("smoke", "quick", "paper")
OPTIMIZERS = ("sgd", "adam", "rmsprop_theano")
SCHEDULES = ("constant", "step", "cosine")
NORMALIZATIONS = ("per_channel", "scale01")
PRECISIONS = ("fp32", "bf16")
# How the optimizer's update runs: "default" is PyTorch's own choice (the per-parameter loop on the
# CPU, what every record before this field used; foreach there gives the same bits, measured);
# "fused" is its one-kernel-per-parameter update (sgd and adam only): faster where the update is a
# large share of the step (benchmarks/bench_optimizer_impl.py), but not the loop's bits, so it is
# part of the run's key.
OPTIMIZER_STEPS = ("default", "fused")
FUSED_OPTIMIZERS = ("sgd", "adam")
DEVICES = ("cpu", "cuda", "auto")
# Extra evaluations of the trained network after the last epoch (relustudy.trainer.FINAL_EVALS):
# "train_set": eval mode over the training images used (train_eval_error, train_eval_loss);
# "rrelu_rules": test error of an RReLU network under several test-time rules.
EVALS = ("train_set", "rrelu_rules")

# Fields that say *where/how fast* a run executes, not *what* it computes: they are stored in
# the record's provenance but left out of the cache key, so a record made on one machine is
# reused on another.
RUNTIME_FIELDS = ("device", "num_threads")
# Fields added after records existed: left out of the cache key while at their default, so every
# earlier record keeps its run id.
KEY_OMITTED_AT_DEFAULT = {
    "evals": (),
    "eval_every": 1,
    "eval_batch_size": None,
    "decay_activation_coefficients": False,
    "optimizer_step": "default",
}
# Stored as floats whatever number type was given, so the run_id does not depend on "1" vs "1.0".
FLOAT_FIELDS = ("lr", "momentum", "eps", "weight_decay")
# Valid schedule_params per schedule. step: lr *= gamma (default 0.1) after each milestone epoch;
# cosine: annealed from lr to eta_min (default 0) over `epochs`.
SCHEDULE_PARAMS = {"constant": (), "step": ("milestones", "gamma"), "cosine": ("eta_min",)}


class ConfigError(ValueError):
    """A run config with an unknown key or an invalid value."""


class CapabilityError(ConfigError):
    """A valid run config this machine cannot train as asked (e.g. bf16 on a CPU without bf16 units)."""


# torch's CPU generator (mt19937) keeps only the low 32 bits of a seed, so seeds 2^32 apart would
# train the same run and count as two replicates. Below 2^32 every generator the trainer seeds
# (the run seed, and the run seed plus a fixed offset per purpose, modulo 2^32) is one-to-one.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class RunConfig:
    experiment: str
    profile: str
    dataset: str
    model: str
    activation: str
    arm: str = ""  # human label of the grid arm, e.g. "LReLU (a=5.5)"; shown in tables
    activation_params: dict[str, Any] = field(default_factory=dict)
    model_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    epochs: int = 1
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3  # learning rate (units: per step)
    momentum: float = 0.9  # SGD momentum; RMSprop's rho (decay of the squared-gradient average)
    eps: float = 1e-8  # optimizer epsilon (rmsprop_theano puts it inside the square root)
    weight_decay: float = 0.0  # L2 coefficient; never applied to activation coefficients
    schedule: str = "constant"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    train_subset: int | None = None  # number of training images (stratified, seeded); None = all
    test_subset: int | None = None  # number of test images (stratified, seeded); None = all
    subset_seed: int = 0  # seed of the subsets: fixed across training seeds so data is paired
    normalize: str = "per_channel"
    stats_epochs: tuple[int, ...] = ()  # epochs (1-based) after which activation stats are taken
    precision: str = "fp32"
    channels_last: bool = True
    device: str = "auto"
    num_threads: int | None = None
    evals: tuple[str, ...] = ()  # extra end-of-run evaluations, names from EVALS
    eval_every: int = 1  # evaluate on the test set every this many epochs (and always after the last)
    eval_batch_size: int | None = None  # images per evaluation batch; None = trainer.EVAL_BATCH_SIZE (1000)
    # He et al. exclude PReLU's a from weight decay; True applies it (their ablation's reason, tested)
    decay_activation_coefficients: bool = False
    optimizer_step: str = "default"  # OPTIMIZER_STEPS: PyTorch's own choice, or its fused update

    def __post_init__(self) -> None:
        # Normalise so equal configs hash equally: lists from JSON -> tuples, stats epochs sorted
        # and de-duplicated, float fields as floats (lr=1 and lr=1.0 give the same run_id).
        se = self.stats_epochs
        if (
            isinstance(se, (str, bytes))
            or not isinstance(se, (list, tuple, set, frozenset))
            or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in se)
        ):
            raise ConfigError(f"invalid run config: stats_epochs must be a list of integers, got {se!r}")
        object.__setattr__(self, "stats_epochs", tuple(sorted({int(e) for e in se})))
        ev = self.evals
        if (
            isinstance(ev, (str, bytes))
            or not isinstance(ev, (list, tuple, set, frozenset))
            or not all(isinstance(e, str) for e in ev)
        ):
            raise ConfigError(f"invalid run config: evals must be a list of names from {EVALS}, got {ev!r}")
        unknown = sorted(set(ev) - set(EVALS))
        if unknown:
            raise ConfigError(f"invalid run config: unknown eval(s) {', '.join(unknown)}; valid: {', '.join(EVALS)}")
        object.__setattr__(self, "evals", tuple(sorted(set(ev))))
        for name in ("activation_params", "model_params", "schedule_params"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ConfigError(f"invalid run config: {name} must be a mapping (dict), got {value!r}")
            object.__setattr__(self, name, dict(value))
        for name in FLOAT_FIELDS:
            if _is_num(getattr(self, name)):
                object.__setattr__(self, name, float(getattr(self, name)))
        self.validate()

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ConfigError(f"invalid run config: {what}")

        self._validate_names(need)
        self._validate_numbers(need)
        self._validate_data_and_evaluation(need)
        for name in ("activation_params", "model_params", "schedule_params"):
            try:
                json.dumps(getattr(self, name), sort_keys=True)
            except TypeError as e:
                raise ConfigError(f"invalid run config: {name} must be JSON-serialisable ({e})") from None

    def _validate_names(self, need: Any) -> None:
        """The names and choices (experiment, dataset, ..., precision, device)."""
        for name in ("experiment", "dataset", "model", "activation"):
            need(
                isinstance(getattr(self, name), str) and getattr(self, name) != "", f"{name} must be a non-empty string"
            )
        need(
            re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.experiment) is not None,
            f"experiment must be a plain folder name (letters, digits, _ . -), got {self.experiment!r}",
        )
        need(self.profile in PROFILES, f"profile must be one of {PROFILES}, got {self.profile!r}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        need(
            self.optimizer_step in OPTIMIZER_STEPS,
            f"optimizer_step must be one of {OPTIMIZER_STEPS}, got {self.optimizer_step!r}",
        )
        need(
            self.optimizer_step == "default" or self.optimizer in FUSED_OPTIMIZERS,
            f"optimizer_step 'fused' exists for {' and '.join(FUSED_OPTIMIZERS)} only, not {self.optimizer!r}",
        )
        need(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        need(self.normalize in NORMALIZATIONS, f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        need(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        need(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")

    def _validate_numbers(self, need: Any) -> None:
        """Seed, epochs, batch and the optimiser's hyperparameters."""
        need(
            _is_int(self.seed) and 0 <= self.seed <= MAX_SEED,
            f"seed must be an integer in [0, {MAX_SEED}], got {self.seed!r}",
        )
        need(_is_int(self.epochs) and self.epochs >= 1, f"epochs must be an integer >= 1, got {self.epochs!r}")
        need(
            _is_int(self.batch_size) and self.batch_size >= 1,
            f"batch_size must be an integer >= 1, got {self.batch_size!r}",
        )
        need(_is_num(self.lr) and self.lr > 0, f"lr must be a number > 0, got {self.lr!r}")
        need(_is_num(self.momentum) and 0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum!r}")
        need(_is_num(self.eps) and self.eps > 0, f"eps must be > 0, got {self.eps!r}")
        need(
            _is_num(self.weight_decay) and self.weight_decay >= 0,
            f"weight_decay must be >= 0, got {self.weight_decay!r}",
        )

    def _validate_data_and_evaluation(self, need: Any) -> None:
        """Subsets, statistics epochs, schedule, memory format, evaluation and threads."""
        for name in ("train_subset", "test_subset"):
            v = getattr(self, name)
            need(v is None or (_is_int(v) and v >= 1), f"{name} must be None or an integer >= 1, got {v!r}")
        need(
            _is_int(self.subset_seed) and 0 <= self.subset_seed <= MAX_SEED,
            f"subset_seed must be an integer in [0, {MAX_SEED}]",
        )
        need(
            all(1 <= e <= self.epochs for e in self.stats_epochs),
            f"stats_epochs must lie in 1..epochs={self.epochs}, got {self.stats_epochs}",
        )
        need(isinstance(self.arm, str), f"arm must be a string, got {self.arm!r}")
        self._validate_schedule_params(need)
        need(isinstance(self.channels_last, bool), "channels_last must be true or false")
        need(
            _is_int(self.eval_every) and self.eval_every >= 1,
            f"eval_every must be an integer >= 1, got {self.eval_every!r}",
        )
        need(
            self.eval_batch_size is None or (_is_int(self.eval_batch_size) and self.eval_batch_size >= 1),
            f"eval_batch_size must be None or an integer >= 1, got {self.eval_batch_size!r}",
        )
        need(
            self.num_threads is None or (_is_int(self.num_threads) and self.num_threads >= 1),
            "num_threads must be None or >= 1",
        )

    def _validate_schedule_params(self, need: Any) -> None:
        p = self.schedule_params
        allowed = SCHEDULE_PARAMS[self.schedule]
        unknown = sorted(set(p) - set(allowed))
        need(
            not unknown,
            f"schedule_params key(s) {', '.join(map(str, unknown))} not valid for schedule "
            f"{self.schedule!r}; valid keys: {', '.join(allowed) or '(none)'}",
        )
        if self.schedule == "step":
            ms = p.get("milestones")
            need(
                isinstance(ms, (list, tuple))
                and len(ms) > 0
                and all(_is_int(m) and 1 <= m <= self.epochs for m in ms)
                and list(ms) == sorted(set(ms)),
                f"schedule_params.milestones must be a non-empty increasing list of epochs in 1..epochs={self.epochs}, got {ms!r}",
            )
            gamma = p.get("gamma", 0.1)
            need(_is_num(gamma) and gamma > 0, f"schedule_params.gamma must be a number > 0, got {gamma!r}")
        if self.schedule == "cosine":
            eta_min = p.get("eta_min", 0.0)
            need(_is_num(eta_min) and eta_min >= 0, f"schedule_params.eta_min must be a number >= 0, got {eta_min!r}")

    # -- (de)serialisation ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown run config key(s): {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
            )
        missing = sorted(
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in data
        )  # type: ignore[misc]
        if missing:
            raise ConfigError(f"missing run config key(s): {', '.join(missing)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stats_epochs"] = list(self.stats_epochs)
        d["evals"] = list(self.evals)
        return d

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def key_dict(self) -> dict[str, Any]:
        """What the run computes: the config without runtime-only fields."""
        d = {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}
        for k, default in KEY_OMITTED_AT_DEFAULT.items():
            if (tuple(d[k]) if isinstance(d[k], list) else d[k]) == default:
                del d[k]
        return d

    def run_id(self) -> str:
        """Stable short hash of :meth:`key_dict`: the run's folder name in the results store."""
        blob = json.dumps(self.key_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    """A finite int or float (bools, NaN and infinities are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
