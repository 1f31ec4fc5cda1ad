"""Precision twins and the paired precision check (relustudy.precision): each verdict from
synthetic records, the twin's definition, and bf16 refused in one line on a CPU without bf16 units."""

from __future__ import annotations

import pandas as pd
import pytest
from synthetic_records import long_records

from relustudy import trainer
from relustudy.book import ensure_runs
from relustudy.config import CapabilityError, ConfigError
from relustudy.experiments import get_experiment, run_experiment
from relustudy.notebook_params import validate
from relustudy.precision import (
    ALL_ARMS,
    precision_effect_frame,
    precision_effect_markdown,
    precision_effect_table,
    precision_twin,
)
from relustudy.sources.tf_rrelu_blog import BF16_CHECK
from relustudy.verdict_rules import margin

BASE, TWIN = BF16_CHECK
ARMS = [a.label for a in get_experiment(BASE).arms]
JITTER = (0.0010, -0.0008, 0.0003)  # the base runs' seed-to-seed spread


def _records(shift_by_seed: tuple[float, float, float], arms=ARMS, profile="quick") -> pd.DataFrame:
    """Base and twin records of every arm and seed, the twin's test error the base's plus the shift."""
    values = {arm: {"test_error": 0.02 + 0.001 * k} for k, arm in enumerate(arms)}
    return pd.concat(
        [
            long_records(
                experiment,
                values,
                seeds=range(len(JITTER)),
                offset=lambda i, seed, k, metric, twin=experiment == TWIN: (
                    JITTER[seed] + (shift_by_seed[seed] if twin else 0.0)
                ),
                profile=profile,
            )
            for experiment in (BASE, TWIN)
        ],
        ignore_index=True,
    )


def test_the_twin_differs_from_its_base_only_in_precision():
    base, twin = get_experiment(BASE), get_experiment(TWIN)
    assert twin.diagnostic and set(twin.profiles) == {"smoke", "quick"}
    for profile in twin.profiles:
        b, t = base.configs(profile), twin.configs(profile)
        assert [c.precision for c in b] == ["fp32"] * len(b) and [c.precision for c in t] == ["bf16"] * len(t)
        strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in ("experiment", "precision")}  # noqa: E731
        assert [strip(c) for c in b] == [strip(c) for c in t]
        assert not {c.run_id() for c in b} & {c.run_id() for c in t}  # never the same record


def test_a_twin_must_change_the_precision_and_keep_real_profiles():
    with pytest.raises(ConfigError, match="already runs at fp32"):
        precision_twin(BASE, "x_twin", "fp32")
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        precision_twin(BASE, "x_twin", "fp16")
    with pytest.raises(ConfigError, match="no profile regime"):
        precision_twin(BASE, "x_twin", "bf16", profiles=("smoke", "regime"))


@pytest.mark.parametrize(
    ("shift", "verdict"),
    [
        ((0.0002, -0.0001, 0.0001), "within the margin"),  # bf16 changes nothing that matters
        ((0.0300, 0.0310, 0.0290), "outside the margin"),  # bf16 costs three margins of error
        ((0.0300, -0.0280, 0.0010), "inconclusive"),  # too noisy to tell
    ],
)
def test_each_verdict_from_synthetic_records(shift, verdict):
    frame = precision_effect_frame(_records(shift), BASE, TWIN, "quick")
    assert list(frame["arm"]) == [*ARMS, ALL_ARMS]
    pooled = frame.set_index("arm").loc[ALL_ARMS]
    assert pooled["pairs"] == 3 * len(ARMS)
    assert pooled["difference"] == pytest.approx(sum(shift) / 3)
    assert set(frame["verdict"]) == {verdict}
    text = precision_effect_markdown(frame)
    assert f"**{verdict}** of ±{margin('test_error'):g}" in text and "bf16" in text
    assert ("could have detected" in text) == (verdict == "inconclusive")
    table = precision_effect_table(frame)
    assert "test error, fp32" in table.columns and "bf16 - fp32 (95% CI)" in table.columns


def test_unpaired_and_missing_runs():
    records = _records((0.0, 0.0, 0.0))
    only_base = records[records["experiment"] == BASE]
    assert precision_effect_frame(only_base, BASE, TWIN, "quick").empty
    assert precision_effect_frame(records, BASE, TWIN, "smoke").empty  # another profile: no pairs
    with pytest.raises(ConfigError, match="unknown profile 'paper' for experiment 'tf_rrelu_mnist_bn_bf16'"):
        precision_effect_frame(records, BASE, TWIN, "paper")  # the twin has no paper profile
    text = precision_effect_markdown(precision_effect_frame(pd.DataFrame(), BASE, TWIN, "quick"), "no bf16 units")
    assert text == "No paired runs: the precision check was not run (no bf16 units)."
    one_arm = records[(records["arm"] == ARMS[0]) | (records["experiment"] == BASE)]
    frame = precision_effect_frame(one_arm, BASE, TWIN, "quick")
    assert list(frame["arm"]) == [ARMS[0], ALL_ARMS]  # arms without twin runs are left out


def test_bf16_on_a_cpu_without_bf16_units_is_refused_before_training_and_a_chapter_skips_it(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "cpu_bf16_units", lambda: False)
    with pytest.raises(CapabilityError, match="bf16 units"):
        run_experiment(TWIN, "smoke", results_dir=tmp_path, seeds=(0,), device="cpu")
    assert not any(tmp_path.rglob("result.json"))  # nothing trained, nothing written
    params = validate(profile="smoke", seeds=[0], device="cpu", data_dir=None, results_dir=str(tmp_path))
    runs = ensure_runs([TWIN], params, skip_unavailable=True, faithful=False)
    assert "bf16 units" in runs.skipped[TWIN] and len(runs.results) == 0
