"""Training throughput (images/s) eager vs ``torch.compile`` (inductor, CPU) for the study's models,
and a check that the compiled model computes what the eager one does (same init, same batch:
max |loss difference| and max |gradient difference| after one step).

Ratios are taken within one run (the machine is noisy). Compile time is reported separately:
it is paid once per run (per process), so it matters for short quick runs.

    .venv/bin/python benchmarks/bench_compile.py [--steps 12] [--models smith_vgg3,radford_convnet]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from relustudy.models import build_model

CASES = {
    "smith_vgg3": ((3, 32, 32), 128),
    "smith_cnn": ((3, 32, 32), 128),
    "radford_convnet": ((1, 28, 28), 128),
    "simple_mlp_bn": ((1, 28, 28), 128),
}


def make(model_name, activation, params, channels_last):
    in_shape, _ = CASES[model_name]
    torch.manual_seed(0)
    model = build_model(model_name, activation, params, in_shape=in_shape)
    if channels_last and model_name != "simple_mlp_bn":
        model = model.to(memory_format=torch.channels_last)
    return model


def throughput(model, in_shape, batch, steps, channels_last):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, *in_shape, generator=gen)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), generator=gen)
    t_first = time.perf_counter()
    for i in range(steps + 3):
        if i == 1:
            first = time.perf_counter() - t_first  # includes compilation for compiled models
        if i == 3:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0), first


def agreement(model_name, activation, params, channels_last):
    """max |loss diff| and max |grad diff| between eager and compiled on the same init/batch (eval
    mode so dropout and RReLU's sampling are out of the comparison; train-mode RReLU is random)."""
    in_shape, batch = CASES[model_name]
    eager = make(model_name, activation, params, channels_last).eval()
    comp = torch.compile(make(model_name, activation, params, channels_last).eval())
    x = torch.randn(batch, *in_shape, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(3))
    le = F.cross_entropy(eager(x), y)
    lc = F.cross_entropy(comp(x), y)
    le.backward()
    lc.backward()
    gd = max(float((a.grad - b.grad).abs().max()) for a, b in zip(eager.parameters(), comp.parameters(), strict=True))
    return abs(float(le - lc)), gd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--models", default="smith_vgg3,radford_convnet,simple_mlp_bn")
    ap.add_argument("--activations", default="relu,prelu")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, steps {args.steps}")
    print(
        f"{'model':<16} {'act':<7} {'eager':>7} {'compiled':>9} {'ratio':>6} {'compile s':>10} {'|dloss|':>9} {'|dgrad|':>9}"
    )
    for name in args.models.split(","):
        in_shape, batch = CASES[name]
        cl = name != "simple_mlp_bn"
        for act in args.activations.split(","):
            params = {"mode": "channel"} if act == "prelu" else {}
            eager_ips, _ = throughput(make(name, act, params, cl), in_shape, batch, args.steps, cl)
            comp_ips, first = throughput(torch.compile(make(name, act, params, cl)), in_shape, batch, args.steps, cl)
            dl, dg = agreement(name, act, params, cl)
            print(
                f"{name:<16} {act:<7} {eager_ips:7.0f} {comp_ips:9.0f} {comp_ips / eager_ips:6.2f} {first:10.1f} {dl:9.2e} {dg:9.2e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
