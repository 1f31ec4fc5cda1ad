"""Does the C library's allocator cost training time? The same short training, in fresh processes,
with glibc's malloc as it is (``RELUSTUDY_MALLOC=default``) and as the trainer configures it
(``relustudy.trainer.tune_allocator``: freed memory kept in the process), alternating, in one run.

For each process: wall time, user and system CPU time and minor page faults (getrusage of the
child). The numbers, not the wall times alone, are the evidence: system time and page faults are
what the allocator changes; the results of the runs are the same (the test suite checks that a
run's metrics do not depend on it).

    .venv/bin/python benchmarks/bench_allocator.py [--experiment theano_mnist_radford] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relustudy.provenance import cpu_identity, git_info, utc_now
from relustudy.trainer import MALLOC_ENV

MODES = {"glibc default": "default", "kept (tune_allocator)": ""}


def one(experiment: str, profile: str, mode: str, store: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env[MALLOC_ENV] = mode
    cmd = [
        str(Path(sys.executable).parent / "relustudy"),
        "run",
        experiment,
        "--profile",
        profile,
        "--results-dir",
        str(store),
    ]
    cmd += ["--threads-per-job", "1", "--force"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": wall,
        "user_s": after.ru_utime - before.ru_utime,
        "sys_s": after.ru_stime - before.ru_stime,
        "minor_faults": after.ru_minflt - before.ru_minflt,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="theano_mnist_radford")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="write the record here")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {name: [] for name in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, mode in MODES.items():
                runs[name].append(one(args.experiment, args.profile, mode, Path(tmp) / name.split()[0]))
    summary = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    for name, s in summary.items():
        print(
            f"{name:<24} wall {s['wall_s']:6.1f} s  user {s['user_s']:6.1f} s  sys {s['sys_s']:6.1f} s  "
            f"minor faults {s['minor_faults']:,.0f}"
        )
    if args.json:
        record = {
            "experiment": args.experiment,
            "profile": args.profile,
            "rounds": args.rounds,
            "runs": runs,
            "median": summary,
            "provenance": {**git_info(), "cpu_identity": cpu_identity(), "date": utc_now(), "argv": sys.argv[1:]},
        }
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
