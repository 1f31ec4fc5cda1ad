"""Where the trainer's epoch loop spends time beyond the bare step (issue: trainer within 3% of the
bare loop). For each chosen study model it times, interleaved cycle by cycle
(``relustudy.stepbench.interleaved_step_times``), epochs of ``--batches`` steps built up piece by
piece from the bare step (forward, cross-entropy, backward, Adam on a resident float batch):

  bare        the bare step on the resident batch
  rotated     the bare step over the epoch's batches, each made once before timing (no gather:
              the data is as fresh to the caches as the trainer's, the work is the bare step's)
  +gather     the rotated steps plus a gather of each step's batch that is thrown away (the cost
              of moving a batch's bytes, which the bare step on a resident batch never pays)
  +batch      the batch gathered by a shuffled index (the trainer's ``RunData.train_batch``)
  +metrics    the predictions kept per step, counted wrong once per epoch
  +finite     the per-step read of the loss, its finiteness check and the float64 running sum
  trainer     ``relustudy.trainer._train_epoch`` itself (randperm, all of the above)

and reports each one's median paired overhead over ``bare`` with its 95% interval, and the
trainer's over ``rotated`` (what the trainer adds beyond stepping through distinct batches). Run with the
other core quiet; the numbers describe this CPU only.

    .venv/bin/python benchmarks/bench_trainer_pieces.py [--models mlp smith_cnn] [--cycles 40]
        [--batches 8] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics

import torch
import torch.nn.functional as F

from relustudy.config import RunConfig
from relustudy.optim import build_optimizer
from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.rundata import RunData
from relustudy.stats import median_interval
from relustudy.stepbench import _build, _sync, interleaved_step_times, study_models
from relustudy.trainer import _train_epoch, tune_allocator

CPU = torch.device("cpu")


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _epochs(sm, batches: int) -> dict:
    n = sm.batch_size * batches
    gen = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (n, *sm.in_shape), dtype=torch.uint8, generator=gen)
    y8 = torch.randint(0, sm.num_classes, (n,), generator=gen)
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
    x_res, y_res = data.to_float(x8[: sm.batch_size]), y8[: sm.batch_size]
    pool = [data.train_batch(torch.arange(s, min(s + sm.batch_size, n))) for s in range(0, n, sm.batch_size)]

    def rotated(gather: bool):
        model = _build(sm)
        opt = build_optimizer(config, model)

        def epoch() -> None:
            perm = torch.randperm(n, generator=gen)
            for k, (x, y) in enumerate(pool):
                if gather:
                    data.train_batch(perm[k * sm.batch_size : (k + 1) * sm.batch_size])
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            _sync(CPU)

        return epoch

    def loop(batch: bool, metrics: bool, finite: bool):
        model = _build(sm)
        opt = build_optimizer(config, model)

        def epoch() -> None:
            perm = torch.randperm(n, generator=gen)
            loss_sum = 0.0
            preds, labels = [], []
            for start in range(0, n, sm.batch_size):
                x, y = data.train_batch(perm[start : start + sm.batch_size]) if batch else (x_res, y_res)
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                if finite:
                    loss_sum += loss.item() * y.numel()
                    if not math.isfinite(loss_sum):
                        break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if metrics:
                    preds.append(logits.detach().argmax(dim=1))
                    labels.append(y)
            if metrics:
                int((torch.cat(preds) != torch.cat(labels)).sum())
            _sync(CPU)

        return epoch

    trainer_model = _build(sm)
    trainer_opt = build_optimizer(config, trainer_model)
    return {
        "bare": loop(False, False, False),
        "rotated": rotated(False),
        "+gather": rotated(True),
        "+batch": loop(True, False, False),
        "+metrics": loop(True, True, False),
        "+finite": loop(True, True, True),
        "trainer": lambda: _train_epoch(trainer_model, trainer_opt, data, config, CPU, gen, _NoBar()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp", "smith_cnn"], help="study model names (all widths)")
    ap.add_argument("--cycles", type=int, default=40)
    ap.add_argument("--batches", type=int, default=8, help="steps per timed epoch")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    allocator = tune_allocator()
    rows = []
    for sm in study_models():
        if sm.model not in args.models:
            continue
        epochs = _epochs(sm, args.batches)
        for _ in range(args.warmup):
            for fn in epochs.values():
                fn()
        times = interleaved_step_times(epochs, args.cycles)
        row = {"model": sm.label, "bare_seconds_per_step": statistics.median(times["bare"]) / args.batches}
        for name in list(epochs)[1:]:
            ratios = [t / b - 1.0 for t, b in zip(times[name], times["bare"], strict=True)]
            row[name] = median_interval(ratios)
        ratios = [t / r - 1.0 for t, r in zip(times["trainer"], times["rotated"], strict=True)]
        row["trainer over rotated"] = median_interval(ratios)
        rows.append(row)
        cells = "  ".join(f"{k} {v[0]:+.1%} [{v[1]:+.1%}, {v[2]:+.1%}]" for k, v in row.items() if isinstance(v, tuple))
        print(f"{sm.label}: bare {row['bare_seconds_per_step'] * 1e3:.2f} ms/step  {cells}", flush=True)
    if args.json:
        out = {
            "settings": vars(args) | {"allocator": allocator},
            "provenance": {"cpu": cpu_identity(), "git": git_info(), "torch": torch.__version__, "date": utc_now()},
            "rows": rows,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
