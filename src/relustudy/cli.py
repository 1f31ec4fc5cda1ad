"""The ``relustudy`` command line: list, run, results, bench, data check, book.

User mistakes (unknown experiment, bad profile, missing or corrupt data, a bad parameter) end
with one clear line on stderr and exit status 2, never a traceback; a ``run`` that ends with
requested runs unrecorded (another live process holds them) says so and exits 3; a store that cannot be written
(full disk, read-only, no permission) ends with one line naming the path, exit status 74.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from .config import PROFILES

USER_ERROR_EXIT = 2
INCOMPLETE_EXIT = 3  # `run` ended with requested runs unrecorded (another process holds them)
IO_ERROR_EXIT = 74  # EX_IOERR (sysexits.h)
_NOT_WRITABLE = "the folder is not writable here: fix its permissions or give --results-dir"
_IO_HINTS = {
    errno.ENOSPC: "the disk is full: free space or give --results-dir on another disk; complete runs are kept "
    "and an interrupted one resumes from its last epoch",
    errno.EDQUOT: "the disk quota is used up: free space or give --results-dir elsewhere",
    errno.EACCES: _NOT_WRITABLE,
    errno.EPERM: _NOT_WRITABLE,
    errno.EROFS: "the file system is read-only: give --results-dir on a writable one",
    errno.ENOTDIR: "a part of this path is a file, not a folder: give --results-dir (or --data-dir) a folder",
}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the user asked for something wrong", not a bug."""
    from .config import ConfigError
    from .microbench import DeviceUnavailableError
    from .registry import UnknownNameError
    from .store import StoreError

    errors: list[type[BaseException]] = [ConfigError, UnknownNameError, DeviceUnavailableError, StoreError]
    try:
        from .data import DataError

        errors.append(DataError)
    except ImportError:  # pragma: no cover - data module always present in a full install
        pass
    try:
        from .book import BookError

        errors.append(BookError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _add_common(sp: argparse.ArgumentParser, profile_default: str | None) -> None:
    if profile_default is None:
        sp.add_argument("--profile", required=True, choices=PROFILES)
    else:
        sp.add_argument("--profile", default=profile_default, choices=PROFILES)
    sp.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="results store (default: results/ for quick and paper, _build/smoke-results for smoke)",
    )


def _add_run_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--seeds", type=int, nargs="+", default=None, help="override the profile's seeds")
    sp.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    sp.add_argument(
        "--data-dir", default=None, help="folder with <dataset>.npz files (else $RELUSTUDY_DATA, else the cache)"
    )
    sp.add_argument("--download", action="store_true", help="allow torchvision's downloaders when a dataset is missing")


def _add_scheduling_options(sp: argparse.ArgumentParser) -> None:
    """How a grid's runs are scheduled (only `run` trains a grid; the book reuses records)."""
    sp.add_argument(
        "--threads-per-job",
        type=int,
        default=None,
        metavar="K",
        help="CPU threads per run (default: every CPU this process may use); not part of a run's id",
    )
    sp.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train N runs at a time, each in its own process (use with --threads-per-job)",
    )
    sp.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: this machine (one run at a time, or --jobs N); ray: each run a task on a Ray cluster",
    )
    sp.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="the Ray cluster to use (with --executor ray; default: start a local one, on loopback only); "
        "Ray has no authentication or encryption unless that cluster's operator enables them (README)",
    )
    sp.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=30.0,
        default=None,
        metavar="SECONDS",
        help="wait for runs another live process is training (look every SECONDS, default 30) instead of "
        "leaving them; a run whose holder died is trained here",
    )
    sp.add_argument(
        "--gpus-per-job",
        type=float,
        default=None,
        metavar="F",
        help="with --executor ray on CUDA: the share of one GPU each run asks for (default 1; 0.25: four per GPU)",
    )


def _add_grid_commands(sub: argparse._SubParsersAction) -> None:
    """run, results, data check and store check."""
    run = sub.add_parser("run", help="train an experiment's grid (complete runs are skipped)")
    run.add_argument("experiment")
    _add_common(run, None)
    _add_run_options(run)
    _add_scheduling_options(run)
    run.add_argument("--force", action="store_true", help="recompute runs that already have a record")

    res = sub.add_parser("results", help="tidy results of an experiment")
    res.add_argument("experiment")
    _add_common(res, None)
    res.add_argument("--format", choices=("table", "csv"), default="table")

    data = sub.add_parser("data", help="dataset utilities")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    check = data_sub.add_parser("check", help="verify every available dataset's checksums")
    check.add_argument("--data-dir", default=None)

    store = sub.add_parser("store", help="results-store utilities")
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="STORE_COMMAND")
    scheck = store_sub.add_parser("check", help="verify every record of a results folder (one line per problem)")
    scheck.add_argument("--results-dir", type=Path, default=None, help="default: results/ of this checkout")
    scheck.add_argument("--fix", action="store_true", help="remove leftovers and set invalid records aside")


def _add_bench_and_book(sub: argparse._SubParsersAction) -> None:
    """bench and book."""
    bench = sub.add_parser(
        "bench",
        help="record a benchmark: the activations (forward/backward vs a copy bound) or whole training steps",
    )
    bench.add_argument(
        "what",
        nargs="?",
        choices=("activations", "train", "steps"),
        default="activations",
        help="activations (default): the micro-benchmark; train: every study model's training step against "
        "this machine's sgemm peak, and the trainer against a bare loop; steps: an experiment's arms' "
        "training steps timed interleaved in one process (--experiment), the record its speed claims read",
    )
    bench.add_argument("--experiment", help="with steps: the experiment whose step timing to record")
    _add_common(bench, "quick")
    bench.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    bench.add_argument("--threads", type=int, default=1, help="with train: CPU threads (default 1, as the grids run)")
    bench.add_argument("--force", action="store_true", help="measure again even if a record exists")

    book = sub.add_parser("book", help="execute the chapter notebooks and build the book into _build/html")
    _add_common(book, "quick")
    _add_run_options(book)
    book.add_argument(
        "--pdf",
        action="store_true",
        help="also print the whole book as one PDF (_build/pdf/relustudy.pdf; needs chromium), linked from the intro",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relustudy", description="Re-executable study of rectified activations.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lister = sub.add_parser("list", help="experiments and profiles, with their estimated CPU cost")
    lister.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="the records whose throughput the estimates use (default: results/)",
    )

    _add_grid_commands(sub)
    _add_bench_and_book(sub)
    return p


def cmd_list(args: argparse.Namespace) -> int:
    from .experiments import EXPERIMENTS, default_results_dir
    from .stepbench import read_train_step
    from .store import ResultsStore

    # Estimates come from the throughput the store's records measured (see relustudy.estimates).
    root = args.results_dir or default_results_dir("quick")
    records = ResultsStore(root).records()
    steps = read_train_step(root)  # the measured rate for models no record has trained
    print(
        f"{'experiment':<22} {'source':<8} {'table':<9} {'profile':<7} {'runs':>5} {'est. CPU min':>12}  basis; scale-downs"
    )
    for name in EXPERIMENTS.names():
        exp = EXPERIMENTS.get(name)
        for prof_name, prof in exp.profiles.items():
            runs = len(exp.arms) * len(prof.seeds)
            cost = exp.estimate(prof_name, records, step_record=steps)
            print(
                f"{name:<22} {exp.source:<8} {exp.table:<9} {prof_name:<7} {runs:>5} "
                f"{cost.cpu_minutes:>12.1f}  from {', '.join(cost.basis)}; {prof.describe()}"
            )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .experiments import run_experiment
    from .trainer import _available_cpus

    if args.threads_per_job is not None and args.threads_per_job < 1:
        raise ConfigError(f"--threads-per-job must be >= 1, got {args.threads_per_job}")
    asked, cpus = (args.threads_per_job or 1) * args.jobs, _available_cpus()
    if args.executor == "local" and args.threads_per_job is not None and asked > cpus:
        # Oversubscribed threads slow every run down (and change no number): said, not refused.
        print(
            f"relustudy: note: {args.jobs} job(s) x {args.threads_per_job} thread(s) = {asked} threads on {cpus} "
            "CPUs this process may use; runs will contend for them",
            file=sys.stderr,
        )
    records = run_experiment(
        args.experiment,
        args.profile,
        seeds=args.seeds,
        device=args.device,
        force=args.force,
        results_dir=args.results_dir,
        data_dir=args.data_dir,
        download=args.download,
        num_threads=args.threads_per_job,
        jobs=args.jobs,
        executor=args.executor,
        address=args.address,
        gpus_per_job=args.gpus_per_job,
        wait=args.wait,
    )
    from .experiments import get_experiment

    requested = len(get_experiment(args.experiment).configs(args.profile, seeds=args.seeds, device=args.device))
    diverged = sum(r.get("status") == "diverged" for r in records)
    trained = sum(r.get("_trained") is True for r in records)
    missing = requested - len(records)
    print(
        f"{len(records)} of {requested} runs recorded: {trained} trained, {len(records) - trained} already recorded, "
        f"{missing} not recorded (held by another live process), {diverged} diverged"
    )
    if missing:
        print(
            f"relustudy: {missing} requested run(s) have no record yet: run again when the other process ends, "
            f"or pass --wait (exit status {INCOMPLETE_EXIT})",
            file=sys.stderr,
        )
        return INCOMPLETE_EXIT
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from .experiments import default_results_dir, get_experiment
    from .results import load_results

    get_experiment(args.experiment)  # unknown names fail here with the valid list
    root = args.results_dir or default_results_dir(args.profile)
    df = load_results(root, experiment=args.experiment, profile=args.profile)
    if df.empty:
        print(
            f"no records for {args.experiment} --profile {args.profile} in {root}; "
            f"run: relustudy run {args.experiment} --profile {args.profile}",
            file=sys.stderr,
        )
        return 1
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.width", 200):
            cols = [c for c in ("arm", "seed", "metric", "value", "status") if c in df.columns]
            print(df[cols].to_string(index=False))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .data import check_datasets

    rows = check_datasets(data_dir=args.data_dir)
    corrupt = False
    for row in rows:
        name, status, path, message = (
            (row[k] for k in ("name", "status", "path", "message")) if isinstance(row, dict) else row
        )
        corrupt |= status == "corrupt"
        print(f"{name:<14} {status:<8} {path or '-'}" + (f"\n    {message}" if message else ""))
    return 1 if corrupt else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .experiments import default_results_dir
    from .microbench import BENCH_PROFILES, benchmark_dir, record_benchmark

    root = args.results_dir or default_results_dir(args.profile)
    if args.what == "train":
        from .stepbench import STEP_RECORD, record_train_benchmark

        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        record = record_train_benchmark(args.profile, root, threads=args.threads, force=args.force, device=args.device)
        where = benchmark_dir(root, args.profile, args.device) / STEP_RECORD
        print(f"{len(record['models'])} models recorded in {where}")
        return 0
    if args.what == "steps":
        from .stepbench import STEP_TIMINGS, record_step_timing, step_timing_path

        if args.device != "cpu":
            raise ConfigError("bench steps measures the CPU")
        if not args.experiment:
            raise ConfigError(
                f"bench steps needs --experiment; experiments with a step timing: {', '.join(STEP_TIMINGS)}"
            )
        record = record_step_timing(
            args.experiment, args.profile, root, threads=args.threads, force=args.force, log=print
        )
        print(
            f"{len(record['seeds'])} seeds x {record['settings']['cycles']} cycles recorded in "
            f"{step_timing_path(root, args.experiment, args.profile)}"
        )
        return 0
    if args.profile not in BENCH_PROFILES:
        raise ConfigError(
            f"the activation benchmark has no {args.profile!r} profile; valid: {', '.join(BENCH_PROFILES)}"
        )
    df = record_benchmark(args.profile, root, device=args.device, force=args.force)
    print(f"{len(df)} rows recorded in {benchmark_dir(root, args.profile, args.device)}")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from .book import build_book

    html = build_book(
        args.profile,
        seeds=args.seeds,
        device=args.device,
        data_dir=args.data_dir,
        results_dir=args.results_dir,
        pdf=args.pdf,
    )
    print(f"book built: {html / 'index.html'}" + (f" and {html.parent / 'pdf' / 'relustudy.pdf'}" if args.pdf else ""))
    return 0


def cmd_store_check(args: argparse.Namespace) -> int:
    from .experiments import default_results_dir
    from .store import check_store

    root = args.results_dir or default_results_dir("quick")
    if not Path(root).is_dir():
        raise SystemExit(f"relustudy: error: {root} is not a folder")
    lines = check_store(root, fix=args.fix)
    for line in lines:
        print(line)
    print(f"{root}: {'no problems' if not lines else f'{len(lines)} problem(s)'}")
    return 1 if lines and not args.fix else 0


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "results": cmd_results,
    "bench": cmd_bench,
    "book": cmd_book,
    "store": cmd_store_check,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = cmd_data_check if args.command == "data" else COMMANDS[args.command]
    try:
        return handler(args)
    except _user_errors() as e:
        print(f"relustudy: error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("relustudy: interrupted (complete runs are kept; rerun to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`relustudy list | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except OSError as e:
        hint = _IO_HINTS.get(e.errno)
        if hint is None:
            raise
        where = f" {e.filename}" if e.filename else ""
        print(f"relustudy: error: cannot write{where}: {e.strerror} ({hint})", file=sys.stderr)
        return IO_ERROR_EXIT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
