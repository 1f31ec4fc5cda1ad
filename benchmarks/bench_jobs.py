"""One grid slice scheduled two ways on this machine, in one measurement: sequentially with all
threads per run, and ``--jobs N`` runs at a time with one thread each; the wall time of each way
(alternated, paired), their ratio, and whether the thread count changes a run's numbers.

    .venv/bin/python benchmarks/bench_jobs.py --out results/microbench/quick/cpu/jobs_vs_sequential.json \\
        [--experiment smith_cifar10_cnn --profile quick --seeds 0 1 --pairs 1]

Each way trains the slice into a fresh scratch store (nothing is reused), so both do the same
work; the machine should be otherwise idle (the record says what else was running is unknown).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.store import ResultsStore, write_json
from relustudy.trainer import TIMING_METRICS


def _run(args: list[str], store: Path) -> float:
    cmd = [sys.executable, "-m", "relustudy.cli", *args, "--results-dir", str(store)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _untimed(store: Path) -> dict[str, dict]:
    """run id without threads -> untimed metrics (the run id does not include threads)."""
    return {
        rec["run_id"]: {k: v for k, v in rec["metrics"].items() if k not in TIMING_METRICS}
        for rec in ResultsStore(store).records()
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--experiment", default="smith_cifar10_cnn")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--pairs", type=int, default=1, help="alternations of the two ways")
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0))
    common = ["run", args.experiment, "--profile", args.profile, "--seeds", *map(str, args.seeds), "--device", "cpu"]
    ways = {
        "sequential": [*common, "--threads-per-job", str(cpus)],
        "jobs": [*common, "--jobs", str(cpus), "--threads-per-job", "1"],
    }
    start, t0 = utc_now(), time.perf_counter()
    walls: dict[str, list[float]] = {w: [] for w in ways}
    metrics: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="relustudy-bench-jobs-") as tmp:
        for p in range(args.pairs):
            for way, cli in ways.items():
                store = Path(tmp) / f"{way}-{p}"
                walls[way].append(_run(cli, store))
                metrics.setdefault(way, _untimed(store))
                shutil.rmtree(store)
                print(f"pair {p + 1}: {way} {walls[way][-1]:.0f} s", flush=True)
    ratios = [j / s for j, s in zip(walls["jobs"], walls["sequential"], strict=True)]
    same = metrics["sequential"] == metrics["jobs"]
    differing = sorted(k for k in metrics["sequential"] if metrics["sequential"][k] != metrics["jobs"].get(k))
    record = {
        "what": f"{args.experiment} {args.profile} seeds {args.seeds}: sequential with {cpus} threads per run "
        f"vs --jobs {cpus} with 1 thread each, each in a fresh store",
        "runs_per_way": len(metrics["sequential"]),
        "wall_seconds": walls,
        "ratio_jobs_over_sequential": ratios,
        "identical_numbers": same,
        "runs_whose_numbers_differ": len(differing),
        "provenance": {
            **git_info(),
            "cpu": cpu_identity(),
            "cpus": cpus,
            "torch": __import__("torch").__version__,
            "started": start,
            "finished": utc_now(),
            "wall_seconds": time.perf_counter() - t0,
        },
    }
    write_json(args.out, record)
    print(f"jobs / sequential wall time: {', '.join(f'{r:.2f}' for r in ratios)}; identical numbers: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
