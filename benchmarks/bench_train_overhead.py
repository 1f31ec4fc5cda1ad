"""Training overhead of PReLU, Xu's RReLU and ELU against ReLU, same model, same run (issue: PReLU <= 5%,
RReLU <= 10%). Times whole training steps (forward, backward, Adam step) on the models the chapters
train, in interleaved rounds so a background load spreads over every arm, and reports the median
time per step and the overhead against ReLU: the median over rounds of each round's ratio (paired:
ReLU's steps of the same round), with its quartiles over rounds. The process keeps freed memory as
the trainer does (``relustudy.trainer.tune_allocator``). Optionally compares the fused kernels with the PyTorch
forms (``--compare-torch`` runs a second process with RELUSTUDY_KERNELS=torch).

    .venv/bin/python benchmarks/bench_train_overhead.py [--rounds 7] [--steps 6] [--json out.json]

The numbers describe this CPU and this torch build; the implementation of each activation is
printed (relustudy.activations.implementation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from relustudy.activations import implementation
from relustudy.models import build_model
from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.trainer import tune_allocator

# (model, input shape, model params): the Smith models, NIN at the Xu chapter's quick width, the
# 14-layer model at the He chapter's quick width and the TensorFlow blog's MLP with batch norm
MODELS = (
    ("smith_cnn", (3, 32, 32), {}),
    ("smith_vgg3", (3, 32, 32), {}),
    ("nin", (3, 32, 32), {"width": 0.25}),
    ("he_net", (3, 32, 32), {"width": 0.125}),
    ("simple_mlp_bn", (1, 28, 28), {"batch_norm": True}),
)
ARMS = (("relu", {}), ("prelu", {"mode": "channel"}), ("rrelu", {}), ("elu", {}))


def _step_fn(model_name, in_shape, model_params, activation, params, batch):
    torch.manual_seed(0)
    model = build_model(model_name, activation, params, in_shape=in_shape, **model_params)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, *in_shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(2):  # warm-up (allocator, kernel selection)
        step()
    return step


def measure(rounds: int, steps: int, batch: int, models: tuple[str, ...] | None = None) -> dict:
    out = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "implementations": {a: implementation(a) for a, _ in ARMS},
        "models": {},
    }
    for model_name, shape, mp in MODELS:
        if models and model_name not in models:
            continue
        fns = {a: _step_fn(model_name, shape, mp, a, p, batch) for a, p in ARMS}
        times = {a: [] for a in fns}
        for _ in range(rounds):
            for a, fn in fns.items():
                t0 = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[a].append((time.perf_counter() - t0) / steps)
        med = {a: statistics.median(t) for a, t in times.items()}
        # Paired by round: a load that comes and goes moves both arms of one round alike.
        per_round = {a: [t / r - 1 for t, r in zip(times[a], times["relu"])] for a in times if a != "relu"}
        out["models"][model_name] = {
            "median_step_ms": {a: 1e3 * m for a, m in med.items()},
            "overhead_vs_relu": {a: statistics.median(v) for a, v in per_round.items()},
            "overhead_quartiles": {a: statistics.quantiles(v, n=4)[::2] for a, v in per_round.items()},
            "rounds": rounds,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the measurement here")
    ap.add_argument("--compare-torch", action="store_true", help="also measure with RELUSTUDY_KERNELS=torch")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--models", nargs="+", choices=[m for m, _, _ in MODELS], help="only these models (default: all)")
    args = ap.parse_args()
    allocator = tune_allocator()
    torch.set_num_threads(args.threads)
    models = tuple(args.models) if args.models else None
    result = {"fused": measure(args.rounds, args.steps, args.batch, models)}
    if args.compare_torch:
        cmd = [
            sys.executable,
            __file__,
            "--rounds",
            str(args.rounds),
            "--steps",
            str(args.steps),
            "--batch",
            str(args.batch),
            "--threads",
            str(args.threads),
            "--quiet",
            "--json",
            "/dev/stdout",
            *(["--models", *models] if models else []),
        ]
        env = {**os.environ, "RELUSTUDY_KERNELS": "torch"}
        result["torch"] = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)[
            "fused"
        ]
    if not args.quiet:
        for which, r in result.items():
            print(f"== {which}: threads {r['threads']}, torch {r['torch']}")
            for a, impl in r["implementations"].items():
                print(f"   {a}: {impl}")
            for model, m in r["models"].items():
                ms = ", ".join(f"{a} {v:.1f}" for a, v in m["median_step_ms"].items())
                ov = ", ".join(
                    f"{a} {100 * v:+.1f}% (quartiles {100 * q[0]:+.1f}, {100 * q[1]:+.1f})"
                    for (a, v), q in zip(m["overhead_vs_relu"].items(), m["overhead_quartiles"].values())
                )
                print(f"   {model:<11} step ms: {ms}   overhead vs ReLU: {ov}")
    if args.json:
        if args.json != "/dev/stdout":  # the record, with where and when it was measured
            result["provenance"] = {
                **git_info(),
                "cpu_identity": cpu_identity(),
                "date": utc_now(),
                "argv": sys.argv[1:],
                "allocator": allocator,
            }
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
