"""Whole-step throughput of the study's models against this machine's peak (``relustudy bench train``).

For every model the experiments train, at each width and batch size a profile uses (read from the
experiment registry), one thread count:

- FLOP per image of a training step (forward + backward), counted by ``torch.utils.flop_counter``;
- the training images/s of a bare loop (forward, cross-entropy, backward, Adam step on one
  resident batch) and of the trainer's own epoch loop (``relustudy.trainer._train_epoch``: batch
  gathering from the float copy of its images, running metrics) on the same number of images, the two
  interleaved cycle by cycle (``TRAINER_DESIGN``), so the trainer's overhead is a paired ratio with
  its interval;
- under ``torch.compile`` (quick and paper profiles): the compiled step's images/s, its compile
  time, the steps a run needs to earn that back against the shortest run that trains the model,
  and whether 20 compiled steps give eager's losses (``COMPILE_LOSS_TOLERANCE``);
- on a CPU with bf16 units, the bare step's images/s under bf16 autocast;
- the achieved GFLOP/s as a share of this machine's sgemm (``torch.mm`` of 2048 x 2048 fp32) at the
  same thread count, and the share the model's own convolution and linear layers reach when timed
  alone at the model's shapes (oneDNN through ``torch.nn.functional``): the ceiling its layer shapes
  allow.

Times are medians of repeated steps within one process (ratios taken within one run). The record
is written atomically under ``results/microbench/<profile>/cpu/train_step.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import ConfigError, RunConfig
from .data import DATASETS
from .experiments import EXPERIMENTS, get_experiment
from .microbench import benchmark_dir
from .models import build_model
from .provenance import cpu_bf16_units, cpu_identity, device_description, git_info, utc_now
from .registry import SOURCES_MODULE, Registry
from .rundata import RunData
from .stats import median_interval
from .store import StoreError, write_json
from .trainer import _train_epoch, build_optimizer, precision_context, resolve_device, tune_allocator

STEP_RECORD = "train_step.json"
# Timed steps per measurement (after warm-up), by benchmark profile; smoke is CI's code path.
# compile: also time the model under torch.compile (inductor; its compile time and a loss check)
STEP_PROFILES = {
    "smoke": dict(steps=2, warmup=1, gemm=256, compile=False),
    "quick": dict(steps=12, warmup=3, gemm=2048, compile=True),
    "paper": dict(steps=30, warmup=5, gemm=2048, compile=True),
}
# Compiled training must give eager's losses over this many steps (same init, same batch) within
# this relative tolerance (our choice: inductor reorders floating-point sums, and 20 Adam steps
# amplify last-bit differences to about 1e-5 of the loss; 1e-3 is far above that and far below
# any difference a verdict could see).
COMPILE_CHECK_STEPS = 20
COMPILE_LOSS_TOLERANCE = 1e-3
# Model parameters that change no layer shape (initialisation, where statistics are probed): runs
# that differ only in them cost the same and are measured once. So are runs differing only in the
# number of classes (one layer's width).
COST_NEUTRAL_PARAMS = ("init", "probes")


@dataclass(frozen=True)
class StudyModel:
    model: str
    width: float
    batch_size: int
    in_shape: tuple[int, int, int]
    num_classes: int
    model_params: tuple[tuple[str, Any], ...]  # the model's parameters as its configs give them
    used_by: tuple[str, ...]  # "experiment/profile" entries that train it

    @property
    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.model_params if k != "width")
        shape = "x".join(str(d) for d in self.in_shape)
        return f"{self.model} width {self.width:g}, batch {self.batch_size}, {shape}" + (f" ({extra})" if extra else "")


def study_models(profiles: tuple[str, ...] = ("quick", "regime", "paper")) -> list[StudyModel]:
    """The distinct (model, model parameters, batch, data shape) the experiments train in
    ``profiles``, each with the experiments and profiles that train it."""
    found: dict[tuple, list[str]] = {}
    classes: dict[tuple, int] = {}
    for name in EXPERIMENTS.names():
        exp = EXPERIMENTS.get(name)
        spec = DATASETS.get(exp.dataset)
        for profile in profiles:
            if profile not in exp.profiles:
                continue
            for config in exp.configs(profile, seeds=exp.profile(profile).seeds[:1], device="cpu"):
                shaped = {k: v for k, v in config.model_params.items() if k not in COST_NEUTRAL_PARAMS}
                params = tuple(sorted(shaped.items()))
                key = (config.model, params, config.batch_size, tuple(spec.in_shape))
                classes.setdefault(key, int(spec.num_classes))
                found.setdefault(key, [])
                if f"{name}/{profile}" not in found[key]:
                    found[key].append(f"{name}/{profile}")
    return [
        StudyModel(model, float(dict(params).get("width", 1.0)), batch, shape, classes[key], params, tuple(used))
        for key, used in sorted(found.items(), key=lambda kv: str(kv[0]))
        for model, params, batch, shape in (key,)
    ]


CPU = torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, steps: int, warmup: int, device: torch.device = CPU) -> float:
    """Median seconds of ``fn`` over ``steps`` calls after ``warmup`` (each call waited for on a GPU)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sgemm_gflops(n: int = 2048, steps: int = 5, device: torch.device = CPU) -> float:
    """This device's fp32 matrix-multiply rate (GFLOP/s; on the CPU at the current thread count)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    seconds = _median_seconds(lambda: torch.mm(a, b, out=out), steps, 2, device)
    return 2 * n**3 / seconds / 1e9


def _build(sm: StudyModel, activation: str = "relu", device: torch.device = CPU) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(sm.model, activation, {}, sm.in_shape, sm.num_classes, **dict(sm.model_params))
    return model.to(device=device, memory_format=torch.channels_last).train()


def _batch(sm: StudyModel, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The resident batch every timing uses: random pixels in [0, 1), channels_last, and labels."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(sm.batch_size, *sm.in_shape, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, sm.num_classes, (sm.batch_size,), generator=gen)
    return x.to(device), y.to(device)


def step_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOP of one training step's forward and backward on batch ``x`` (torch's flop counter)."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def layer_calls(model: nn.Module, x: torch.Tensor) -> list[tuple[nn.Module, torch.Size]]:
    """Every convolution and linear layer a forward pass calls, with its input's shape."""
    calls: list[tuple[nn.Module, torch.Size]] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, args: calls.append((mod, args[0].shape)))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return calls


def layers_alone(
    calls: list[tuple[nn.Module, torch.Size]], steps: int, warmup: int, device: torch.device = CPU
) -> tuple[float, int]:
    """(seconds, FLOP) of the model's convolution and linear layers alone, forward and backward
    (input and weight gradients) at the model's shapes: the ceiling its layer shapes allow."""
    inputs = []
    for module, shape in calls:
        x = torch.randn(shape, device=device)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        inputs.append((module, x.requires_grad_(True)))

    def run():
        for module, x in inputs:
            out = module(x)
            out.backward(torch.ones_like(out))

    with FlopCounterMode(display=False) as counter:
        run()
    return _median_seconds(run, steps, warmup, device), int(counter.get_total_flops())


def bare_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, forward: Callable | None = None, precision: str = "fp32"
):
    """One bare training step (forward, cross-entropy, backward, Adam) on the resident batch;
    ``forward`` replaces ``model``'s (e.g. its compiled form), ``precision`` "bf16" runs the forward
    under bf16 autocast. The step returns its loss (a tensor, not read: no synchronisation)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = forward or model

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with precision_context(precision, x.device.type):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def shortest_run_steps(sm: StudyModel) -> int:
    """Training steps of the shortest run among the profiles that train ``sm``."""
    steps = []
    for entry in sm.used_by:
        name, profile = entry.split("/")
        if name not in EXPERIMENTS.names():
            continue
        exp = get_experiment(name)
        epochs = int(exp.settings(profile).get("epochs") or 1)
        steps.append(epochs * math.ceil(exp.train_images(profile) / sm.batch_size))
    return min(steps) if steps else 0


def compiled_measure(
    sm: StudyModel, steps: int, warmup: int, eager_seconds: float, device: torch.device = CPU
) -> dict[str, Any]:
    """``sm`` under ``torch.compile``: its step rate, compile time (the first step's time less an
    eager step's), the steps a run needs to earn the compile time back, whether the shortest run
    that trains ``sm`` is that long, and the losses of 20 steps against eager's from the same init."""
    x, y = _batch(sm, device)
    torch._dynamo.reset()  # a fresh compilation, timed
    model = _build(sm, device=device)
    step = bare_step(model, x, y, forward=torch.compile(model))
    t0 = time.perf_counter()
    step()
    _sync(device)
    compile_seconds = max(time.perf_counter() - t0 - eager_seconds, 0.0)
    compiled = _median_seconds(step, steps, warmup, device)
    eager_losses = [float(loss) for loss in _losses(bare_step(_build(sm, device=device), x, y), COMPILE_CHECK_STEPS)]
    model = _build(sm, device=device)
    # dropout in compiled code draws from inductor's own generator unless told to use eager's: the
    # check compares arithmetic, so both draw the same masks
    with inductor_config.patch(fallback_random=True):
        torch._dynamo.reset()
        compiled_losses = _losses(bare_step(model, x, y, forward=torch.compile(model)), COMPILE_CHECK_STEPS)
    worst = max(abs(float(c) - e) / max(abs(e), 1e-12) for c, e in zip(compiled_losses, eager_losses, strict=True))
    gain = eager_seconds - compiled
    break_even = math.ceil(compile_seconds / gain) if gain > 0 else None
    run_steps = shortest_run_steps(sm)
    return {
        "images_per_second": sm.batch_size / compiled,
        "speedup": eager_seconds / compiled,
        "compile_seconds": compile_seconds,
        "break_even_steps": break_even,
        "shortest_run_steps": run_steps,
        "pays_within_a_run": break_even is not None and 0 < run_steps and break_even <= run_steps,
        "loss_max_relative_difference": worst,
        "loss_check_steps": COMPILE_CHECK_STEPS,
        "loss_tolerance": COMPILE_LOSS_TOLERANCE,
        "losses_agree": worst <= COMPILE_LOSS_TOLERANCE,
    }


def _losses(step: Callable[[], torch.Tensor], n: int) -> list[torch.Tensor]:
    return [step() for _ in range(n)]


# Batches in one trainer epoch of the interleaved comparison: an epoch's own set-up (a permutation,
# two syncs) is spread over this many steps, as over a run's epoch of hundreds (our choice: small, so
# that a cycle stays a fraction of a second and a load that comes and goes moves both alike).
TRAINER_BATCHES = 2
TRAINER_DESIGN = (
    f"step-interleaved cycles: one trainer epoch of {TRAINER_BATCHES} batches (_train_epoch: batches "
    "gathered by index_select from the run's float copy of its images, metrics) against "
    f"{TRAINER_BATCHES} bare steps, the order rotating; overhead = median over cycles of trainer "
    "time / bare time - 1, with its distribution-free 95% interval"
)


def trainer_against_bare(sm: StudyModel, cycles: int, warmup: int, device: torch.device = CPU) -> dict[str, Any]:
    """The trainer's epoch loop against the bare step on the same number of images, interleaved
    cycle by cycle (:func:`interleaved_step_times`): the trainer's images/s and its overhead over
    the bare loop, the median of the cycles' paired ratios with its 95% interval."""
    n = sm.batch_size * TRAINER_BATCHES
    gen = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (n, *sm.in_shape), dtype=torch.uint8, generator=gen).to(device)
    y8 = torch.randint(0, sm.num_classes, (n,), generator=gen).to(device)  # resident, as a run's images
    data = RunData(x8, y8, x8[:1], y8[:1], None, None, sm.in_shape, sm.num_classes, True)
    config = RunConfig(
        experiment="bench",
        profile="smoke",
        dataset="cifar10",
        model=sm.model,
        activation="relu",
        batch_size=sm.batch_size,
        model_params=dict(sm.model_params),
        normalize="scale01",
    )
    trainer_model = _build(sm, device=device)
    optimizer = build_optimizer(config, trainer_model)
    x, y = _batch(sm, device)
    bare = bare_step(_build(sm, device=device), x, y)

    class _Bar:
        def update(self, n: int) -> None:
            pass

    def trainer_epoch() -> None:
        _train_epoch(trainer_model, optimizer, data, config, device, gen, _Bar())  # waits for the device itself

    def bare_epoch() -> None:
        for _ in range(TRAINER_BATCHES):
            bare()
        _sync(device)

    for _ in range(warmup):
        trainer_epoch(), bare_epoch()
    times = interleaved_step_times({"trainer": trainer_epoch, "bare": bare_epoch}, cycles)
    ratios = [t / b - 1.0 for t, b in zip(times["trainer"], times["bare"], strict=True)]
    overhead, low, high = median_interval(ratios)
    return {
        "trainer_images_per_second": n / statistics.median(times["trainer"]),
        "trainer_overhead": overhead,
        "trainer_overhead_ci95": [low, high],
        "trainer_cycles": cycles,
    }


def measure(
    sm: StudyModel,
    steps: int,
    warmup: int,
    peak_gflops: float,
    time_compiled: bool = False,
    device: torch.device = CPU,
) -> dict[str, Any]:
    """Every column of the whole-step record for ``sm`` (see the module docstring); ``time_compiled``
    adds the compiled step (:func:`compiled_measure`); bf16 units (a CPU's, or any GPU) add bf16's
    step rate."""
    model = _build(sm, device=device)
    x, y = _batch(sm, device)
    flops = step_flops(model, x, y)
    bare = _median_seconds(bare_step(model, x, y), steps, warmup, device)
    layer_s, layer_flops = layers_alone(layer_calls(model, x), steps, warmup, device)
    bare_ips = sm.batch_size / bare
    gflops = flops / bare / 1e9
    layer_gflops = layer_flops / layer_s / 1e9
    return {
        "model": sm.model,
        "label": sm.label,
        "width": sm.width,
        "batch_size": sm.batch_size,
        "used_by": list(sm.used_by),
        "flop_per_image": flops / sm.batch_size,
        "bare_images_per_second": bare_ips,
        **trainer_against_bare(sm, max(2 * steps, 8), warmup, device),  # 8 cycles at least: a 95% interval
        "gflops": gflops,
        "share_of_sgemm": gflops / peak_gflops,
        "layers_alone_gflops": layer_gflops,
        "layers_alone_share_of_sgemm": layer_gflops / peak_gflops,
        "share_of_layer_ceiling": gflops / layer_gflops,
        "compiled": compiled_measure(sm, steps, warmup, bare, device) if time_compiled else None,
        "bf16": bf16_measure(sm, steps, warmup, bare, device) if _has_bf16(device) else None,
    }


def _has_bf16(device: torch.device) -> bool:
    return device.type == "cuda" or bool(cpu_bf16_units())


def bf16_measure(
    sm: StudyModel, steps: int, warmup: int, fp32_seconds: float, device: torch.device = CPU
) -> dict[str, Any]:
    """The bare ReLU step under bf16 autocast (the trainer's precision "bf16"): images/s and the
    speed-up over fp32's step (the other arms' cost relative to ReLU under bf16:
    ``benchmarks/bench_train_overhead.py --precision bf16``)."""
    x, y = _batch(sm, device)
    seconds = _median_seconds(bare_step(_build(sm, device=device), x, y, precision="bf16"), steps, warmup, device)
    return {"images_per_second": sm.batch_size / seconds, "speedup": fp32_seconds / seconds}


def record_train_benchmark(
    profile: str,
    results_dir: str | Path,
    *,
    threads: int = 1,
    force: bool = False,
    models: list[StudyModel] | None = None,
    time_compiled: bool | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Measure every study model (or ``models``) on ``device`` and write the record under that
    device's folder (unless one exists and not ``force``); ``time_compiled`` overrides the
    profile's choice of timing the compiled step; ``threads`` are the CPU's (the host's on a GPU)."""
    if profile not in STEP_PROFILES:
        raise ConfigError(f"unknown benchmark profile {profile!r}; valid: {', '.join(STEP_PROFILES)}")
    dev = resolve_device(device)
    folder = benchmark_dir(results_dir, profile, dev.type)
    path = folder / STEP_RECORD
    if path.is_file() and not force:
        return json.loads(path.read_text())
    settings = STEP_PROFILES[profile]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    start, t0 = utc_now(), time.perf_counter()
    try:
        peak = sgemm_gflops(settings["gemm"], device=dev)
        time_compiled = settings["compile"] if time_compiled is None else time_compiled
        rows = [
            measure(sm, settings["steps"], settings["warmup"], peak, time_compiled, dev)
            for sm in (models or study_models())
        ]
    finally:
        torch.set_num_threads(previous)
    record = {
        "profile": profile,
        "settings": {
            **settings,
            "compile": time_compiled,
            "threads": threads,
            "precision": "fp32 (and bf16 autocast in the bf16 columns where the device has bf16 units)",
            "memory_format": "channels_last",
            "bf16_units": _has_bf16(dev),
            "trainer_design": TRAINER_DESIGN,
        },
        "sgemm_gflops": peak,
        "models": rows,
        "provenance": {
            **git_info(),
            "device": device_description(dev, threads),
            "cpu_identity": cpu_identity(),
            "torch_version": torch.__version__,
            "start_time": start,
            "end_time": utc_now(),
            "wall_seconds": time.perf_counter() - t0,
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return record


def read_train_step(results_dir: str | Path, profile: str = "quick") -> dict[str, Any] | None:
    """The whole-step record (``relustudy bench train``) of ``profile`` under ``results_dir``, or
    None where none was made; a record that cannot be read is refused in one line (StoreError)
    naming the file and the command that makes it again."""
    path = benchmark_dir(results_dir, profile, "cpu") / STEP_RECORD
    if not path.is_file():
        return None

    def check(record: dict[str, Any]) -> None:
        for m in record["models"]:
            m["model"], m["width"], m["batch_size"]  # the fields the estimates read

    return _read_benchmark_record(path, "whole-step", check, f"relustudy bench train --profile {profile} --force")


def _read_benchmark_record(
    path: Path, what: str, check: Callable[[dict[str, Any]], Any], remake: str
) -> dict[str, Any]:
    """The JSON record at ``path``, after ``check`` (which raises on a missing field); one line
    (StoreError) naming the file and the command ``remake`` that makes it again where it cannot be read."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        check(record)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(
            f"{what} record {path} cannot be read ({type(e).__name__}: {e}); measure it again: {remake}"
        ) from None
    return record


# ------------------------------------------------------------------ interleaved step timing
def interleaved_step_times(steps: dict[str, Callable[[], Any]], cycles: int) -> dict[str, list[float]]:
    """Seconds of every step in each of ``cycles`` cycles. A cycle runs each step once, the order
    rotating from cycle to cycle (so no step always follows the same one): the steps of one cycle
    are a fraction of a second apart, and a background load that comes and goes moves them alike,
    so a ratio of two steps' times within a cycle is a fair paired comparison."""
    if cycles < 1:
        raise ConfigError(f"cycles must be >= 1, got {cycles}")
    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    for cycle in range(cycles):
        k = cycle % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            steps[n]()
            times[n].append(time.perf_counter() - t0)
    return times


STEP_METRIC = "log_step_images_per_second"  # log(batch / median step seconds) of one seed's cycles
STEP_VARIANTS = ("eager", "compiled")  # the model as PyTorch runs it, and under torch.compile (inductor)


@dataclass(frozen=True)
class StepTimingProfile:
    seeds: tuple[int, ...]  # one model initialisation and one resident batch per seed
    cycles: int  # interleaved cycles per seed
    warmup: int = 3  # untimed steps per arm and variant first (allocator, kernel choice, compilation)
    variants: tuple[str, ...] = STEP_VARIANTS


@dataclass(frozen=True)
class StepTiming:
    """Whole training steps of an experiment's arms, timed interleaved in one process: the model,
    optimizer and batch size of ``experiment``'s configs, one step of every arm and variant per
    cycle. A source module registers one where its speed claims need paired timing."""

    experiment: str
    arms: tuple[Any, ...]  # experiments.Arm
    profiles: dict[str, StepTimingProfile]
    note: str = ""

    def profile(self, profile: str) -> StepTimingProfile:
        if profile not in self.profiles:
            raise ConfigError(
                f"step timing of {self.experiment!r} has no profile {profile!r}; valid: {', '.join(self.profiles)}"
            )
        return self.profiles[profile]

    def labels(self, profile: str) -> list[str]:
        return [step_label(a.label, v) for a in self.arms for v in self.profile(profile).variants]


STEP_TIMINGS: Registry[StepTiming] = Registry("step timing", filled_by=SOURCES_MODULE)


def step_label(arm: str, variant: str) -> str:
    """The arm name of a timed variant in the results table and on the page."""
    if variant not in STEP_VARIANTS:
        raise ConfigError(f"unknown step variant {variant!r}; valid: {', '.join(STEP_VARIANTS)}")
    return f"{arm}, {variant}"


def step_timing_path(results_dir: str | Path, experiment: str, profile: str) -> Path:
    return benchmark_dir(results_dir, profile, "cpu") / f"steps_{experiment}.json"


def _arm_step(config: Any, in_shape: tuple[int, int, int], num_classes: int, variant: str, warmup: int):
    """One training step (forward, cross-entropy, backward, the experiment's optimizer) of
    ``config``'s model on one resident batch, warmed up; ``variant`` "compiled" runs the model
    under ``torch.compile``."""
    torch.manual_seed(config.seed)
    model = build_model(
        config.model, config.activation, config.activation_params, in_shape, num_classes, **config.model_params
    ).train()
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(config, model)
    gen = torch.Generator().manual_seed(config.seed)
    x = torch.randint(0, 256, (config.batch_size, *in_shape), dtype=torch.uint8, generator=gen).float().div_(255)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (config.batch_size,), generator=gen)
    forward = torch.compile(model) if variant == "compiled" else model

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach()  # no .item(): reading it would add a synchronisation to every timed step

    for _ in range(warmup):
        step()
    return step


def measure_step_timing(experiment: str, profile: str, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The interleaved step times of ``experiment``'s registered step timing (see :class:`StepTiming`),
    per seed: each label's median step seconds and its per-cycle times."""
    spec = STEP_TIMINGS.get(experiment)
    prof = spec.profile(profile)
    exp = get_experiment(experiment)
    data = DATASETS.get(exp.dataset)
    base = exp.configs(profile, seeds=(0,), device="cpu")[0].to_dict()
    seeds = []
    for seed in prof.seeds:
        steps = {}
        for arm in spec.arms:
            config = RunConfig.from_dict(
                {
                    **base,
                    "activation": arm.activation,
                    "activation_params": dict(arm.params),
                    "arm": arm.label,
                    "seed": seed,
                }
            )
            for variant in prof.variants:
                steps[step_label(arm.label, variant)] = _arm_step(
                    config, tuple(data.in_shape), int(data.num_classes), variant, prof.warmup
                )
        times = interleaved_step_times(steps, prof.cycles)
        seeds.append(
            {
                "seed": seed,
                "median_step_seconds": {k: statistics.median(v) for k, v in times.items()},
                "step_seconds": times,
            }
        )
        if log:
            log(f"step timing {experiment} ({profile}) seed {seed}: {prof.cycles} cycles of {len(steps)} steps")
    return {"batch_size": int(base["batch_size"]), "seeds": seeds}


@contextlib.contextmanager
def _recompile_limit(forms: int) -> Iterator[None]:
    """Every form compiles the same Sequential.forward: past dynamo's recompile limit (8) a model
    would silently run eager, so the limit is raised to the ``forms`` timed and a hit is an error."""
    dynamo = torch._dynamo.config
    limits = (dynamo.recompile_limit, dynamo.fail_on_recompile_limit_hit)
    dynamo.recompile_limit = max(limits[0], forms)
    dynamo.fail_on_recompile_limit_hit = True
    try:
        yield
    finally:
        dynamo.recompile_limit, dynamo.fail_on_recompile_limit_hit = limits


def record_step_timing(
    experiment: str,
    profile: str,
    results_dir: str | Path,
    *,
    threads: int = 1,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure ``experiment``'s step timing and write its record atomically (unless one exists and
    not ``force``); the record carries the settings and provenance."""
    spec = STEP_TIMINGS.get(experiment)
    prof = spec.profile(profile)
    path = step_timing_path(results_dir, experiment, profile)
    if path.is_file() and not force:
        return json.loads(path.read_text())
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    allocator = tune_allocator()  # as the trainer does, so a step here costs what it costs in a run
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    start, t0 = utc_now(), time.perf_counter()
    try:
        with _recompile_limit(2 * len(spec.arms) * len(prof.seeds)):
            measured = measure_step_timing(experiment, profile, log=log)
    finally:
        torch.set_num_threads(previous)
    record = {
        "experiment": experiment,
        "profile": profile,
        "settings": {
            "seeds": list(prof.seeds),
            "cycles": prof.cycles,
            "warmup": prof.warmup,
            "variants": list(prof.variants),
            "threads": threads,
            "design": "step-interleaved cycles in one process, the order rotating; a resident batch of random "
            "pixels; the experiment's model, optimizer and batch size",
        },
        "arms": {a.label: {"activation": a.activation, "params": dict(a.params)} for a in spec.arms},
        **measured,
        "provenance": {
            **git_info(),
            "device": device_description("cpu", threads),
            "cpu_identity": cpu_identity(),
            "torch_version": torch.__version__,
            "allocator": allocator,
            # graphs dynamo compiled in this process: at least one per compiled form, else one ran eager
            "compiled_graphs": int(torch._dynamo.utils.counters["stats"]["unique_graphs"]),
            "load_average_at_start": list(os.getloadavg()),
            "start_time": start,
            "end_time": utc_now(),
            "wall_seconds": time.perf_counter() - t0,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return record


def step_timing_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A step-timing record as rows of the results table (one per seed and label, metric
    ``STEP_METRIC``), so the claims compare its labels paired by seed like any runs."""
    prov = record.get("provenance", {})
    rows = []
    for entry in record["seeds"]:
        for label, seconds in entry["median_step_seconds"].items():
            rows.append(
                {
                    "experiment": record["experiment"],
                    "profile": record["profile"],
                    "arm": label,
                    "activation_label": label,
                    "seed": int(entry["seed"]),
                    "run_id": f"steps:{label}:{entry['seed']}",
                    "status": "complete",
                    "metric": STEP_METRIC,
                    "value": math.log(record["batch_size"] / seconds) if seconds > 0 else math.nan,
                    "device": prov.get("device"),
                    "wall_seconds": math.nan,  # the record's wall time is not a run's: counted once, in the record
                    "git_commit": prov.get("git_commit"),
                }
            )
    return rows


def read_step_timing(results_dir: str | Path, experiment: str, profile: str) -> dict[str, Any] | None:
    """``experiment``'s step-timing record for ``profile``, or None where it has none registered or
    recorded; a record that cannot be read is refused in one line (StoreError) naming the file and
    the command that makes it again."""
    path = step_timing_path(results_dir, experiment, profile)
    if experiment not in STEP_TIMINGS or not path.is_file():
        return None
    remake = f"relustudy bench steps --experiment {experiment} --profile {profile} --force"
    return _read_benchmark_record(path, "step-timing", step_timing_rows, remake)  # rows: the fields readers need


def step_timing_frame(results_dir: str | Path, experiment: str, profile: str) -> Any:
    """The rows of ``experiment``'s step-timing record for ``profile`` (:func:`step_timing_rows`), or
    an empty frame where there is none (see :func:`read_step_timing`)."""

    record = read_step_timing(results_dir, experiment, profile)
    return pd.DataFrame(step_timing_rows(record) if record else [])
