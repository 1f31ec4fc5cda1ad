"""Every float32 in [-87, 0] through the fused ELU forward at alpha 1 on each float32 path this CPU
has (relustudy.kernels.ELU_FLOAT_PATHS): the largest distance, in units in the last place, from
the float64 reference rounded to float32 (``F.elu`` in float64) and from PyTorch's float32
``F.elu``; how many outputs are not the correctly rounded one; and whether the paths give the same
bits. Below -87 the kernel clamps (expm1 rounds to -1 there); x >= 0 is the identity.

    .venv/bin/python benchmarks/check_elu_float.py [--chunk 16777216] [--json out.json]

About a minute per path on one core. ``--json`` writes the result with its provenance.
"""

from __future__ import annotations

import argparse
import json
import struct
import time

import torch
import torch.nn.functional as F

from relustudy import kernels
from relustudy.activations import build_activation
from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.store import atomic_write

LOWEST = -87.0


def ulps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance in float32 units in the last place (ordered integer representation)."""
    ai, bi = (t.view(torch.int32).long() for t in (a, b))
    ai, bi = (torch.where(t < 0, -(t & 0x7FFFFFFF), t) for t in (ai, bi))
    return (ai - bi).abs()


def float_paths() -> list[str]:
    default = kernels.elu_float_path()
    paths = [p for p in list(kernels.ELU_FLOAT_PATHS.values())[1:] if kernels.elu_float_path(p) == p]
    kernels.elu_float_path(default)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=int, default=1 << 24, help="floats per pass")
    ap.add_argument("--json", help="also write the result, with its provenance, here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    elu = build_activation("elu")
    top = struct.unpack("<i", struct.pack("<f", -LOWEST))[0]  # magnitudes' bits 0 .. bits(87)
    paths = float_paths()
    default = kernels.elu_float_path()
    stats = {p: {"max_ulps_float64": 0, "max_ulps_torch": 0, "not_correctly_rounded": 0} for p in paths}
    same_bits, checked, t0 = True, 0, time.perf_counter()
    with torch.no_grad():
        for start in range(0, top + 1, args.chunk):
            bits = torch.arange(start, min(start + args.chunk, top + 1), dtype=torch.int32) | torch.tensor(
                -(1 << 31), dtype=torch.int32
            )
            x = bits.view(torch.float32)
            ref64, ref = F.elu(x.double()).float(), F.elu(x)
            first = None
            for p in paths:
                kernels.elu_float_path(p)
                y = elu(x)
                d64 = ulps(y, ref64)
                s = stats[p]
                s["max_ulps_float64"] = max(s["max_ulps_float64"], int(d64.max()))
                s["max_ulps_torch"] = max(s["max_ulps_torch"], int(ulps(y, ref).max()))
                s["not_correctly_rounded"] += int((d64 > 0).sum())
                if first is None:
                    first = y
                else:
                    same_bits &= torch.equal(y.view(torch.int32), first.view(torch.int32))
            checked += x.numel()
    kernels.elu_float_path(default)
    result = {
        "cpu": cpu_identity(),
        "inputs": f"every float32 in [{LOWEST:g}, 0] ({checked:,})",
        "paths": stats,
        "paths_give_the_same_bits": same_bits,
        "within_one_ulp": all(s["max_ulps_float64"] <= 1 and s["max_ulps_torch"] <= 1 for s in stats.values()),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        atomic_write(args.json, json.dumps({**result, "provenance": {**git_info(), "date": utc_now()}}, indent=1))


if __name__ == "__main__":
    main()
