"""He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers" (through reading-group notes).

ImageNet is out of reach here: the experiments replicate what transfers to CIFAR-10 with the
14-layer ``he_net`` scaled down (PReLU against ReLU and LReLU, channel-wise against channel-shared,
weight decay on the coefficients) and plain deep rectifier nets for the initialisation claim.
Chapter: notebooks/he2015.ipynb (tables from the helpers at the end of this module).
"""

from __future__ import annotations

import math

import pandas as pd

from ..claims import ClaimSet, Quantity
from ..data import DATASETS
from ..experiments import EXPERIMENTS, SMOKE, Arm, Experiment, Profile, RegimeCriterion, all_of, every_run_at_most
from ..metrics import metric_label
from ..reference import SOURCES, Source, paper_value
from ..results import complete_rows
from ..stats import mean_sd_cell, paired_comparison

SOURCE = SOURCES.register(
    "he2015",
    Source(
        key="he2015",
        values_file="he2015_values.csv",
        citation='K. He et al., "Delving Deep into Rectifiers", 2015 (through reading-group notes)',
        label="He et al. 2015",
        paper_columns={"test_error": "top1_error", "test_top5_error": "top5_error"},
        bib_key="he2015delving",
        bib_type="inproceedings",
        bib_fields={
            "author": "He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian",
            "title": "Delving Deep into Rectifiers: Surpassing Human-Level Performance on {ImageNet} Classification",
            "booktitle": "Proceedings of the {IEEE} International Conference on Computer Vision ({ICCV})",
            "year": "2015",
            "eprint": "1502.01852",
            "archiveprefix": "arXiv",
            "url": "https://arxiv.org/abs/1502.01852",
            "note": "Read here through reading-group notes that include its learned-coefficient table",
        },
    ),
)

# The paper's rows (he2015_values.csv, "Section 2.3"): ReLU and PReLU; the other arms are ours.
RELU, PRELU = "ReLU", "PReLU"
LRELU, PRELU_SHARED, PRELU_DECAY = "LReLU (slope 0.25)", "PReLU (channel-shared)", "PReLU (weight decay on a)"
PRELU_ARMS = (
    Arm(RELU, "relu"),
    # our choice: PReLU's initial slope, frozen, so that LReLU vs PReLU isolates learning a
    Arm(LRELU, "lrelu", {"slope": 0.25}),
    Arm(PRELU, "prelu", {"mode": "channel", "init": 0.25}),
    Arm(PRELU_SHARED, "prelu", {"mode": "shared", "init": 0.25}),
    Arm(PRELU_DECAY, "prelu", {"mode": "channel", "init": 0.25}, settings={"decay_activation_coefficients": True}),
)

# he_net's activation modules in the order of He et al.'s coefficient table (conv1 ... fc2).
LAYER_MODULES = {
    "conv1": "act1",
    **{f"conv2_{k}": f"act2_{k}" for k in range(1, 5)},
    **{f"conv3_{k}": f"act3_{k}" for k in range(1, 7)},
    "fc1": "act_fc1",
    "fc2": "act_fc2",
}

OVERHEAD_RECORD = "train_overhead_he_net.json"  # benchmarks/bench_train_overhead.py --models he_net --json

# The stages of the coefficient table: conv1, the conv2 block, the conv3 block (and fc1/fc2).
STAGES = {
    "conv1": ("conv1",),
    "conv2": tuple(f"conv2_{k}" for k in range(1, 5)),
    "conv3": tuple(f"conv3_{k}" for k in range(1, 7)),
}
DEEPER_CONV = STAGES["conv2"] + STAGES["conv3"]
COEFFICIENT_TABLE = "Table 2"  # the notes' table of learned coefficients (he2015_values.csv)
COEFFICIENT_COLUMNS = {PRELU_SHARED: "channel_shared", PRELU: "channel_wise"}
# "Well above" (our choice): conv1's coefficient exceeds the deeper conv layers' average by more than
# 0.1; He et al.'s own table has 0.52 (channel-shared) and 0.37 (channel-wise).
WELL_ABOVE = 0.1
SPEED = "log_median_images_per_second"  # compared as a log ratio (metric registry: margin 0.10)


def coefficient_metrics(layers) -> tuple[str, ...]:
    """The recorded metrics ``alpha.<module>.mean`` of He et al.'s layer names."""
    return tuple(f"alpha.{LAYER_MODULES[layer]}.mean" for layer in layers)


def paper_coefficient(arm: str, layers) -> float:
    """He et al.'s learned coefficient of ``arm``'s column, averaged over ``layers``."""
    vals = [paper_value("he2015", COEFFICIENT_TABLE, layer, COEFFICIENT_COLUMNS[arm]) for layer in layers]
    return sum(vals) / len(vals)


NOTES = (
    "Network: the 14-layer model adapted to 32x32 inputs (3x3 conv1, 2x2 pools; see the model's "
    "documentation); Kaiming initialisation (the paper's own scheme); dropout 0.5 on fc1 and fc2 (our choice: "
    "the notes we replicate from do not state dropout).",
    "Optimizer: SGD with momentum (the notes: 'Momentum method was used'); momentum 0.9, weight decay 5e-4, "
    "initial rate 0.01 divided by 10 in steps, and no weight decay on PReLU's a are our choice (the notes state "
    "none of these values).",
    "LReLU slope 0.25 (our choice: PReLU's initialisation, frozen); the notes give no slope for the paper's LReLU.",
    "Top-5 error is reported only with 100 classes (trivial with 10).",
)

_COMMON = dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=128, normalize="per_channel")

# The regime profile (budget: 8 CPU-hours for 15 runs). Pilot (benchmarks/pilot_regime.py, logs in
# results/he_cifar10_prelu/pilots/): ReLU at width 1/8 on all 50,000 images trains at about 1,690
# images/s (1 thread; 30 s per epoch), and its eval-mode training error fell to 0.372 after 18
# epochs at lr 0.01, by about 0.005 per epoch and slowing; lr 0.03 was no faster (0.488 against
# 0.487 after 6 epochs). 50 epochs of 15 runs fill about 7 of the 8 CPU-hours, so the grid cannot be
# expected to meet criterion (a); the row on the page says whether it did.
REGIME_WIDTH = 0.125
REGIME_EPOCHS = 50
REGIME_MILESTONES = [34, 44]  # our choice: the rate divided by 10 after two thirds, and again near the end
REGIME_SEEDS = (0, 1, 2)
REGIME_RELU_TRAIN_EVAL_ERROR = 0.10
REGIME_COEFFICIENT_DRIFT = 0.02
REGIME_CRITERION = RegimeCriterion(
    f"(a) ReLU's eval-mode training error below {REGIME_RELU_TRAIN_EVAL_ERROR:g} in every seed (the net fits its "
    f"training set), and (b) every layer's mean learned coefficient changes by less than {REGIME_COEFFICIENT_DRIFT:g} "
    "over the last quarter of the epochs, in every PReLU run (the coefficients have converged)",
    all_of(
        every_run_at_most(
            "train_eval_error", REGIME_RELU_TRAIN_EVAL_ERROR, "ReLU's eval-mode training error", arms=(RELU,)
        ),
        every_run_at_most(
            "alpha.*.late_drift",
            REGIME_COEFFICIENT_DRIFT,
            "the largest change of a layer's mean coefficient over the last quarter",
            arms=(PRELU, PRELU_SHARED, PRELU_DECAY),
        ),
    ),
)


def _prelu_profiles(dataset_name: str) -> dict[str, Profile]:
    """The PReLU experiment's profiles on the dataset ``dataset_name`` names (its display name)."""
    return {
        "smoke": Profile(
            (0, 1),
            {**SMOKE, "model_params": {"width": 0.0625}},
            ("512 training and 500 test images", "1 epoch", "batch 64", "width 1/16", "2 seeds"),
        ),
        "quick": Profile(
            (0, 1, 2, 3, 4),
            {
                "epochs": 20,
                "train_subset": 10_000,
                "model_params": {"width": 0.125},
                "schedule": "step",
                "schedule_params": {"milestones": [14], "gamma": 0.1},
            },
            (
                f"{dataset_name} instead of ImageNet",
                "width 1/8 (8/16/32 conv channels, fc 512)",
                "10,000 training images (stratified, the same for every arm and seed)",
                "20 epochs (rate divided by 10 after 14)",
                "5 seeds (the paper reports one run)",
            ),
        ),
        "regime": Profile(
            REGIME_SEEDS,
            {
                "epochs": REGIME_EPOCHS,
                "model_params": {"width": REGIME_WIDTH},
                "schedule": "step",
                "schedule_params": {"milestones": REGIME_MILESTONES, "gamma": 0.1},
                "eval_every": 5,
                "evals": ("train_set",),
            },
            (
                f"{dataset_name} instead of ImageNet",
                "width 1/8 (8/16/32 conv channels, fc 512)",
                "all 50,000 training images",
                f"{REGIME_EPOCHS} epochs (rate divided by 10 after {REGIME_MILESTONES[0]} and "
                f"{REGIME_MILESTONES[1]}; our choice)",
                "test error measured every 5 epochs (and after the last)",
                f"{len(REGIME_SEEDS)} seeds (the paper reports one run)",
            ),
            criterion=REGIME_CRITERION,
        ),
        "paper": Profile(
            (0, 1, 2, 3, 4),
            {"epochs": 80, "schedule": "step", "schedule_params": {"milestones": [40, 60], "gamma": 0.1}},
            (f"{dataset_name} instead of ImageNet", "5 seeds (the paper reports one run)"),
        ),
    }


def _prelu_experiment(name: str, dataset: str, table: str, compared: tuple[str, ...]) -> Experiment:
    dataset_name = DATASETS.get(dataset).display_name
    return EXPERIMENTS.register(
        name,
        Experiment(
            name=name,
            source="he2015",
            table=table,
            title=f"the 14-layer model on {dataset_name}",
            dataset=dataset,
            model="he_net",
            arms=PRELU_ARMS,
            common=_COMMON,
            profiles=_prelu_profiles(dataset_name),
            notes=NOTES,
            compared_metrics=compared,
            same_task=False,  # ImageNet numbers beside a CIFAR re-run
        ),
    )


# Top-5 error is near zero for any trained net with 10 classes: compared only with 100.
PRELU_EXPERIMENT = _prelu_experiment("he_cifar10_prelu", "cifar10", "Section 2.3", ("test_error",))
# With 100 classes top-5 error means something; it runs where cifar100.npz exists (not offline here).
CIFAR100_EXPERIMENT = _prelu_experiment(
    "he_cifar100_prelu", "cifar100", "Section 2.3", ("test_error", "test_top5_error")
)

# The regime profile (budget: 3 CPU-hours with the learning-rate pilot): the rate the pilot picks,
# and as many epochs as fit. Criterion: Kaiming's nets train, i.e. reach a running training loss
# of at most 1.0 nats in every seed (ln 10 = 2.303 is a uniform guess).
INIT_REGIME_LR = 0.01
INIT_REGIME_EPOCHS = 20
INIT_REGIME_SEEDS = (0, 1, 2)
INIT_REGIME_LOSS = 1.0
INIT_REGIME_CRITERION = RegimeCriterion(
    f"Kaiming's 22- and 30-layer nets reach a running training loss of at most {INIT_REGIME_LOSS:g} nats in every "
    "seed (they train; ln 10 = 2.303 is a uniform guess)",
    every_run_at_most(
        "train_loss",
        INIT_REGIME_LOSS,
        "Kaiming's final training loss",
        arms=("Kaiming, 22 layers", "Kaiming, 30 layers"),
    ),
)
INIT_ARMS = tuple(
    Arm(f"{init.capitalize()}, {depth} layers", "relu", model_params={"depth": depth, "init": init})
    for depth in (22, 30)
    for init in ("kaiming", "xavier")
)
INIT_EXPERIMENT = EXPERIMENTS.register(
    "he_cifar10_init",
    Experiment(
        name="he_cifar10_init",
        source="he2015",
        table="Initialisation",
        title="plain deep ReLU nets on CIFAR-10, Kaiming against Xavier initialisation",
        dataset="cifar10",
        model="plain_net",
        arms=INIT_ARMS,
        common=dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=128, normalize="per_channel"),
        profiles={
            "smoke": Profile(
                (0, 1),
                {**SMOKE, "model_params": {"width": 0.25}},
                ("512 training and 500 test images", "1 epoch", "batch 64", "width 1/4", "2 seeds"),
            ),
            # Pilots (1 thread, 5,000 images): at width 1/2 and batch 128 or 32 even Kaiming's 22-layer
            # net stayed at chance loss for 4 epochs; at width 1 and batch 64 it starts to learn by
            # epoch 3, at about 30 s (22 layers) and 40 s (30 layers) per epoch, so 3 seeds fit.
            "quick": Profile(
                (0, 1, 2),
                {"epochs": 10, "train_subset": 5_000, "batch_size": 64},
                (
                    "CIFAR-10 instead of ImageNet",
                    "5,000 training images (stratified)",
                    "10 epochs",
                    "batch 64 (our choice: more steps in the CPU budget)",
                    "3 seeds (5 did not fit the session's CPU budget)",
                ),
            ),
            "regime": Profile(
                INIT_REGIME_SEEDS,
                {
                    "epochs": INIT_REGIME_EPOCHS,
                    "train_subset": 5_000,
                    "batch_size": 64,
                    "lr": INIT_REGIME_LR,
                    "eval_every": 5,
                },
                (
                    "CIFAR-10 instead of ImageNet",
                    "5,000 training images (stratified; the quick profile's subset)",
                    f"{INIT_REGIME_EPOCHS} epochs of batch 64 at a constant rate {INIT_REGIME_LR:g} (the learning-rate "
                    "pilot's best rate for Kaiming's nets)",
                    "test error measured every 5 epochs (and after the last)",
                    f"{len(INIT_REGIME_SEEDS)} seeds",
                ),
                criterion=INIT_REGIME_CRITERION,
            ),
            "paper": Profile((0, 1, 2, 3, 4), {"epochs": 30}, ("CIFAR-10 instead of ImageNet", "5 seeds")),
        },
        notes=(
            "Plain nets (no batch norm, no shortcuts) of 22 and 30 weighted layers (our choice: the depths He et "
            "al.'s paper is known for; the notes we replicate from give no depths, widths or stages); widths, "
            "stages and the CIFAR-10 setting are our choice.",
            "Xavier: N(0, 1/n) with n = fan-in; Kaiming: N(0, 2/n) (our choice of the two laws' forms: the notes "
            "name the initialisation study but give no formula).",
        ),
    ),
)

# The learning-rate pilot of the initialisation study (a diagnostic: it tests our setup, not a
# table of the paper). In the quick profile Xavier's 22-layer net stayed at chance loss in every
# seed at lr 0.01; this asks whether that stall survives every reasonable rate, before the regime
# grid picks one. Rates: half-decade steps around the quick profile's 0.01 (our choice).
INIT_PILOT_RATES = (0.003, 0.01, 0.03, 0.1)
INIT_PILOT_EPOCHS = 5


def init_pilot_label(init: str, depth: int, lr: float) -> str:
    return f"{init.capitalize()}, {depth} layers, lr {lr:g}"


INIT_PILOT_ARMS = tuple(
    Arm(
        init_pilot_label(init, depth, lr),
        "relu",
        model_params={"depth": depth, "init": init},
        settings={"lr": lr},
    )
    for depth in (22, 30)
    for init in ("kaiming", "xavier")
    for lr in INIT_PILOT_RATES
)
INIT_PILOT_EXPERIMENT = EXPERIMENTS.register(
    "he_cifar10_init_lr",
    Experiment(
        name="he_cifar10_init_lr",
        source="he2015",
        table="Initialisation (learning-rate pilot)",
        title="the initialisation study's learning-rate pilot: plain deep ReLU nets at four rates",
        dataset="cifar10",
        model="plain_net",
        arms=INIT_PILOT_ARMS,
        common=INIT_EXPERIMENT.common,
        profiles={
            "smoke": Profile(
                (0,),
                {**SMOKE, "model_params": {"width": 0.25}},
                ("512 training and 500 test images", "1 epoch", "batch 64", "width 1/4", "1 seed"),
            ),
            "quick": Profile(
                (0,),
                {"epochs": INIT_PILOT_EPOCHS, "train_subset": 5_000, "batch_size": 64},
                (
                    "CIFAR-10 instead of ImageNet",
                    "5,000 training images (stratified; the initialisation study's quick subset)",
                    f"{INIT_PILOT_EPOCHS} epochs of batch 64 at a constant rate",
                    "1 seed per point (a pilot, not a replicate)",
                ),
            ),
        },
        notes=(
            "A diagnostic of our setup, not a table of the paper: does the 22-layer Xavier net stall at every "
            f"learning rate in {', '.join(f'{r:g}' for r in INIT_PILOT_RATES)} (our choice), or only at 0.01?",
        ),
        diagnostic="whether the initialisation study's stalls depend on the learning rate",
    ),
)

# ------------------------------------------------------------------------------------ claims
_SECTION = "2.3"
_PRELU_GAIN = "For PReLU top-1 error is reduced to 32.64% from 33.82% with this approach."
_INIT = "with the suggested initialization method, they were able to train deep neural networks in a stable manner"


def _claims() -> None:
    prelu = ClaimSet("he2015", PRELU_EXPERIMENT.name, _SECTION)
    _gain_claims(prelu)
    _speed_claims(prelu)
    _coefficient_claims(prelu.where(section="Table 2 (learned coefficients)"))
    _init_claims(ClaimSet("he2015", INIT_EXPERIMENT.name, "1. Introduction"))


def _gain_claims(claims: ClaimSet) -> None:
    claims.better(
        "prelu_beats_relu_top1",
        quote=_PRELU_GAIN,
        statement="PReLU (channel-wise) has a lower top-1 test error than ReLU.",
        arm=PRELU,
        others=(RELU,),
        metrics=("test_error",),
    )
    claims.non_inferior(
        "channel_wise_not_worse_than_shared",
        quote="In channel-shared approach, PReLU introduces 13 extra free parameters with respect to the ReLU approach.",
        statement="Channel-wise PReLU's top-1 error is non-inferior to channel-shared PReLU's (margin 0.01).",
        arm=PRELU,
        others=(PRELU_SHARED,),
        metrics=("test_error",),
        paper_says="channel-shared 1.1-point gain, channel-wise 1.2 (ImageNet, one run)",
    )
    claims.better(
        "prelu_beats_lrelu_at_its_initial_slope",
        section="2.4",
        quote="Since the a_i is updating with each iteration, errors can be reduced and we can expect improved "
        "performance",
        statement="Channel-wise PReLU (a learned from 0.25) has a lower top-1 test error than LReLU with a "
        "fixed at 0.25: learning a helps, beyond having a leak.",
        arm=PRELU,
        others=(LRELU,),
        metrics=("test_error",),
        paper_says="no fixed-slope arm in the paper (no numbers)",
    )
    relu_top1, prelu_top1 = (paper_value("he2015", "Section 2.3", arm, "top1_error") for arm in (RELU, PRELU))
    claims.gain_ratio(
        "channel_shared_gets_most_of_the_gain",
        quote="1.1% performance gain is a result of this parameters.",
        statement="Channel-shared PReLU gets at least half of channel-wise PReLU's top-1 gain over ReLU "
        "(the ratio of the two gains is at least 0.5; 'most' read as 'at least half', our choice).",
        reference=RELU,
        arm=PRELU_SHARED,
        full=PRELU,
        metric="test_error",
        share=0.5,
        paper_says=f"channel-shared gain 1.1 points (the notes' text), channel-wise "
        f"{100 * (relu_top1 - prelu_top1):.1f} (ImageNet, one run)",
    )
    claims.non_inferior(
        "prelu_little_overfitting",
        section="1. Introduction",
        quote="PReLU improves model fitting with nearly zero extra computational cost and little over fitting risk",
        statement="PReLU's generalization gap (test error minus eval-mode training error) is non-inferior to "
        "ReLU's: at most 0.01 larger (margin, our choice: one percentage point).",
        arm=PRELU,
        others=(RELU,),
        metrics=("generalization_gap",),
        paper_says="little overfitting risk (no numbers)",
    )


def _speed_claims(claims: ClaimSet) -> None:
    claims.non_inferior(
        "prelu_nearly_free",
        section="1. Introduction",
        quote="PReLU improves model fitting with nearly zero extra computational cost",
        statement=(
            "PReLU's whole-network training throughput (channel-wise and channel-shared) is non-inferior "
            "to ReLU's: the paired log ratio of median images/s lies above minus the margin."
        ),
        note="Whole-network timing on our CPU, two runs at a time; the activation's code is named in each record.",
        arm=PRELU,
        others=(RELU,),
        metrics=(SPEED,),
        paper_says="nearly zero extra computational cost (no numbers)",
    )
    claims.non_inferior(
        "prelu_shared_nearly_free",
        section="2.1",
        quote="The paper suggests the time complexity due to PReLU is negligible for both forward and backward "
        "propagation.",
        statement="Channel-shared PReLU's whole-network training throughput is non-inferior to ReLU's (log ratio "
        "margin).",
        arm=PRELU_SHARED,
        others=(RELU,),
        metrics=(SPEED,),
        paper_says="negligible time cost (no numbers)",
    )


def _coefficient_claims(claims: ClaimSet) -> None:
    claims.bounds(
        "coefficients_in_unit_interval",
        section="2.7",
        quote="Also the paper [4] states that the magnitude of a is usually in (0,1) range.",
        statement="Every layer's learned coefficient as Table 2 reports it (the channel-shared a; the "
        "channel-wise mean over channels) lies in (0, 1), in every run of both PReLU arms. Single channels "
        "are not tested ('usually'); their range is reported beside it.",
        arms=(PRELU, PRELU_SHARED),
        lower_metrics="alpha.*.mean",
        upper_metrics="alpha.*.mean",
        low=0.0,
        high=1.0,
        what="layer's learned coefficient (mean over channels)",
        context=(("alpha.*.min", "single channels' lowest a"), ("alpha.*.max", "single channels' highest a")),
        paper_says="Table 2: every layer's coefficient in (0, 1) ("
        + "{:.3f}-{:.3f}".format(
            *_extremes(paper_coefficient(arm, (layer,)) for arm in COEFFICIENT_COLUMNS for layer in LAYER_MODULES)
        )
        + ", one run)",
    )
    _stage_claims(claims)
    all_layers = tuple(LAYER_MODULES)
    claims.difference(
        "weight_decay_shrinks_coefficients",
        section="2.7-2.8",
        quote="they have avoided using 12 regularization while learning a_i . Because it tends to push a to 0.",
        statement=(
            "With weight decay on a (5e-4, the weights' rate), the mean learned coefficient over the 13 "
            "layers is lower than without it."
        ),
        parts=(
            (
                Quantity(PRELU, coefficient_metrics(all_layers), label="mean a over 13 layers"),
                Quantity(PRELU_DECAY, coefficient_metrics(all_layers), label="mean a over 13 layers"),
            ),
        ),
        paper_says="the reason given for excluding a from weight decay (no numbers)",
    )


def _stage(arm: str, name: str, layers) -> Quantity:
    return Quantity(
        arm, coefficient_metrics(layers), label=f"mean a over {name}" if len(layers) > 1 else f"a of {name}"
    )


def _paper_pairs(a_layers, b_layers) -> str:
    return "; ".join(
        f"{arm}: {paper_coefficient(arm, a_layers):.3f} vs {paper_coefficient(arm, b_layers):.3f}"
        for arm in (PRELU_SHARED, PRELU)
    )


def _stage_claims(claims: ClaimSet) -> None:
    quote = "We can observe the learned coefficients in Table 2."
    claims.difference(
        "coefficients.conv1_well_above_deeper_conv",
        quote=quote,
        statement=(
            f"conv1's learned coefficient exceeds the average of the ten deeper conv layers by more than "
            f"{WELL_ABOVE:g} (our reading of 'well above'), channel-shared and channel-wise."
        ),
        parts=tuple(
            (_stage(arm, "conv1", STAGES["conv1"]), _stage(arm, "conv2_1..conv3_6", DEEPER_CONV))
            for arm in (PRELU_SHARED, PRELU)
        ),
        excess=WELL_ABOVE,
        paper_says="conv1 vs deeper conv average: " + _paper_pairs(STAGES["conv1"], DEEPER_CONV) + " (one run)",
    )
    claims.difference(
        "coefficients.deeper_stages_below_conv1",
        quote=quote,
        statement=(
            "The mean coefficient of each deeper conv stage (conv2_x, conv3_x) is below conv1's, "
            "channel-shared and channel-wise (4 paired comparisons)."
        ),
        parts=tuple(
            (_stage(arm, "conv1", STAGES["conv1"]), _stage(arm, f"{name}_x", STAGES[name]))
            for arm in (PRELU_SHARED, PRELU)
            for name in ("conv2", "conv3")
        ),
        paper_says="conv1 vs conv2_x: "
        + _paper_pairs(STAGES["conv1"], STAGES["conv2"])
        + "; conv1 vs conv3_x: "
        + _paper_pairs(STAGES["conv1"], STAGES["conv3"])
        + " (one run)",
    )


def _extremes(values) -> tuple[float, float]:
    values = list(values)
    return min(values), max(values)


def _init_claims(claims: ClaimSet) -> None:
    # "Trains" (our choice): the running training loss falls by more than 0.1 nats from the first
    # epoch to the last; "stalls": it falls by less than that.
    fall = 0.1

    def loss(arm: str, metric: str) -> Quantity:
        return Quantity(arm, (metric,))

    claims.better(
        "init.kaiming_trains_the_deeper_net",
        quote=_INIT,
        statement="At 30 layers, Kaiming initialisation ends with a lower training loss than Xavier's.",
        arm="Kaiming, 30 layers",
        others=("Xavier, 30 layers",),
        metrics=("train_loss",),
        paper_says="training curves of the 30-layer model (figure only)",
    )
    claims.difference(
        "init.xavier_stalls_the_deeper_net",
        quote=_INIT,
        statement=f"At 30 layers with Xavier initialisation, the training loss falls by less than {fall:g} nats "
        "from the first epoch to the last (the net stalls).",
        parts=((loss("Xavier, 30 layers", "train_loss"), loss("Xavier, 30 layers", "first_epoch_train_loss")),),
        excess=-fall,
        paper_says="the 30-layer model stalls with Xavier (a figure in the paper; not in our notes)",
    )
    claims.difference(
        "init.both_train_the_shallower_net",
        quote=_INIT,
        statement=f"At 22 layers both initialisations train: the training loss falls by more than {fall:g} nats "
        "from the first epoch to the last.",
        parts=tuple(
            (loss(arm, "first_epoch_train_loss"), loss(arm, "train_loss"))
            for arm in ("Kaiming, 22 layers", "Xavier, 22 layers")
        ),
        excess=fall,
        paper_says="both converge at 22 layers (a figure in the paper; not in our notes)",
    )
    claims.better(
        "init.kaiming_converges_sooner",
        quote=_INIT,
        statement="At 22 layers, Kaiming initialisation has a lower training loss after the first epoch than Xavier's.",
        arm="Kaiming, 22 layers",
        others=("Xavier, 22 layers",),
        metrics=("first_epoch_train_loss",),
        paper_says="Kaiming starts reducing the error earlier (a figure in the paper; not in our notes)",
    )


_claims()


# ------------------------------------------------------------------------------ chapter tables
def coefficient_frame(results: pd.DataFrame, experiment: str = PRELU_EXPERIMENT.name) -> pd.DataFrame:
    """One row per (PReLU arm, seed, layer): the learned coefficient's mean and its sd over the
    layer's channels, the layer's position (1 = conv1), and He et al.'s value for that column."""
    d = complete_rows(results, experiment)
    rows = []
    for depth, (layer, module) in enumerate(LAYER_MODULES.items(), 1):
        for arm in (PRELU_SHARED, PRELU, PRELU_DECAY):
            sub = d[d["arm"] == arm]
            mean = sub[sub["metric"] == f"alpha.{module}.mean"].set_index("seed")["value"]
            spread = sub[sub["metric"] == f"alpha.{module}.std"].set_index("seed")["value"]
            column = COEFFICIENT_COLUMNS.get(arm)
            paper = paper_value("he2015", COEFFICIENT_TABLE, layer, column) if column else math.nan
            for seed, a in mean.items():
                rows.append(
                    dict(
                        layer=layer,
                        depth=depth,
                        arm=arm,
                        seed=seed,
                        a=a,
                        spread=spread.get(seed, math.nan),
                        paper=paper,
                    )
                )
    return pd.DataFrame(rows, columns=["layer", "depth", "arm", "seed", "a", "spread", "paper"])


def coefficient_table(results: pd.DataFrame, experiment: str = PRELU_EXPERIMENT.name, digits: int = 3) -> pd.DataFrame:
    """He et al.'s learned coefficients by layer beside ours (mean ± sd over seeds): channel-shared;
    channel-wise (the mean over channels, and the sd over channels averaged over seeds); and the
    channel-wise arm trained with weight decay on a."""
    f = coefficient_frame(results, experiment)
    rows = []
    for layer in LAYER_MODULES:
        at = f[f["layer"] == layer]

        def arm(label: str, at: pd.DataFrame = at) -> pd.DataFrame:
            return at[at["arm"] == label]

        rows.append(
            {
                "layer": layer,
                "channel-shared: He et al.": f"{paper_value('he2015', COEFFICIENT_TABLE, layer, 'channel_shared'):.3f}",
                "channel-shared: ours": mean_sd_cell(arm(PRELU_SHARED)["a"], digits),
                "channel-wise mean: He et al.": f"{paper_value('he2015', COEFFICIENT_TABLE, layer, 'channel_wise'):.3f}",
                "channel-wise mean: ours": mean_sd_cell(arm(PRELU)["a"], digits),
                "channel-wise: sd over channels (ours)": f"{arm(PRELU)['spread'].mean():.{digits}f}"
                if len(arm(PRELU))
                else "not run",
                "channel-wise, weight decay on a: ours": mean_sd_cell(arm(PRELU_DECAY)["a"], digits),
            }
        )
    return pd.DataFrame(rows).set_index("layer")


def coefficient_history(histories: pd.DataFrame, experiment: str = PRELU_EXPERIMENT.name) -> pd.DataFrame:
    """The PReLU arms' mean learned coefficient of every layer by epoch (one row per arm, seed,
    epoch and layer), from the records' histories: how a moves and whether it has settled."""
    columns = ["arm", "seed", "epoch", "layer", "depth", "a"]
    h = histories[histories["experiment"] == experiment] if len(histories) else histories
    if not len(h):
        return pd.DataFrame(columns=columns)
    frames = []
    for depth, (layer, module) in enumerate(LAYER_MODULES.items(), 1):
        key = f"alpha.{module}.mean"
        if key not in h.columns:
            continue
        sub = h[h[key].notna()]
        frames.append(
            pd.DataFrame(
                {
                    "arm": sub["arm"],
                    "seed": sub["seed"],
                    "epoch": sub["epoch"],
                    "layer": layer,
                    "depth": depth,
                    "a": sub[key],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def init_pilot_curves(histories: pd.DataFrame) -> pd.DataFrame:
    """The learning-rate pilot's training loss by epoch, with each arm's init law, depth and rate."""
    columns = ["epoch", "initialisation", "depth", "learning rate", "training loss (nats)"]
    h = histories[histories["experiment"] == INIT_PILOT_EXPERIMENT.name] if len(histories) else histories
    if not len(h):
        return pd.DataFrame(columns=columns)
    arms = {a.label: a for a in INIT_PILOT_ARMS}
    known = h[h["arm"].isin(arms)]
    return pd.DataFrame(
        {
            "epoch": known["epoch"],
            "initialisation": known["arm"].map(lambda a: arms[a].model_params["init"].capitalize()),
            "depth": known["arm"].map(lambda a: f"{arms[a].model_params['depth']} layers"),
            "learning rate": known["arm"].map(lambda a: f"{arms[a].settings['lr']:g}"),
            "training loss (nats)": known["train_loss"],
        }
    )


def init_arm(label: str) -> tuple[str, int]:
    """``(init, depth)`` of an initialisation arm, from its model parameters."""
    arm = next(a for a in INIT_ARMS if a.label == label)
    return arm.model_params["init"], arm.model_params["depth"]


def init_curves(histories: pd.DataFrame) -> pd.DataFrame:
    """The initialisation runs' training loss by epoch, with the arm's init law and depth."""
    h = histories[histories["experiment"] == INIT_EXPERIMENT.name] if len(histories) else histories
    if not len(h):
        return pd.DataFrame(columns=["epoch", "seed", "initialisation", "depth", "training loss (nats)"])
    parts = h["arm"].map(init_arm)
    return pd.DataFrame(
        {
            "epoch": h["epoch"],
            "seed": h["seed"],
            "initialisation": parts.map(lambda p: p[0].capitalize()),
            "depth": parts.map(lambda p: f"{p[1]} layers"),
            "training loss (nats)": h["train_loss"],
        }
    )


def init_table(results: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Per initialisation arm: training loss after the first and the last epoch, and test error."""
    d = complete_rows(results, INIT_EXPERIMENT.name)
    rows = []
    for a in INIT_ARMS:
        sub = d[d["arm"] == a.label]
        row = {"arm": a.label}
        for metric in ("first_epoch_train_loss", "train_loss", "test_error"):
            row[metric_label(metric, unit=True)] = mean_sd_cell(sub[sub["metric"] == metric]["value"], digits)
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")


def cost_table(results: pd.DataFrame, experiment: str = PRELU_EXPERIMENT.name) -> pd.DataFrame:
    """Per arm of the 14-layer model: training throughput (median images/s over epochs, mean ± sd
    over seeds) and its ratio to ReLU's, paired by seed (exp of the mean log ratio, 95% t-interval)."""
    d = complete_rows(results, experiment)
    rows = []
    for arm in (a.label for a in PRELU_ARMS):
        sub = d[d["arm"] == arm]
        row = {
            "activation": arm,
            metric_label("median_images_per_second", unit=True): mean_sd_cell(
                sub[sub["metric"] == "median_images_per_second"]["value"], 0
            ),
        }
        if arm != RELU and len(sub):
            pc = paired_comparison(d, SPEED, arm, RELU, experiment, None)
            row["throughput / ReLU's (95% CI)"] = (
                f"{math.exp(pc.mean_diff):.3f} [{math.exp(pc.ci_low):.3f}, {math.exp(pc.ci_high):.3f}] (n={pc.n})"
                if pc.n >= 2
                else "n/a"
            )
        else:
            row["throughput / ReLU's (95% CI)"] = "1 (reference)" if len(sub) else "not run"
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation")
