"""The regime profile: its criterion on synthetic records gives each answer, and the book's profile
ordering (quick < regime < paper) picks the most faithful complete one."""

from __future__ import annotations

import math

import pytest

from relustudy import sources  # noqa: F401  (registers the experiments)
from relustudy.book.runs import regime_markdown, shown_profile
from relustudy.experiments import (
    REGIME_INCOMPLETE,
    REGIME_MET,
    REGIME_NOT_MET,
    all_of,
    every_run_at_most,
    get_experiment,
)
from relustudy.sources import he2015, xu2015
from relustudy.store import ResultsStore

EXP = "xu_cifar10_nin"


def _write(store: ResultsStore, profile: str, value=lambda cfg: 0.005, skip: int = 0) -> int:
    """Complete records for ``profile``'s grid with ``train_eval_error = value(cfg)``; the last ``skip``
    runs are left without a record. Returns how many were written."""
    configs = get_experiment(EXP).configs(profile, device="cpu")
    for cfg in configs[: len(configs) - skip]:
        store.begin(cfg)
        store.write_result(
            cfg,
            status="complete",
            metrics={"train_eval_error": value(cfg), "test_error": 0.3},
            provenance={"device": "cpu: 1 thread, Test CPU", "wall_seconds": 1.0},
        )
    return len(configs) - skip


def test_criterion_met_when_every_run_fits(tmp_path):
    store = ResultsStore(tmp_path)
    _write(store, "regime", lambda cfg: 0.002 + 0.001 * cfg.seed)
    verdict = get_experiment(EXP).regime_verdict("regime", store.records(EXP, "regime"))
    assert verdict.state == REGIME_MET
    assert "0.0020-0.0040 over 15 runs" in verdict.why


def test_criterion_not_met_names_the_worst_run(tmp_path):
    store = ResultsStore(tmp_path)
    # One arm and seed above the 1% line: the whole profile is out of regime.
    _write(store, "regime", lambda cfg: 0.03 if (cfg.arm == xu2015.RRELU and cfg.seed == 2) else 0.004)
    verdict = get_experiment(EXP).regime_verdict("regime", store.records(EXP, "regime"))
    assert verdict.state == REGIME_NOT_MET
    assert "1 of 15 runs" in verdict.why and "RReLU seed 2" in verdict.why and "0.0300" in verdict.why


def test_criterion_not_met_when_a_run_lacks_the_metric(tmp_path):
    store = ResultsStore(tmp_path)
    _write(store, "regime", lambda cfg: math.nan if cfg.seed == 0 and cfg.arm == xu2015.RELU else 0.004)
    verdict = get_experiment(EXP).regime_verdict("regime", store.records(EXP, "regime"))
    assert verdict.state == REGIME_NOT_MET


def test_criterion_incomplete_until_every_run_is_recorded(tmp_path):
    store = ResultsStore(tmp_path)
    written = _write(store, "regime", skip=4)
    verdict = get_experiment(EXP).regime_verdict("regime", store.records(EXP, "regime"))
    assert verdict.state == REGIME_INCOMPLETE
    assert f"{written} of 15 runs" in verdict.why
    assert "not yet known" in verdict.markdown()


def test_a_profile_without_criterion_has_no_verdict(tmp_path):
    assert get_experiment(EXP).regime_verdict("quick", []) is None


@pytest.mark.parametrize(
    ("complete", "shown"),
    [((), "quick"), (("regime",), "regime"), (("paper",), "paper"), (("regime", "paper"), "paper")],
)
def test_profile_ordering_picks_the_most_faithful_complete_profile(tmp_path, complete, shown):
    store = ResultsStore(tmp_path)
    _write(store, "quick")
    for profile in complete:
        _write(store, profile)
    assert shown_profile(EXP, "quick", store) == shown
    # An incomplete regime grid is never shown.
    if not complete:
        _write(store, "regime", skip=1)
        assert shown_profile(EXP, "quick", store) == "quick"


def test_experiments_without_a_regime_profile_keep_their_order(tmp_path):
    store = ResultsStore(tmp_path)
    assert "regime" not in get_experiment("smith_fmnist_cnn").profiles
    assert shown_profile("smith_fmnist_cnn", "quick", store) == "quick"


def test_regime_row_on_the_page(tmp_path):
    store = ResultsStore(tmp_path)
    _write(store, "regime", lambda cfg: 0.02)
    row = regime_markdown(EXP, "regime", store)
    assert "**In the paper's regime:** **no**" in row and "15 of 15 runs" in row
    assert "not completely recorded yet" in regime_markdown(EXP, "quick", store)
    assert regime_markdown("smith_fmnist_cnn", "paper", store).endswith("the source's own setup.")
    assert "xu_cifar10_nin" not in row and row.startswith("Table 3, ")  # named as a reader knows it


def test_a_regime_book_shows_quick_for_experiments_without_a_regime_profile(tmp_path):
    store = ResultsStore(tmp_path)
    assert shown_profile("smith_fmnist_cnn", "regime", store) == "quick"
    assert shown_profile(EXP, "regime", store) == "regime"


def _record(arm: str, seed: int, **metrics) -> dict:
    return {"config": {"arm": arm, "seed": seed}, "metrics": metrics}


def test_pattern_checks_every_matching_metric_of_the_named_arms_only():
    drift = every_run_at_most("alpha.*.late_drift", 0.02, "coefficient drift", arms=("PReLU",))
    fits = every_run_at_most("train_eval_error", 0.10, "eval-mode training error", arms=("ReLU",))
    both = all_of(fits, drift)
    records = [
        _record("ReLU", 0, train_eval_error=0.08),  # no coefficients: not checked for drift
        _record("PReLU", 0, train_eval_error=0.5, **{"alpha.act1.late_drift": 0.01, "alpha.act2.late_drift": 0.015}),
    ]
    assert both(records).state == REGIME_MET
    records[1]["metrics"]["alpha.act2.late_drift"] = 0.05
    verdict = both(records)
    assert verdict.state == REGIME_NOT_MET and "PReLU seed 0 (alpha.act2.late_drift), 0.0500" in verdict.why
    records[1]["metrics"] = {"train_eval_error": 0.5}  # a PReLU run without the drift cannot meet it
    assert drift(records).state == REGIME_NOT_MET
    assert fits([_record("PReLU", 0, train_eval_error=0.01)]).state == REGIME_NOT_MET  # no ReLU run to check


def _write_he(store: ResultsStore, experiment: str, metrics) -> None:
    for cfg in get_experiment(experiment).configs("regime", device="cpu"):
        store.begin(cfg)
        store.write_result(
            cfg, status="complete", metrics=metrics(cfg), provenance={"device": "cpu: 1 thread", "wall_seconds": 1.0}
        )


def test_he_regime_criteria_need_a_fitted_relu_and_settled_coefficients(tmp_path):
    exp = get_experiment(he2015.PRELU_EXPERIMENT.name)

    def metrics(drift: float, relu_error: float):
        def of(cfg):
            m = {"train_eval_error": relu_error if cfg.arm == he2015.RELU else 0.3, "test_error": 0.4}
            if cfg.activation == "prelu":
                m.update({f"alpha.{mod}.late_drift": drift for mod in he2015.LAYER_MODULES.values()})
            return m

        return of

    for drift, relu_error, state in (
        (0.01, 0.05, REGIME_MET),
        (0.05, 0.05, REGIME_NOT_MET),
        (0.01, 0.2, REGIME_NOT_MET),
    ):
        store = ResultsStore(tmp_path / f"{drift}-{relu_error}")
        _write_he(store, exp.name, metrics(drift, relu_error))
        verdict = exp.regime_verdict("regime", store.records(exp.name, "regime"))
        assert verdict.state == state, verdict.why
    init = get_experiment(he2015.INIT_EXPERIMENT.name)
    store = ResultsStore(tmp_path / "init")
    # Xavier stalls at chance; Kaiming trains: the criterion is about Kaiming's nets only
    _write_he(store, init.name, lambda cfg: {"train_loss": 2.3026 if "Xavier" in cfg.arm else 0.8, "test_error": 0.9})
    assert init.regime_verdict("regime", store.records(init.name, "regime")).state == REGIME_MET
    store = ResultsStore(tmp_path / "init-stalled")
    _write_he(
        store, init.name, lambda cfg: {"train_loss": 1.2 if cfg.arm == "Kaiming, 30 layers" else 0.8, "test_error": 0.9}
    )
    verdict = init.regime_verdict("regime", store.records(init.name, "regime"))
    assert verdict.state == REGIME_NOT_MET and "Kaiming, 30 layers" in verdict.why
