"""Training throughput (images/s) of the Smith models on this CPU: fp32 vs bf16 autocast,
channels_last vs contiguous, ReLU vs PReLU. Ratios are taken within one run (noisy machine).

    .venv/bin/python benchmarks/bench_train_throughput.py [--steps 20]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from relustudy.models import build_model


def images_per_second(model_name, in_shape, activation, params, *, bf16, channels_last, steps, batch=128):
    torch.manual_seed(0)
    model = build_model(model_name, activation, params, in_shape=in_shape)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, *in_shape).to(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cases = [("smith_cnn", (1, 28, 28)), ("smith_cnn", (3, 32, 32)), ("smith_vgg3", (3, 32, 32))]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'model':<11} {'input':<11} {'act':<6} {'fp32':>7} {'fp32 CL':>8} {'bf16 CL':>8}  CL/fp32  bf16/fp32CL")
    for name, shape in cases:
        for act, params in (("relu", {}), ("prelu", {"mode": "channel"})):
            steps = args.steps if name == "smith_cnn" else max(4, args.steps // 4)
            a = images_per_second(name, shape, act, params, bf16=False, channels_last=False, steps=steps)
            b = images_per_second(name, shape, act, params, bf16=False, channels_last=True, steps=steps)
            c = images_per_second(name, shape, act, params, bf16=True, channels_last=True, steps=steps)
            print(f"{name:<11} {str(shape):<11} {act:<6} {a:7.0f} {b:8.0f} {c:8.0f}  {b / a:6.2f}  {c / b:6.2f}")


if __name__ == "__main__":
    main()
