"""The MNIST chapter's library parts: the Theano-blog and TensorFlow-blog experiments, the
learning-curve metrics the trainer records, and the blog claims (rank, order, speed) on
synthetic results."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from synthetic_records import long_records

from relustudy import claims as C
from relustudy.config import RunConfig
from relustudy.estimates import BENCH, GUESS
from relustudy.experiments import get_experiment
from relustudy.metrics import metric_spec
from relustudy.sources.tf_rrelu_blog import TF_BLOG_ARMS
from relustudy.stepbench import STEP_TIMINGS
from relustudy.trainer import _final_metrics, learning_curve_metrics


# ---------------------------------------------------------------------------- experiments
def test_theano_experiment_follows_radfords_tutorial():
    exp = get_experiment("theano_mnist_radford")
    cfgs = exp.configs("paper")
    assert {c.arm for c in cfgs} == {
        "ReLU (switch)",
        "ReLU (max)",
        "ReLU (abs)",
        "PReLU (max/min)",
        "PReLU (abs)",
        "PReLU (Schlüter)",
    }
    c = cfgs[0]
    assert (c.model, c.dataset, c.optimizer, c.lr, c.momentum, c.eps, c.batch_size) == (
        "radford_convnet",
        "mnist",
        "rmsprop_theano",
        1e-3,
        0.9,
        1e-6,
        128,
    )
    assert c.train_subset == 10_000 and c.epochs == 30 and c.test_subset is None
    assert len({c.subset_seed for c in cfgs}) == 1  # the same 10k images for every arm and seed
    prelu = [c for c in cfgs if c.arm.startswith("PReLU")]
    assert all(c.activation_params == {"mode": "channel", "init": 0.25} for c in prelu)
    assert (
        exp.configs("quick")[0].epochs < 30 and "15 epochs instead of the blog's 30" in exp.profile("quick").describe()
    )
    # the subset shared by every profile counts in the size and cost shown in the book
    assert exp.train_images("paper") == exp.train_images("quick") == 10_000
    # With no record to measure from: the whole-step benchmark's rate, evaluation at 3x it (18 runs x 30 epochs)
    rate = 2300.0  # images/s of the trainer's loop at one thread
    step = {"settings": {"threads": 1}, "models": [
        {"model": exp.model, "width": 1.0, "batch_size": 128, "trainer_images_per_second": rate}]}  # fmt: skip
    cost = exp.estimate("paper", [], step_record=step)
    assert cost.basis == (BENCH,)
    assert cost.cpu_minutes == pytest.approx(18 * 30 * (10_000 + 10_000 / 3) / rate / 60)
    assert exp.estimate("paper", []).basis == (GUESS,)  # no benchmark either: a guess, and it says so


@pytest.mark.parametrize("name,bn", [("tf_rrelu_mnist_bn", True), ("tf_rrelu_mnist_nobn", False)])
def test_tf_blog_experiments(name, bn):
    exp = get_experiment(name)
    cfgs = exp.configs("quick")
    assert all(c.model_params == {"batch_norm": bn} and c.model == "simple_mlp_bn" for c in cfgs)
    by_arm = {c.arm: c for c in cfgs}
    assert by_arm["LReLU (a=100)"].activation_params == {"a": 100.0}
    assert by_arm["LReLU (a=5.5)"].activation_params == {"a": 5.5}
    assert by_arm["RReLU"].activation == "rrelu" and by_arm["RReLU (torch)"].activation == "torch_rrelu"
    assert len(cfgs) == 7 * 3
    assert "RReLU (torch)" not in TF_BLOG_ARMS and len(TF_BLOG_ARMS) == 6
    # the two settings are different runs even for the same arm and seed
    other = get_experiment("tf_rrelu_mnist_nobn" if bn else "tf_rrelu_mnist_bn").configs("quick")[0]
    assert other.run_id() != cfgs[0].run_id()


# ------------------------------------------------------------------------ learning curves
def test_learning_curve_metrics_known_values():
    m = learning_curve_metrics([0.90, 0.975, 0.979, 0.981, 0.980])
    assert m["best_test_accuracy"] == 0.981 and m["best_epoch"] == 4
    assert m["epochs_to_sweet_spot"] == 3  # 0.979 >= 0.981 - 0.002
    assert learning_curve_metrics([0.5, 0.5])["best_epoch"] == 1  # first of ties
    assert learning_curve_metrics([]) == {} and learning_curve_metrics([0.5, math.nan]) == {}
    assert metric_spec("epochs_to_sweet_spot").parameter("tolerance") == 0.002  # in the metric registry
    with pytest.raises(ValueError, match="has no parameter 'slack'; it has: tolerance"):
        metric_spec("epochs_to_sweet_spot").parameter("slack")


def test_final_metrics_speed_is_a_median_and_its_log():
    cfg = RunConfig(
        experiment="e", profile="smoke", dataset="mnist", model="simple_mlp_bn", activation="relu", epochs=3
    )
    hist = [
        dict(
            epoch=i + 1,
            test_accuracy=a,
            test_error=1 - a,
            test_top5_error=0.0,
            test_loss=0.1,
            train_loss=0.1,
            train_error=0.1,
            images_per_second=ips,
        )
        for i, (a, ips) in enumerate([(0.9, 100.0), (0.95, 400.0), (0.96, 300.0)])
    ]
    m = _final_metrics(cfg, hist, [], 5.0)
    assert m["median_images_per_second"] == 300.0
    assert m["log_median_images_per_second"] == pytest.approx(math.log(300.0))
    assert m["images_per_second"] == pytest.approx(800 / 3)
    assert m["epochs_to_sweet_spot"] == 3 and m["best_test_accuracy"] == 0.96


# ---------------------------------------------------------------------------- blog claims
SEED_JITTER = np.array([0.0, 0.0004, -0.0004, 0.0002, -0.0002])


def tidy(
    experiment: str, values: dict[str, dict[str, float]], seeds=range(5), noise: float = 0.0, rng_seed: int = 0
) -> pd.DataFrame:
    """values[arm][metric] + seed jitter shared by arms (+ optional independent noise)."""
    rng = np.random.default_rng(rng_seed)
    return long_records(
        experiment,
        values,
        seeds=seeds,
        offset=lambda i, seed, k, metric: SEED_JITTER[i % 5] + noise * rng.standard_normal(),
    )


def tf_values(acc: dict[str, float]) -> dict[str, dict[str, float]]:
    return {a: {"test_accuracy": acc.get(a, 0.97)} for a in (*TF_BLOG_ARMS, "RReLU (torch)")}


def test_rank_claim_worst_and_best():
    worst = tidy("tf_rrelu_mnist_bn", tf_values({"RReLU": 0.95, "ELU": 0.96, "ReLU": 0.98}))
    assert C.get_claim("tf_rrelu_blog.bn.rrelu_among_worst").evaluate(worst, "quick").verdict == "replicated"
    r = C.get_claim("tf_rrelu_blog.bn.relu_best").evaluate(worst, "quick")
    assert r.verdict == "replicated" and "significantly better than 5" in r.detail
    # RReLU in the middle: two arms significantly below it -> cannot be among the worst 2
    mid = tidy("tf_rrelu_mnist_bn", tf_values({"RReLU": 0.97, "ELU": 0.95, "PReLU": 0.95, "ReLU": 0.99}))
    assert C.get_claim("tf_rrelu_blog.bn.rrelu_among_worst").evaluate(mid, "quick").verdict == "not replicated"
    # ReLU beaten by one arm: not the best, but still among the best 2 ("almost the best")
    nobn = tidy("tf_rrelu_mnist_nobn", tf_values({"ReLU": 0.98, "PReLU": 0.99}))
    assert C.get_claim("tf_rrelu_blog.nobn.relu_almost_best").evaluate(nobn, "quick").verdict == "replicated"
    bn = tidy("tf_rrelu_mnist_bn", tf_values({"ReLU": 0.98, "PReLU": 0.99}))
    assert C.get_claim("tf_rrelu_blog.bn.relu_best").evaluate(bn, "quick").verdict == "not replicated"


def test_rank_claim_within_noise_is_inconclusive_and_missing_is_not_run():
    noisy = tidy("tf_rrelu_mnist_bn", tf_values({}), noise=0.01)
    assert C.get_claim("tf_rrelu_blog.bn.rrelu_among_worst").evaluate(noisy, "quick").verdict == "inconclusive"
    partial = noisy[noisy["arm"] != "ELU"]
    r = C.get_claim("tf_rrelu_blog.bn.relu_best").evaluate(partial, "quick")
    assert r.verdict == "not run" and "ELU" in r.detail
    with pytest.raises(ValueError, match="k must be"):
        C.RankClaim(
            id="x",
            source="tf_rrelu_blog",
            experiment="tf_rrelu_mnist_bn",
            section="",
            quote="",
            statement="",
            arm="ReLU",
            others=("ELU",),
            k=2,
        )


ALPHAS = ("alpha.act1.mean", "alpha.act2.mean", "alpha.act3.mean", "alpha.act_fc1.mean")


def test_order_claim_alphas():
    claim = C.get_claim("theano_blog.alphas_higher_in_lower_layers")
    decreasing = tidy("theano_mnist_radford", {"PReLU (abs)": dict(zip(ALPHAS, (0.5, 0.3, 0.2, 0.1), strict=True))})
    assert claim.evaluate(decreasing, "quick").verdict == "replicated"
    swapped = tidy("theano_mnist_radford", {"PReLU (abs)": dict(zip(ALPHAS, (0.5, 0.1, 0.2, 0.05), strict=True))})
    r = claim.evaluate(swapped, "quick")
    assert r.verdict == "not replicated"
    assert "a, act2 (mean) - PReLU (abs): PReLU coefficient a, act3 (mean)" in r.detail  # labels, not keys
    assert claim.evaluate(swapped[swapped["arm"] == "nobody"], "quick").verdict == "not run"


def test_speed_claims_use_log_ratio_margin_on_the_compiled_forms_as_written():
    metric = "log_step_images_per_second"

    def speeds(ratio_abs: float) -> pd.DataFrame:
        labels = STEP_TIMINGS.get("theano_mnist_radford_timing").labels("quick")
        v = {label: {metric: math.log(1000.0)} for label in labels}
        v["ReLU (abs), as written, compiled"][metric] = math.log(1000.0 * ratio_abs)
        v["ReLU (abs), as written, eager"][metric] = math.log(500.0)  # the eager rows do not decide
        return tidy("theano_mnist_radford_timing", v)

    claim = C.get_claim("theano_blog.relu_max_and_abs_equally_fast")
    assert claim.experiment == "theano_mnist_radford_timing" and claim.arm == "ReLU (max), as written, compiled"
    assert claim.evaluate(speeds(1.02), "quick").verdict == "replicated"  # 2% apart
    r = claim.evaluate(speeds(0.7), "quick")  # abs 30% slower
    assert r.verdict == "not replicated"
    assert "figure only" in r.paper and "no numbers" in r.note
    assert "interleaved" in r.note and "compiled" in r.note


def test_the_switch_prelu_is_timed_and_labelled_our_form():
    claim = C.get_claim("theano_blog.prelu_switch_adds_minimal_time")
    assert claim.arm == "PReLU (switch, our form), compiled" and claim.others == (
        "ReLU (switch), as written, compiled",
    )
    assert "our form" in claim.note
    arms = {a.label: a.activation for a in STEP_TIMINGS.get("theano_mnist_radford_timing").arms}
    assert arms["PReLU (switch, our form)"] == "prelu_where" and arms["ReLU (switch), as written"] == "relu_where"


def test_sweet_spot_claim_lower_is_better():
    v = {"ReLU (max)": {"epochs_to_sweet_spot": 9.0}, "PReLU (max/min)": {"epochs_to_sweet_spot": 6.0}}
    df = tidy("theano_mnist_radford", v)
    assert C.get_claim("theano_blog.prelu_reaches_sweet_spot_sooner").evaluate(df, "quick").verdict == "replicated"


def test_blog_claims_are_registered_per_source():
    theano = [c for c in C.CLAIMS.names() if c.startswith("theano_blog.")]
    tf = [c for c in C.CLAIMS.names() if c.startswith("tf_rrelu_blog.")]
    assert len(theano) == 8 and len(tf) == 4
    # the speed sentences are tested on the blog's forms as written, compiled, in the timing experiment
    timed = {c for c in theano if c.endswith(("_equally_fast", "_adds_minimal_time"))}
    assert len(timed) == 5
    assert all(C.get_claim(c).metrics == ("log_step_images_per_second",) for c in timed)
    assert all(C.get_claim(c).experiment == "theano_mnist_radford_timing" for c in timed)
    assert all(C.get_claim(c).experiment == "theano_mnist_radford" for c in set(theano) - timed)


def test_minimal_added_time_is_one_sided_faster_counts_as_no_added_time():
    metric = "log_step_images_per_second"
    labels = STEP_TIMINGS.get("theano_mnist_radford_timing").labels("quick")

    def speeds(prelu_over_relu: float) -> pd.DataFrame:
        v = {label: {metric: math.log(1000.0)} for label in labels}
        v["PReLU (abs), as written, compiled"][metric] = math.log(1000.0 * prelu_over_relu)
        return tidy("theano_mnist_radford_timing", v)

    claim = C.get_claim("theano_blog.prelu_abs_adds_minimal_time")
    assert claim.relation == "non_inferior"
    assert claim.evaluate(speeds(1.3), "quick").verdict == "replicated"  # PReLU faster: no added time
    assert claim.evaluate(speeds(0.97), "quick").verdict == "replicated"  # 3% slower: minimal
    assert claim.evaluate(speeds(0.7), "quick").verdict == "not replicated"  # 30% slower
    # the same data decides "equally fast" two-sided: 30% faster is not the same speed
    same = C.get_claim("theano_blog.prelu_max_and_abs_equally_fast")
    v = {label: {metric: math.log(1000.0)} for label in labels}
    v["PReLU (abs), as written, compiled"][metric] = math.log(1300.0)
    assert same.evaluate(tidy("theano_mnist_radford_timing", v), "quick").verdict == "not replicated"
