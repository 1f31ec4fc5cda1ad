"""Whole-step throughput of the study's models against this machine's peak (``relustudy bench train``).

For every model the experiments train, at each width and batch size a profile uses (read from the
experiment registry), one thread count:

- FLOP per image of a training step (forward + backward), counted by ``torch.utils.flop_counter``;
- the training images/s of a bare loop (forward, cross-entropy, backward, Adam step on one
  resident batch) and of the trainer's own epoch loop (``relustudy.trainer._train_epoch``: batch
  gathering, uint8 -> float conversion, running metrics) on the same images, so the trainer's
  overhead is a measured ratio;
- the achieved GFLOP/s as a share of this machine's sgemm (``torch.mm`` of 2048 x 2048 fp32) at the
  same thread count, and the share the model's own convolution and linear layers reach when timed
  alone at the model's shapes (oneDNN through ``torch.nn.functional``): the ceiling its layer shapes
  allow.

Times are medians of repeated steps within one process (ratios taken within one run). The record
is written atomically under ``results/microbench/<profile>/cpu/train_step.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import ConfigError

STEP_RECORD = "train_step.json"
# Timed steps per measurement (after warm-up), by benchmark profile; smoke is CI's code path.
STEP_PROFILES = {"smoke": dict(steps=2, warmup=1, gemm=256), "quick": dict(steps=12, warmup=3, gemm=2048)}
STEP_PROFILES["paper"] = dict(steps=30, warmup=5, gemm=2048)
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
    from . import sources  # noqa: F401  (registers the experiments)
    from .data import DATASETS
    from .experiments import EXPERIMENTS

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


def _median_seconds(fn, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sgemm_gflops(n: int = 2048, steps: int = 5) -> float:
    """This machine's fp32 matrix-multiply rate (GFLOP/s) at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    seconds = _median_seconds(lambda: torch.mm(a, b, out=out), steps, 2)
    return 2 * n**3 / seconds / 1e9


def _build(sm: StudyModel, activation: str = "relu") -> nn.Module:
    from .models import build_model

    torch.manual_seed(0)
    model = build_model(sm.model, activation, {}, sm.in_shape, sm.num_classes, **dict(sm.model_params))
    return model.to(memory_format=torch.channels_last).train()


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


def layers_alone(calls: list[tuple[nn.Module, torch.Size]], steps: int, warmup: int) -> tuple[float, int]:
    """(seconds, FLOP) of the model's convolution and linear layers alone, forward and backward
    (input and weight gradients) at the model's shapes: the ceiling its layer shapes allow."""
    inputs = []
    for module, shape in calls:
        x = torch.randn(shape)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        inputs.append((module, x.requires_grad_(True)))

    def run():
        for module, x in inputs:
            out = module(x)
            out.backward(torch.ones_like(out))

    with FlopCounterMode(display=False) as counter:
        run()
    return _median_seconds(run, steps, warmup), int(counter.get_total_flops())


def bare_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def trainer_epoch_seconds_per_image(sm: StudyModel, model: nn.Module, batches: int, warmup: int) -> float:
    """Seconds per training image of the trainer's epoch loop on ``batches`` batches of images."""
    from .config import RunConfig
    from .trainer import _RunData, _train_epoch, build_optimizer

    n = sm.batch_size * batches
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *sm.in_shape), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, sm.num_classes, (n,), generator=gen)
    data = _RunData(x, y, x[:1], y[:1], None, None, sm.in_shape, sm.num_classes, True)
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
    optimizer = build_optimizer(config, model)

    class _Bar:
        def update(self, n: int) -> None:
            pass

    for _ in range(warmup):
        _train_epoch(model, optimizer, data, config, torch.device("cpu"), gen, _Bar())
    runs = [_train_epoch(model, optimizer, data, config, torch.device("cpu"), gen, _Bar()) for _ in range(3)]
    return statistics.median(r["epoch_seconds"] for r in runs) / n


def measure(sm: StudyModel, steps: int, warmup: int, peak_gflops: float) -> dict[str, Any]:
    model = _build(sm)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(sm.batch_size, *sm.in_shape, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, sm.num_classes, (sm.batch_size,), generator=gen)
    flops = step_flops(model, x, y)
    bare = _median_seconds(bare_step(model, x, y), steps, warmup)
    layer_s, layer_flops = layers_alone(layer_calls(model, x), steps, warmup)
    trainer_s = trainer_epoch_seconds_per_image(sm, _build(sm), max(2, steps // 2), 1)
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
        "trainer_images_per_second": 1.0 / trainer_s,
        "trainer_overhead": bare_ips * trainer_s - 1.0,  # trainer's time per image over the bare loop's, - 1
        "gflops": gflops,
        "share_of_sgemm": gflops / peak_gflops,
        "layers_alone_gflops": layer_gflops,
        "layers_alone_share_of_sgemm": layer_gflops / peak_gflops,
        "share_of_layer_ceiling": gflops / layer_gflops,
    }


def record_train_benchmark(
    profile: str,
    results_dir: str | Path,
    *,
    threads: int = 1,
    force: bool = False,
    models: list[StudyModel] | None = None,
) -> dict[str, Any]:
    """Measure every study model (or ``models``) and write the record (unless one exists and not ``force``)."""
    from .microbench import benchmark_dir
    from .provenance import cpu_identity, device_description, git_info, utc_now
    from .store import write_json

    if profile not in STEP_PROFILES:
        raise ConfigError(f"unknown benchmark profile {profile!r}; valid: {', '.join(STEP_PROFILES)}")
    folder = benchmark_dir(results_dir, profile, "cpu")
    path = folder / STEP_RECORD
    if path.is_file() and not force:
        return json.loads(path.read_text())
    settings = STEP_PROFILES[profile]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    start, t0 = utc_now(), time.perf_counter()
    try:
        peak = sgemm_gflops(settings["gemm"])
        rows = [measure(sm, settings["steps"], settings["warmup"], peak) for sm in (models or study_models())]
    finally:
        torch.set_num_threads(previous)
    record = {
        "profile": profile,
        "settings": {**settings, "threads": threads, "precision": "fp32", "memory_format": "channels_last"},
        "sgemm_gflops": peak,
        "models": rows,
        "provenance": {
            **git_info(),
            "device": device_description("cpu", threads),
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
