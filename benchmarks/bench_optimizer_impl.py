"""The optimizer step's implementation (issue: every study model at 60% of its convs' ceiling; the
optimizer step is one of the usual gaps). PyTorch's Adam and SGD have three implementations: the
per-parameter loop (``foreach=False``, what torch picks on the CPU and what every record of ours
used), ``foreach=True`` (multi-tensor ops) and ``fused=True`` (one kernel per parameter). For each
chosen study model and optimizer this script

- times the bare training step (forward, cross-entropy, backward, step on the resident batch) with
  each implementation, interleaved cycle by cycle (``relustudy.stepbench.interleaved_step_times``),
  and reports each one's median paired time ratio to the loop with its 95% interval;
- runs ``--exact-steps`` steps with each from the same initialisation and says whether the losses
  and the parameters are the loop's bit for bit, else the largest absolute parameter difference.

Only a bit-identical implementation could replace the loop without changing the study's numbers.
Run with the other core quiet; the numbers describe this CPU only.

    .venv/bin/python benchmarks/bench_optimizer_impl.py [--models simple_mlp_bn he_net] [--cycles 30]
        [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F

from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.stats import median_interval
from relustudy.stepbench import _batch, _build, interleaved_step_times, study_models
from relustudy.trainer import tune_allocator

CPU = torch.device("cpu")
IMPLEMENTATIONS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
OPTIMIZERS = {  # the settings the study's grids use (Adam in quick profiles, SGD in the regime ones)
    "adam": lambda params, impl: torch.optim.Adam(params, lr=1e-4, **impl),
    "sgd": lambda params, impl: torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4, **impl),
}


def _stepper(sm, optimizer: str, impl: str):
    model = _build(sm)
    x, y = _batch(sm, CPU)
    opt = OPTIMIZERS[optimizer](model.parameters(), IMPLEMENTATIONS[impl])

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return model, step


def _exactness(sm, optimizer: str, steps: int) -> dict[str, str]:
    runs = {}
    for impl in IMPLEMENTATIONS:
        model, step = _stepper(sm, optimizer, impl)
        losses = [step() for _ in range(steps)]
        runs[impl] = (torch.stack(losses), [p.detach().clone() for p in model.parameters()])
    ref_losses, ref_params = runs["loop"]
    verdicts = {}
    for impl, (losses, params) in runs.items():
        if impl == "loop":
            continue
        same = torch.equal(losses, ref_losses) and all(
            torch.equal(a, b) for a, b in zip(params, ref_params, strict=True)
        )
        diff = max(float((a - b).abs().max()) for a, b in zip(params, ref_params, strict=True))
        verdicts[impl] = "bit-identical" if same else f"differs (max |param diff| {diff:.3g})"
    return verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["simple_mlp_bn", "he_net"], help="study model names")
    ap.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--exact-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    allocator = tune_allocator()
    rows = []
    for sm in study_models():
        if sm.model not in args.models:
            continue
        for optimizer in args.optimizers:
            steps = {impl: _stepper(sm, optimizer, impl)[1] for impl in IMPLEMENTATIONS}
            for _ in range(args.warmup):
                for fn in steps.values():
                    fn()
            times = interleaved_step_times(steps, args.cycles)
            row = {
                "model": sm.label,
                "optimizer": optimizer,
                "loop_seconds_per_step": statistics.median(times["loop"]),
                "exactness": _exactness(sm, optimizer, args.exact_steps),
            }
            for impl in list(IMPLEMENTATIONS)[1:]:
                row[f"{impl} / loop"] = median_interval(
                    [t / b for t, b in zip(times[impl], times["loop"], strict=True)]
                )
            rows.append(row)
            cells = "  ".join(
                f"{k} {v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for k, v in row.items() if isinstance(v, tuple)
            )
            print(
                f"{sm.label}, {optimizer}: loop {row['loop_seconds_per_step'] * 1e3:.2f} ms/step  {cells}  "
                f"{row['exactness']}",
                flush=True,
            )
    if args.json:
        out = {
            "settings": vars(args) | {"allocator": allocator},
            "provenance": {"cpu": cpu_identity(), "git": git_info(), "torch": torch.__version__, "date": utc_now()},
            "rows": rows,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
