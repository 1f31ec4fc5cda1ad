"""Does channels_last help the Smith models on this CPU? Training throughput, NCHW vs NHWC.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_channels_last.py [--steps 10] [--rounds 7] [--batch 128]

Random inputs, Adam, fp32, eager PyTorch, the trainer's thread count (all CPUs of the process).
Prints images/s for both memory formats and the ratio channels_last / contiguous (> 1: helps).
Formats are interleaved in short rounds and the BEST round of each is reported: on a shared
machine other processes only ever slow a round down, so the best round is the least disturbed.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from relustudy.models import build_model

CASES = [("smith_cnn", (1, 28, 28)), ("smith_cnn", (3, 32, 32)), ("smith_vgg3", (3, 32, 32))]


def images_per_second(model, x, y, opt, steps: int) -> float:
    for _ in range(3):  # warm-up
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return steps * x.shape[0] / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.activation}")
    for name, shape in CASES:
        rates: dict[bool, list[float]] = {False: [], True: []}
        setups = {}
        for cl in (False, True):
            torch.manual_seed(0)
            model = build_model(name, args.activation, {}, shape, 10)
            x = torch.randn(args.batch, *shape)
            if cl:
                model = model.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
            y = torch.randint(0, 10, (args.batch,))
            setups[cl] = (model, x, y, torch.optim.Adam(model.parameters(), 1e-3))
        for _ in range(args.rounds):
            for cl in (False, True):
                rates[cl].append(images_per_second(*setups[cl], args.steps))
        a, b = max(rates[False]), max(rates[True])
        print(
            f"{name:10s} {str(shape):12s} contiguous {a:8.0f} img/s   channels_last {b:8.0f} img/s   ratio {b / a:.2f}"
        )


if __name__ == "__main__":
    main()
