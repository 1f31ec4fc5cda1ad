"""ELU's forward: the fused kernel (relustudy.kernels) on the path this CPU takes at alpha 1 ("fused")
and on each of its other paths ("fused, <path>": float32 AVX-512 or AVX2, or float64 vectors, where
the CPU has them), against PyTorch's F.elu and a copy of the same tensor, timed alternately in one
process (a passing load falls on all alike); prints each as a multiple of the copy's median time.

    .venv/bin/python benchmarks/bench_elu_forward.py --numel 4000000 --threads 1 [--json out.json]

``--json`` writes the measurement with its provenance (commit, CPU, date), atomically. The process
keeps freed memory as the trainer does (``relustudy.trainer.tune_allocator``): the fused forward
and F.elu allocate their output, the copy writes into one made before.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from relustudy import kernels
from relustudy.activations import build_activation, implementation
from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.store import atomic_write
from relustudy.trainer import tune_allocator


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--numel", type=int, default=4_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", help="also write the measurement, with its provenance, here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_allocator()  # as the trainer runs: a fresh output reuses freed memory, no page faults
    x = torch.randn(args.numel)
    out = torch.empty_like(x)
    fused = build_activation("elu")
    default = kernels.elu_float_path()

    def on_path(path: str):
        def run() -> None:
            kernels.elu_float_path(path)
            fused(x)
            kernels.elu_float_path(default)

        return run

    cases = {"copy": lambda: out.copy_(x), "fused": lambda: fused(x)}
    for path in kernels.ELU_FLOAT_PATHS.values():
        if path != default and kernels.elu_float_path(path) == path:  # a path this CPU has
            cases[f"fused, {path}"] = on_path(path)
        kernels.elu_float_path(default)
    cases["F.elu"] = lambda: F.elu(x)
    times = {k: [] for k in cases}
    for _ in range(args.rounds):  # interleaved rounds
        for name, fn in cases.items():
            times[name].append(_median_seconds(fn, 9))
    copy = statistics.median(times["copy"])
    result = {
        "cpu": cpu_identity(),
        "threads": args.threads,
        "numel": args.numel,
        "rounds": args.rounds,
        "fused implementation": implementation("elu"),
        "copy_ms": round(copy * 1e3, 3),
        "over_copy": {k: round(statistics.median(v) / copy, 2) for k, v in times.items()},
    }
    print(json.dumps(result, indent=1))
    if args.json:
        atomic_write(args.json, json.dumps({**result, "provenance": {**git_info(), "date": utc_now()}}, indent=1))


if __name__ == "__main__":
    main()
