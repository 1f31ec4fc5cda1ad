"""TensorFlow blog, "Informal review on Randomized Leaky ReLU (RReLU) in Tensorflow".

Its two experiments (a simple MLP on MNIST with and without batch norm) and its claims; the
chapter is notebooks/mnist.ipynb, shared with the Theano blog.
"""

from __future__ import annotations

from ..claims import ClaimSet
from ..experiments import EXPERIMENTS, SMOKE, Arm, Experiment, Profile
from ..precision import precision_twin
from ..reference import SOURCES, Source

SOURCE = SOURCES.register(
    "tf_rrelu_blog",
    Source(
        key="tf_rrelu_blog",
        citation='J. M. Valverde, "Informal review on Randomized Leaky ReLU (RReLU) in Tensorflow" (blog post)',
        label="TensorFlow RReLU blog",
        paper_columns={},
        chapter="mnist",
        bib_key="valverderrelu",
        bib_fields={
            "author": "Valverde, J. M.",
            "title": "Informal review on Randomized Leaky {ReLU} ({RReLU}) in {Tensorflow}",
            "howpublished": "Blog post",
            "note": "No date or address is stated in the text this study worked from",
        },
    ),
)

TF_ARMS = (
    Arm("ReLU", "relu"),
    Arm("LReLU (a=100)", "lrelu", {"a": 100.0}),
    Arm("LReLU (a=5.5)", "lrelu", {"a": 5.5}),
    Arm("PReLU", "prelu", {"mode": "channel", "init": 0.25}),
    Arm("ELU", "elu"),
    Arm("RReLU", "rrelu", {"lower": 3.0, "upper": 8.0}),
    Arm("RReLU (torch)", "torch_rrelu"),
)
TF_BLOG_ARMS = tuple(a.label for a in TF_ARMS if a.label != "RReLU (torch)")  # the blog's six
TF_NOTES = (
    "The blog's 'very simple neural network' is not published: we use two dense hidden layers of 256 units "
    "(Glorot-uniform weights, zero biases), batch norm between each linear map and its activation in the "
    "batch-norm variant.",
    "Optimizer, batch and length are not stated: Adam (lr 0.001, TensorFlow's eps 1e-8), batch 128, pixels / 255, "
    "20 epochs in the paper profile.",
    "Activations as in Xu et al.: LReLU y = x / a (a = 100 and 5.5), RReLU a ~ U(3, 8) per element in training "
    "and x / 5.5 at test; PReLU channel-wise initialised at 0.25; ELU alpha 1. RReLU (torch) is PyTorch's "
    "nn.RReLU (slope ~ U(1/8, 1/3), test slope 0.229), not in the blog.",
)


def _tf_blog(name: str, batch_norm: bool) -> Experiment:
    which = "with" if batch_norm else "without"
    return EXPERIMENTS.register(
        name,
        Experiment(
            name=name,
            source="tf_rrelu_blog",
            table=f"Figure ({which} batch normalization)",
            title=f"Simple MLP on MNIST {which} batch normalization",
            dataset="mnist",
            model="simple_mlp_bn",
            arms=TF_ARMS,
            common=dict(
                optimizer="adam",
                lr=1e-3,
                eps=1e-8,
                batch_size=128,
                normalize="scale01",
                channels_last=False,
                model_params={"batch_norm": batch_norm},
            ),
            profiles={
                "smoke": Profile(
                    (0, 1),
                    {**SMOKE, "stats_epochs": ()},
                    ("512 training and 500 test images", "1 epoch", "batch 64", "2 seeds"),
                ),
                "quick": Profile(
                    (0, 1, 2),
                    {"epochs": 10},
                    (
                        "10 epochs instead of the paper profile's 20 (our reading; the blog states no epoch count)",
                        "3 seeds (the blog reports one run)",
                    ),
                ),
                "paper": Profile((0, 1, 2, 3, 4), {"epochs": 20}, ("5 seeds (the blog reports one run)",)),
            },
            notes=TF_NOTES,
        ),
    )


_tf_blog("tf_rrelu_mnist_bn", batch_norm=True)
_tf_blog("tf_rrelu_mnist_nobn", batch_norm=False)
# bf16's effect on accuracy, measured before any profile trains in bf16 (our choice of experiment:
# the cheapest quick grid with every kind of arm, batch norm included)
BF16_CHECK = ("tf_rrelu_mnist_bn", precision_twin("tf_rrelu_mnist_bn", "tf_rrelu_mnist_bn_bf16", "bf16").name)


_TF_SECTION = "Results"
_TF_QUOTE = (
    "RReLU does not only perform among the words [sic: worst] but the simple ReLU performs the best when normalization "
    "is used and almost the best when no normalization is added."
)


def _claims() -> None:
    for exp, bn in (("tf_rrelu_mnist_bn", True), ("tf_rrelu_mnist_nobn", False)):
        which = "with" if bn else "without"
        claims = ClaimSet("tf_rrelu_blog", exp, _TF_SECTION)
        figure = f"accuracy-over-training figure {which} batch normalization (figure only)"
        claims.rank(
            f"{'bn' if bn else 'nobn'}.rrelu_among_worst",
            quote=_TF_QUOTE,
            statement=f"{which.capitalize()} batch norm, RReLU's final test accuracy is among the worst 2 of the blog's 6 activations.",
            arm="RReLU",
            others=tuple(a for a in TF_BLOG_ARMS if a != "RReLU"),
            metric="test_accuracy",
            k=2,
            best=False,
            paper_says=figure,
        )
        claims.rank(
            f"{'bn' if bn else 'nobn'}.relu_{'best' if bn else 'almost_best'}",
            quote=_TF_QUOTE,
            statement=(
                f"{which.capitalize()} batch norm, ReLU's final test accuracy is the best of the blog's 6 activations."
                if bn
                else f"{which.capitalize()} batch norm, ReLU's final test accuracy is among the best 2 of the "
                "blog's 6 activations ('almost the best')."
            ),
            arm="ReLU",
            others=tuple(a for a in TF_BLOG_ARMS if a != "ReLU"),
            metric="test_accuracy",
            k=1 if bn else 2,
            best=True,
            paper_says=figure,
        )


_claims()
