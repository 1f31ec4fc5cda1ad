"""Cost estimates from measured throughput: the work a run does, the basis each estimate uses, and
every committed complete quick and paper grid estimated within +-30% of its recorded CPU time."""

from __future__ import annotations

from pathlib import Path

import pytest

from relustudy import sources  # noqa: F401  (registers the experiments)
from relustudy.estimates import (
    BENCH,
    BENCH_WIDTH,
    GUESS,
    OTHER_CPU,
    OTHER_CPU_SCALED,
    OTHER_WIDTH,
    SAME_CPU,
    RateBook,
    StepRates,
    estimate,
    record_cpu,
    run_work,
)
from relustudy.experiments import EXPERIMENTS, get_experiment
from relustudy.stepbench import read_train_step
from relustudy.store import ResultsStore, StoreError

ROOT = Path(__file__).resolve().parents[1]
CPU = "Test CPU (family 1 model 2)"


def test_run_work_counts_training_and_every_evaluation():
    quick = get_experiment("xu_cifar10_nin").configs("quick", device="cpu")
    relu = next(c for c in quick if c.activation == "relu")
    rrelu = next(c for c in quick if c.activation == "rrelu")
    # 150 epochs of 2,000 images; tests every 10 epochs (15), statistics once, the training set once
    assert run_work(relu) == (150 * 2_000, 15 * 10_000 + 10_000 + 2_000)
    # RReLU's test-time rules add 1 + 1 + 1 + 4 + 16 test passes
    assert run_work(rrelu)[1] == run_work(relu)[1] + 23 * 10_000


def _record(store: ResultsStore, config, *, epoch_seconds: float, wall: float, cpu: str, threads: int = 1) -> dict:
    store.begin(config)
    store.write_history(config, [{"epoch": e, "epoch_seconds": epoch_seconds} for e in range(1, config.epochs + 1)])
    store.write_result(
        config,
        status="complete",
        metrics={"test_error": 0.1},
        provenance={"wall_seconds": wall, "num_threads": threads, "cpu_identity": cpu},
    )
    return store.load_record(config)


def test_estimate_reproduces_its_own_records_and_names_its_basis(tmp_path):
    store = ResultsStore(tmp_path)
    exp = get_experiment("smith_fmnist_cnn")
    configs = exp.configs("quick", device="cpu")
    for c in configs:
        _record(store, c, epoch_seconds=2.0, wall=2.0 * c.epochs + 5.0, cpu=CPU, threads=2)
    records = store.records()
    recorded = sum(2 * (2.0 * c.epochs + 5.0) for c in configs) / 60.0
    same = estimate(configs, RateBook(records, CPU))
    assert same.basis == (SAME_CPU,) and same.cpu_minutes == pytest.approx(recorded)
    assert estimate(configs, RateBook(records, "another CPU")).basis == (OTHER_CPU,)
    assert estimate(configs, RateBook([], CPU)).basis == (GUESS,)


def test_another_width_is_scaled_by_the_squared_width_ratio(tmp_path):
    store = ResultsStore(tmp_path)
    exp = get_experiment("xu_cifar10_nin")
    quick = [c for c in exp.configs("quick", device="cpu") if c.activation == "relu"]
    for c in quick:
        _record(store, c, epoch_seconds=1.0, wall=float(c.epochs), cpu=CPU)
    wide = [c.__class__.from_dict({**c.to_dict(), "model_params": {"width": 0.5}}) for c in quick]
    narrow, scaled = (
        estimate(quick, RateBook(store.records(), CPU)),
        estimate(wide, RateBook(store.records(), CPU)),
    )
    assert scaled.basis == (OTHER_WIDTH,)
    assert scaled.cpu_minutes == pytest.approx(4 * narrow.cpu_minutes)


def _complete_grids():
    store = ResultsStore(ROOT / "results")
    for name in EXPERIMENTS.names():
        exp = get_experiment(name)
        for profile in ("quick", "regime", "paper"):
            if profile not in exp.profiles:
                continue
            configs = exp.configs(profile, device="cpu")
            if all(store.is_complete(c) for c in configs):
                yield name, profile


@pytest.fixture(scope="module")
def committed_records():
    return ResultsStore(ROOT / "results").records()


@pytest.mark.parametrize(("name", "profile"), list(_complete_grids()))
def test_every_complete_grid_is_estimated_within_30_percent(committed_records, name, profile):
    exp = get_experiment(name)
    ids = {c.run_id() for c in exp.configs(profile, device="cpu")}
    own = [r for r in committed_records if r["run_id"] in ids]
    recorded = sum(r["provenance"]["wall_seconds"] * (r["provenance"].get("num_threads") or 1) for r in own) / 60.0
    # The grid's own CPU model (the most of its records): what a user on that machine would be told.
    cpus = [record_cpu(r) for r in own]
    cpu = max(set(cpus), key=cpus.count)
    got = exp.estimate(profile, committed_records, cpu=cpu)
    assert 0.7 * recorded <= got.cpu_minutes <= 1.3 * recorded, (got.describe(), recorded)


def test_another_cpu_is_scaled_by_the_ratio_both_cpus_measured(tmp_path):
    store = ResultsStore(tmp_path)
    exp = get_experiment("xu_cifar10_nin")
    relu, prelu = (next(c for c in exp.configs("quick", device="cpu") if c.activation == a) for a in ("relu", "prelu"))
    _record(store, relu, epoch_seconds=2.0, wall=2.0 * relu.epochs, cpu="Slow CPU")
    _record(
        store,
        relu.__class__.from_dict({**relu.to_dict(), "seed": 7}),
        epoch_seconds=1.0,
        wall=1.0 * relu.epochs,
        cpu=CPU,
    )
    _record(store, prelu, epoch_seconds=3.0, wall=3.0 * prelu.epochs, cpu="Slow CPU")
    book = RateBook(store.records(), CPU)
    assert book.cpu_factor("Slow CPU", "nin") == pytest.approx(0.5)
    train, _, basis = book.lookup(prelu)
    assert basis == OTHER_CPU_SCALED
    assert train == pytest.approx(0.5 * 3.0 / prelu.train_subset)  # half the slow CPU's seconds per image
    # No run measured on both: the other CPU's rate as it is, said so.
    alone = RateBook([r for r in store.records() if r["provenance"]["cpu_identity"] != CPU], CPU)
    assert alone.lookup(prelu)[2] == OTHER_CPU


def test_a_model_no_record_trained_takes_the_whole_step_benchmarks_rate(tmp_path):
    exp = get_experiment("xu_cifar10_nin")
    configs = [c for c in exp.configs("quick", device="cpu") if c.activation == "relu"]
    c = configs[0]
    width, batch = float(c.model_params["width"]), c.batch_size
    record = {"settings": {"threads": 2}, "models": [
        {"model": "nin", "width": width, "batch_size": batch, "trainer_images_per_second": 400.0}]}  # fmt: skip
    trained, evaluated = run_work(c)
    exact = estimate([c], RateBook([], CPU), StepRates(record))
    assert exact.basis == (BENCH,)
    # 2 threads at 400 images/s: 1/200 CPU-s per training image, evaluation at 3x the rate
    assert exact.cpu_minutes == pytest.approx((trained / 200 + evaluated / 600) / 60)
    wide = c.__class__.from_dict({**c.to_dict(), "model_params": {"width": 2 * width}})
    scaled = estimate([wide], RateBook([], CPU), StepRates(record))
    assert scaled.basis == (BENCH_WIDTH,) and scaled.cpu_minutes == pytest.approx(4 * exact.cpu_minutes)
    assert estimate([c], RateBook([], CPU), StepRates(None)).basis == (GUESS,)
    # a damaged record is one clear line naming the command that makes it again
    path = tmp_path / "microbench" / "quick" / "cpu" / "train_step.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"models": [{"model": "nin"}]}')
    with pytest.raises(StoreError, match="relustudy bench train --profile quick --force"):
        read_train_step(tmp_path)
    assert read_train_step(tmp_path / "none") is None
