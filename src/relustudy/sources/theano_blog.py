"""Theano blog, "Benchmarking ReLU and PReLU using MNIST and Theano" (whole-network part).

Its experiment (Radford's convnet on 1/6 of MNIST, six ReLU/PReLU formulations) and its claims;
the chapter is notebooks/mnist.ipynb, shared with the TensorFlow RReLU blog.
"""

from __future__ import annotations

from ..claims import ClaimSet
from ..experiments import EXPERIMENTS, Arm, Experiment, Profile
from ..reference import SOURCES, Source
from ..stepbench import STEP_METRIC, STEP_TIMINGS, StepTiming, StepTimingProfile, step_label
from ..verdict_rules import margin

SOURCE = SOURCES.register(
    "theano_blog",
    Source(
        key="theano_blog",
        values_file="theano_blog_values.csv",
        citation='"Benchmarking ReLU and PReLU using MNIST and Theano" (blog post)',
        label="Theano blog",
        paper_columns={"test_accuracy": "test_accuracy"},
        chapter="mnist",
        bib_key="theanoblog",
        bib_fields={
            "title": "Benchmarking {ReLU} and {PReLU} using {MNIST} and {Theano}",
            "howpublished": "Blog post",
            "note": "Theano 0.7 on a K40c; no author, date or address is stated in the text this study worked from",
        },
    ),
)

_THEANO_PRELU = {"mode": "channel", "init": 0.25}
THEANO_ARMS = (
    Arm("ReLU (switch)", "relu_where"),
    Arm("ReLU (max)", "relu_max"),
    Arm("ReLU (abs)", "relu_abs"),
    Arm("PReLU (max/min)", "prelu_maxmin", _THEANO_PRELU),
    Arm("PReLU (abs)", "prelu_abs", _THEANO_PRELU),
    Arm("PReLU (Schlüter)", "prelu_schluter", _THEANO_PRELU),
)
# Alec Radford's Theano-Tutorials 5_convolutional_net.py: RMSprop(lr=0.001, rho=0.9, epsilon=1e-6)
# with epsilon inside the square root, minibatches of 128, pixels / 255.
THEANO_COMMON = dict(
    optimizer="rmsprop_theano",
    lr=1e-3,
    momentum=0.9,
    eps=1e-6,
    batch_size=128,
    normalize="scale01",
    train_subset=10_000,
    subset_seed=0,
    channels_last=True,
)
_WHAT_IS_TIMED = (
    "The speed verdicts time the blog's forms as written (plain tensor expressions differentiated by autograd, "
    "eager), trained in the timing experiment beside our hand-written forms (Python-level autograd Functions "
    "with a hand-written backward, for the left derivative at 0); the blog's Theano graphs were differentiated "
    "symbolically and compiled, on a K40c GPU, and ours run on 2 CPU cores. The micro-benchmark times each form "
    "alone, eager and under torch.compile (the nearest thing to Theano's graph optimiser)."
)
THEANO_NOTES = (
    "Network, optimizer and batch: Alec Radford's Theano-Tutorials convnet, to which the blog says its net is "
    "identical: no biases, N(0, 0.01) weights, dropout 0.2/0.2/0.2/0.5, RMSprop lr 0.001, rho 0.9, "
    "eps 1e-6 inside the square root, batch 128, pixels / 255.",
    "'1/6 of the original size': 10,000 training images, stratified by class with a fixed subset seed "
    "(the same images for every arm and seed); the full 10,000-image test set. Radford's loader takes the "
    "first 10,000 images instead (our choice differs).",
    "The training loop is the study's one trainer, not Radford's (our choice): his visits the images in file "
    "order every epoch and drops the last partial batch (10,000 = 78 x 128 + 16 images); ours reshuffles every "
    "epoch with a seeded generator and keeps the partial batch.",
    "PReLU: channel-wise coefficients (one per conv channel and per dense unit) initialised at 0.25 (He et al.); "
    "the blog does not state its init, and its 'the alpha parameters ... need to correspond to the number of "
    "activations in the corresponding layer' may mean one per unit of a feature map (channel x position), which "
    "we do not do (our choice: He et al.'s channel-wise form).",
    "'Sweet spot': the first epoch whose test accuracy is within 0.2 percentage points of the run's best "
    "(the epochs-to-sweet-spot metric).",
    "Timing: images per second of the training loop (median over epochs), on our CPU, not the blog's K40c GPU. "
    + _WHAT_IS_TIMED,
)

_SMALL_MNIST = {"train_subset": 512, "test_subset": 500}
_PAPER = Profile((0, 1, 2), {"epochs": 30}, ("3 seeds (the blog reports one run)",))


def _theano_experiment(name: str, title: str, arms: tuple[Arm, ...], smoke: Profile, quick: Profile, notes) -> None:
    """One of the blog's grids: Radford's convnet on 1/6 of MNIST with the blog's setup; the
    paper profile is the blog's 30 epochs."""
    EXPERIMENTS.register(
        name,
        Experiment(
            name=name,
            source="theano_blog",
            table="Results and conclusions",
            title=title,
            dataset="mnist",
            model="radford_convnet",
            arms=arms,
            common=THEANO_COMMON,
            profiles={"smoke": smoke, "quick": quick, "paper": _PAPER},
            notes=notes,
        ),
    )


_theano_experiment(
    "theano_mnist_radford",
    "ReLU and PReLU implementations in Radford's convnet on 1/6 of MNIST",
    THEANO_ARMS,
    smoke=Profile((0, 1), {"epochs": 2, **_SMALL_MNIST}, ("512 training and 500 test images", "2 epochs", "2 seeds")),
    quick=Profile(
        (0, 1, 2), {"epochs": 15}, ("15 epochs instead of the blog's 30", "3 seeds (the blog reports one run)")
    ),
    notes=THEANO_NOTES,
)

# The speed sentences, timed on the blog's forms as written and on ours, in one grid: a few epochs
# suffice because speed is the median images/s over epochs.
AS_WRITTEN = ", as written"
_TIMING = "theano_mnist_radford_timing"
_TIMED_ARMS = tuple(a for a in THEANO_ARMS if a.activation in ("relu_max", "relu_abs", "prelu_maxmin", "prelu_abs"))
THEANO_TIMING_ARMS = _TIMED_ARMS + tuple(
    Arm(a.label + AS_WRITTEN, a.activation, {**a.params, "as_written": True}) for a in _TIMED_ARMS
)
_theano_experiment(
    _TIMING,
    "Training speed of the max/min and abs forms, as the blog wrote them and as we implement them",
    THEANO_TIMING_ARMS,
    smoke=Profile((0,), {"epochs": 1, **_SMALL_MNIST}, ("512 training and 500 test images", "1 epoch", "1 seed")),
    quick=Profile(
        (0, 1, 2),
        {"epochs": 3},
        (
            "3 epochs instead of the blog's 30 (speed only: the median images/s over epochs)",
            "3 seeds (the blog reports one run)",
        ),
    ),
    notes=THEANO_NOTES
    + (
        "'as written': the blog's expressions (max(0, x), (x + |x|) / 2, ...) differentiated by autograd; the "
        "others are our forms with a hand-written backward.",
    ),
)

# The speed sentences decided from whole training steps timed interleaved in one process
# (relustudy.stepbench): the blog's forms as written, eager and under torch.compile (the nearest
# thing to Theano's compiled graph), beside our hand-written-backward forms. The switch PReLU is
# ours: the blog adapts only the max and abs forms to PReLU.
SWITCH_PRELU = "PReLU (switch, our form)"
STEP_ARMS = (
    Arm("ReLU (switch)" + AS_WRITTEN, "relu_where"),
    *(a for a in THEANO_TIMING_ARMS if a.label.endswith(AS_WRITTEN)),
    Arm(SWITCH_PRELU, "prelu_where", _THEANO_PRELU),
    *_TIMED_ARMS,
)
STEP_TIMINGS.register(
    _TIMING,
    StepTiming(
        experiment=_TIMING,
        arms=STEP_ARMS,
        profiles={
            "smoke": StepTimingProfile(seeds=(0,), cycles=2, warmup=1, variants=("eager",)),
            "quick": StepTimingProfile(seeds=(0, 1, 2, 3, 4), cycles=30, warmup=3),
        },
        note=(
            "Whole training steps of Radford's convnet (batch 128, the blog's RMSprop, channels_last) on one "
            "resident batch, one step of every form and variant per cycle in rotating order, in one process; a "
            "seed is one initialisation, its value the median over its cycles. 'compiled': the model under "
            "torch.compile (inductor), the nearest thing to Theano's compiled graph; 'eager': as PyTorch runs it. "
            "The mapping of the blog's six forms to ours is our reading: its ReLU1-3 are the switch, max and abs "
            "forms, its PReLU forms the max/min and abs ones and Schlüter's; the switch PReLU is our form."
        ),
    ),
)
COMPILED, EAGER = "compiled", "eager"

_THEANO = "theano_mnist_radford"
_THEANO_SECTION = "Results and conclusions"
_THEANO_SAME_SPEED = "The maximum and the absolute calculations seem to have performed equally fast."
_THEANO_PRELU_TIME = "The added time using PReLU is minimal."
_THEANO_PRELU_ACC = (
    "Similarly the added precision is minimal, although PReLU seems to slightly faster find the sweet-spot."
)
_THEANO_ALPHAS = (
    "Interestingly the α (alpha) values behaved in a similar fashion to that in the original article, "
    "alphas in the lower layers were higher compared to lower layers."
)
_SPEED = "log_median_images_per_second"
_FIG = "bar chart of the time of 30 epochs (figure only)"


def _speed_note(variant: str) -> str:
    return (
        f"Decided on the {variant} forms as written, from whole training steps timed interleaved in one process "
        "(the step-timing record); the eager forms and ours are in the table beside it. " + _WHAT_IS_TIMED
    )


def _claims() -> None:
    _speed_claims(ClaimSet("theano_blog", _TIMING, _THEANO_SECTION))
    _accuracy_claims(ClaimSet("theano_blog", _THEANO, _THEANO_SECTION))


def _speed_claims(claims: ClaimSet) -> None:
    same_speed = (("ReLU (max)", "ReLU (abs)"), ("PReLU (max/min)", "PReLU (abs)"))
    for relu, prelu in same_speed:
        kind = relu.split()[0].lower()
        a, b = step_label(relu + AS_WRITTEN, COMPILED), step_label(prelu + AS_WRITTEN, COMPILED)
        claims.same(
            f"{kind}_max_and_abs_equally_fast",
            quote=_THEANO_SAME_SPEED,
            statement=(
                f"{a} and {b} train equally fast: images/s of a whole training step within ±10% "
                f"(log ratio within ±{margin(STEP_METRIC):g})."
            ),
            note=_speed_note(COMPILED),
            arm=a,
            others=(b,),
            metrics=(STEP_METRIC,),
            paper_says=_FIG,
        )
    minimal_time = (
        ("ReLU (max)" + AS_WRITTEN, "PReLU (max/min)" + AS_WRITTEN, "max"),
        ("ReLU (abs)" + AS_WRITTEN, "PReLU (abs)" + AS_WRITTEN, "abs"),
        ("ReLU (switch)" + AS_WRITTEN, SWITCH_PRELU, "switch"),
    )
    for relu, prelu, form in minimal_time:
        a, b = step_label(prelu, COMPILED), step_label(relu, COMPILED)
        claims.non_inferior(
            f"prelu_{form}_adds_minimal_time",
            quote=_THEANO_PRELU_TIME,
            statement=(
                f"{a} adds at most about 10% to {b}'s training step: its images/s of a whole training "
                f"step are non-inferior with a margin of {margin(STEP_METRIC):g} in log ratio (faster counts "
                "as no added time)."
            ),
            note="'Minimal added time' read as PReLU at most about 10% slower: a one-sided test."
            + (" The switch PReLU is our form (the blog adapts only max and abs). " if form == "switch" else " ")
            + _speed_note(COMPILED),
            arm=a,
            others=(b,),
            metrics=(STEP_METRIC,),
            paper_says=_FIG,
        )


def _accuracy_claims(claims: ClaimSet) -> None:
    claims.same(
        "prelu_adds_minimal_accuracy",
        quote=_THEANO_PRELU_ACC,
        statement=(
            "PReLU (max/min)'s final test accuracy is within ±0.01 of ReLU (max)'s "
            "(equivalence margin of one percentage point)."
        ),
        arm="PReLU (max/min)",
        others=("ReLU (max)",),
        metrics=("test_accuracy",),
        paper_says="line chart of accuracy per epoch (figure only)",
    )
    claims.better(
        "prelu_reaches_sweet_spot_sooner",
        quote=_THEANO_PRELU_ACC,
        statement=(
            "PReLU (max/min) needs fewer epochs than ReLU (max) to reach its sweet spot (the first epoch "
            "within 0.2 percentage points of the run's best test accuracy)."
        ),
        arm="PReLU (max/min)",
        others=("ReLU (max)",),
        metrics=("epochs_to_sweet_spot",),
        paper_says="line chart of accuracy per epoch (figure only)",
    )
    claims.order(
        "alphas_higher_in_lower_layers",
        section="The α values",
        quote=_THEANO_ALPHAS,
        statement=(
            "In PReLU (abs) (the blog's PReLU3) the mean learned coefficient decreases from each layer to "
            "the next: conv1 > conv2 > conv3 > dense (3 paired comparisons)."
        ),
        arm="PReLU (abs)",
        metrics=("alpha.act1.mean", "alpha.act2.mean", "alpha.act3.mean", "alpha.act_fc1.mean"),
        paper_says="a printout of the alphas of PReLU3 (missing from the text copy)",
    )


_claims()
