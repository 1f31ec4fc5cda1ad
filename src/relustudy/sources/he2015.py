"""He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers" (through reading-group notes).

ImageNet is out of reach here: the experiments replicate what transfers to CIFAR-10 with the
14-layer ``he_net`` scaled down (PReLU against ReLU and LReLU, channel-wise against channel-shared,
weight decay on the coefficients) and plain deep rectifier nets for the initialisation claim.
The experiments and claims are defined; their chapter (notebooks/he2015.ipynb) and quick records
are not made yet, so its claims read *not run*.
"""

from __future__ import annotations

from ..claims import ComparisonClaim, register
from ..experiments import EXPERIMENTS, SMOKE, Arm, Experiment, Profile
from ..reference import SOURCES, Source

SOURCE = SOURCES.register(
    "he2015",
    Source(
        key="he2015",
        citation='K. He et al., "Delving Deep into Rectifiers", 2015 (through reading-group notes)',
        label="He et al. 2015",
        paper_columns={"test_error": "top1_error", "test_top5_error": "top5_error"},
    ),
)

# The paper's rows (paper_values.csv, "Section 2.3"): ReLU and PReLU; the other arms are ours.
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

NOTES = (
    "Network: the 14-layer model (he_net) adapted to 32x32 inputs (3x3 conv1, 2x2 pools; see the model's "
    "documentation); Kaiming initialisation; dropout 0.5 on fc1 and fc2 (source).",
    "Optimizer (source): SGD with momentum 0.9, weight decay 5e-4, no weight decay on PReLU's a; initial rate "
    "0.01 divided by 10 in steps (step epochs are our choice).",
    "LReLU slope 0.25 (our choice: PReLU's initialisation, frozen); the notes give no slope for the paper's LReLU.",
    "Top-5 error is reported only with 100 classes (trivial with 10).",
)

_COMMON = dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=128, normalize="per_channel")
PRELU_EXPERIMENT = EXPERIMENTS.register(
    "he_cifar10_prelu",
    Experiment(
        name="he_cifar10_prelu",
        source="he2015",
        table="Section 2.3",
        title="the 14-layer model on CIFAR-10",
        dataset="cifar10",
        model="he_net",
        arms=PRELU_ARMS,
        common=_COMMON,
        profiles={
            "smoke": Profile(
                (0, 1),
                {**SMOKE, "model_params": {"width": 0.0625}},
                ("512 training and 500 test images", "1 epoch", "batch 64", "width 1/16", "2 seeds"),
            ),
            "quick": Profile(
                (0, 1, 2),
                {
                    "epochs": 15,
                    "train_subset": 10_000,
                    "model_params": {"width": 0.125},
                    "schedule": "step",
                    "schedule_params": {"milestones": [10], "gamma": 0.1},
                },
                (
                    "CIFAR-10 instead of ImageNet",
                    "width 1/8 (8/16/32 conv channels, fc 512)",
                    "10,000 training images (stratified, the same for every arm and seed)",
                    "15 epochs",
                    "3 seeds (the paper reports one run)",
                ),
            ),
            "paper": Profile(
                (0, 1, 2, 3, 4),
                {"epochs": 80, "schedule": "step", "schedule_params": {"milestones": [40, 60], "gamma": 0.1}},
                ("CIFAR-10 instead of ImageNet", "5 seeds (the paper reports one run)"),
            ),
        },
        notes=NOTES,
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
            "quick": Profile(
                (0, 1, 2),
                {"epochs": 10, "train_subset": 5_000, "model_params": {"width": 0.5}},
                ("CIFAR-10 instead of ImageNet", "width 1/2 (8/16/32 channels)", "5,000 training images", "10 epochs"),
            ),
            "paper": Profile((0, 1, 2, 3, 4), {"epochs": 30}, ("CIFAR-10 instead of ImageNet", "5 seeds")),
        },
        notes=(
            "Plain nets (no batch norm, no shortcuts) of 22 and 30 weighted layers, as He et al.'s; widths, "
            "stages and the CIFAR-10 setting are our choice (model plain_net).",
            "Xavier: N(0, 1/n) with n = fan-in, the variant He et al. compare with; Kaiming: N(0, 2/n).",
        ),
    ),
)

# ------------------------------------------------------------------------------------ claims
_SECTION = "2.3"
_PRELU_GAIN = "For PReLU top-1 error is reduced to 32.64% from 33.82% with this approach."
_INIT = "with the suggested initialization method, they were able to train deep neural networks in a stable manner"


def _claims() -> None:
    register(
        ComparisonClaim(
            id="he2015.prelu_beats_relu_top1",
            source="he2015",
            experiment=PRELU_EXPERIMENT.name,
            section=_SECTION,
            quote=_PRELU_GAIN,
            statement="PReLU (channel-wise) has a lower top-1 test error than ReLU.",
            arm=PRELU,
            others=(RELU,),
            metrics=("test_error",),
            relation="better",
        )
    )
    register(
        ComparisonClaim(
            id="he2015.channel_wise_not_worse_than_shared",
            source="he2015",
            experiment=PRELU_EXPERIMENT.name,
            section=_SECTION,
            quote="Channel-shared PReLU adds 13 parameters and gives a 1.1-point gain (channel-wise: 1.2).",
            statement="Channel-wise PReLU's top-1 error is non-inferior to channel-shared PReLU's (margin 0.01).",
            arm=PRELU,
            others=(PRELU_SHARED,),
            metrics=("test_error",),
            relation="non_inferior",
            paper_says="channel-shared 1.1-point gain, channel-wise 1.2 (ImageNet, one run)",
        )
    )
    register(
        ComparisonClaim(
            id="he2015.init.kaiming_trains_the_deeper_net",
            source="he2015",
            experiment=INIT_EXPERIMENT.name,
            section="1. Introduction",
            quote=_INIT,
            statement="At 30 layers, Kaiming initialisation ends with a lower training loss than Xavier's.",
            arm="Kaiming, 30 layers",
            others=("Xavier, 30 layers",),
            metrics=("train_loss",),
            relation="better",
            paper_says="training curves of the 30-layer model (figure only)",
        )
    )


_claims()
