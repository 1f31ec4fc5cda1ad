"""Trainer: determinism, caching, resume after SIGKILL, divergence, optimiser details.

Runs are tiny (256 MNIST training images, 200 test images, batch 64, smith_cnn, 2-3 epochs).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tiny_runs import mnist_available, small
from torch import nn

import relustudy
from relustudy import activations, trainer
from relustudy.config import ConfigError, RunConfig
from relustudy.models import build_model
from relustudy.results import load_histories, load_results
from relustudy.store import ResultsStore
from relustudy.trainer import (
    MALLOC_ENV,
    TIMING_METRICS,
    RMSpropTheano,
    build_optimizer,
    build_scheduler,
    progress_enabled,
    train,
)

TIMING_COLUMNS = {"epoch_seconds", "images_per_second"}

pytestmark = pytest.mark.skipif(not mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """train() sets torch's thread count (process-wide); give other tests the original back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def history_rows(store: ResultsStore, config: RunConfig) -> list[dict[str, str]]:
    """history.csv as text fields (exact bytes of every value), timing columns dropped."""
    with open(store.run_dir(config) / "history.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


def untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_METRICS}


class EpochCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        original = trainer._train_epoch

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(trainer, "_train_epoch", counted)


# ---------------------------------------------------------------------------- shared runs
PRELU = dict(
    activation="prelu", stats_epochs=[1, 2], schedule="step", schedule_params={"milestones": [1], "gamma": 0.5}
)


@pytest.fixture(scope="module")
def twin_runs(tmp_path_factory):
    """The same PReLU config trained into two separate stores."""
    config = small(**PRELU)
    stores = [ResultsStore(tmp_path_factory.mktemp(f"store{i}")) for i in range(2)]
    records = [train(config, s, progress=False) for s in stores]
    return config, stores, records


def test_same_config_and_seed_give_identical_numbers(twin_runs):
    config, (a, b), (ra, rb) = twin_runs
    rows_a, rows_b = history_rows(a, config), history_rows(b, config)
    assert len(rows_a) == 2
    assert rows_a == rows_b  # every non-timing value, byte for byte
    assert untimed(ra["metrics"]) == untimed(rb["metrics"])
    stats = [(s.run_dir(config) / "activation_stats.json").read_bytes() for s in (a, b)]
    assert stats[0] == stats[1]


def test_record_contents(twin_runs):
    config, (store, _), (record, _) = twin_runs
    assert record["status"] == "complete" and record["run_id"] == config.run_id()
    m = record["metrics"]
    for key in (
        "test_accuracy",
        "test_error",
        "test_top5_error",
        "test_loss",
        "train_loss",
        "train_error",
        "epochs_completed",
        "wall_seconds",
        "images_per_second",
        "last_conv.sparsity",
        "last_conv.dispersion",
        "last_conv.dead_fraction",
    ):
        assert key in m, key
    assert m["epochs_completed"] == 2
    assert m["test_accuracy"] + m["test_error"] == pytest.approx(1.0)
    assert 0 <= m["test_top5_error"] <= m["test_error"] <= 1
    assert 0 <= m["last_conv.dead_fraction"] <= 1 and 0 < m["last_conv.sparsity"] <= 1
    assert m["test_accuracy"] > 0.3  # learns something even from 256 images in 2 epochs
    p = record["provenance"]
    assert p["train_images"] == 256 and p["test_images"] == 200 and p["device_type"] == "cpu"
    assert p["resumes"] == 0
    d = store.run_dir(config)
    assert {f.name for f in d.iterdir()} == {"config.json", "history.csv", "activation_stats.json", "result.json"}
    assert record.pop("_trained") is True  # this call trained it (not stored)
    assert json.loads((d / "result.json").read_text()) == record


def test_history_columns_lr_schedule_and_prelu_alphas(twin_runs):
    config, (store, _), (record, _) = twin_runs
    rows = history_rows(store, config)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert [float(r["lr"]) for r in rows] == [1e-3, 5e-4]  # step schedule: halved after epoch 1
    for module in ("act1", "act2"):  # smith_cnn's two PReLU placements
        for stat in ("mean", "min", "max"):
            assert f"alpha.{module}.{stat}" in rows[0]
        assert (
            float(rows[-1][f"alpha.{module}.min"])
            <= float(rows[-1][f"alpha.{module}.mean"])
            <= float(rows[-1][f"alpha.{module}.max"])
        )
        assert float(rows[0][f"alpha.{module}.mean"]) != 0.25  # the coefficients are learned
        assert record["metrics"][f"alpha.{module}.late_drift"] >= 0  # convergence is read from the record
    full = store.load_history(config)
    assert {
        "train_loss",
        "train_error",
        "test_loss",
        "test_error",
        "test_top5_error",
        "epoch_seconds",
        "images_per_second",
        "lr",
    } <= set(full.columns)
    assert load_histories(store.root)["run_id"].tolist() == [config.run_id()] * 2


def test_coefficient_drift_is_the_range_over_the_last_quarter():
    means = [0.25, 0.30, 0.50, 0.60, 0.61, 0.62, 0.60, 0.59]  # 8 epochs: the last quarter is epochs 6-8
    history = [{"epoch": i + 1, "alpha.act1.mean": v, "alpha.act1.std": 0.1} for i, v in enumerate(means)]
    assert trainer.coefficient_drift(history) == {"alpha.act1.late_drift": pytest.approx(0.03)}
    history[6]["alpha.act1.mean"] = float("nan")  # a non-finite epoch: no drift rather than a wrong one
    assert trainer.coefficient_drift(history) == {}
    assert trainer.coefficient_drift([{"epoch": 1, "train_loss": 1.0}]) == {}  # no learned coefficient


def test_stats_at_stats_epochs(twin_runs):
    config, (store, _), _ = twin_runs
    records = store.load_stats(config)
    assert sorted((r["epoch"], r["layer"]) for r in records) == [(1, "last_conv"), (2, "last_conv")]
    r = records[-1]
    assert r["module"] == "act2" and r["n_units"] == len(r["curve"]) == 32 * 11 * 11
    assert r["curve"] == sorted(r["curve"], reverse=True)
    assert all(round(v, 6) == v for v in r["curve"])


def test_relu_run_has_no_alpha_columns_and_no_stats_when_not_asked(tmp_path):
    config = small(epochs=1, train_subset=128, test_subset=100)
    store = ResultsStore(tmp_path)
    train(config, store, progress=False)
    rows = history_rows(store, config)
    assert not any(k.startswith("alpha.") for k in rows[0])
    assert store.load_stats(config) == []
    assert not any(k.startswith("last_conv.") for k in store.load_record(config)["metrics"])


def test_complete_record_is_returned_without_recomputation(twin_runs, monkeypatch):
    config, (store, _), (record, _) = twin_runs
    counter = EpochCounter(monkeypatch)
    monkeypatch.setattr(trainer, "prepare_run_data", lambda *a, **k: pytest.fail("data touched for a cached run"))
    again = train(config, store)
    assert again.pop("_trained") is False and again == {k: v for k, v in record.items() if k != "_trained"}
    assert counter.calls == 0


def test_force_recomputes(tmp_path, monkeypatch):
    config = small(epochs=1, train_subset=128, test_subset=100)
    store = ResultsStore(tmp_path)
    first = train(config, store, progress=False)
    counter = EpochCounter(monkeypatch)
    again = train(config, store, force=True, progress=False)
    assert counter.calls == 1
    assert untimed(again["metrics"]) == untimed(first["metrics"])
    assert not store.checkpoint_path(config).exists()


# ---------------------------------------------------------------------------- resume
CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from relustudy import trainer
    from relustudy.config import RunConfig
    from relustudy.store import ResultsStore

    config = RunConfig.from_dict(json.loads(sys.argv[1]))
    kill_at = int(sys.argv[3])
    original = trainer.build_optimizer

    def build_optimizer(config, model):
        opt = original(config, model)
        count = [0]

        def maybe_die(optimizer, args, kwargs):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: like a power cut

        opt.register_step_pre_hook(maybe_die)
        return opt

    trainer.build_optimizer = build_optimizer
    trainer.train(config, ResultsStore(sys.argv[2]), progress=False)
    print("child finished without being killed")
""")


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    # rrelu draws noise from the torch RNG in every training forward pass, so this also checks
    # that the RNG state is restored; the step schedule checks the scheduler state.
    config = small(
        activation="rrelu",
        epochs=3,
        stats_epochs=[3],
        schedule="step",
        schedule_params={"milestones": [2], "gamma": 0.1},
        optimizer="adam",
    )
    reference_store = ResultsStore(tmp_path / "reference")
    reference = train(config, reference_store, progress=False)

    store = ResultsStore(tmp_path / "killed")
    env = dict(os.environ)
    src = str(Path(relustudy.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    steps_per_epoch = math.ceil(256 / 64)
    kill_at = steps_per_epoch + 2  # in the middle of epoch 2, after epoch 1's checkpoint
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(config.to_dict()), str(store.root), str(kill_at)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert not store.is_complete(config)
    ckpt = store.load_checkpoint(config)
    assert ckpt is not None and ckpt["epoch"] == 1
    assert len(history_rows(store, config)) == 1

    resumed = train(config, store, progress=False)
    assert resumed["status"] == "complete" and resumed["provenance"]["resumes"] == 1
    assert history_rows(store, config) == history_rows(reference_store, config)
    assert untimed(resumed["metrics"]) == untimed(reference["metrics"])
    assert (store.run_dir(config) / "activation_stats.json").read_bytes() == (
        reference_store.run_dir(config) / "activation_stats.json"
    ).read_bytes()
    assert not store.checkpoint_path(config).exists()  # deleted once the record is complete


def test_checkpoint_of_finished_epochs_is_reused(tmp_path, monkeypatch):
    """A crash after the last epoch's checkpoint (before result.json) recomputes nothing."""
    config = small(epochs=1, train_subset=128, test_subset=100)
    store = ResultsStore(tmp_path)
    reference = train(config, store, progress=False)
    store.invalidate(config)  # result gone ...
    counter = EpochCounter(monkeypatch)
    monkeypatch.setattr(store, "delete_checkpoint", lambda c: None)
    train(config, store, force=True, progress=False)  # ... recompute, keeping the final checkpoint
    store.path(config, "result.json").unlink()
    assert store.checkpoint_path(config).exists() and not store.is_complete(config)
    again = train(config, store, progress=False)
    assert counter.calls == 1  # only the forced run trained
    assert untimed(again["metrics"]) == untimed(reference["metrics"])


# ---------------------------------------------------------------------------- divergence
def test_divergence_is_recorded_not_raised(tmp_path, monkeypatch):
    original = trainer.build_optimizer

    def poisoned(config, model):  # after 6 steps (mid epoch 2), every weight becomes NaN
        opt = original(config, model)
        count = [0]

        def poison(optimizer, args, kwargs):
            count[0] += 1
            if count[0] == 6:
                with torch.no_grad():
                    for p in model.parameters():
                        p.fill_(float("nan"))

        opt.register_step_post_hook(poison)
        return opt

    monkeypatch.setattr(trainer, "build_optimizer", poisoned)
    config = small(epochs=3)
    store = ResultsStore(tmp_path)
    record = train(config, store, progress=False)
    assert record["status"] == "diverged" and record["diverged_epoch"] == 2
    assert record["metrics"]["epochs_completed"] == 1
    assert "test_accuracy" not in record["metrics"]  # no final model to report on
    assert store.is_complete(config) and len(history_rows(store, config)) == 1
    assert not store.checkpoint_path(config).exists()
    df = load_results(store.root)
    assert set(df["status"]) == {"diverged"}
    counter = EpochCounter(monkeypatch)
    assert train(config, store)["status"] == "diverged" and counter.calls == 0  # cached like a complete run


# ---------------------------------------------------------------------------- optimisers
def test_prelu_coefficients_get_no_weight_decay():
    config = small(activation="prelu", optimizer="sgd", weight_decay=5e-4, lr=0.01)
    model = build_model("smith_cnn", "prelu", {}, (1, 28, 28), 10)
    opt = build_optimizer(config, model)
    prelu_weights = {id(m.weight) for m in model.modules() if type(m).__name__ == "PReLU"}
    assert len(prelu_weights) == 2
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["no_decay"]["weight_decay"] == 0.0
    assert {id(p) for p in groups["no_decay"]["params"]} == prelu_weights
    assert groups["decay"]["weight_decay"] == 5e-4
    assert not prelu_weights & {id(p) for p in groups["decay"]["params"]}
    n_params = sum(1 for _ in model.parameters())
    assert sum(len(g["params"]) for g in opt.param_groups) == n_params
    for name in ("adam", "rmsprop_theano"):
        opt = build_optimizer(config.replace(optimizer=name), model)
        assert {g["name"]: g["weight_decay"] for g in opt.param_groups} == {"decay": 5e-4, "no_decay": 0.0}


def test_sgd_with_decay_leaves_prelu_coefficient_alone_when_its_gradient_is_zero():
    # He et al.: no decay on a. With a zero gradient, a decayed a would shrink; ours must not move.

    config = small(optimizer="sgd", momentum=0.0, weight_decay=0.1, lr=1.0)
    lin = nn.Linear(3, 3)
    ours = activations.build_activation("prelu", 3)
    model = nn.Sequential(lin, ours)
    opt = build_optimizer(config, model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before_w = lin.weight.detach().clone()
    opt.step()
    assert torch.equal(ours.weight, torch.full((3,), 0.25))
    assert torch.allclose(lin.weight, before_w * (1 - 0.1))  # the other weights are decayed


def test_rmsprop_theano_one_step_by_hand():
    lr, rho, eps = 0.01, 0.9, 1e-6
    p = nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    g1 = torch.tensor([0.3, -0.1, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-0.2, 0.4, 1e-4], dtype=torch.float64)
    opt = RMSpropTheano([p], lr=lr, rho=rho, eps=eps)

    expected = [1.0, -2.0, 0.5]
    acc = [0.0, 0.0, 0.0]
    for g in (g1, g2):
        p.grad = g.clone()
        opt.step()
        for i, gi in enumerate(g.tolist()):
            acc[i] = rho * acc[i] + (1 - rho) * gi * gi
            expected[i] -= lr * gi / math.sqrt(acc[i] + eps)  # eps inside the sqrt
    assert p.detach().tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # First step in closed form: acc = (1-rho) g^2, so the step is lr*g/sqrt((1-rho) g^2 + eps).
    q = nn.Parameter(torch.tensor([0.0], dtype=torch.float64))
    q.grad = torch.tensor([0.3], dtype=torch.float64)
    RMSpropTheano([q], lr=lr, rho=rho, eps=eps).step()
    assert q.item() == pytest.approx(-lr * 0.3 / math.sqrt(0.1 * 0.09 + 1e-6), rel=1e-12)
    # ... which differs from torch's RMSprop (eps outside the sqrt) for small gradients:
    t = nn.Parameter(torch.tensor([0.0], dtype=torch.float64))
    t.grad = torch.tensor([1e-4], dtype=torch.float64)
    torch.optim.RMSprop([t], lr=lr, alpha=rho, eps=eps).step()
    u = nn.Parameter(torch.tensor([0.0], dtype=torch.float64))
    u.grad = torch.tensor([1e-4], dtype=torch.float64)
    RMSpropTheano([u], lr=lr, rho=rho, eps=eps).step()
    assert abs(u.item() - t.item()) > 1e-4


def _epoch_lrs(cfg, model, epochs=4):
    """The learning rate of each epoch under ``cfg``'s schedule."""
    opt = build_optimizer(cfg, model)
    sched = build_scheduler(cfg, opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: a no-op, but keeps the scheduler's call-order check quiet
        sched.step()
    return lrs


def test_schedules_step_per_epoch():
    model = nn.Linear(2, 2)
    step = small(
        epochs=4, optimizer="sgd", lr=1.0, schedule="step", schedule_params={"milestones": [1, 3], "gamma": 0.1}
    )
    assert _epoch_lrs(step, model) == pytest.approx([1.0, 0.1, 0.1, 0.01])
    cos = small(epochs=4, optimizer="sgd", lr=1.0, schedule="cosine")
    assert _epoch_lrs(cos, model) == pytest.approx(
        [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]
    )
    assert build_scheduler(small(), build_optimizer(small(), model)) is None


# ---------------------------------------------------------------------------- device / progress
def test_backends_and_bf16_on_cpu(tmp_path, monkeypatch):
    config = small(epochs=1, train_subset=128, test_subset=100, precision="bf16", num_threads=None)
    # A CPU without bf16 units refuses the run before anything is written ...
    monkeypatch.setattr(trainer, "cpu_bf16_units", lambda: False)
    with pytest.raises(ConfigError, match="run precision fp32"):
        train(config, ResultsStore(tmp_path / "refused"), progress=False)
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").rglob("*.json"))
    # ... and one with them trains (autocast emulates bf16 where the units are absent, so the
    # path runs on every CPU this test meets).
    monkeypatch.setattr(trainer, "cpu_bf16_units", lambda: True)
    record = train(config, ResultsStore(tmp_path), progress=False)
    assert record["status"] == "complete" and record["provenance"]["precision"] == "bf16"
    threads = trainer._available_cpus()  # num_threads=None: every CPU this process may use
    assert record["provenance"]["device"].startswith(f"cpu: {threads} threads")
    assert record["provenance"]["channels_last_used"] is trainer.CPU_CHANNELS_LAST
    assert record["provenance"]["model_execution"] == "eager"  # the path the model ran is recorded
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False


def test_progress_rules(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert progress_enabled(False) is False
    assert progress_enabled(True) is True
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(None) is False
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert progress_enabled(None) is False
    # Inside a Jupyter kernel bars are never drawn, even when asked for.
    monkeypatch.setattr(trainer, "_in_notebook_kernel", lambda: True)
    assert progress_enabled(True) is False and progress_enabled(None) is False


def test_no_progress_output_when_disabled(tmp_path, capfd):
    config = small(epochs=1, train_subset=128, test_subset=100, seed=7)
    train(config, ResultsStore(tmp_path), progress=False)
    out, err = capfd.readouterr()
    assert "it/s" not in err and "epoch 1/1" not in err and out == ""


# ----------------------------------------------------------------------- damaged checkpoints
def _keep_last_checkpoint(config, store, monkeypatch):
    """Train ``config`` once, keeping its final checkpoint; drop the record so the next train resumes."""
    with monkeypatch.context() as m:
        m.setattr(store, "delete_checkpoint", lambda c: None)
        record = train(config, store, progress=False)
    store.path(config, "result.json").unlink()
    return record


@pytest.mark.skipif(not mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")
@pytest.mark.parametrize("damage", ["flip one byte", "flip 16 bytes", "older format", "another model's shapes"])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_restarts(tmp_path, monkeypatch, caplog, damage):
    config = small(epochs=1, train_subset=128, test_subset=100)
    store = ResultsStore(tmp_path)
    reference = _keep_last_checkpoint(config, store, monkeypatch)
    path = store.checkpoint_path(config)
    data = bytearray(path.read_bytes())
    rng = random.Random(damage)
    if damage.startswith("flip"):
        header = data.index(b"\n") + 1
        for i in rng.sample(range(header, len(data)), 1 if damage == "flip one byte" else 16):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "older format":  # a raw torch.save file, as before checksums existed
        torch.save(store.load_checkpoint(config), path)
    else:  # verified bytes of another model: the checksum passes, the shapes do not fit
        state = store.load_checkpoint(config)
        state["model"] = {k: torch.zeros(1) for k in state["model"]}
        store.save_checkpoint(config, state)
    counter = EpochCounter(monkeypatch)
    with caplog.at_level("WARNING", logger="relustudy.trainer"):
        again = train(config, store, progress=False)
    assert counter.calls == 1  # retrained from scratch, not resumed
    assert again["status"] == "complete" and again["provenance"]["resumes"] == 0
    assert untimed(again["metrics"]) == untimed(reference["metrics"])  # the uninterrupted run's record
    kept = list(store.run_dir(config).glob("checkpoint-set-aside-*.pt"))
    assert len(kept) == 1 and not store.checkpoint_path(config).exists()  # kept aside, not resumed
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "set aside as checkpoint-set-aside-" in warnings[0] and "\n" not in warnings[0]


def test_a_checkpoint_left_beside_a_complete_record_is_removed_on_the_next_run(tmp_path):
    """A kill after result.json and before the checkpoint's deletion leaves both (the fault suite
    found it): the next train() of the run returns the record and removes the checkpoint."""
    config = small(epochs=1, train_subset=128, test_subset=100)
    store = ResultsStore(tmp_path)
    first = train(config, store, progress=False)
    store.save_checkpoint(config, {"epoch": 1})
    again = train(config, store, progress=False)
    assert again["_trained"] is False and untimed(again["metrics"]) == untimed(first["metrics"])
    assert not store.checkpoint_path(config).exists()


def test_the_allocator_is_named_can_be_switched_off_and_changes_no_number(tmp_path):
    tests = os.path.dirname(__file__)
    code = (
        f"import sys, json; sys.path.insert(0, {tests!r}); from tiny_runs import small; "
        "from relustudy.trainer import train; from relustudy.store import ResultsStore; "
        "r = train(small(epochs=1), ResultsStore(sys.argv[1])); "
        "print(json.dumps({'metrics': r['metrics'], 'allocator': r['provenance']['allocator']}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = {}
    for mode in ("default", "", "given"):
        extra = {"MALLOC_MMAP_THRESHOLD_": "4096"} if mode == "given" else {MALLOC_ENV: mode}
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / (mode or "kept"))],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["default"]["allocator"] == f"C library default ({MALLOC_ENV}=default)"
    assert "MALLOC_MMAP_THRESHOLD_=4096 from the environment" in out["given"]["allocator"]
    assert out[""]["allocator"] not in (out["default"]["allocator"], out["given"]["allocator"])
    untimed = [{k: v for k, v in o["metrics"].items() if k not in TIMING_METRICS} for o in out.values()]
    assert untimed[0] == untimed[1] == untimed[2]


def test_bf16_is_refused_in_one_line_on_a_cpu_without_bf16_units(monkeypatch):
    config = small(precision="bf16")
    monkeypatch.setattr(trainer, "cpu_bf16_units", lambda: False)  # as on our AMD EPYC machines
    with pytest.raises(ConfigError, match="bf16 units .*amx_bf16 or avx512_bf16.*run precision fp32"):
        trainer.check_precision(config, torch.device("cpu"))
    trainer.check_precision(small(), torch.device("cpu"))  # fp32 always runs
    monkeypatch.setattr(trainer, "cpu_bf16_units", lambda: True)  # as on our Xeons with AMX
    trainer.check_precision(config, torch.device("cpu"))
    monkeypatch.setattr(trainer, "cpu_bf16_units", lambda: None)  # the system does not say: not refused
    trainer.check_precision(config, torch.device("cpu"))
