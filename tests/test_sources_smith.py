"""Smith's source module: the sparsity-gap diagnostic gives each of its answers on synthetic stats."""

from __future__ import annotations

import pandas as pd
from synthetic_records import long_records

from relustudy.experiments import get_experiment
from relustudy.reference import paper_value
from relustudy.sources import smith
from relustudy.store import ResultsStore

ARMS = [a.label for a in smith.SMITH_ARMS]
CNN, VGG = smith.PROBE_EXPERIMENTS


def _stats(offsets: dict[tuple[str, int], float], experiment: str = CNN, epochs: int = 3) -> pd.DataFrame:
    """Synthetic stats rows: the paper's sparsity plus an offset per (probe, epoch) (default 0.3)."""
    table = "Table 3" if experiment == CNN else "Table 4"
    rows = []
    for layer in smith.PROBE_LABELS:
        for epoch in range(1, epochs + 1):
            for arm in ARMS:
                for seed in (0, 1):
                    value = paper_value("smith", table, arm, "lifetime_sparsity") + offsets.get((layer, epoch), 0.3)
                    rows.append(
                        {
                            "experiment": experiment,
                            "arm": arm,
                            "seed": seed,
                            "epoch": epoch,
                            "layer": layer,
                            "sparsity": value,
                        }
                    )
    return pd.DataFrame(rows)


def test_the_papers_reading_comes_first_and_no_other_reading_is_singled_out():
    gap = smith.sparsity_gap_frame(_stats({("last_pool", 3): 0.01}))
    # the paper's layer at every epoch, the other probes at the last one
    assert set(map(tuple, gap[["probe", "epoch"]].drop_duplicates().values)) == {
        ("last_conv", 1),
        ("last_conv", 2),
        ("last_conv", 3),
        ("last_conv_input", 3),
        ("last_pool", 3),
        ("first_conv", 3),
    }
    text = smith.sparsity_gap_markdown(gap)
    assert "the paper's definition (the last conv activation after the last epoch), 2 seed(s)" in text
    assert "largest gap over the arms 0.300, outside our tolerance of 0.05" in text
    assert "5 other readings tried" in text and "0.010-0.300; 1 of them within the tolerance" in text
    assert "**" not in text and "explain" not in text and "max-pool" not in text  # nothing selected by outcome
    table = smith.sparsity_gap_table(gap)  # every reading stays in the table
    assert table.loc[("Table 3", smith.PROBE_LABELS["last_pool"], 3), "all within 0.05"] == "yes"
    assert (table["all within 0.05"] == "no").sum() == len(table) - 1


def test_a_gap_in_one_arm_is_enough_to_be_outside():
    stats = _stats({("last_conv", 3): 0.0})
    stats.loc[(stats["layer"] == "last_conv") & (stats["epoch"] == 3) & (stats["arm"] == "tanh"), "sparsity"] += 0.2
    text = smith.sparsity_gap_markdown(smith.sparsity_gap_frame(stats))
    assert "largest gap over the arms 0.200, outside our tolerance" in text


def test_the_papers_own_layer_within_tolerance_is_said_first():
    text = smith.sparsity_gap_markdown(
        smith.sparsity_gap_frame(_stats({("last_conv", 3): 0.03, ("last_conv", 2): 0.01}))
    )
    assert "largest gap over the arms 0.030, within our tolerance of 0.05" in text


def test_a_partial_grid_says_so():
    stats = _stats({("last_pool", 3): 0.01})
    text = smith.sparsity_gap_markdown(smith.sparsity_gap_frame(stats[stats["arm"] != "tanh"]))
    assert text.startswith("- Table 3: ") and "(Only 3 of 4 arms recorded.)" in text


def test_no_records_is_one_sentence():
    assert smith.sparsity_gap_frame(pd.DataFrame()).empty
    assert smith.sparsity_gap_markdown(smith.sparsity_gap_frame(pd.DataFrame())).startswith("No diagnostic records")
    assert smith.sparsity_gap_table(smith.sparsity_gap_frame(pd.DataFrame())).empty


def _record(root, experiment: str, profile: str, arm: str, accuracy: float) -> None:
    """One complete seed-0 record of ``arm``, written through the real store."""
    cfg = next(c for c in get_experiment(experiment).configs(profile, seeds=(0,), device="cpu") if c.arm == arm)
    store = ResultsStore(root)
    store.begin(cfg)
    store.write_result(cfg, status="complete", metrics={"test_accuracy": accuracy}, provenance={"wall_seconds": 1.0})


def test_probe_repeats_compare_seed_zero_with_the_paper_profile(tmp_path):
    assert "no paper-profile seed-0 record" in smith.probe_repeats_markdown(tmp_path)
    for arm, acc in (("ReLU", 0.5), ("tanh", 0.4)):
        _record(tmp_path, CNN, "quick", arm, acc)
        _record(tmp_path, "smith_cifar10_cnn", "paper", arm, acc if arm == "ReLU" else 0.41)
    text = smith.probe_repeats_markdown(tmp_path)
    assert (
        "identical to 3-layer CNN on CIFAR-10 (paper profile) for 1 of 2 arms; it differs for tanh (-0.0100)." in text
    )
    assert (
        "- 3-VGG-block CNN on CIFAR-10: activation statistics by epoch and probe (diagnostic): no paper-profile" in text
    )
    assert "_probes" not in text  # experiments by title, not by key


def test_dead_units_table_sets_each_arms_dead_fraction_beside_its_gain_over_relu():
    values = {
        "tanh": {"test_accuracy": 0.68, smith.DEAD: 0.0},
        "ReLU": {"test_accuracy": 0.70, smith.DEAD: 0.35},
        "LReLU": {"test_accuracy": 0.745, smith.DEAD: 0.0},
        "PReLU": {"test_accuracy": 0.746, smith.DEAD: 0.0},
    }
    df = long_records(
        "smith_cifar10_vgg3", values, profile="paper", offset=lambda i, s, k, m: 0.002 * (s % 3) * (k == 0)
    )
    df.loc[df["arm"] == "PReLU", "value"] += [0.001, -0.001, 0.0, 0.001, 0.0] * 2
    table = smith.dead_units_table(df, {"smith_cifar10_vgg3": "paper"})
    assert table.loc[("Table 4 (paper)", "ReLU"), "dead units, last conv (fraction)"].startswith("0.350")
    assert table.loc[("Table 4 (paper)", "ReLU"), "accuracy minus ReLU's (95% CI)"] == "reference"
    assert table.loc[("Table 4 (paper)", "LReLU"), "accuracy minus ReLU's (95% CI)"].startswith("+0.045")
    assert smith.dead_units_table(df, {"smith_cifar10_cnn": "paper"}).empty  # no records there
