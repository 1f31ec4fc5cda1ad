"""K seeds of one arm as one batched model (relustudy.batched.StackedSeeds) against the same K
seeds trained one after the other, whole SGD steps interleaved in one process
(relustudy.stepbench.interleaved_step_times): on the CPU, does batching seeds pay?

    .venv/bin/python benchmarks/bench_batched_seeds.py [--seeds 3] [--batch 32] [--cycles 20]
        [--threads 1] [--json out.json]

Prints and records the median time of one batched step of K seeds and of K separate steps, and
their ratio; ReLU (the batched model needs vmappable activations).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F

from relustudy.batched import StackedSeeds
from relustudy.models import build_model
from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.stepbench import interleaved_step_times
from relustudy.store import atomic_write
from relustudy.trainer import tune_allocator

MODELS = (("smith_cnn", (1, 28, 28)), ("radford_convnet", (1, 28, 28)), ("smith_vgg3", (3, 32, 32)))


def _models(name, shape, k):
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        out.append(build_model(name, "relu", {}, shape, 10).train())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32, help="images per seed and step")
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    allocator = tune_allocator()
    torch.set_num_threads(args.threads)
    result = {"seeds": args.seeds, "batch": args.batch, "cycles": args.cycles, "threads": args.threads, "models": {}}
    for name, shape in MODELS:
        k = args.seeds
        x = torch.rand(k, args.batch, *shape)
        y = torch.randint(0, 10, (k, args.batch))
        separate = _models(name, shape, k)
        opts = [torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for m in separate]
        stacked = StackedSeeds(_models(name, shape, k))
        opt = torch.optim.SGD(list(stacked.params.values()), lr=1e-3, momentum=0.9)

        def one_by_one(separate=separate, opts=opts, x=x, y=y):
            for i, (m, o) in enumerate(zip(separate, opts, strict=True)):
                o.zero_grad()
                F.cross_entropy(m(x[i]), y[i]).backward()
                o.step()

        def batched(opt=opt, stacked=stacked, x=x, y=y):
            opt.zero_grad()
            stacked.losses(x, y).sum().backward()
            opt.step()

        for _ in range(2):
            one_by_one(), batched()
        times = interleaved_step_times({"one by one": one_by_one, "batched": batched}, args.cycles)
        med = {k_: statistics.median(v) for k_, v in times.items()}
        paired = [b / s for b, s in zip(times["batched"], times["one by one"], strict=True)]
        result["models"][name] = {
            "median_ms": {k_: 1e3 * v for k_, v in med.items()},
            "batched_over_one_by_one": statistics.median(paired),
        }
        print(
            f"{name:16s} {k} seeds: one by one {1e3 * med['one by one']:.1f} ms, batched {1e3 * med['batched']:.1f} ms, "
            f"ratio {statistics.median(paired):.2f}"
        )
    result["provenance"] = {
        **git_info(),
        "cpu_identity": cpu_identity(),
        "date": utc_now(),
        "allocator": allocator,
        "torch_version": torch.__version__,
    }
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
