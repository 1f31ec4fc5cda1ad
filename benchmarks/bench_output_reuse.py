"""Where do an activation's outputs land? For each trained activation, as the models run it, the
number of distinct addresses its forward outputs (and its backward's input gradients) take over
repeated calls at the micro-benchmark's two tensor sizes, each output freed before the next call
(as the micro-benchmark's timing loop frees it). One address means the pass writes into memory the
previous pass just wrote (in cache when the tensors fit it); several mean the writes go to memory
last touched longer ago. A diagnostic for the cache-resident rows of the micro-benchmark: the copy
bound writes one preallocated tensor every time.

    .venv/bin/python benchmarks/bench_output_reuse.py [--calls 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import torch

from relustudy.activations import build_activation, implementation
from relustudy.microbench import BENCH_PROFILES, PARAMETRISED, TRAINED_ACTIVATIONS
from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.trainer import tune_allocator


def distinct_addresses(name: str, shape: tuple[int, ...], calls: int) -> dict[str, int]:
    base, params = PARAMETRISED.get(name, (name, {}))
    module = build_activation(base, num_channels=shape[1], **params).train()
    x = torch.randn(shape).requires_grad_()
    forward = []
    for _ in range(calls):
        y = module(x)
        forward.append(y.data_ptr())
        del y
    y, g = module(x), torch.randn(shape)
    backward = []
    for _ in range(calls):
        gx = torch.autograd.grad(y, x, g, retain_graph=True)[0]
        backward.append(gx.data_ptr())
        del gx
    return {"forward": len(set(forward)), "backward": len(set(backward)), "implementation": implementation(base)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=16)
    ap.add_argument("--profile", default="quick", choices=sorted(BENCH_PROFILES))
    ap.add_argument("--json", help="write the measurement here")
    args = ap.parse_args()
    allocator = tune_allocator()
    settings = BENCH_PROFILES[args.profile]
    shapes = [settings["shape"], *([settings["memory_shape"]] if settings.get("memory_shape") else [])]
    out = {"calls": args.calls, "allocator": allocator, "sizes": {}}
    for shape in shapes:
        key = "x".join(map(str, shape))
        out["sizes"][key] = {name: distinct_addresses(name, tuple(shape), args.calls) for name in TRAINED_ACTIVATIONS}
        for name, r in out["sizes"][key].items():
            print(f"{key} {name:<14} forward {r['forward']:>2}  backward {r['backward']:>2}  ({r['implementation']})")
    if args.json:
        out["provenance"] = {**git_info(), "cpu_identity": cpu_identity(), "date": utc_now()}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
