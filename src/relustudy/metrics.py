"""Metrics: accuracy, top-k error, and Smith's activation statistics.

Classification metrics
----------------------
``accuracy(logits, targets)`` and ``topk_error(logits, targets, k)`` take ``logits`` of shape
``(N, C)`` (any float dtype; compared in float) and integer ``targets`` of shape ``(N,)``.

Ties are broken deterministically, the same way for both functions: classes are ranked by
decreasing logit, and among equal logits the lower class index ranks first (as
``torch.argmax`` documents). A sample is top-k correct when its target's rank is < k, i.e. when
``#{c: l_c > l_t} + #{c < t: l_c == l_t} < k``. So ``topk_error(..., k=1) == 1 - accuracy(...)``.
A sample whose logit row contains a NaN counts as wrong (no valid prediction). ``k`` must satisfy
``1 <= k <= C``; anything else raises ``ValueError`` (no silent clipping).

Activation statistics (Smith, "Comparing Rectified Linearity Performance on Image Data", 4.2)
--------------------------------------------------------------------------------------------
The *activation probability* of a hidden unit is the fraction of test samples on which the unit
is NOT saturated, measured on the output ``g(z)`` of the activation module:

- ``saturation == "rectifier"`` (ReLU, LReLU, PReLU, RReLU, ...): saturated when ``g(z) <= 0``,
  i.e. active when ``g(z) > 0``.
- ``saturation == "tanh"``: saturated when ``|tanh z| >= 0.95``, i.e. active when
  ``|g(z)| < 0.95``. Exactly 0.95 (in the output's dtype; bf16/fp16 outputs are upcast to
  float32 before comparing) is saturated.

NaN outputs are never active. From the per-unit probabilities ``p`` of one layer:

- ``lifetime_sparsity(p)`` = mean(p) (Willmore and Tolhurst, 2001);
- ``dispersion(p)`` = population standard deviation of p (ddof=0; Willmore et al., 2000);
  the paper's example [0.5, 0, 0.5, 0, 0] has sparsity 0.2 and dispersion 0.2449 (printed 0.24),
  [0.2] * 5 has sparsity 0.2 and dispersion 0 ("perfectly disperse");
- ``dead_fraction(p)`` = fraction of units with probability exactly 0 (never active on the set);
- ``sorted_curve(p)`` = p sorted in decreasing order (Smith, Figures 3-6).

Units. An activation output has shape ``(N, C, *spatial)`` (conv, e.g. ``(N, C, H, W)``; any
memory format, channels_last included) or ``(N, F)`` (dense). Two unit definitions exist:

- ``"neuron"`` (default, Smith's hidden units): every ``(channel, *position)`` is one unit, so a
  conv layer has ``C*H*W`` units; its probability is the fraction of samples on which it is
  active.
- ``"channel"``: a unit is a channel (``C`` units); its probability is the fraction of
  ``(sample, position)`` pairs on which it is active, i.e. the mean of its neurons'
  probabilities.

For a dense layer the units are the ``F`` features and both definitions coincide.

Recording. ``ActivationRecorder`` registers forward hooks on activation modules named by their
qualified names (as in ``model.named_modules()``) and accumulates, batch by batch, the per-neuron
active counts (int64 sums over the batch dimension) and the number of samples; it never keeps the
activations. Channel probabilities are derived from the same counts. A module's criterion is its
``saturation`` attribute (every ``relustudy.activations.Activation`` carries one); modules without
it use the recorder's ``saturation`` argument, and plain ``nn.ReLU``/``nn.ReLU6``/
``nn.LeakyReLU``/``nn.PReLU``/``nn.RReLU`` (rectifier) and ``nn.Tanh`` (tanh) are inferred. If a
module is called several times per forward pass, each call counts as separate samples.
``activation_stats`` runs a model over ``(x, y)`` batches in eval mode under ``torch.no_grad``
and returns all statistics for both unit definitions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .registry import Registry, UnknownNameError

__all__ = [
    "METRICS",
    "MetricSpec",
    "metric_spec",
    "metric_label",
    "format_metric",
    "timing_metrics",
    "SATURATIONS",
    "TANH_SATURATION_THRESHOLD",
    "UNIT_DEFINITIONS",
    "accuracy",
    "topk_error",
    "active_mask",
    "lifetime_sparsity",
    "dispersion",
    "dead_fraction",
    "sorted_curve",
    "ActivationRecorder",
    "activation_stats",
]

SATURATIONS = ("rectifier", "tanh")
TANH_SATURATION_THRESHOLD = 0.95
UNIT_DEFINITIONS = ("neuron", "channel")

_INFERRED_SATURATION: tuple[tuple[type, str], ...] = (
    (nn.ReLU, "rectifier"),
    (nn.ReLU6, "rectifier"),
    (nn.LeakyReLU, "rectifier"),
    (nn.PReLU, "rectifier"),
    (nn.RReLU, "rectifier"),
    (nn.Tanh, "tanh"),
)


# --------------------------------------------------------------------------- classification


def _check_logits_targets(logits: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.as_tensor(logits).detach()
    targets = torch.as_tensor(targets).detach()
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    n, c = logits.shape
    if n == 0 or c == 0:
        raise ValueError(f"logits must be non-empty, got shape {tuple(logits.shape)}")
    if targets.shape != (n,):
        raise ValueError(f"targets must have shape ({n},), got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got dtype {targets.dtype}")
    targets = targets.to(device=logits.device, dtype=torch.int64)
    if bool(((targets < 0) | (targets >= c)).any()):
        raise ValueError(f"targets must lie in [0, {c}), got min {int(targets.min())}, max {int(targets.max())}")
    if not logits.dtype.is_floating_point:
        logits = logits.double()
    elif logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    return logits, targets


def _target_rank(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rank of each target (0 = top) under descending logits, ties -> lower index first.

    Rows containing NaN get rank C (never correct).
    """
    n, c = logits.shape
    t_logit = logits.gather(1, targets[:, None])  # (N, 1)
    classes = torch.arange(c, device=logits.device)[None, :]
    ahead = (logits > t_logit) | ((logits == t_logit) & (classes < targets[:, None]))
    rank = ahead.sum(dim=1)
    return torch.where(torch.isnan(logits).any(dim=1), torch.full_like(rank, c), rank)


def accuracy(logits: Any, targets: Any) -> float:
    """Fraction of samples whose top-ranked class (ties -> lowest index) equals the target."""
    logits, targets = _check_logits_targets(logits, targets)
    return float((_target_rank(logits, targets) == 0).double().mean())


def topk_error(logits: Any, targets: Any, k: int) -> float:
    """Fraction of samples whose target is not among the k top-ranked classes.

    Ranking as in ``accuracy`` (ties -> lower class index first). ``k`` must be an int with
    ``1 <= k <= C``; otherwise ``ValueError``.
    """
    logits, targets = _check_logits_targets(logits, targets)
    c = logits.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int, got {k!r}")
    if not 1 <= k <= c:
        raise ValueError(f"k must satisfy 1 <= k <= number of classes ({c}), got {k}")
    return float((_target_rank(logits, targets) >= int(k)).double().mean())


# --------------------------------------------------------------------------- activation stats


def _check_saturation(saturation: Any, where: str) -> str:
    if saturation not in SATURATIONS:
        raise ValueError(f"{where}: saturation must be one of {SATURATIONS}, got {saturation!r}")
    return saturation


def active_mask(output: torch.Tensor, saturation: str) -> torch.Tensor:
    """Boolean tensor, True where the activation output is NOT saturated (see module docstring)."""
    _check_saturation(saturation, "active_mask")
    out = output.detach()
    if not out.dtype.is_floating_point:
        out = out.double()
    if saturation == "rectifier":
        return out > 0  # exact in every float dtype
    if out.dtype not in (torch.float32, torch.float64):
        out = out.float()  # bf16/fp16 cannot represent 0.95: compare in float32
    return out.abs() < TANH_SATURATION_THRESHOLD


def _as_probs(probs: Any) -> np.ndarray:
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().cpu().numpy()
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"activation probabilities must be 1-D, got shape {p.shape}")
    if p.size == 0:
        raise ValueError("activation probabilities must be non-empty")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("activation probabilities must be finite and lie in [0, 1]")
    return p


def lifetime_sparsity(probs: Any) -> float:
    """Mean activation probability of the layer's units (Smith 4.2)."""
    return float(_as_probs(probs).mean())


def dispersion(probs: Any) -> float:
    """Population standard deviation (ddof=0) of the activation probabilities (Smith 4.2)."""
    return float(_as_probs(probs).std(ddof=0))


def dead_fraction(probs: Any) -> float:
    """Fraction of units whose activation probability is exactly 0 (never active on the set)."""
    return float((_as_probs(probs) == 0).mean())


def sorted_curve(probs: Any) -> np.ndarray:
    """Activation probabilities sorted in decreasing order (a new float64 array)."""
    return np.sort(_as_probs(probs))[::-1].copy()


class _LayerCounts:
    __slots__ = ("module_name", "saturation", "counts", "n_samples")

    def __init__(self, module_name: str, saturation: str):
        self.module_name = module_name
        self.saturation = saturation
        self.counts: torch.Tensor | None = None  # int64, shape (C, *spatial)
        self.n_samples = 0


class ActivationRecorder:
    """Context manager counting, per unit, on how many samples each hooked activation is active.

    ``layers`` maps a label to the qualified module name (``model.probe_layers`` has this form);
    a plain iterable of names uses each name as its own label. ``saturation`` is the criterion for
    modules without a ``saturation`` attribute: one of ``SATURATIONS``, or a dict keyed by label
    or module name. A module whose own attribute disagrees with an explicit argument is an error.

    Hooks are registered on ``__enter__`` and always removed on ``__exit__`` (also on error).
    Counts survive the exit, so ``probabilities`` can be read after the ``with`` block.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Mapping[str, str] | Iterable[str],
        saturation: str | Mapping[str, str] | None = None,
    ):
        if isinstance(layers, str):
            layers = [layers]
        mapping = dict(layers) if isinstance(layers, Mapping) else {name: name for name in layers}
        if not mapping:
            raise ValueError("ActivationRecorder needs at least one layer")
        modules = dict(model.named_modules())
        self._modules: dict[str, nn.Module] = {}
        self._layers: dict[str, _LayerCounts] = {}
        for label, name in mapping.items():
            if name not in modules:
                valid = ", ".join(n for n, m in modules.items() if n and _saturation_of(m) is not None)
                raise ValueError(
                    f"layer {label!r}: no module named {name!r} in the model; "
                    f"modules with a known saturation: {valid or '(none)'}"
                )
            module = modules[name]
            if isinstance(saturation, Mapping):
                given = saturation.get(label, saturation.get(name))
            else:
                given = saturation
            sat = _resolve_saturation(module, given, f"layer {label!r} ({name})")
            self._modules[label] = module
            self._layers[label] = _LayerCounts(name, sat)
        self._handles: list[Any] = []
        self._active = False

    # ----- context management
    def __enter__(self) -> ActivationRecorder:
        if self._active:
            raise RuntimeError("ActivationRecorder is already active")
        try:
            for label, module in self._modules.items():
                self._handles.append(module.register_forward_hook(self._make_hook(label)))
        except BaseException:
            self.remove()
            raise
        self._active = True
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this recorder registered (idempotent)."""
        while self._handles:
            self._handles.pop().remove()
        self._active = False

    def _make_hook(self, label: str):
        rec = self._layers[label]

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {label!r}: expected a tensor output, got {type(output).__name__}")
            if output.ndim < 2:
                raise ValueError(
                    f"layer {label!r}: output must be (N, C, ...) or (N, F), got shape {tuple(output.shape)}"
                )
            with torch.no_grad():
                batch = active_mask(output, rec.saturation).sum(dim=0, dtype=torch.int64)
                if rec.counts is None:
                    rec.counts = batch.contiguous()
                elif rec.counts.shape != batch.shape:
                    raise ValueError(
                        f"layer {label!r}: unit shape changed from {tuple(rec.counts.shape)} to {tuple(batch.shape)}"
                    )
                else:
                    rec.counts += batch.to(rec.counts.device)
            rec.n_samples += int(output.shape[0])

        return hook

    # ----- results
    @property
    def labels(self) -> list[str]:
        return list(self._layers)

    def saturation(self, layer: str) -> str:
        return self._get(layer).saturation

    def n_samples(self, layer: str) -> int:
        """Number of samples (module calls x batch size) seen by ``layer``."""
        return self._get(layer).n_samples

    def unit_shape(self, layer: str) -> tuple[int, ...]:
        """Shape ``(C, *spatial)`` or ``(F,)`` of the neuron units of ``layer``."""
        return tuple(self._recorded(layer).counts.shape)

    def counts(self, layer: str) -> np.ndarray:
        """Per-neuron active counts, int64 array of shape ``unit_shape(layer)``."""
        return self._recorded(layer).counts.cpu().numpy().copy()

    def probabilities(self, layer: str, unit: str = "neuron") -> np.ndarray:
        """1-D float64 activation probabilities of ``layer``'s units (``"neuron"`` or ``"channel"``)."""
        rec = self._recorded(layer)
        counts = rec.counts.cpu().to(torch.float64)
        if unit == "neuron":
            return (counts.reshape(-1) / rec.n_samples).numpy()
        if unit == "channel":
            positions = counts[0].numel()  # product of the spatial sizes (1 for dense)
            return (counts.reshape(counts.shape[0], -1).sum(dim=1) / (rec.n_samples * positions)).numpy()
        raise ValueError(f"unit must be one of {UNIT_DEFINITIONS}, got {unit!r}")

    def _get(self, layer: str) -> _LayerCounts:
        try:
            return self._layers[layer]
        except KeyError:
            raise KeyError(f"unknown layer {layer!r}; recorded layers: {', '.join(self._layers)}") from None

    def _recorded(self, layer: str) -> _LayerCounts:
        rec = self._get(layer)
        if rec.counts is None or rec.n_samples == 0:
            raise ValueError(f"layer {layer!r} has not seen any samples yet")
        return rec


def _saturation_of(module: nn.Module) -> str | None:
    sat = getattr(module, "saturation", None)
    if sat is not None:
        return sat
    for cls, inferred in _INFERRED_SATURATION:
        if isinstance(module, cls):
            return inferred
    return None


def _resolve_saturation(module: nn.Module, given: str | None, where: str) -> str:
    own = getattr(module, "saturation", None)
    if own is not None:
        own = _check_saturation(own, where)
        if given is not None and _check_saturation(given, where) != own:
            raise ValueError(f"{where}: module declares saturation {own!r} but {given!r} was given")
        return own
    if given is not None:
        return _check_saturation(given, where)
    inferred = _saturation_of(module)
    if inferred is None:
        raise ValueError(
            f"{where}: {type(module).__name__} has no 'saturation' attribute; pass saturation= one of {SATURATIONS}"
        )
    return inferred


def _stats(probs: np.ndarray) -> dict[str, Any]:
    return {
        "sparsity": lifetime_sparsity(probs),
        "dispersion": dispersion(probs),
        "dead_fraction": dead_fraction(probs),
        "n_units": int(probs.size),
        "curve": sorted_curve(probs),
    }


def activation_stats(
    model: nn.Module,
    loader_batches: Iterable[Any],
    layers: Mapping[str, str],
    device: torch.device | str | None = None,
    saturation: str | Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Smith's activation statistics of ``layers`` (label -> qualified module name) on a data set.

    Runs ``model`` in eval mode under ``torch.no_grad`` over ``loader_batches`` (``(x, y)`` pairs
    or bare ``x`` tensors; ``y`` is ignored), moving ``x`` to ``device`` (default: the model's
    device). The model's train/eval mode is restored afterwards. Returns, per label::

        {"sparsity", "dispersion", "dead_fraction", "n_units", "curve"}            # neuron units
        {"sparsity_channel", "dispersion_channel", "dead_fraction_channel",
         "n_units_channel", "curve_channel"}                                       # channel units
        {"n_samples", "saturation", "unit_shape"}
    """
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = model.training
    recorder = ActivationRecorder(model, layers, saturation=saturation)
    try:
        model.eval()
        with torch.no_grad(), recorder:
            for batch in loader_batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x.to(device, non_blocking=True))
    finally:
        model.train(was_training)
    result: dict[str, dict[str, Any]] = {}
    for label in recorder.labels:
        entry = _stats(recorder.probabilities(label, "neuron"))
        for key, value in _stats(recorder.probabilities(label, "channel")).items():
            entry[f"{key}_channel"] = value
        entry["n_samples"] = recorder.n_samples(label)
        entry["saturation"] = recorder.saturation(label)
        entry["unit_shape"] = recorder.unit_shape(label)
        result[label] = entry
    return result


# ---------------------------------------------------------------------------------------------
# The metric registry: every metric a record holds, with how the book names and formats it and
# which direction is better. Tables, figures and verdicts take names, units and formats from here.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricSpec:
    name: str
    label: str  # what a page calls it
    unit: str = ""  # "" for fractions and counts that need none
    higher_is_better: bool | None = None  # None: no direction (a description, not a score)
    fmt: str = ".3f"  # format spec of one value
    # The smallest effect of interest, in the metric's unit: the margin of every non-inferiority and
    # equivalence test on this metric, and why that size (a reason of its own, not a source's gaps).
    margin: float | None = None
    margin_reason: str = ""
    timing: bool = False  # measures time, not learning (differs between two runs of one config)
    # Constants of the metric's definition, e.g. the sweet spot's tolerance: (name, value) pairs
    parameters: tuple[tuple[str, float], ...] = ()

    def parameter(self, name: str) -> float:
        found = dict(self.parameters)
        if name not in found:
            raise ValueError(f"metric {self.name!r} has no parameter {name!r}; it has: {', '.join(found) or 'none'}")
        return found[name]

    def __post_init__(self) -> None:
        if self.margin is not None and not (self.margin > 0 and self.margin_reason):
            raise ValueError(f"metric {self.name!r}: a margin must be positive and state its reason")

    def format(self, value: Any) -> str:
        try:
            v = float(value)
        except (TypeError, ValueError):
            return "n/a"
        return format(v, self.fmt) if np.isfinite(v) else "n/a"


METRICS: Registry[MetricSpec] = Registry("metric")


def _metric(name: str, label: str, **kw: Any) -> MetricSpec:
    return METRICS.register(name, MetricSpec(name, label, **kw))


# Why one percentage point for accuracies and errors (our choice): the test sets hold 10,000
# images, so a single run's error has a binomial standard error of at most 0.005 (at an error of
# 0.5); a difference below about two of those is within what one test set can resolve at all.
TEST_SET_IMAGES = 10_000
_ERROR_REASON = (
    "one percentage point (our choice): about twice the largest binomial standard error of one run's "
    f"error on a {TEST_SET_IMAGES:,}-image test set (0.5 / sqrt({TEST_SET_IMAGES:,}) = "
    f"{0.5 / TEST_SET_IMAGES**0.5:.3f}), so a smaller difference is below what the test set itself resolves"
)
_TRAIN_ERROR_REASON = (
    "one percentage point (our choice): the unit of the test error, so that training and test errors and "
    "their gap are judged on one scale"
)
_metric("test_accuracy", "test accuracy", higher_is_better=True, margin=0.01, margin_reason=_ERROR_REASON)
_metric("test_error", "test error", higher_is_better=False, margin=0.01, margin_reason=_ERROR_REASON, fmt=".4f")
_metric("test_top5_error", "top-5 test error", higher_is_better=False, fmt=".4f")
_metric("test_loss", "test loss (cross-entropy)", unit="nats", higher_is_better=False)
_metric("train_loss", "training loss (running, cross-entropy)", unit="nats", higher_is_better=False)
_metric("first_epoch_train_loss", "training loss after epoch 1 (running)", unit="nats", higher_is_better=False)
_metric(
    "train_error",
    "training error (running, dropout on)",
    higher_is_better=False,
    margin=0.01,
    margin_reason=_TRAIN_ERROR_REASON,
    fmt=".4f",
)
_metric(
    "train_eval_error",
    "training error (eval mode)",
    higher_is_better=False,
    margin=0.01,
    margin_reason=_TRAIN_ERROR_REASON,
    fmt=".4f",
)
_metric("train_eval_loss", "training loss (eval mode)", unit="nats", higher_is_better=False)
_metric(
    "best_test_accuracy",
    "best test accuracy (any epoch)",
    higher_is_better=True,
    margin=0.01,
    margin_reason=_ERROR_REASON,
)
_metric("best_epoch", "epoch of best test accuracy", fmt=".0f")
# "Sweet spot" (the Theano blog's word): the first epoch whose test accuracy is within the tolerance
# (accuracy units: 0.002 = 0.2 percentage points = 20 MNIST test images) of the run's best.
_metric(
    "epochs_to_sweet_spot",
    "epochs to sweet spot",
    unit="epochs",
    higher_is_better=False,
    fmt=".1f",
    parameters=(("tolerance", 0.002),),
)
_metric("epochs_completed", "epochs completed", fmt=".0f")
_metric("wall_seconds", "wall time", unit="s", fmt=".0f", timing=True)
_metric("images_per_second", "training throughput (mean over epochs)", unit="images/s", fmt=".0f", timing=True)
_metric("median_images_per_second", "training throughput (median over epochs)", unit="images/s", fmt=".0f", timing=True)
# Speed is compared as log images/s, so a paired difference is a log ratio: 0.10 = about 10%.
_metric(
    "log_median_images_per_second",
    "training throughput (log of the median images/s)",
    higher_is_better=True,
    margin=0.10,
    margin_reason=(
        "a log ratio of 0.10, about 10% of throughput (our choice): the smallest speed difference that changes "
        "how many runs a fixed CPU budget buys by one in ten"
    ),
    timing=True,
)
# The same comparison from whole training steps timed interleaved in one process
# (relustudy.stepbench): a seed's value is the log of batch / its median step time over the cycles.
_metric(
    "log_step_images_per_second",
    "training-step throughput, timed interleaved (log of batch / the median step time)",
    higher_is_better=True,
    margin=0.10,
    margin_reason=(
        "a log ratio of 0.10, about 10% of throughput (our choice, as for the trained runs' throughput): the "
        "smallest speed difference that changes how many runs a fixed CPU budget buys by one in ten"
    ),
    timing=True,
)

_metric(
    "generalization_gap",
    "generalization gap (test error minus eval-mode training error)",
    higher_is_better=False,
    margin=0.01,
    margin_reason="one percentage point (our choice): the difference of two errors, so the errors' unit",
    fmt=".4f",
)

# Metrics computed from a record's others when it is read (so that older records have them too):
# name -> (the metrics it needs, how).
DERIVED_METRICS: dict[str, tuple[tuple[str, ...], Callable[..., float]]] = {
    "generalization_gap": (("test_error", "train_eval_error"), lambda test, train: test - train),
}


def derived_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`DERIVED_METRICS` that ``metrics`` (one record's) has every input of."""
    out = {}
    for name, (inputs, how) in DERIVED_METRICS.items():
        values = [metrics.get(k) for k in inputs]
        if name not in metrics and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[name] = float(how(*values))
    return out


# Families: a layer's activation statistics, a PReLU coefficient, an RReLU test-time rule.
_STAT_LABELS = {
    "sparsity": ("lifetime sparsity", False),
    "dispersion": ("dispersion", False),
    "dead_fraction": ("dead units (fraction)", False),
    "n_units": ("units", None),
}
_FAMILIES = (
    (
        re.compile(r"^(?P<layer>[a-z_]+)\.(?P<stat>sparsity|dispersion|dead_fraction|n_units)(?P<ch>_channel)?$"),
        lambda m: MetricSpec(
            m.string,
            f"{_STAT_LABELS[m['stat']][0]}{' (per channel)' if m['ch'] else ''}, {m['layer'].replace('_', ' ')}",
            higher_is_better=_STAT_LABELS[m["stat"]][1],
        ),
    ),
    (
        re.compile(r"^alpha\.(?P<module>[A-Za-z0-9_.]+)\.(?P<what>mean|std|min|max)$"),
        lambda m: MetricSpec(m.string, f"PReLU coefficient a, {m['module']} ({m['what']})"),
    ),
    (
        re.compile(r"^alpha\.(?P<module>[A-Za-z0-9_.]+)\.late_drift$"),
        lambda m: MetricSpec(
            m.string,
            f"PReLU coefficient a, {m['module']}: range of its mean over the last quarter of epochs",
            higher_is_better=False,
        ),
    ),
    (
        re.compile(r"^rrelu_rule\.(?P<rule>[a-z0-9_]+)\.test_(?P<what>error|loss)$"),
        lambda m: MetricSpec(
            m.string,
            f"test {m['what']}, RReLU rule {m['rule']}",
            higher_is_better=False,
            fmt=".4f",
            unit="" if m["what"] == "error" else "nats",
        ),
    ),
)


def metric_spec(name: str) -> MetricSpec:
    """The spec of ``name``: registered, or one of the families (``<layer>.sparsity``,
    ``alpha.<module>.mean``, ``rrelu_rule.<rule>.test_error``); else UnknownNameError."""
    if name in METRICS:
        return METRICS.get(name)
    for pattern, make in _FAMILIES:
        m = pattern.match(name)
        if m:
            return make(m)
    raise UnknownNameError(
        f"unknown metric {name!r}; valid names: {', '.join(METRICS.names())} "
        "(and <layer>.sparsity|dispersion|dead_fraction, alpha.<module>.mean|std|min|max|late_drift, "
        "rrelu_rule.<rule>.test_error|loss)"
    )


def metric_label(name: str, *, unit: bool = False) -> str:
    """How a page names ``name`` (with its unit in parentheses when asked and it has one)."""
    spec = metric_spec(name)
    return f"{spec.label} ({spec.unit})" if unit and spec.unit else spec.label


def format_metric(name: str, value: Any) -> str:
    return metric_spec(name).format(value)


def timing_metrics() -> frozenset[str]:
    return frozenset(n for n in METRICS.names() if METRICS.get(n).timing)
