"""Pilot of a regime profile: one run of an experiment's arm with settings overridden, trained with
the study's own trainer pieces, logging the eval-mode training error (and test error) every few
epochs, so that a regime criterion can be sized before a grid is started. Writes one JSON line per
evaluation and a summary to ``--out`` (appended atomically per line).

    .venv/bin/python benchmarks/pilot_regime.py xu_cifar10_nin --arm ReLU --profile quick \
        --set epochs=60 lr=0.001 schedule=cosine train_subset=5000 width=0.5 --every 5 --out pilot.jsonl
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from relustudy import sources  # noqa: F401  (registers the experiments)
from relustudy.config import RunConfig
from relustudy.experiments import get_experiment
from relustudy.rundata import prepare_run_data
from relustudy.trainer import (
    _configure_backends,
    _evaluate,
    _train_epoch,
    build_optimizer,
    build_run_model,
    build_scheduler,
    resolve_device,
    shuffle_generator,
    tune_allocator,
)

MODEL_KEYS = ("width",)


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment")
    ap.add_argument("--arm", required=True)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="RunConfig fields (width=... goes to model_params)")
    ap.add_argument("--every", type=int, default=5, help="evaluate every this many epochs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    exp = get_experiment(args.experiment)
    base = next(c for c in exp.configs(args.profile, seeds=[args.seed], device="cpu") if c.arm == args.arm)
    fields = {**base.__dict__, "num_threads": args.threads}
    fields["model_params"] = dict(base.model_params)
    for item in args.set:
        key, _, text = item.partition("=")
        if key in MODEL_KEYS:
            fields["model_params"][key] = _value(text)
        else:
            fields[key] = _value(text)
    config = RunConfig.from_dict(fields)
    tune_allocator()
    device = resolve_device("cpu")
    _configure_backends(config, device)
    data = prepare_run_data(config, device, None, False, config.channels_last)
    model = build_run_model(config, data, device)
    optimizer = build_optimizer(config, model)
    scheduler = build_scheduler(config, optimizer)
    gen = shuffle_generator(config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head = {
        "pilot": args.set,
        "arm": args.arm,
        "seed": args.seed,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "train_images": int(data.y_train.numel()),
    }
    with args.out.open("a") as f:
        f.write(json.dumps({"start": head}) + "\n")
    t0, train_seconds = time.perf_counter(), 0.0
    for epoch in range(1, config.epochs + 1):
        tr = _train_epoch(model, optimizer, data, config, device, gen, _NoBar())
        train_seconds += tr["epoch_seconds"]
        if scheduler is not None:
            scheduler.step()
        if not tr["finite"]:
            break
        if epoch % args.every == 0 or epoch == config.epochs:
            te = _evaluate(model, data, config, device, "train")
            ts = _evaluate(model, data, config, device, "test")
            row = {
                "epoch": epoch,
                "train_error": tr["train_error"],
                "train_loss": tr["train_loss"],
                "train_eval_error": te["test_error"],
                "test_error": ts["test_error"],
                "images_per_second": tr["images_per_second"],
                "wall": time.perf_counter() - t0,
                "train_seconds": train_seconds,
            }
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
