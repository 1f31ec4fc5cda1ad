"""End-of-run evaluations (config.evals), sparse test evaluation (eval_every) and the fields that
keep earlier run ids: on a tiny smith_cnn MNIST run (256 training images)."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_runs import mnist_available, small

from relustudy import trainer
from relustudy.activations import RReLU
from relustudy.config import ConfigError
from relustudy.results import load_histories
from relustudy.store import ResultsStore
from relustudy.trainer import train

needs_data = pytest.mark.skipif(not mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_new_fields_at_their_defaults_keep_the_run_id():
    base = small()
    assert "evals" not in base.key_dict() and "eval_every" not in base.key_dict()
    assert small(evals=[], eval_every=1, eval_batch_size=None).run_id() == base.run_id()
    assert small(evals=["train_set"]).run_id() != base.run_id()
    assert small(eval_every=5).run_id() != base.run_id()
    assert small(evals=["rrelu_rules", "train_set", "train_set"]).evals == ("rrelu_rules", "train_set")


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"evals": ["test_set"]}, "unknown eval"),
        ({"evals": "train_set"}, "list"),
        ({"eval_every": 0}, "eval_every"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
    ],
)
def test_bad_eval_settings_are_one_clear_error(bad, match):
    with pytest.raises(ConfigError, match=match):
        small(**bad)


@needs_data
def test_train_set_eval_is_the_eval_mode_error_on_the_training_images(tmp_path, monkeypatch):
    cfg = small(evals=["train_set"], epochs=1)
    seen = {}
    original = trainer._evaluate

    def spy(model, data, config, device, split="test", **kw):
        out = original(model, data, config, device, split=split, **kw)
        seen.setdefault(split, []).append((model.training, out))
        return out

    monkeypatch.setattr(trainer, "_evaluate", spy)
    rec = train(cfg, ResultsStore(tmp_path), progress=False)
    m = rec["metrics"]
    assert 0.0 <= m["train_eval_error"] <= 1.0 and math.isfinite(m["train_eval_loss"])
    assert m["train_eval_error"] == seen["train"][0][1]["test_error"]
    # the running error (dropout on, weights changing during the epoch) is a different number
    assert m["train_error"] != m["train_eval_error"]
    assert "rrelu_rule.paper.test_error" not in m  # not asked for


@needs_data
def test_rrelu_rules_paper_rule_equals_the_normal_test_error(tmp_path):
    cfg = small(activation="rrelu", evals=["rrelu_rules"])
    m = train(cfg, ResultsStore(tmp_path), progress=False)["metrics"]
    rules = {k.split(".")[1] for k in m if k.startswith("rrelu_rule.") and k.endswith(".test_error")}
    assert rules == set(RReLU.TEST_RULES)
    assert m["rrelu_rule.paper.test_error"] == m["test_error"]  # x/5.5 is the normal eval
    # one pass with training noise is a different network from x/5.5 (the noise must be on)
    assert m["rrelu_rule.mc1.test_loss"] != m["rrelu_rule.paper.test_loss"]
    assert all(0.0 <= m[f"rrelu_rule.{r}.test_error"] <= 1.0 for r in rules)
    # repeatable: the Monte-Carlo passes have their own seed
    m2 = train(cfg, ResultsStore(tmp_path / "again"), progress=False)["metrics"]
    assert all(m[f"rrelu_rule.{r}.test_loss"] == m2[f"rrelu_rule.{r}.test_loss"] for r in rules)


@needs_data
def test_rrelu_rules_on_a_network_without_rrelu_record_nothing(tmp_path):
    m = train(small(evals=["rrelu_rules"], epochs=1), ResultsStore(tmp_path), progress=False)["metrics"]
    assert not any(k.startswith("rrelu_rule.") for k in m)


@needs_data
def test_eval_every_skips_test_evaluation_but_always_evaluates_the_last_epoch(tmp_path):
    cfg = small(epochs=3, eval_every=2)
    store = ResultsStore(tmp_path)
    rec = train(cfg, store, progress=False)
    h = load_histories(store).sort_values("epoch")
    assert h["test_error"].isna().tolist() == [True, False, False]  # epoch 1 skipped, 2 evaluated, 3 is last
    assert rec["metrics"]["test_error"] == h["test_error"].iloc[-1]


@needs_data
def test_non_finite_evaluation_marks_the_run_diverged(tmp_path, monkeypatch):
    original = trainer._evaluate

    def broken(model, data, config, device, split="test", **kw):
        out = original(model, data, config, device, split=split, **kw)
        return {**out, "test_loss": float("nan")} if split == "test" else out

    monkeypatch.setattr(trainer, "_evaluate", broken)
    rec = train(small(epochs=2), ResultsStore(tmp_path), progress=False)
    assert rec["status"] == "diverged" and rec["diverged_epoch"] == 1
    assert "test_accuracy" not in rec["metrics"]  # no final metrics from a diverged network
