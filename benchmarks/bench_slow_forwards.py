"""Why are some forward passes 20-100x slower than a copy of the same bytes on our CPU?

The recorded micro-benchmark (results/microbench/quick/cpu) shows eager ``F.relu`` forward near
the copy bound but ``F.elu``, ``F.rrelu``, ``torch.where`` forms and the *compiled* ReLU forms 20-100x
slower, for a 14.7 MB activation tensor. This script times each case per call together with the
minor page faults per call (``getrusage().ru_minflt``), with and without a preallocated output
(``out=``), and the compiled forms with and without an input that requires grad.

    .venv/bin/python benchmarks/bench_slow_forwards.py [--shape 128,32,30,30] [--calls 30]

What it showed on 2026-11-26 (torch 2.14.1, 2 threads, AMD EPYC, one run; see the note of that
session): page faults are not the cause (0 per call for the slow cases, and ``out=`` does not
help); eager ``torch.where(mask, x, 0)`` with a 0-dim ``other`` costs 20x a copy even with the mask
precomputed and ``out=``; ``F.elu`` and ``F.rrelu(training=True)`` are slow kernels on this build;
and a *compiled* ReLU is as fast as eager when its input does not require grad, but 20-40x slower
when it does (the compiled training graph), which is how the micro-benchmark times compiled forms
(as in training).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F

from relustudy.activations import build_activation


def per_call(fn, calls: int) -> tuple[float, float]:
    """(median ms per call, mean minor page faults per call) over ``calls`` calls after 3 warm-ups."""
    for _ in range(3):
        fn()
    times, faults0 = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / calls
    times.sort()
    return 1000 * times[len(times) // 2], faults


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="128,32,30,30", help="activation tensor shape (the quick benchmark's)")
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    torch.manual_seed(0)
    x = torch.randn(shape)
    out = torch.empty_like(x)
    mask, zero = x > 0, torch.zeros((), dtype=x.dtype)
    x_grad = x.clone().requires_grad_()  # as in training: autograd records the op
    pages = x.numel() * x.element_size() / 4096
    relu_max = build_activation("relu_max")  # the registry's form, as the micro-benchmark times it
    compiled_relu_max = torch.compile(relu_max)
    compiled_relu = torch.compile(F.relu)
    no_grad_relu = torch.no_grad()(compiled_relu)
    cases = {
        "copy_ into preallocated (bound)": lambda: out.copy_(x),
        "F.relu (new output)": lambda: F.relu(x),
        "clamp_min(x, 0, out=) (no new memory)": lambda: torch.clamp_min(x, 0, out=out),
        "relu_max eager (new output)": lambda: relu_max(x),
        "torch.where(x > 0, x, 0) (new output + mask)": lambda: torch.where(x > 0, x, 0.0),
        "x > 0 (the mask alone)": lambda: x > 0,
        "torch.where(mask, x, zero tensor, out=)": lambda: torch.where(mask, x, zero, out=out),
        "F.elu (new output)": lambda: F.elu(x),
        "F.elu(out=) via torch._C._nn.elu": lambda: torch._C._nn.elu(x, out=out),
        "tanh (new output)": lambda: torch.tanh(x),
        "tanh(out=)": lambda: torch.tanh(x, out=out),
        "F.rrelu training (new output + noise)": lambda: F.rrelu(x, training=True),
        "compiled F.relu (new output)": lambda: compiled_relu(x),
        "compiled relu_max (new output)": lambda: compiled_relu_max(x),
        "empty_like + fill_ (allocation only)": lambda: torch.empty_like(x).fill_(0.0),
        "eager F.relu, input requires grad": lambda: F.relu(x_grad),
        "compiled F.relu, input requires grad": lambda: compiled_relu(x_grad),
        "compiled relu_max, input requires grad": lambda: compiled_relu_max(x_grad),
        "compiled F.relu under no_grad, input requires grad": lambda: no_grad_relu(x_grad),
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, tensor {shape} fp32 = "
        f"{x.numel() * 4 / 1e6:.1f} MB = {pages:.0f} pages of 4 KiB"
    )
    print(f"{'case':48s} {'ms/call':>9s} {'faults/call':>12s} {'faults/page':>12s}")
    for name, fn in cases.items():
        ms, faults = per_call(fn, args.calls)
        print(f"{name:48s} {ms:9.3f} {faults:12.0f} {faults / pages:12.2f}")


if __name__ == "__main__":
    main()
