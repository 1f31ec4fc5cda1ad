"""Smith, "Comparing Rectified Linearity Performance on Image Data": Tables 2-4.

Everything the study knows about this source: its metadata, arms, experiments, claims and the
chapter's caption notes (notebooks/smith.ipynb).
"""

from __future__ import annotations

import pandas as pd

from ..claims import ClaimSet, Quantity
from ..experiments import EXPERIMENTS, SMOKE, Arm, Experiment, Profile, get_experiment
from ..reference import SOURCES, Source, experiment_reference, paper_value
from ..results import complete_rows, load_results
from ..stats import mean_sd_cell, paired_comparison
from ..verdict_rules import margin

SOURCE = SOURCES.register(
    "smith",
    Source(
        key="smith",
        values_file="smith_values.csv",
        citation='J. Smith, "Comparing Rectified Linearity Performance on Image Data"',
        label="Smith",
        paper_columns={
            "test_accuracy": "accuracy",
            "last_conv.sparsity": "lifetime_sparsity",
            "last_conv.dispersion": "dispersion",
        },
        rounding_half_unit=0.0005,
        chapter="smith",
        caption_note="Lifetime sparsity and dispersion are measured in the last convolutional layer.",
        bib_key="smithrectified",
        bib_fields={
            "author": "Smith, Jason",
            "title": "Comparing Rectified Linearity Performance on Image Data",
            "howpublished": "Manuscript, Mathematics Department, Boise State University",
            "note": "No date, venue or identifier is stated in the text this study worked from",
        },
    ),
)

# Our metric -> the paper's column (accuracy <- test_accuracy, ...).
SMITH_METRICS: dict[str, str] = SOURCE.paper_columns

SMITH_ARMS = (
    Arm("tanh", "tanh"),
    Arm("ReLU", "relu"),
    Arm("LReLU", "lrelu", {"slope": 0.1}),
    Arm("PReLU", "prelu", {"mode": "channel", "init": 0.25}),
)

SMITH_NOTES = (
    "Adam with Keras' defaults (lr 0.001, beta 0.9/0.999, eps 1e-7); categorical cross-entropy.",
    "Batch size is not stated: the paper profile uses Keras' default fit batch size, 32.",
    "Pixels scaled to [0, 1] (x/255) as in the Keras examples; the paper states no normalisation; no augmentation.",
    "LReLU slope 0.1, from the paper's text (Keras' LeakyReLU default would be 0.3).",
    "Activation statistics are measured on the full test set in the last conv layer, each (channel, y, x) neuron a unit.",
)

# The paper's common setup; profiles override what they scale down.
SMITH_COMMON = dict(optimizer="adam", lr=1e-3, eps=1e-7, normalize="scale01", channels_last=True)


def _smith(
    name: str,
    table: str,
    title: str,
    dataset: str,
    model: str,
    paper_epochs: int,
    quick_epochs: int,
    quick_seeds: tuple[int, ...],
    epochs_note: str,
) -> Experiment:
    # Where each number comes from: the paper states neither batch size nor (for the 3-layer CNNs)
    # epochs, so the paper profile's 32 and 10 are our readings, not the source's.
    quick_scale = [
        "batch 128 (throughput on 2 CPU cores) instead of the paper profile's 32 "
        "(our reading: Keras' default; the paper states none)"
    ]
    if quick_epochs != paper_epochs:
        quick_scale.append(
            f"{quick_epochs} epochs instead of the paper profile's {paper_epochs} (our reading; the paper states none)"
        )
    quick_scale.append(f"{len(quick_seeds)} seeds (the paper reports one run)")
    return EXPERIMENTS.register(
        name,
        Experiment(
            name=name,
            source="smith",
            table=table,
            title=title,
            dataset=dataset,
            model=model,
            arms=SMITH_ARMS,
            common=SMITH_COMMON,
            profiles={
                "smoke": Profile(
                    (0, 1),
                    {**SMOKE, "stats_epochs": (1,)},
                    ("512 training and 500 test images", "1 epoch", "batch 64", "2 seeds"),
                ),
                "quick": Profile(
                    quick_seeds,
                    {"epochs": quick_epochs, "batch_size": 128, "stats_epochs": (quick_epochs,)},
                    tuple(quick_scale),
                ),
                "paper": Profile(
                    (0, 1, 2, 3, 4),
                    {"epochs": paper_epochs, "batch_size": 32, "stats_epochs": (paper_epochs,)},
                    ("5 seeds (the paper reports one run)",),
                ),
            },
            notes=SMITH_NOTES + (epochs_note,),
        ),
    )


_smith(
    "smith_fmnist_cnn",
    "Table 2",
    "3-layer CNN on Fashion-MNIST",
    "fashion_mnist",
    "smith_cnn",
    paper_epochs=10,
    quick_epochs=3,
    quick_seeds=(0, 1, 2, 3, 4),
    epochs_note="Epochs for the 3-layer CNN are not stated: the paper profile uses 10 (the Keras tutorials this setup follows).",
)
_smith(
    "smith_cifar10_cnn",
    "Table 3",
    "3-layer CNN on CIFAR-10",
    "cifar10",
    "smith_cnn",
    paper_epochs=10,
    quick_epochs=3,
    quick_seeds=(0, 1, 2, 3, 4),
    epochs_note="Epochs for the 3-layer CNN are not stated: the paper profile uses 10 (the Keras tutorials this setup follows).",
)
_smith(
    "smith_cifar10_vgg3",
    "Table 4",
    "3-VGG-block CNN on CIFAR-10",
    "cifar10",
    "smith_vgg3",
    paper_epochs=3,
    quick_epochs=3,
    quick_seeds=(0, 1, 2),
    epochs_note="The VGG model is trained 3 epochs, as in the paper (overfitting began in the third).",
)

TABLE_EXPERIMENTS = ("smith_fmnist_cnn", "smith_cifar10_cnn", "smith_cifar10_vgg3")  # Tables 2-4


# Diagnostics for the sparsity gap (our lifetime sparsity is about twice the paper's in the 3-layer
# CNNs, and VGG's tanh far above it): the paper profile's training, measured after every epoch and
# at the probes a reader of "the last convolutional layer" might also have used (models.SMITH_PROBES).
# Training is unchanged by the probes: seed 0 repeats the paper profile's seed-0 run.
SPARSITY_PROBE_LAYERS = ("last_conv", "last_conv_input", "last_pool", "first_conv")


def _smith_probe(name: str, base: str, paper_epochs: int) -> Experiment:
    exp = EXPERIMENTS.get(base)
    settings = {"epochs": paper_epochs, "batch_size": 32, "stats_epochs": tuple(range(1, paper_epochs + 1))}
    return EXPERIMENTS.register(
        name,
        Experiment(
            name=name,
            source="smith",
            table=exp.table,
            title=f"{exp.title}: activation statistics by epoch and probe (diagnostic)",
            dataset=exp.dataset,
            model=exp.model,
            arms=SMITH_ARMS,
            common={**SMITH_COMMON, "model_params": {"probes": "diagnostic"}},
            profiles={
                "smoke": Profile(
                    (0,),
                    {**SMOKE, "stats_epochs": (1,)},
                    ("512 training and 500 test images", "1 epoch", "batch 64", "1 seed"),
                ),
                "quick": Profile((0,), settings, ("1 seed (a diagnostic: the paper profile's seed-0 runs, probed)",)),
                "paper": Profile((0, 1, 2), settings, ("3 seeds (a diagnostic)",)),
            },
            diagnostic="which layer and reading of lifetime sparsity the paper's numbers match",
            notes=exp.notes
            + (
                "Diagnostic: statistics after every epoch, at the last conv activation (the paper's layer), at the "
                "last convolution before its activation (tanh's 0.95 threshold then applies to z), after the "
                "following max-pool, and at the first conv activation.",
            ),
        ),
    )


PROBE_EXPERIMENTS = (
    _smith_probe("smith_cifar10_cnn_probes", "smith_cifar10_cnn", 10).name,
    _smith_probe("smith_cifar10_vgg3_probes", "smith_cifar10_vgg3", 3).name,
)
PROBE_LABELS = {
    "last_conv": "last conv activation (the paper's layer)",
    "last_conv_input": "last conv, before its activation",
    "last_pool": "after the last conv's max-pool",
    "first_conv": "first conv activation",
}
# Our choice: a reading is "within tolerance" of the paper when every arm's lifetime sparsity lies
# within this distance of the paper's number (about the largest seed-to-seed spread in our records).
GAP_TOLERANCE = 0.05


def sparsity_gap_frame(stats: pd.DataFrame) -> pd.DataFrame:
    """One row per probe experiment, reading (probe layer and epoch) and arm: our lifetime
    sparsity (mean over seeds), the paper's, and the difference; readings are the paper's layer
    after every epoch and every other probe after the last epoch."""
    cols = ["experiment", "table", "probe", "epoch", "arm", "ours", "paper", "difference", "seeds"]
    if stats is None or len(stats) == 0:
        return pd.DataFrame(columns=cols)
    rows = []
    for name in PROBE_EXPERIMENTS:
        sub = stats[(stats["experiment"] == name) & stats["layer"].isin(list(PROBE_LABELS))]
        if sub.empty:
            continue
        _, table = experiment_reference(name)
        last = int(sub["epoch"].max())
        for (layer, epoch, arm), g in sub.groupby(["layer", "epoch", "arm"], sort=False):
            if layer != "last_conv" and int(epoch) != last:
                continue
            paper = paper_value("smith", table, arm, "lifetime_sparsity")
            ours = float(g["sparsity"].mean())
            rows.append((name, table, layer, int(epoch), arm, ours, paper, ours - paper, int(g["seed"].nunique())))
    return pd.DataFrame(rows, columns=cols)


def sparsity_gap_table(gap: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Per reading: every arm's sparsity (ours / paper), the largest absolute gap and whether the
    reading brings all arms within :data:`GAP_TOLERANCE` of the paper."""
    if gap.empty:
        return pd.DataFrame()
    rows = []
    for (table, layer, epoch), g in gap.groupby(["table", "probe", "epoch"], sort=False):
        row = {"table": table, "reading": PROBE_LABELS[layer], "epoch": epoch}
        for arm in (a.label for a in SMITH_ARMS):
            hit = g[g["arm"] == arm]
            if len(hit):
                row[f"{arm} ours / paper"] = f"{hit['ours'].iloc[0]:.{digits}f} / {hit['paper'].iloc[0]:.{digits}f}"
        worst = float(g["difference"].abs().max())
        row["largest |gap|"] = round(worst, digits)
        row[f"all within {GAP_TOLERANCE}"] = "yes" if worst <= GAP_TOLERANCE else "no"
        rows.append(row)
    return pd.DataFrame(rows).set_index(["table", "reading", "epoch"])


def sparsity_gap_markdown(gap: pd.DataFrame) -> str:
    """What the readings show, computed from ``sparsity_gap_frame``, per table: the paper's own
    definition (its layer after the last epoch) first, as the primary reading, then how many other
    readings were tried and the range of their largest gaps. Exploratory: with several readings
    tried, one of them coming close is expected by chance, so none is singled out as a cause."""
    if gap.empty:
        return "No diagnostic records: the sparsity readings could not be compared."
    out = []
    for table, g in gap.groupby("table", sort=False):
        worst = g.groupby(["probe", "epoch"])["difference"].apply(lambda d: d.abs().max())
        paper_layer = worst.xs("last_conv", level="probe")
        last = paper_layer.index.max()
        base = float(paper_layer.loc[last])
        others = worst.drop(("last_conv", last))
        seeds = int(g["seeds"].max()) if "seeds" in g and len(g) else 0
        within = "within" if base <= GAP_TOLERANCE else "outside"
        line = (
            f"- {table}: the paper's definition (the last conv activation after the last epoch), {seeds} seed(s): "
            f"largest gap over the arms {base:.3f}, {within} our tolerance of {GAP_TOLERANCE}."
        )
        if len(others):
            close = int((others <= GAP_TOLERANCE).sum())
            line += (
                f" Exploratory: {len(others)} other readings tried (other epochs and layers), largest gaps "
                f"{float(others.min()):.3f}-{float(others.max()):.3f}; {close} of them within the tolerance. With this "
                "many readings one may come close by chance, so none is read as the cause."
            )
        arms = g["arm"].nunique()
        if arms < len(SMITH_ARMS):
            line += f" (Only {arms} of {len(SMITH_ARMS)} arms recorded.)"
        out.append(line)
    return "\n".join(out)


DEAD = "last_conv.dead_fraction"


def dead_units_table(results: pd.DataFrame, shown: dict[str, str], experiments=None) -> pd.DataFrame:
    """A candidate explanation of ReLU's accuracy deficit, labelled as one (exploratory, ours): per
    experiment and arm, the fraction of the last conv layer's units that never activate on the
    test set (dead units, the "dying ReLU" the paper's introduction describes), and each arm's test
    accuracy minus ReLU's, paired by seed (95% t-interval). A dead-unit fraction beside a deficit is
    an association across arms, not a demonstration that the dead units cause it."""
    rows = []
    for name in experiments or [n for n in TABLE_EXPERIMENTS if n in shown]:
        profile = shown.get(name)
        d = complete_rows(results, name)
        d = d[d["profile"] == profile] if "profile" in d.columns else d
        if d.empty:
            continue
        _, table = experiment_reference(name)
        for arm in (a.label for a in SMITH_ARMS):
            sub = d[d["arm"] == arm]
            if sub.empty:
                continue
            row = {
                "table": f"{table} ({profile})",
                "arm": arm,
                "dead units, last conv (fraction)": mean_sd_cell(sub[sub["metric"] == DEAD]["value"], 3),
                "test accuracy": mean_sd_cell(sub[sub["metric"] == "test_accuracy"]["value"], 3),
            }
            if arm != "ReLU":
                pc = paired_comparison(d, "test_accuracy", arm, "ReLU", name, None)
                row["accuracy minus ReLU's (95% CI)"] = (
                    f"{pc.mean_diff:+.3f} [{pc.ci_low:+.3f}, {pc.ci_high:+.3f}] (n={pc.n})" if pc.n >= 2 else "n/a"
                )
            else:
                row["accuracy minus ReLU's (95% CI)"] = "reference"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["table", "arm"]) if rows else pd.DataFrame()


_SMITH_ANALYSIS = "5. Analysis"
_SMITH_NOT_WORSE = (
    "However, these results do indicate that PReLU does not perform worse, and often performs "
    "better than ReLU and LReLU when classifying images."
)
_SMITH_T3 = (
    "PReLU gave its best performance with the 4-layer CNN modelling the CIFAR-10 dataset. This model gave "
    "the best performance of all four models with this architecture and this dataset on all three metrics."
)
_SMITH_T2 = "PReLU performed about the same as ReLU and LReLU with the 4-layer CNN modelling the Fashion-MNIST dataset."
_SMITH_ALL = ("test_accuracy", "last_conv.sparsity", "last_conv.dispersion")


def _smith_claims() -> None:
    for exp in ("smith_fmnist_cnn", "smith_cifar10_cnn", "smith_cifar10_vgg3"):
        source, table = experiment_reference(exp)
        claims = ClaimSet(source, exp, _SMITH_ANALYSIS)
        slug = table.lower().replace(" ", "")
        for other in ("ReLU", "LReLU"):
            claims.non_inferior(
                f"{slug}.prelu_not_worse_than_{other.lower()}",
                quote=_SMITH_NOT_WORSE,
                statement=(
                    f"PReLU does not perform worse than {other} on test accuracy ({table}): non-inferior "
                    f"with a margin of {margin('test_accuracy'):g} (one percentage point)."
                ),
                arm="PReLU",
                others=(other,),
            )
        claims.better(
            f"{slug}.prelu_better_than_relu_and_lrelu",
            quote=_SMITH_NOT_WORSE,
            statement=f"PReLU performs better than ReLU and than LReLU on test accuracy ({table}).",
            note="'Often' refers to the three tables together; each table is evaluated on its own.",
            arm="PReLU",
            others=("ReLU", "LReLU"),
        )
        if exp == "smith_cifar10_cnn":
            claims.better(
                f"{slug}.prelu_best_on_all_metrics",
                quote=_SMITH_T3,
                statement=(
                    "PReLU is better than each of tanh, ReLU and LReLU on all three metrics: higher "
                    f"accuracy, lower lifetime sparsity and lower dispersion ({table}; 9 paired comparisons)."
                ),
                note=(
                    "'All four models' read as the four activations of Table 3, tanh included; lower lifetime "
                    "sparsity and lower dispersion count as better, as in the paper's Section 5. The quote's first "
                    "sentence is read as introducing the second: across tables PReLU's numbers are not comparable "
                    "(other data, other networks), so 'its best performance' is not tested on its own."
                ),
                arm="PReLU",
                others=("tanh", "ReLU", "LReLU"),
                metrics=_SMITH_ALL,
            )
        if exp == "smith_fmnist_cnn":
            claims.same(
                f"{slug}.prelu_same_as_relu_and_lrelu",
                quote=_SMITH_T2,
                statement=(
                    f"PReLU's test accuracy is within ±{margin('test_accuracy'):g} of ReLU's and of "
                    f"LReLU's ({table}; equivalence margin of one percentage point)."
                ),
                arm="PReLU",
                others=("ReLU", "LReLU"),
            )


_smith_claims()

_SMITH_T2_METRICS = (
    "PReLU performed about the same as ReLU and LReLU with the 4-layer CNN modelling the Fashion-MNIST dataset. "
    "While PReLU performed the best on lifetime sparsity, it had the same accuracy and slightly worse dispersion "
    "as ReLU and LReLU."
)
_SMITH_T4 = (
    "While PReLU obtained the best accuracy of the four models using 3-block VGG architecture, it scored about 2% "
    "and 1% worse than LReLU on lifetime sparsity and dispersion, respectively. Also, PReLU scored about 5% worse "
    "but 1% better than ReLU on lifetime sparsity and dispersion, respectively."
)
_SPARSITY, _DISPERSION = "last_conv.sparsity", "last_conv.dispersion"
_COLUMN = {"test_accuracy": "accuracy", _SPARSITY: "lifetime_sparsity", _DISPERSION: "dispersion"}


def _paper_cells(table: str, metric: str, arms: tuple[str, ...]) -> str:
    """The paper's numbers of ``arms`` in one column, from the reference data (never typed twice)."""
    cells = ", ".join(f"{a} {paper_value('smith', table, a, _COLUMN[metric]):.3f}" for a in arms)
    return f"{_COLUMN[metric].replace('_', ' ')}: {cells} ({table}, one run)"


def _worse(metric: str, arm: str, than: str) -> tuple[Quantity, Quantity]:
    """A part "``arm`` is worse than ``than`` on ``metric``" where lower is better (sparsity,
    dispersion): ``arm``'s value minus ``than``'s exceeds 0."""
    return (Quantity(arm, (metric,)), Quantity(than, (metric,)))


def _smith_metric_claims() -> None:
    """Section 5's sentences on sparsity and dispersion (Tables 2 and 4) and Table 4's accuracy ranking;
    lower lifetime sparsity and dispersion count as better, as in the paper's Section 5."""
    others = ("tanh", "ReLU", "LReLU")
    table2 = ClaimSet("smith", "smith_fmnist_cnn", _SMITH_ANALYSIS)
    table2.rank(
        "table2.prelu_best_lifetime_sparsity",
        quote=_SMITH_T2_METRICS,
        statement="PReLU has the lowest (best) lifetime sparsity of the four activations (Table 2).",
        arm="PReLU",
        others=others,
        metric=_SPARSITY,
        k=1,
        paper_says=_paper_cells("Table 2", _SPARSITY, ("PReLU", *others)),
    )
    table2.difference(
        "table2.prelu_worse_dispersion_than_relu_and_lrelu",
        quote=_SMITH_T2_METRICS,
        statement="PReLU's dispersion is higher (worse) than ReLU's and than LReLU's (Table 2; 'slightly': the "
        "direction is tested, not the size).",
        parts=(_worse(_DISPERSION, "PReLU", "ReLU"), _worse(_DISPERSION, "PReLU", "LReLU")),
        paper_says=_paper_cells("Table 2", _DISPERSION, ("PReLU", "ReLU", "LReLU")),
    )
    table4 = ClaimSet("smith", "smith_cifar10_vgg3", _SMITH_ANALYSIS)
    table4.rank(
        "table4.prelu_best_accuracy",
        quote=_SMITH_T4,
        statement="PReLU has the highest test accuracy of the four activations, tanh included (Table 4).",
        arm="PReLU",
        others=others,
        metric="test_accuracy",
        k=1,
        paper_says=_paper_cells("Table 4", "test_accuracy", ("PReLU", *others)),
    )
    table4.difference(
        "table4.prelu_worse_than_lrelu_on_sparsity_and_dispersion",
        quote=_SMITH_T4,
        statement="PReLU's lifetime sparsity and dispersion are both higher (worse) than LReLU's (Table 4; the "
        "direction is tested, not the paper's 'about 2% and 1%').",
        parts=(_worse(_SPARSITY, "PReLU", "LReLU"), _worse(_DISPERSION, "PReLU", "LReLU")),
        paper_says="; ".join(_paper_cells("Table 4", m, ("PReLU", "LReLU")) for m in (_SPARSITY, _DISPERSION)),
    )
    table4.difference(
        "table4.prelu_worse_sparsity_better_dispersion_than_relu",
        quote=_SMITH_T4,
        statement="PReLU's lifetime sparsity is higher (worse) than ReLU's and its dispersion lower (better) "
        "(Table 4; the direction is tested, not the paper's 'about 5% worse but 1% better').",
        parts=(_worse(_SPARSITY, "PReLU", "ReLU"), _worse(_DISPERSION, "ReLU", "PReLU")),
        paper_says="; ".join(_paper_cells("Table 4", m, ("PReLU", "ReLU")) for m in (_SPARSITY, _DISPERSION)),
    )


_smith_metric_claims()


def probe_repeats_markdown(root) -> str:
    """Whether the diagnostic runs in the store at ``root`` repeat the runs they probe: per probe
    experiment, the arms whose seed-0 test accuracy equals that of the base experiment's
    paper-profile seed-0 record (the probes only read activations in eval mode, so training should
    be the same to the last digit)."""

    def accuracy(experiment: str, profile: str) -> dict[str, float]:
        df = load_results(root, experiment, profile)
        if len(df) == 0:
            return {}
        sel = df[(df["seed"] == 0) & (df["metric"] == "test_accuracy") & (df["status"] == "complete")]
        return dict(zip(sel["arm"], sel["value"].astype(float), strict=True))

    lines = []
    for name in PROBE_EXPERIMENTS:
        base = name.removesuffix("_probes")
        probed, paper = accuracy(name, "quick"), accuracy(base, "paper")
        both = sorted(set(probed) & set(paper))
        if not both:
            lines.append(
                f"- {get_experiment(name).title}: no paper-profile seed-0 record of "
                f"{get_experiment(base).title} to compare with yet."
            )
            continue
        differ = [f"{a} ({probed[a] - paper[a]:+.4f})" for a in both if probed[a] != paper[a]]
        text = (
            f"- {get_experiment(name).title}: seed-0 test accuracy identical to {get_experiment(base).title} "
            "(paper profile) for "
            f"{len(both) - len(differ)} of {len(both)} arms"
        )
        lines.append(text + (f"; it differs for {', '.join(differ)}." if differ else "."))
    return "\n".join(lines)
