"""Compare the records of the same configs made on two devices (the GPU check's step 4): for every
run id in both stores, the largest absolute difference of test accuracy; passes when every one is
within --tolerance (stated in the record: different kernels sum in different orders, so records
made on a GPU and on a CPU agree within seed-like noise, not bit for bit).

    .venv/bin/python benchmarks/compare_devices.py STORE_A STORE_B --tolerance 0.02 --out out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from relustudy.results import load_results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--metric", default="test_accuracy")
    ap.add_argument("--out")
    args = ap.parse_args()
    a, b = (load_results(p) for p in (args.a, args.b))
    a, b = (d[d["metric"] == args.metric].set_index("run_id")["value"] for d in (a, b))
    common = sorted(set(a.index) & set(b.index))
    if not common:
        print("compare_devices: no run in both stores", file=sys.stderr)
        return 2
    diffs = {rid: float(abs(a[rid] - b[rid])) for rid in common}
    worst = max(diffs.values())
    result = {
        "metric": args.metric,
        "runs": len(common),
        "max_abs_diff": worst,
        "tolerance": args.tolerance,
        "pass": worst <= args.tolerance,
        "diffs": diffs,
    }
    print(
        f"{len(common)} runs, max |{args.metric} difference| {worst:.4f} (tolerance {args.tolerance}): "
        f"{'pass' if result['pass'] else 'FAIL'}"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
