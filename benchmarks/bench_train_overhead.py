"""Training overhead of PReLU, Xu's RReLU and ELU against ReLU, same model, same run (issue: PReLU <= 5%,
RReLU <= 10%). Times whole training steps (forward, backward, Adam step) on the models the chapters
train, interleaved step by step: a cycle runs one step of every arm, the arms' order rotating from
cycle to cycle (so no arm always follows the same one), and an arm's overhead in a cycle is its step
time over ReLU's step of the same cycle, a fraction of a second apart, so a background load that
comes and goes moves both alike. Reported per model and arm: the median step time, and the median
over cycles of that paired overhead with its distribution-free 95% interval
(``relustudy.stats.median_interval``) and quartiles. The process keeps freed memory as the trainer
does (``relustudy.trainer.tune_allocator``). Optionally compares the fused kernels with the PyTorch
forms (``--compare-torch`` runs a second process with RELUSTUDY_KERNELS=torch).

    .venv/bin/python benchmarks/bench_train_overhead.py [--cycles 60] [--json out.json]
        [--models nin smith_cnn --cycles 240 --update]   # measure some models again, longer
        [--precision bf16]   # forward passes under bf16 autocast (the trainer's precision "bf16")

Each model's entry names when and at which commit it was measured (``measured``), so ``--update``
(replace the measured models' entries of an existing record, keep the others) leaves a record
whose every number still says where it came from.

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

import torch
import torch.nn.functional as F

from relustudy.activations import implementation
from relustudy.config import PRECISIONS
from relustudy.models import build_model
from relustudy.provenance import BF16_FLAGS, cpu_bf16_units, cpu_identity, git_info, utc_now
from relustudy.stats import median_interval
from relustudy.stepbench import interleaved_step_times
from relustudy.store import atomic_write
from relustudy.trainer import ACTIVATION_DTYPES, precision_context, tune_allocator

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


def _step_fn(model_name, in_shape, model_params, activation, params, batch, precision):
    torch.manual_seed(0)
    model = build_model(model_name, activation, params, in_shape=in_shape, **model_params)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, *in_shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        with precision_context(precision, "cpu"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up (allocator, kernel selection)
        step()
    return step


def measure(cycles: int, batch: int, models: tuple[str, ...] | None = None, precision: str = "fp32") -> dict:
    out = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "precision": precision,
        "implementations": {a: implementation(a, "cpu", ACTIVATION_DTYPES[precision]) for a, _ in ARMS},
        "design": "step-interleaved cycles, rotating arm order; overhead = median over cycles of arm step / ReLU step - 1",
        "models": {},
    }
    for model_name, shape, mp in MODELS:
        if models and model_name not in models:
            continue
        fns = {a: _step_fn(model_name, shape, mp, a, p, batch, precision) for a, p in ARMS}
        times = interleaved_step_times(fns, cycles)
        med = {a: statistics.median(t) for a, t in times.items()}
        paired = {a: [t / r - 1 for t, r in zip(times[a], times["relu"], strict=True)] for a in times if a != "relu"}
        intervals = {a: median_interval(v) for a, v in paired.items()}
        out["models"][model_name] = {
            "median_step_ms": {a: 1e3 * m for a, m in med.items()},
            "overhead_vs_relu": {a: iv[0] for a, iv in intervals.items()},
            "overhead_ci95": {a: [iv[1], iv[2]] for a, iv in intervals.items()},
            "overhead_quartiles": {a: statistics.quantiles(v, n=4)[::2] for a, v in paired.items()},
            "cycles": cycles,
            "measured": {"date": utc_now(), "git_commit": git_info()["git_commit"]},
        }
    return out


def merge_record(old: dict, new: dict) -> dict:
    """``old`` with the models ``new`` measured replaced, per activation code ("fused", "torch");
    the codes and models ``new`` did not measure are kept as they were. The provenance becomes
    ``new``'s, with ``old``'s kept under ``earlier`` (a list, oldest first)."""
    out = {k: v for k, v in old.items() if k != "provenance"}
    for code, part in new.items():
        if code == "provenance":
            continue
        kept = (old.get(code) or {}).get("models", {})
        out[code] = {**part, "models": {**kept, **part["models"]}}
    if "provenance" in new:
        earlier = [
            *(old.get("provenance", {}).get("earlier", [])),
            {k: v for k, v in old.get("provenance", {}).items() if k != "earlier"},
        ]
        out["provenance"] = {**new["provenance"], "earlier": [e for e in earlier if e]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=60, help="interleaved cycles (one step of every arm each)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the measurement here")
    ap.add_argument("--compare-torch", action="store_true", help="also measure with RELUSTUDY_KERNELS=torch")
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16: forward passes under bf16 autocast")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--update", action="store_true", help="replace only the measured models in the --json record")
    ap.add_argument("--models", nargs="+", choices=[m for m, _, _ in MODELS], help="only these models (default: all)")
    args = ap.parse_args()
    allocator = tune_allocator()
    torch.set_num_threads(args.threads)
    models = tuple(args.models) if args.models else None
    if args.cycles < 6:
        ap.error(f"--cycles must be >= 6 (a 95% interval of the median needs 6), got {args.cycles}")
    if args.update and not (args.json and os.path.isfile(args.json)):
        ap.error("--update needs an existing --json record")
    if args.precision == "bf16" and cpu_bf16_units() is False:
        ap.error(f"--precision bf16 needs a CPU with bf16 units ({' or '.join(BF16_FLAGS)}); this one has none")
    result = {"fused": measure(args.cycles, args.batch, models, args.precision)}
    if args.compare_torch:
        cmd = [
            sys.executable,
            __file__,
            "--cycles",
            str(args.cycles),
            "--batch",
            str(args.batch),
            "--threads",
            str(args.threads),
            "--precision",
            args.precision,
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
            print(f"== {which}: threads {r['threads']}, torch {r['torch']}, precision {r['precision']}")
            for a, impl in r["implementations"].items():
                print(f"   {a}: {impl}")
            for model, m in r["models"].items():
                ms = ", ".join(f"{a} {v:.1f}" for a, v in m["median_step_ms"].items())
                ov = ", ".join(
                    f"{a} {100 * v:+.1f}% (95% CI {100 * q[0]:+.1f} to {100 * q[1]:+.1f})"
                    for (a, v), q in zip(m["overhead_vs_relu"].items(), m["overhead_ci95"].values(), strict=True)
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
        if args.update:
            with open(args.json) as f:
                result = merge_record(json.load(f), result)
        if args.json == "/dev/stdout":
            print(json.dumps(result, indent=1))
        else:
            atomic_write(args.json, json.dumps(result, indent=1))  # a killed run leaves the old record


if __name__ == "__main__":
    main()
