"""Training throughput on a GPU (or, for a dry run, the CPU): NIN at full width and smith_vgg3,
fp32 and bf16 autocast, channels_last, eager and torch.compile (checked against eager first).
Writes one JSON record with provenance; used by benchmarks/gpu_check.sh.

    .venv/bin/python benchmarks/bench_gpu_train.py --device cuda --out results/gpu_check/train_throughput.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from relustudy.activations import implementation
from relustudy.models import build_model
from relustudy.provenance import device_description, git_info, utc_now

MODELS = (("nin", {"width": 1.0}), ("smith_vgg3", {}))
ACTS = (("relu", {}), ("prelu", {"mode": "channel"}), ("rrelu", {}))


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def throughput(model_name, mp, act, params, dev, *, bf16, compiled, steps, batch):
    torch.manual_seed(0)
    model = build_model(model_name, act, params, (3, 32, 32), 10, **mp).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=dev)
    fwd = torch.compile(model) if compiled else model
    ctx = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    note = ""
    if compiled:  # compiled forward must agree with eager before it is timed (dropout off)
        model.eval()
        with torch.no_grad(), ctx():
            ok = torch.allclose(fwd(x).float(), model(x).float(), rtol=2e-2 if bf16 else 1e-3, atol=1e-3)
        note = "compiled matches eager" if ok else "compiled differs from eager"
        model.train()
    for i in range(steps + 3):
        if i == 3:
            _sync(dev)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss = F.cross_entropy(fwd(x).float(), y)
        loss.backward()
        opt.step()
    _sync(dev)
    return steps * batch / (time.perf_counter() - t0), note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu_train: no CUDA device on this machine (use --device cpu for a dry run)")
    rows, start = [], utc_now()
    for model_name, mp in MODELS:
        for act, params in ACTS:
            for bf16 in (False, True):
                for compiled in (False,) if args.no_compile else (False, True):
                    try:
                        ips, note = throughput(
                            model_name,
                            mp,
                            act,
                            params,
                            dev,
                            bf16=bf16,
                            compiled=compiled,
                            steps=args.steps,
                            batch=args.batch,
                        )
                    except Exception as e:  # noqa: BLE001 -- a failing case is a row, not a lost run
                        ips, note = float("nan"), f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
                    rows.append(
                        dict(
                            model=model_name,
                            activation=act,
                            precision="bf16" if bf16 else "fp32",
                            compiled=compiled,
                            images_per_second=ips,
                            note=note,
                            implementation=implementation(act, dev.type, "bf16" if bf16 else "fp32"),
                        )
                    )
                    print(rows[-1], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "rows": rows,
                "provenance": {
                    **git_info(),
                    "device": device_description(dev),
                    "torch_version": torch.__version__,
                    "start_time": start,
                    "end_time": utc_now(),
                    "steps": args.steps,
                    "batch": args.batch,
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
