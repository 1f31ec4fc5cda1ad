"""Xu, Wang, Chen & Li 2015, "Empirical Evaluation of Rectified Activations in Convolution Network".

Network in Network (Table 1) on CIFAR-10 (Table 3) and CIFAR-100 (Table 4) with five activations;
NDSB (Table 5) is Kaggle competition data without a public download, so its rows are shown as not
obtainable. The chapter is notebooks/xu2015.ipynb.
"""

from __future__ import annotations

import pandas as pd

from ..claims import ClaimSet, Quantity
from ..data import DATASETS
from ..experiments import EXPERIMENTS, SMOKE, Arm, Experiment, Profile, RegimeCriterion, every_run_at_most
from ..reference import SOURCES, Source, paper_value, paper_values
from ..results import complete_rows
from ..stats import mean_sd_cell, paired_comparison
from ..verdict_rules import margin

SOURCE = SOURCES.register(
    "xu2015",
    Source(
        key="xu2015",
        values_file="xu2015_values.csv",
        citation='B. Xu, N. Wang, T. Chen, M. Li, "Empirical Evaluation of Rectified Activations in Convolution '
        'Network", 2015',
        label="Xu et al. 2015",
        # The paper's "training error" column is read as CXXNET's running error on the training batches
        # (dropout on) -- our train_error; the trained network in eval mode over the training images is
        # recorded beside it (train_eval_error). See NOTES.
        paper_columns={"test_error": "test_error", "train_error": "train_error"},
        rounding_half_unit=0.00005,
        chapter="xu2015",
        bib_key="xu2015empirical",
        bib_fields={
            "author": "Xu, Bing and Wang, Naiyan and Chen, Tianqi and Li, Mu",
            "title": "Empirical Evaluation of Rectified Activations in Convolution Network",
            "year": "2015",
            "eprint": "1505.00853",
            "archiveprefix": "arXiv",
            "url": "https://arxiv.org/abs/1505.00853",
        },
    ),
)

# The paper's rows, verbatim (xu2015_values.csv); arm labels must equal them.
RELU, LRELU_100, LRELU_55, PRELU, RRELU = "ReLU", "Leaky ReLU, a=100", "Leaky ReLU, a=5.5", "PReLU", "RReLU"
ARMS = (
    Arm(RELU, "relu"),
    Arm(LRELU_100, "lrelu", {"a": 100.0}),
    Arm(LRELU_55, "lrelu", {"a": 5.5}),
    Arm(PRELU, "prelu", {"mode": "channel", "init": 0.25}),
    # Every trained RReLU network is also evaluated under other test-time rules (evaluation only).
    Arm(RRELU, "rrelu", {"lower": 3.0, "upper": 8.0}, settings={"evals": ("train_set", "rrelu_rules")}),
)
LEAKY_ARMS = (LRELU_100, LRELU_55, PRELU, RRELU)

# Where each setting comes from: the source ("Xu et al."), NIN's own published recipe (Lin et al.
# 2013, which the paper's network is taken from), or our choice where both are silent.
NOTES = (
    "Network (source, Table 1): NIN 5x5 192 - 1x1 160 - 1x1 96 - max pool 3/2 - dropout 0.5 - 5x5 192 - 1x1 192 - "
    "1x1 192 - avg pool 3/2 - dropout 0.5 - 3x3 192 - 1x1 192 - 1x1 classes - global avg pool; the activation "
    "follows every conv layer, the class maps included (our reading of 'Activation function is followed by each "
    "convolutional layer').",
    "Data (source): raw images, no pre-processing or augmentation, single-view test. Pixels are scaled to [0, 1] "
    "(x/255, our choice: a linear rescaling, no mean subtraction or whitening).",
    "Activations (source): Leaky ReLU y = x/a for x < 0 with a = 100 and a = 5.5; RReLU y = x/a with a ~ U(3, 8) "
    "per element, drawn afresh every training pass, and y = x/5.5 at test. PReLU: channel-wise, a initialised at "
    "0.25, no weight decay on a (our choice: He et al.'s setting; the paper does not state its own).",
    "The paper is inconsistent about RReLU: its Eq. 3-4 write y = a x with a slope a ~ U(l, u), l, u in [0, 1), "
    "while its text samples a from U(3, 8) and its test-time Eq. 5 divides, y = x / ((l + u) / 2). We read a as a "
    "divisor, as Eq. 2 (its leaky ReLU) and Eq. 5 do and as U(3, 8) requires (our reading); PyTorch's nn.RReLU "
    "follows Eq. 3-4 instead (slopes U(1/8, 1/3)) and is not this activation.",
    "Optimizer (CXXNET's is not stated; NIN's published CIFAR-10 recipe): SGD with momentum 0.9, weight decay "
    "1e-4, batch 128, learning rate dropped 10x in steps. Initial rate, step epochs and length are our choice "
    "(lr 0.1 left every unit of a ReLU NIN dead at chance in our pilot, so the paper profile starts at 0.02).",
    "Initialisation (our choice): Kaiming normal (fan-in, gain sqrt 2), zero biases.",
    "Training error: the paper does not say how its column was measured. CXXNET reports the error on the "
    "training batches as they are trained (dropout on); that running error of the last epoch is "
    "compared with the paper's column. The trained network in eval mode over the training images "
    "is recorded beside it.",
    "Sparsity: the fraction of non-positive outputs of the last hidden 192-channel layer (cccp5) over the test "
    "set; only ReLU's are exact zeros (the leaky arms output x/a there).",
)

# The quick profile keeps the claims' regime (training error near zero, test error far higher)
# at a size our 2 CPU cores afford; every departure is printed beside the numbers.
QUICK_WIDTH = 0.25
QUICK_TRAIN = 2_000
QUICK_EPOCHS = 150
QUICK_BATCH = 32
QUICK_EVAL_EVERY = 10
QUICK_SEEDS = (0, 1, 2)

# The regime profile, sized from the pilots (benchmarks/pilot_regime.py; their logs and records in
# results/xu_cifar10_nin/pilots/) and the grid's budget of 12 CPU-hours (15 runs, one thread each).
# With Adam and a cosine over 60 epochs, 5,000 images at width 0.25 were still at eval-mode training
# error 0.48 after 20 epochs (100,000 images seen): fitting 5,000 or more to 1% would take more
# images seen than the budget buys at 550-700 images/s (width 0.25) or 220 (width 0.5). A first grid
# of 2,500 images x 320 epochs (4 runs, pilots/regime-dd7d4c1) fitted ReLU to 0.0072-0.0152 in eval
# mode, one seed above the 1% line; this profile sees as many images (800,000) of 2,000, 400 epochs each.
REGIME_WIDTH = 0.25
REGIME_TRAIN = 2_000
REGIME_EPOCHS = 400
REGIME_BATCH = 32
REGIME_EVAL_EVERY = 20
REGIME_SEEDS = (0, 1, 2)
# The criterion (the paper's training-error column is 0.2-0.55%): every arm and seed fits its
# training images in eval mode to this error.
REGIME_TRAIN_EVAL_ERROR = 0.01
REGIME_CRITERION = RegimeCriterion(
    f"eval-mode training error at or below {REGIME_TRAIN_EVAL_ERROR:g} for every arm and seed (the paper's training "
    "column: 0.0018-0.0055)",
    every_run_at_most("train_eval_error", REGIME_TRAIN_EVAL_ERROR, "eval-mode training error"),
)

_COMMON = dict(
    optimizer="sgd",
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=128,
    normalize="scale01",
    channels_last=True,
    evals=("train_set",),
)


def _quick_profile() -> Profile:
    return Profile(
        QUICK_SEEDS,
        {
            "optimizer": "adam",
            "lr": 1e-3,
            "weight_decay": 0.0,
            "epochs": QUICK_EPOCHS,
            "batch_size": QUICK_BATCH,
            "train_subset": QUICK_TRAIN,
            "subset_seed": 0,
            "model_params": {"width": QUICK_WIDTH},
            "eval_every": QUICK_EVAL_EVERY,
            "eval_batch_size": 128,
            "stats_epochs": (QUICK_EPOCHS,),
        },
        (
            f"width {QUICK_WIDTH:g} (48/40/24 channels instead of 192/160/96)",
            f"{QUICK_TRAIN:,} training images (stratified, the same for every arm and seed) instead of 50,000",
            f"{QUICK_EPOCHS} epochs of batch {QUICK_BATCH} (the paper profile: 300 of batch 128)",
            "Adam (lr 0.001, no weight decay) instead of the paper profile's SGD recipe: in our pilots SGD and "
            "batch 128 left the small network far from fitting its training set within the CPU budget",
            f"test error measured every {QUICK_EVAL_EVERY} epochs (and after the last)",
            f"{len(QUICK_SEEDS)} seeds (the paper reports one run)",
        ),
    )


def _regime_profile() -> Profile:
    return Profile(
        REGIME_SEEDS,
        {
            "optimizer": "adam",
            "lr": 1e-3,
            "weight_decay": 0.0,
            "schedule": "cosine",
            "epochs": REGIME_EPOCHS,
            "batch_size": REGIME_BATCH,
            "train_subset": REGIME_TRAIN,
            "subset_seed": 0,
            "model_params": {"width": REGIME_WIDTH},
            "eval_every": REGIME_EVAL_EVERY,
            "eval_batch_size": 500,
            "stats_epochs": (REGIME_EPOCHS,),
        },
        (
            f"width {REGIME_WIDTH:g} (48/40/24 channels instead of 192/160/96)",
            f"{REGIME_TRAIN:,} training images (stratified, the same for every arm and seed) instead of 50,000; "
            "the full 10,000-image test set",
            f"{REGIME_EPOCHS} epochs of batch {REGIME_BATCH}, learning rate annealed to 0 by a cosine (our choice)",
            "Adam (lr 0.001, no weight decay) instead of the paper profile's SGD recipe: in the pilots SGD with "
            "momentum stayed at chance (lr 0.05) or far from fitting (lr 0.01)",
            f"test error measured every {REGIME_EVAL_EVERY} epochs (and after the last)",
            f"{len(REGIME_SEEDS)} seeds (the paper reports one run)",
        ),
        criterion=REGIME_CRITERION,
    )


def _profiles(num_classes: int) -> dict[str, Profile]:
    paper_epochs = 300
    return {
        "smoke": Profile(
            (0, 1),
            {**SMOKE, "lr": 0.02, "model_params": {"width": 0.125}, "stats_epochs": (1,)},
            ("512 training and 500 test images", "1 epoch", "batch 64", "width 1/8", "2 seeds"),
        ),
        "quick": _quick_profile(),
        "regime": _regime_profile(),
        "paper": Profile(
            (0, 1, 2, 3, 4),
            {
                "lr": 0.02,
                "epochs": paper_epochs,
                "schedule": "step",
                "schedule_params": {"milestones": [200, 250], "gamma": 0.1},
                "stats_epochs": (paper_epochs,),
            },
            ("5 seeds (the paper reports one run)",),
        ),
    }


def _experiment(name: str, table: str, dataset: str, num_classes: int) -> Experiment:
    return EXPERIMENTS.register(
        name,
        Experiment(
            name=name,
            source="xu2015",
            table=table,
            title=f"Network in Network on {DATASETS.get(dataset).display_name}",
            dataset=dataset,
            model="nin",
            arms=ARMS,
            common=_COMMON,
            profiles=_profiles(num_classes),
            notes=NOTES,
        ),
    )


CIFAR10 = _experiment("xu_cifar10_nin", "Table 3", "cifar10", 10)
CIFAR100 = _experiment("xu_cifar100_nin", "Table 4", "cifar100", 100)

NDSB_TABLE = "Table 5"
NDSB_REASON = (
    "NDSB (Kaggle National Data Science Bowl plankton) is competition data without a public download; "
    "its rows cannot be re-run here or elsewhere without Kaggle's competition files."
)

# ------------------------------------------------------------------------------------ claims
_OBS = "4. Result and Discussion"
_BETTER = "All these three leaky ReLU variants are better than baseline on test set."
_OBS1 = (
    "Not surprisingly, we find the performance of normal leaky ReLU (a=100) is similar to that of ReLU, but very "
    "leaky ReLU with larger a=5.5 is much better."
)
_OBS2 = (
    "On training set, the error of PReLU is always the lowest, and the error of Leaky ReLU and RReLU are higher "
    "than ReLU. It indicates that PReLU may suffer from severe overfitting issue in small scale dataset."
)
_CONSISTENTLY = (
    "Our experiments suggest that incorporating a non-zero slope for negative part in rectified activation "
    "units could consistently improve the results."
)
_SPARSITY = "Thus our findings are negative on the common belief that sparsity is the key of good performance in ReLU."
_RRELU_BEST = "They are not as effective as using their randomized counterpart."


def _slug(table: str) -> str:
    return table.lower().replace(" ", "")


def _claims() -> None:
    for exp in (CIFAR10, CIFAR100):
        claims = ClaimSet("xu2015", exp.name, _OBS)
        slug, t = _slug(exp.table), exp.table
        _test_error_claims(claims, slug, t)
        _train_error_claims(claims, slug, t)
        _overfitting_claims(claims, slug, t)
        _slope_claims(claims, slug, t)
    _claims_not_run_here(ClaimSet("xu2015", "", _OBS))


def _test_error_claims(claims: ClaimSet, slug: str, t: str) -> None:
    for arm, key in ((LRELU_55, "lrelu55"), (PRELU, "prelu"), (RRELU, "rrelu")):
        claims.better(
            f"{slug}.{key}_beats_relu_on_test_error",
            quote=_BETTER,
            statement=f"{arm} has a lower test error than ReLU ({t}).",
            note="'The three leaky ReLU variants' read as Leaky ReLU (a=5.5, the paper's better setting), PReLU "
            "and RReLU, the three compared with ReLU in its Figures 2-4.",
            arm=arm,
            others=(RELU,),
            metrics=("test_error",),
        )
    claims.same(
        f"{slug}.lrelu100_like_relu",
        quote=_OBS1,
        statement=f"Leaky ReLU a=100's test error is within ±0.01 of ReLU's ({t}; equivalence margin of one "
        "percentage point).",
        arm=LRELU_100,
        others=(RELU,),
        metrics=("test_error",),
    )
    much = margin("test_error")
    paper_gain = paper_value("xu2015", t, LRELU_100, "test_error") - paper_value("xu2015", t, LRELU_55, "test_error")
    claims.difference(
        f"{slug}.lrelu55_much_better_than_lrelu100",
        quote=_OBS1,
        statement=f"Leaky ReLU a=5.5's test error is lower than Leaky ReLU a=100's by more than {much:g} "
        f"({t}; 'much better' read as a gain larger than the smallest effect of interest: our reading).",
        parts=((Quantity(LRELU_100, ("test_error",)), Quantity(LRELU_55, ("test_error",))),),
        excess=much,
        paper_says=f"test error: Leaky ReLU, a=100 minus Leaky ReLU, a=5.5 = {paper_gain:+.4f} ({t}, one run)",
    )
    claims.rank(
        f"{slug}.rrelu_best_test_error",
        section="Abstract",
        quote=_RRELU_BEST,
        statement=f"RReLU has the lowest test error of the five activations ({t}).",
        arm=RRELU,
        others=(RELU, LRELU_100, LRELU_55, PRELU),
        metric="test_error",
        k=1,
        best=True,
        paper_says=_paper_cells(t, "test_error"),
    )


def _train_error_claims(claims: ClaimSet, slug: str, t: str) -> None:
    claims.rank(
        f"{slug}.prelu_lowest_train_error",
        quote=_OBS2,
        statement=f"PReLU has the lowest training error of the five activations ({t}; running "
        "error of the last epoch, as CXXNET reports it).",
        arm=PRELU,
        others=(RELU, LRELU_100, LRELU_55, RRELU),
        metric="train_error",
        k=1,
        best=True,
        paper_says=_paper_cells(t, "train_error"),
    )
    claims.better(
        f"{slug}.relu_lower_train_error_than_lrelu_rrelu",
        quote=_OBS2,
        statement=f"ReLU has a lower training error than Leaky ReLU (a=100 and a=5.5) and RReLU ({t}; 3 paired "
        "comparisons).",
        arm=RELU,
        others=(LRELU_100, LRELU_55, RRELU),
        metrics=("train_error",),
    )


_GAP_NOTE = (
    "Overfitting measured as the generalization gap: test error minus the trained network's error on its own "
    "training images in eval mode (our reading; the paper compares the two curves in its figures)."
)


def _overfitting_claims(claims: ClaimSet, slug: str, t: str) -> None:
    claims.better(
        f"{slug}.prelu_overfits_more_than_relu",
        quote=_OBS2,
        statement=f"PReLU's generalization gap is larger than ReLU's ({t}): ReLU's is significantly smaller.",
        note=_GAP_NOTE,
        arm=RELU,
        others=(PRELU,),
        metrics=("generalization_gap",),
        paper_says="training and test curves (figures); no gap is printed",
    )
    claims.better(
        f"{slug}.rrelu_reduces_overfitting",
        section="1. Introduction",
        quote="it is reported that RReLU could reduce overfitting due to its randomized nature.",
        statement=f"RReLU's generalization gap is smaller than ReLU's ({t}).",
        note=_GAP_NOTE,
        arm=RRELU,
        others=(RELU,),
        metrics=("generalization_gap",),
        paper_says="reported from the NDSB competition (no numbers)",
    )


def _slope_claims(claims: ClaimSet, slug: str, t: str) -> None:
    claims = claims.where(section="Abstract and 5. Conclusion")
    leaky = (LRELU_100, LRELU_55, PRELU, RRELU)
    relu_paper = paper_value("xu2015", t, RELU, "test_error")
    against = [a for a in leaky if not paper_value("xu2015", t, a, "test_error") < relu_paper]
    own = (
        f" The paper's own {t} does not support it for {', '.join(against)} (test error not below ReLU's "
        f"{relu_paper:g})."
        if against
        else f" The paper's own {t} supports it."
    )
    claims.difference(
        f"{slug}.nonzero_slope_consistently_improves",
        quote=_CONSISTENTLY,
        statement=f"Every arm with a non-zero negative slope (Leaky ReLU a=100 and a=5.5, PReLU, RReLU) has a "
        f"lower test error than ReLU ({t}): 'improve' tested for superiority, 'consistently' as every arm.",
        note="Here 'leaky' includes a=100 (its slope 1/100 is non-zero); the 'three variants' claim reads "
        "the paper's Figures 2-4 and leaves a=100 out." + own,
        parts=tuple((Quantity(RELU, ("test_error",)), Quantity(arm, ("test_error",))) for arm in leaky),
        paper_says=_paper_cells(t, "test_error"),
    )
    for arm, key in ((LRELU_100, "lrelu100"), (LRELU_55, "lrelu55"), (PRELU, "prelu"), (RRELU, "rrelu")):
        claims.non_inferior(
            f"{slug}.sparsity_not_key.{key}",
            quote=_SPARSITY,
            statement=f"{arm}, whose outputs have no exact zeros, is not worse than ReLU (the only sparse arm) on "
            f"test error: non-inferior with a margin of 0.01 ({t}).",
            note="The chapter sets each arm's fraction of non-positive outputs beside its test error.",
            arm=arm,
            others=(RELU,),
            metrics=("test_error",),
        )


def _claims_not_run_here(claims: ClaimSet) -> None:
    claims.unobtainable(
        "table5.rrelu_superiority_larger_on_ndsb",
        quote="The superiority of RReLU is more significant than that on CIFAR-10/CIFAR-100.",
        statement="RReLU's advantage on NDSB (Table 5, validation log-loss) is larger than on CIFAR-10/100.",
        table_name=NDSB_TABLE,
        reason=NDSB_REASON,
        paper_says=_paper_cells(NDSB_TABLE, "val_log_loss"),
    )
    headline = paper_value("xu2015", "Section 3.1", "RReLU (BN-Inception, CIFAR-100)", "test_accuracy")
    claims.not_run(
        "bn_inception_cifar100_headline",
        section="Abstract and 3.1",
        quote="By using RReLU, we achieved 75.68% accuracy on CIFAR-100 test set without multiple test or ensemble.",
        statement="RReLU in a Batch Norm Inception subnetwork reaches the paper's CIFAR-100 test accuracy.",
        table_name="Section 3.1",
        reason="Not run: the study implements Network in Network, not the Batch Norm Inception subnetwork "
        "(from inception-3a) the number comes from, and CIFAR-100 is not on this machine.",
        paper_says=f"test accuracy {headline:g} (RReLU, BN-Inception subnetwork, CIFAR-100, single view, one run)",
    )


def _paper_cells(table: str, column: str) -> str:
    pv = paper_values("xu2015", table)
    pv = pv[pv["column"] == column]
    cells = ", ".join(f"{r.row} {r.value:g}" for r in pv.itertuples())
    return f"{column.replace('_', ' ')}: {cells} ({table}, one run)"


_claims()


# ------------------------------------------------------------------------------ chapter tables
RULE_LABELS = {
    "paper": "x / 5.5 (the paper's rule)",
    "mean_slope": "x · E[1/a] = x · ln(8/3)/5 (mean training slope)",
    "mc1": "noise as in training, 1 pass",
    "mc4": "noise as in training, softmax averaged over 4 passes",
    "mc16": "noise as in training, softmax averaged over 16 passes",
}


def rrelu_rules_table(results: pd.DataFrame, experiment: str = "xu_cifar10_nin", digits: int = 4) -> pd.DataFrame:
    """Test error of the trained RReLU networks under each test-time rule (mean ± sd over seeds)
    and the paired difference from the paper's rule (mean and 95% t-interval over seeds)."""
    d = complete_rows(results, experiment)
    d = d[d["arm"] == RRELU]
    rows = []
    for rule, label in RULE_LABELS.items():
        m = d[d["metric"] == f"rrelu_rule.{rule}.test_error"]
        row = {
            "test-time rule": label,
            "test error": mean_sd_cell(m["value"], digits),
        }
        if rule != "paper" and len(m):
            as_arms = d[d["metric"].isin([f"rrelu_rule.{rule}.test_error", "rrelu_rule.paper.test_error"])]
            as_arms = as_arms.assign(arm=as_arms["metric"], metric="value")
            pc = paired_comparison(
                as_arms, "value", f"rrelu_rule.{rule}.test_error", "rrelu_rule.paper.test_error", experiment, None
            )
            row["minus the paper's rule"] = (
                f"{pc.mean_diff:+.{digits}f} [{pc.ci_low:+.{digits}f}, {pc.ci_high:+.{digits}f}]"
                if pc.n >= 2
                else f"{pc.mean_diff:+.{digits}f} (n={pc.n})"
            )
            loss = d[d["metric"].isin([f"rrelu_rule.{rule}.test_loss", "rrelu_rule.paper.test_loss"])]
            wide = loss.pivot_table(index="seed", columns="metric", values="value")
            same = wide.shape[1] == 2 and bool(wide.nunique(axis=1).eq(1).all())
            if rule == "mc1" and same:  # a noisy pass cannot equal x/5.5 in every seed: the noise was off
                row["minus the paper's rule"] += (
                    " (equals x/5.5 in every seed: these records were evaluated before the fix that turns the "
                    "noise on for this rule; rerun the RReLU runs to refresh it)"
                )
        else:
            row["minus the paper's rule"] = ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("test-time rule")


def training_error_table(results: pd.DataFrame, experiment: str = "xu_cifar10_nin", digits: int = 4) -> pd.DataFrame:
    """Per arm: the paper's training error, ours as CXXNET reports it (running, dropout on, last
    epoch), the trained network in eval mode over the training images, and the test error."""
    table = CIFAR10.table if experiment == CIFAR10.name else CIFAR100.table
    pv = paper_values("xu2015", table)
    d = complete_rows(results, experiment)
    rows = []
    for arm in (a.label for a in ARMS):
        row = {"activation": arm}
        for col, metric, label in (
            ("train_error", "train_error", "training error, running (dropout on)"),
            (None, "train_eval_error", "training error, eval mode"),
            ("test_error", "test_error", "test error"),
        ):
            m = d[(d["arm"] == arm) & (d["metric"] == metric)]["value"]
            row[label] = mean_sd_cell(m, digits)
            if col:
                hit = pv[(pv["row"] == arm) & (pv["column"] == col)]
                row[f"{label}: paper"] = f"{float(hit['value'].iloc[0]):.{digits}f}" if len(hit) else ""
        rows.append(row)
    out = pd.DataFrame(rows).set_index("activation")
    order = [
        "training error, running (dropout on): paper",
        "training error, running (dropout on)",
        "training error, eval mode",
        "test error: paper",
        "test error",
    ]
    return out[order]


def sparsity_frame(results: pd.DataFrame, experiment: str = "xu_cifar10_nin") -> pd.DataFrame:
    """One row per complete run: its fraction of non-positive outputs in the last hidden layer
    (1 - mean activation probability of cccp5's units) beside its test error."""
    d = complete_rows(results, experiment)
    wide = (
        d[d["metric"].isin(["penultimate_conv.sparsity", "test_error"])]
        .pivot_table(index=["arm", "seed"], columns="metric", values="value")
        .reset_index()
    )
    if wide.empty or "penultimate_conv.sparsity" not in wide:
        return pd.DataFrame(columns=["arm", "seed", "non-positive outputs (fraction)", "test error"])
    wide["non-positive outputs (fraction)"] = 1.0 - wide["penultimate_conv.sparsity"]
    return wide.rename(columns={"test_error": "test error"})[
        ["arm", "seed", "non-positive outputs (fraction)", "test error"]
    ]


def ndsb_table() -> pd.DataFrame:
    """Table 5 as the paper prints it, with our column marked not obtainable."""
    wide = paper_values("xu2015", NDSB_TABLE).pivot(index="row", columns="column", values="value")
    wide = wide.loc[[a.label for a in ARMS], ["train_log_loss", "val_log_loss"]]
    wide.columns = ["train log-loss: paper", "validation log-loss: paper"]
    wide["ours"] = "not obtainable"
    wide.index.name = "activation"
    return wide


# The paper's running training errors (CXXNET's, dropout on) are 0.2-0.55%: a running error above this
# means the training-error claims compare networks that still err on part of their training batches.
RUNNING_ERROR_NOTE = 0.02


def relu_errors_markdown(results: pd.DataFrame, experiment: str = "xu_cifar10_nin") -> str:
    """One paragraph, computed from the records: where ReLU's running, eval-mode and test errors
    ended beside the paper's. Whether the runs are in the paper's regime is the profile's criterion
    (the row above it, :func:`relustudy.book.regime_markdown`); this says what the training-error
    claims compare."""
    d = complete_rows(results, experiment)
    d = d[d["arm"] == RELU]
    means = {m: d[d["metric"] == m]["value"].mean() for m in ("train_error", "train_eval_error", "test_error")}
    if d.empty or not all(pd.notna(v) for v in means.values()):
        return "No complete ReLU records for this profile: the errors cannot be compared."
    pv = paper_values("xu2015", CIFAR10.table)
    paper_relu = float(pv[(pv["row"] == RELU) & (pv["column"] == "train_error")]["value"].iloc[0])
    head = (
        f"**ReLU's errors.** Running training error (dropout on) {means['train_error']:.3f} against the paper's "
        f"{paper_relu:g}; in eval mode {means['train_eval_error']:.3f}; test error {means['test_error']:.3f} "
        f"(mean over {d['seed'].nunique()} seeds). "
    )
    gap = means["test_error"] - means["train_eval_error"]
    fit = (
        f"In eval mode the network fits its training images better than the test images (by {gap:.3f}). "
        if gap > RUNNING_ERROR_NOTE
        else "In eval mode it does not fit its training images much better than the test images. "
    )
    if means["train_error"] < RUNNING_ERROR_NOTE:
        return (
            head
            + fit
            + "The running error is as low as the paper's column, so the training-error claims compare alike."
        )
    return (
        head
        + fit
        + (
            f"The running error is above {RUNNING_ERROR_NOTE:g}, so the training-error claims below are about a network "
            "that still errs on part of its training batches with dropout on, whatever it does in eval mode."
        )
    )
