"""Experiment registry: each source table is a named grid with three profiles.

An :class:`Experiment` fixes the source, table, dataset, model and the activation *arms*; each
:class:`Profile` (``smoke``, ``quick``, ``paper``) fixes the seeds and the training settings, and
lists in plain words every way it departs from the source (``scale_downs``), which the book prints
beside the numbers.

``Experiment.configs(profile)`` expands the grid into :class:`~relustudy.config.RunConfig` objects;
``run_experiment`` trains them through the results store, skipping complete records.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .config import PROFILES, ConfigError, RunConfig
from .registry import Registry

EXPERIMENTS: Registry["Experiment"] = Registry("experiment")


@dataclass(frozen=True)
class Arm:
    """One activation choice in a grid (a row of the source's table)."""

    label: str  # the source's row name, e.g. "PReLU"
    activation: str  # name in the activation registry
    params: dict[str, Any] = field(default_factory=dict)
    model_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"batch_norm": True}


@dataclass(frozen=True)
class Profile:
    seeds: tuple[int, ...]
    settings: dict[str, Any]  # RunConfig fields for this profile (epochs, subsets, batch size, ...)
    scale_downs: tuple[str, ...] = ()  # how this profile departs from the source, in words

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

    def profile(self, profile: str) -> Profile:
        if profile not in self.profiles:
            raise ConfigError(f"unknown profile {profile!r} for experiment {self.name!r}; valid: {', '.join(self.profiles)}")
        return self.profiles[profile]

    def settings(self, profile: str) -> dict[str, Any]:
        """RunConfig fields shared by every arm of ``profile``: the common ones, overridden by the profile's."""
        return {**self.common, **self.profile(profile).settings}

    def configs(self, profile: str, seeds: Iterable[int] | None = None, device: str = "auto") -> list[RunConfig]:
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
                    "model_params": {**self.common.get("model_params", {}), **prof.settings.get("model_params", {}), **arm.model_params},
                    "seed": int(seed),
                    "device": device,
                }
                out.append(RunConfig.from_dict(fields))
        return out

    def train_images(self, profile: str) -> int:
        """Training images per epoch: the profile's (or the experiment's common) subset, else the full set."""
        from .data import DATASETS

        return int(self.settings(profile).get("train_subset") or DATASETS.get(self.dataset).n_train)

    def estimated_cpu_minutes(self, profile: str, images_per_second: float | None = None) -> float:
        """Rough cost on our 2-core CPU: from ``images_per_second`` (a measured training
        throughput, e.g. the median of this experiment's records) or else the table below."""
        prof, settings = self.profile(profile), self.settings(profile)
        rate = images_per_second or CPU_IMAGES_PER_SECOND.get((self.model, self.dataset), 1000.0)
        images = self.train_images(profile) * settings.get("epochs", 1)
        evals = 10_000 * settings.get("epochs", 1) / (rate * 3)  # eval is ~3x faster than training
        return len(self.arms) * len(prof.seeds) * (images / rate + evals) / 60.0


# Training throughput measured in the committed quick records on the project's 2-core CPU (eager
# PyTorch, batch 128, fp32, median over the ReLU runs; PReLU is 5-40% slower, tanh up to 2.5x on
# Fashion-MNIST). Used only for `relustudy list` estimates.
CPU_IMAGES_PER_SECOND: dict[tuple[str, str], float] = {
    ("smith_cnn", "fashion_mnist"): 3000.0,
    ("smith_cnn", "cifar10"): 3600.0,
    # 2026-11-26 quick rerun alone on the CPU: ReLU 794-811 img/s (the earlier 440 shared the CPU).
    ("smith_vgg3", "cifar10"): 800.0,
    # 2026-11-25, alone on the CPU: radford_convnet from the first quick record (ReLU, 2,000-2,460
    # img/s per epoch), simple_mlp_bn from one timed epoch (33k img/s).
    ("radford_convnet", "mnist"): 2300.0,
    ("simple_mlp_bn", "mnist"): 30000.0,
}


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
) -> list[dict]:
    """Train every run of the grid that has no complete record; return all records."""
    from .store import ResultsStore
    from .trainer import train

    exp = get_experiment(name)
    validate_profile(profile)
    configs = exp.configs(profile, seeds=seeds, device=device)
    store = ResultsStore(Path(results_dir) if results_dir else default_results_dir(profile))
    records = []
    for i, cfg in enumerate(configs, 1):
        cached = not force and store.is_complete(cfg)
        t0 = time.perf_counter()
        record = train(cfg, store, force=force, data_dir=data_dir, download=download, progress=progress)
        if log:
            status = "cached" if cached else f"{record.get('status')} in {time.perf_counter() - t0:.0f} s"
            acc = record.get("metrics", {}).get("test_accuracy")
            acc_s = f" test_accuracy={acc:.4f}" if isinstance(acc, (int, float)) else ""
            log(f"[{i}/{len(configs)}] {name} {profile} {cfg.arm or cfg.activation} seed={cfg.seed}: {status}{acc_s}")
        records.append(record)
    return records


# --------------------------------------------------------------------------------------------
# Smith, "Comparing Rectified Linearity Performance on Image Data" (Tables 2-4).
# --------------------------------------------------------------------------------------------
# Keras LeakyReLU's default slope is 0.3; Smith's text says alpha = 0.1 "or another small number".
# We follow the text (see relustudy.activations.SMITH_LRELU_SLOPE and the methods page).
SMITH_ARMS = (
    Arm("tanh", "tanh"),
    Arm("ReLU", "relu"),
    Arm("LReLU", "lrelu", {"slope": 0.1}),
    Arm("PReLU", "prelu", {"mode": "channel", "init": 0.25}),
)

SMITH_NOTES = (
    "Adam with Keras' defaults (lr 0.001, beta 0.9/0.999, eps 1e-7); categorical cross-entropy.",
    "Batch size is not stated: the paper profile uses Keras' default fit batch size, 32.",
    "Pixels scaled to [0, 1] (x/255) as in the Keras examples; the paper states no normalisation; no augmentation.",
    "LReLU slope 0.1, from the paper's text (Keras' LeakyReLU default would be 0.3).",
    "Activation statistics are measured on the full test set in the last conv layer, each (channel, y, x) neuron a unit.",
)

# The paper's common setup; profiles override what they scale down.
SMITH_COMMON = dict(optimizer="adam", lr=1e-3, eps=1e-7, normalize="scale01", channels_last=True)

SMOKE = dict(epochs=1, batch_size=64, train_subset=512, test_subset=500)


def _smith(name: str, table: str, title: str, dataset: str, model: str, paper_epochs: int,
           quick_epochs: int, quick_seeds: tuple[int, ...], epochs_note: str) -> Experiment:
    quick_scale = [f"batch 128 instead of 32 (throughput on 2 CPU cores)"]
    if quick_epochs != paper_epochs:
        quick_scale.append(f"{quick_epochs} epochs instead of {paper_epochs}")
    quick_scale.append(f"{len(quick_seeds)} seeds (the paper reports one run)")
    return EXPERIMENTS.register(name, Experiment(
        name=name, source="smith", table=table, title=title, dataset=dataset, model=model,
        arms=SMITH_ARMS, common=SMITH_COMMON,
        profiles={
            "smoke": Profile((0, 1), {**SMOKE, "stats_epochs": (1,)},
                             ("512 training and 500 test images", "1 epoch", "batch 64", "2 seeds")),
            "quick": Profile(quick_seeds, {"epochs": quick_epochs, "batch_size": 128, "stats_epochs": (quick_epochs,)},
                             tuple(quick_scale)),
            "paper": Profile((0, 1, 2, 3, 4), {"epochs": paper_epochs, "batch_size": 32, "stats_epochs": (paper_epochs,)},
                             ("5 seeds (the paper reports one run)",)),
        },
        notes=SMITH_NOTES + (epochs_note,),
    ))


_smith("smith_fmnist_cnn", "Table 2", "3-layer CNN on Fashion-MNIST", "fashion_mnist", "smith_cnn",
       paper_epochs=10, quick_epochs=3, quick_seeds=(0, 1, 2, 3, 4),
       epochs_note="Epochs for the 3-layer CNN are not stated: the paper profile uses 10 (the Keras tutorials this setup follows).")
_smith("smith_cifar10_cnn", "Table 3", "3-layer CNN on CIFAR-10", "cifar10", "smith_cnn",
       paper_epochs=10, quick_epochs=3, quick_seeds=(0, 1, 2, 3, 4),
       epochs_note="Epochs for the 3-layer CNN are not stated: the paper profile uses 10 (the Keras tutorials this setup follows).")
_smith("smith_cifar10_vgg3", "Table 4", "3-VGG-block CNN on CIFAR-10", "cifar10", "smith_vgg3",
       paper_epochs=3, quick_epochs=3, quick_seeds=(0, 1, 2),
       epochs_note="The VGG model is trained 3 epochs, as in the paper (overfitting began in the third).")


# --------------------------------------------------------------------------------------------
# Theano blog, "Benchmarking ReLU and PReLU using MNIST and Theano" (whole-network part).
# --------------------------------------------------------------------------------------------
# The blog's ReLU1-3 are the switch, max and abs forms; its PReLU2/PReLU3 the max/min and abs
# forms; Jan Schlueter's simplified PReLU was added after his comment. PReLU coefficients: the
# blog sizes them to "the number of activations in the corresponding layer" without giving the
# init; we use He et al.'s channel-wise a = 0.25 (one per conv channel / dense unit).
_THEANO_PRELU = {"mode": "channel", "init": 0.25}
THEANO_ARMS = (
    Arm("ReLU (switch)", "relu_where"),
    Arm("ReLU (max)", "relu_max"),
    Arm("ReLU (abs)", "relu_abs"),
    Arm("PReLU (max/min)", "prelu_maxmin", _THEANO_PRELU),
    Arm("PReLU (abs)", "prelu_abs", _THEANO_PRELU),
    Arm("PReLU (Schlüter)", "prelu_schluter", _THEANO_PRELU),
)
# Alec Radford's Theano-Tutorials 5_convolutional_net.py: RMSprop(lr=0.001, rho=0.9, epsilon=1e-6)
# with epsilon inside the square root, minibatches of 128, pixels / 255.
THEANO_COMMON = dict(optimizer="rmsprop_theano", lr=1e-3, momentum=0.9, eps=1e-6, batch_size=128,
                     normalize="scale01", train_subset=10_000, subset_seed=0, channels_last=True)
THEANO_NOTES = (
    "Network, optimizer and batch: Alec Radford's Theano-Tutorials convnet, which the blog says it uses "
    "unchanged: no biases, N(0, 0.01) weights, dropout 0.2/0.2/0.2/0.5, RMSprop lr 0.001, rho 0.9, "
    "eps 1e-6 inside the square root, batch 128, pixels / 255.",
    "'1/6 of the original size': 10,000 training images, stratified by class with a fixed subset seed "
    "(the same images for every arm and seed); the full 10,000-image test set.",
    "PReLU: channel-wise coefficients (one per conv channel and per dense unit) initialised at 0.25 (He et al.); "
    "the blog does not state its init.",
    "'Sweet spot': the first epoch whose test accuracy is within 0.2 percentage points of the run's best "
    "(metric epochs_to_sweet_spot).",
    "Timing: images per second of the training loop (median over epochs), on our CPU, not the blog's K40c GPU.",
)

EXPERIMENTS.register("theano_mnist_radford", Experiment(
    name="theano_mnist_radford", source="theano_blog", table="Results and conclusions",
    title="ReLU and PReLU implementations in Radford's convnet on 1/6 of MNIST",
    dataset="mnist", model="radford_convnet", arms=THEANO_ARMS, common=THEANO_COMMON,
    profiles={
        "smoke": Profile((0, 1), {"epochs": 2, "train_subset": 512, "test_subset": 500},
                         ("512 training and 500 test images", "2 epochs", "2 seeds")),
        "quick": Profile((0, 1, 2), {"epochs": 15},
                         ("15 epochs instead of 30", "3 seeds (the blog reports one run)")),
        "paper": Profile((0, 1, 2), {"epochs": 30}, ("3 seeds (the blog reports one run)",)),
    },
    notes=THEANO_NOTES,
))


# --------------------------------------------------------------------------------------------
# TensorFlow blog, "Informal review on Randomized Leaky ReLU (RReLU) in Tensorflow".
# --------------------------------------------------------------------------------------------
# Xu et al.'s configurations (LReLU as x / a with a = 100 and 5.5; RReLU a ~ U(3, 8), x / 5.5 at
# test), plus ELU, plus PyTorch's own nn.RReLU (slope ~ U(1/8, 1/3), eval slope 0.229) to show
# whether the definition matters.
TF_ARMS = (
    Arm("ReLU", "relu"),
    Arm("LReLU (a=100)", "lrelu", {"a": 100.0}),
    Arm("LReLU (a=5.5)", "lrelu", {"a": 5.5}),
    Arm("PReLU", "prelu", {"mode": "channel", "init": 0.25}),
    Arm("ELU", "elu"),
    Arm("RReLU", "rrelu", {"lower": 3.0, "upper": 8.0}),
    Arm("RReLU (torch)", "torch_rrelu"),
)
TF_BLOG_ARMS = tuple(a.label for a in TF_ARMS if a.label != "RReLU (torch)")  # the blog's six
TF_NOTES = (
    "The blog's 'very simple neural network' is not published: we use two dense hidden layers of 256 units "
    "(Glorot-uniform weights, zero biases), batch norm between each linear map and its activation in the "
    "batch-norm variant (model simple_mlp_bn).",
    "Optimizer, batch and length are not stated: Adam (lr 0.001, TensorFlow's eps 1e-8), batch 128, pixels / 255, "
    "20 epochs in the paper profile.",
    "Activations as in Xu et al.: LReLU y = x / a (a = 100 and 5.5), RReLU a ~ U(3, 8) per element in training "
    "and x / 5.5 at test; PReLU channel-wise initialised at 0.25; ELU alpha 1. RReLU (torch) is PyTorch's "
    "nn.RReLU (slope ~ U(1/8, 1/3), test slope 0.229), not in the blog.",
)


def _tf_blog(name: str, batch_norm: bool) -> Experiment:
    which = "with" if batch_norm else "without"
    return EXPERIMENTS.register(name, Experiment(
        name=name, source="tf_rrelu_blog", table=f"Figure ({which} batch normalization)",
        title=f"Simple MLP on MNIST {which} batch normalization", dataset="mnist", model="simple_mlp_bn",
        arms=TF_ARMS,
        common=dict(optimizer="adam", lr=1e-3, eps=1e-8, batch_size=128, normalize="scale01",
                    channels_last=False, model_params={"batch_norm": batch_norm}),
        profiles={
            "smoke": Profile((0, 1), {**SMOKE, "stats_epochs": ()},
                             ("512 training and 500 test images", "1 epoch", "batch 64", "2 seeds")),
            "quick": Profile((0, 1, 2), {"epochs": 10}, ("10 epochs instead of 20", "3 seeds (the blog reports one run)")),
            "paper": Profile((0, 1, 2, 3, 4), {"epochs": 20}, ("5 seeds (the blog reports one run)",)),
        },
        notes=TF_NOTES,
    ))


_tf_blog("tf_rrelu_mnist_bn", batch_norm=True)
_tf_blog("tf_rrelu_mnist_nobn", batch_norm=False)
