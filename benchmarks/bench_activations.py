"""Implementation benchmark of the activations: forward and backward separately, vs a copy bound.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_activations.py [--device cpu|cuda]
        [--compile] [--shape 128,32,28,28] [--out bench_activations.csv]
        [--names relu,relu_abs,...] [--repeats 7] [--min-run-time 0.2] [--threads N]
        [--dtype float32]

Runs ``relustudy.microbench.benchmark_activations`` (see its docstring for what is timed and
how), writes the full table as CSV to ``--out`` and prints the main columns. ``--device cuda``
on a machine without CUDA prints "skipped: ..." and exits 0 without writing anything.
Roughly repeats * 2 * (cases + 1) * min_run_time seconds: ~1-2 minutes with the defaults,
plus compilation with --compile.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd
import torch

from relustudy.microbench import DeviceUnavailableError, benchmark_activations

SHOW = ["name", "kind", "direction", "median_ms", "iqr_ms", "gbps", "bound_ratio", "compiled_matches_eager", "error"]


def parse_shape(text: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,x\s]+", text.strip().strip("()")) if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must be integers like 128,32,28,28, got {text!r}") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"shape needs >= 2 positive dims (channels on dim 1), got {text!r}")
    return shape


def parse_dtype(text: str) -> torch.dtype:
    dtype = getattr(torch, text, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise argparse.ArgumentTypeError(f"not a floating torch dtype: {text!r}")
    return dtype


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="also time each variant under torch.compile")
    ap.add_argument("--shape", type=parse_shape, default=(128, 32, 28, 28), help="e.g. 128,32,28,28 (NCHW)")
    ap.add_argument("--out", type=Path, default=Path("bench_activations.csv"), help="CSV path")
    ap.add_argument("--names", default=None, help="comma-separated subset (registry or builtin names)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-run-time", type=float, default=0.2, help="seconds per measurement")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    ap.add_argument("--dtype", type=parse_dtype, default=torch.float32)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    try:
        df = benchmark_activations(
            names=names,
            shape=args.shape,
            device=args.device,
            dtype=args.dtype,
            repeats=args.repeats,
            min_run_time=args.min_run_time,
            compile=args.compile,
            threads=args.threads,
        )
    except DeviceUnavailableError as e:
        print(f"skipped: {e}", file=sys.stderr)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    first = df.iloc[0].to_dict()  # a dict: Series attributes like .shape/.dtype would shadow columns
    print(
        f"torch {first['torch_version']}, device {first['device']}, {first['dtype']}, shape {first['shape']}, "
        f"{first['threads']} thread(s), {first['repeats']} repeats x {first['min_run_time']:g} s"
    )
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.max_colwidth", 60):
        print(df[SHOW].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
