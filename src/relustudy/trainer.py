"""Training loop: ``train(config, store)`` -> the run's record, cached in the results store.

What a run does (decisions worth knowing when reading the numbers):

- **Cache.** A complete record (``result.json`` with status complete/diverged) is returned as it
  is, without touching data or model, unless ``force=True`` (which deletes the old result and
  checkpoint first and recomputes from scratch).
- **Resume.** A ``checkpoint.pt`` is written atomically after every epoch (model, optimizer,
  scheduler, the torch CPU RNG, the shuffle generator, the CUDA RNG, history and stats so far).
  A run that finds one whose config matches continues after its last epoch; on the same machine
  the result is bit-for-bit that of an uninterrupted run. The checkpoint is deleted once
  result.json is written.
- **Device.** ``device="auto"`` picks CUDA when available. CUDA: cuDNN deterministic, benchmark
  off; ``channels_last`` memory format (model and inputs) when the config asks for it. CPU: ``num_threads`` threads
  (default: the CPUs this process may use); ``channels_last`` as on CUDA (measured faster on our
  CPU as well, see ``CPU_CHANNELS_LAST`` and ``benchmarks/bench_channels_last.py``).
  ``precision="bf16"`` runs forward passes under bf16 autocast on either device; losses are
  computed in fp32.
- **Data** (``relustudy.rundata``). The whole split lives on the device as uint8 (loaded once per
  process); batches are gathered by index from a per-epoch permutation drawn from a dedicated
  generator seeded from ``config.seed``, out of a float copy of the training images made once per
  run (or converted per batch where that copy would be too large). No DataLoader, no augmentation.
  The last, partial batch of an epoch is kept (every training image is seen once per epoch).
  ``normalize="per_channel"`` uses the mean/std of the training images actually used (the
  subset, if any); ``"scale01"`` only divides by 255.
- **Seeds.** ``torch.manual_seed(config.seed)`` right before the model is built (initialisation
  and any activation noise, e.g. RReLU, come from the torch RNG); the shuffle generator is
  separate, so the data order does not depend on how many random numbers the model drew.
- **Evaluation.** After every epoch, in eval mode under ``no_grad``, on the whole test split (or
  ``test_subset``), 1000 images per batch. Errors are fractions in [0, 1]
  (``relustudy.metrics``). Activation statistics are taken after the epochs in
  ``config.stats_epochs`` on the same test images, for the model's ``probe_layers``.
- **Divergence.** A non-finite training loss stops the run; the record gets status
  ``"diverged"``, ``epochs_completed`` and ``diverged_epoch``; no exception is raised.
- **Optimisers.** ``sgd`` (momentum, L2 weight decay), ``adam`` (torch Adam, betas 0.9/0.999,
  ``eps``, L2 weight decay), ``rmsprop_theano`` (:class:`RMSpropTheano`). Learned activation
  coefficients (PReLU's a) sit in a parameter group with weight decay 0 (He et al. 2015).
  ``optimizer_step="fused"`` runs sgd's or adam's fused update (PyTorch's ``fused=True``) instead of
  PyTorch's default (the per-parameter loop on the CPU).
  Schedules step once per epoch: ``constant``, ``step`` (``milestones`` in epochs, ``gamma``),
  ``cosine`` (over ``epochs``, ``eta_min``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import statistics
import sys
import time
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import metrics as _metrics
from .activations import Activation, RReLU, implementation
from .config import CapabilityError, ConfigError, RunConfig
from .models import build_model
from .optim import RMSpropTheano, build_optimizer, build_scheduler
from .provenance import BF16_FLAGS, cpu_bf16_units, cpu_identity, provenance, utc_now
from .rundata import EVAL_BATCH_SIZE, RunData, prepare_run_data
from .store import CheckpointError, ResultsStore, RunClaim, round_stats

__all__ = [
    "train",
    "RMSpropTheano",
    "build_optimizer",
    "build_scheduler",
    "resolve_device",
    "progress_enabled",
    "EVAL_BATCH_SIZE",
    "CPU_CHANNELS_LAST",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
# Honour config.channels_last on CPU too. Measured with benchmarks/bench_channels_last.py on the
# project's 2-core AMD EPYC (training, batch 128, best of interleaved rounds on a busy machine):
# channels_last / contiguous = 1.3-2.1x with 1 thread (smith_cnn MNIST/CIFAR, smith_vgg3; ReLU and
# PReLU), 0.9-1.6x with 2 threads (noisy; never clearly slower). Set False to force NCHW on CPU.
CPU_CHANNELS_LAST = True
# Seed offset of the shuffle generator (any fixed number; keeps it apart from torch's global RNG).
_SHUFFLE_SEED_OFFSET = 0x5EED_0F_DA7A


# ------------------------------------------------------------------------------ device / progress
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was asked for but this machine has no usable CUDA device; use --device auto or cpu"
        )
    return torch.device(name)


def check_precision(config: RunConfig, device: torch.device) -> None:
    """Refuse (one line, :class:`CapabilityError`) a bf16 run on a CPU without bf16 units: autocast
    would emulate bf16 there, slower than fp32 and with bf16's rounding, so nothing is gained."""
    if config.precision == "bf16" and device.type == "cpu" and cpu_bf16_units() is False:
        raise CapabilityError(
            f"precision bf16 needs a CPU with bf16 units ({' or '.join(BF16_FLAGS)}); this one "
            f"({cpu_identity()}) has neither: run precision fp32"
        )


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# glibc's malloc hands large freed blocks back to the kernel (blocks above its mmap threshold, and
# heap tops above its trim threshold), so every training step's activations page-fault afresh: a
# long-running Theano-blog grid process on this CPU spent over two thirds of its time in the kernel
# (benchmarks/bench_allocator.py measures it). Keeping freed memory in the process removes that
# cost and changes no number (PyTorch aligns every CPU tensor to 64 bytes wherever it lies).
MALLOC_ENV = "RELUSTUDY_MALLOC"  # "default": leave the C library's malloc as it is
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc's malloc.h)
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 1 << 30, (1 << 31) - 1  # bytes; mallopt takes a C int


@lru_cache(maxsize=1)
def tune_allocator() -> str:
    """Configure glibc's malloc to keep freed memory (once per process); return what the process
    uses, for the provenance. Elsewhere (another C library, ``RELUSTUDY_MALLOC=default``, or where
    the environment already sets glibc's ``MALLOC_MMAP_THRESHOLD_``) it changes nothing."""
    if os.environ.get(MALLOC_ENV, "").lower() == "default":
        return f"C library default ({MALLOC_ENV}=default)"
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return f"glibc malloc, MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']} from the environment"
    if not sys.platform.startswith("linux"):
        return "C library default"
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "C library default (no glibc)"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) != 1 or mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) != 1:
        return "glibc malloc default (mallopt refused)"
    return "glibc malloc keeping freed memory (mmap threshold 1 GiB, no trimming below 2 GiB)"


def _configure_backends(config: RunConfig, device: torch.device) -> int:
    """Set cuDNN flags and the CPU thread count; return the thread count."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    # A misspelt attribute would silently create a new module attribute; make sure ours took.
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False
    threads = config.num_threads or _available_cpus()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def _in_notebook_kernel() -> bool:
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython  # noqa: PLC0415 (optional dependency)
    except Exception:
        return False
    ip = get_ipython()
    return ip is not None and (getattr(ip, "kernel", None) is not None or type(ip).__name__ == "ZMQInteractiveShell")


def progress_enabled(progress: bool | None) -> bool:
    """Whether to draw tqdm bars. Never inside a Jupyter kernel (bars would land in notebook
    outputs, e.g. under papermill/nbval); with ``None``, only on an interactive terminal outside CI."""
    if _in_notebook_kernel():
        return False
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------ one epoch
# The dtype activations see under each precision (autocast's output dtype for conv and linear).
ACTIVATION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def precision_context(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """Where forward passes run at ``precision``: bf16 autocast for "bf16", else nothing."""
    if precision == "bf16":
        return torch.autocast(device_type=device_type, dtype=ACTIVATION_DTYPES["bf16"])
    return contextlib.nullcontext()


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: RunData,
    config: RunConfig,
    device: torch.device,
    gen: torch.Generator,
    bar: Any,
) -> dict[str, Any]:
    """One pass over the training images. Returns losses/errors/timing and ``finite``."""
    model.train()
    n = data.y_train.numel()
    perm = torch.randperm(n, generator=gen)
    if device.type != "cpu":
        perm = perm.to(device)
    # Per step the loop only keeps the detached loss and the predictions; they are read in batches
    # of check_every steps (one read each: on CUDA a read is a sync), checked for finiteness, and
    # summed in float64 in step order, so the epoch's numbers are those of a per-step running sum.
    check_every = 1 if device.type == "cpu" else 25
    pending: list[tuple[torch.Tensor, int]] = []  # (detached loss, batch size) not yet read
    loss_sum = 0.0
    preds: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    finite = True
    _sync(device)
    t0 = time.perf_counter()
    for step, start in enumerate(range(0, n, config.batch_size)):
        x, y = data.train_batch(perm[start : start + config.batch_size])
        with precision_context(config.precision, device.type):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        pending.append((loss.detach(), y.numel()))
        if step % check_every == 0:
            loss_sum = _add_losses(loss_sum, pending)
            if not math.isfinite(loss_sum):
                finite = False
                break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        preds.append(logits.detach().argmax(dim=1))
        labels.append(y)
        bar.update(1)
    if finite and pending:
        loss_sum = _add_losses(loss_sum, pending)
        finite = math.isfinite(loss_sum)
    seen = sum(len(t) for t in labels)
    wrong = int((torch.cat(preds) != torch.cat(labels)).sum()) if labels else 0
    _sync(device)
    seconds = time.perf_counter() - t0
    return {
        "finite": finite,
        "train_loss": loss_sum / max(seen, 1),
        "train_error": wrong / max(seen, 1),
        "epoch_seconds": seconds,
        "images_per_second": seen / seconds if seconds > 0 else float("nan"),
    }


def _add_losses(loss_sum: float, pending: list[tuple[torch.Tensor, int]]) -> float:
    """``loss_sum`` plus loss x batch size of each pending step, in float64 and in step order (a
    non-finite loss makes it non-finite); reads the losses in one go and empties ``pending``."""
    losses = [pending[0][0].item()] if len(pending) == 1 else torch.stack([t for t, _ in pending]).tolist()
    for value, size in zip(losses, (size for _, size in pending), strict=True):
        loss_sum += value * size
    pending.clear()
    return loss_sum


@torch.no_grad()
def _evaluate(
    model: nn.Module,
    data: RunData,
    config: RunConfig,
    device: torch.device,
    split: str = "test",
    passes: int = 1,
    stochastic: bool = False,
) -> dict[str, float]:
    """Loss and errors of ``model`` in eval mode on the test (or train) split. With ``stochastic``
    the modules keep the modes the caller set (a stochastic test-time rule: the caller puts the
    noisy modules in training mode), and ``passes > 1`` averages the softmax over that many passes."""
    was_training = model.training
    if not stochastic:
        model.eval()
    size = config.eval_batch_size or EVAL_BATCH_SIZE
    batches = data.test_batches(size) if split == "test" else data.train_batches(size)
    y_all = data.y_test if split == "test" else data.y_train
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    outs = []
    try:
        for x, y in batches:
            with precision_context(config.precision, device.type):
                if passes == 1:
                    logits = model(x).float()
                else:  # log of the mean softmax: a "logit" whose argmax and cross-entropy are the average's
                    probs = sum(F.softmax(model(x).float(), dim=1) for _ in range(passes)) / passes
                    logits = probs.clamp_min(1e-30).log()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            outs.append(logits)
    finally:
        model.train(was_training)
    logits = torch.cat(outs)
    y = y_all
    return {
        "test_loss": float(loss_sum) / y.numel(),
        "test_accuracy": _metrics.accuracy(logits, y),
        "test_error": _metrics.topk_error(logits, y, 1),
        "test_top5_error": _metrics.topk_error(logits, y, min(5, logits.shape[1])),
    }


# Seed offset of the Monte-Carlo passes (kept apart from the training draws).
_RULE_SEED_OFFSET = 0x7E57


def _rrelu_rule_metrics(model: nn.Module, data: RunData, config: RunConfig, device: torch.device) -> dict[str, float]:
    modules = [m for m in model.modules() if isinstance(m, RReLU)]
    if not modules:
        return {}
    out: dict[str, float] = {}
    saved = [m.eval_a for m in modules]
    try:
        for rule, (kind, passes) in RReLU.TEST_RULES.items():
            for m, paper_a in zip(modules, saved, strict=True):
                m.eval_a = paper_a if kind != "mean_slope" else (m.upper - m.lower) / math.log(m.upper / m.lower)
            if kind == "noise":
                model.eval()
                for m in modules:
                    m.train()
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(config.seed + _RULE_SEED_OFFSET)
                ev = _evaluate(model, data, config, device, passes=passes, stochastic=kind == "noise")
            out[f"rrelu_rule.{rule}.test_error"] = ev["test_error"]
            out[f"rrelu_rule.{rule}.test_loss"] = ev["test_loss"]
    finally:
        for m, a in zip(modules, saved, strict=True):
            m.eval_a = a
        model.train()
    return out


def _final_evaluations(model: nn.Module, data: RunData, config: RunConfig, device: torch.device) -> dict[str, float]:
    """The ``config.evals`` of the trained network (see ``relustudy.config.EVALS``)."""
    out: dict[str, float] = {}
    if "train_set" in config.evals:
        ev = _evaluate(model, data, config, device, split="train")
        out["train_eval_error"], out["train_eval_loss"] = ev["test_error"], ev["test_loss"]
    if "rrelu_rules" in config.evals:
        out.update(_rrelu_rule_metrics(model, data, config, device))
    return out


def _alpha_columns(model: nn.Module) -> dict[str, float]:
    """``alpha.<module>.mean|std|min|max`` of every activation module with a learned ``weight``
    (std over its coefficients, population form: 0 for a channel-shared one)."""
    cols: dict[str, float] = {}
    for name, module in model.named_modules():
        w = getattr(module, "weight", None)
        if isinstance(module, (Activation, nn.PReLU)) and isinstance(w, nn.Parameter):
            w = w.detach().float()
            cols[f"alpha.{name}.mean"] = float(w.mean())
            cols[f"alpha.{name}.std"] = float(w.std(correction=0))
            cols[f"alpha.{name}.min"] = float(w.min())
            cols[f"alpha.{name}.max"] = float(w.max())
    return cols


_STAT_SCALARS = (
    "sparsity",
    "dispersion",
    "dead_fraction",
    "n_units",
    "sparsity_channel",
    "dispersion_channel",
    "dead_fraction_channel",
    "n_units_channel",
)


def _activation_stats(
    model: nn.Module, data: RunData, config: RunConfig, device: torch.device, epoch: int
) -> list[dict[str, Any]]:
    layers = dict(getattr(model, "probe_layers", {}) or {})
    if not layers:
        return []
    with precision_context(config.precision, device.type):
        saturation = model.probe_saturations() if hasattr(model, "probe_saturations") else None
        stats = _metrics.activation_stats(
            model, (x for x, _ in data.test_batches()), layers, device, saturation=saturation or None
        )
    records = []
    for label, s in stats.items():
        rec: dict[str, Any] = {"epoch": epoch, "layer": label, "module": layers[label]}
        rec.update({k: v for k, v in s.items() if k in _STAT_SCALARS})
        for k in ("n_samples", "saturation", "unit_shape"):
            if k in s:
                rec[k] = list(s[k]) if isinstance(s[k], tuple) else s[k]
        rec["curve"] = s["curve"]
        if "curve_channel" in s:
            rec["curve_channel"] = s["curve_channel"]
        records.append(round_stats(rec))
    return records


# ------------------------------------------------------------------------------ train
def train(
    config: RunConfig,
    store: ResultsStore,
    *,
    force: bool = False,
    data_dir: Any = None,
    download: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train ``config`` (or reuse/resume its record in ``store``) and return the record
    (the parsed ``result.json``: status, metrics, config, provenance; plus ``_trained``, not
    stored: whether this call trained it, or found it complete).

    ``force``: recompute even if a record exists (old result and checkpoint are deleted first).
    ``data_dir``/``download`` go to ``relustudy.data.load_dataset``. ``progress``: tqdm bars
    (see :func:`progress_enabled`). Side effects on the process: ``torch.set_num_threads`` and
    the cuDNN flags (see the module docstring). Never raises for a diverging run.
    """
    if not force:
        record = store.load_record(config)
        if record is not None:
            store.remove_leftovers(config)  # a kill after the record, before the checkpoint's deletion
            return {**record, "_trained": False}
    # One process trains a run at a time (RunClaimed if another live one does); the record is
    # read again under the claim, since another process may have just finished it.
    with store.claim(config) as claim:
        if not force:
            record = store.load_record(config)
            if record is not None:
                return {**record, "_trained": False}
        else:
            store.invalidate(config)
        record = _train_claimed(config, store, claim, data_dir=data_dir, download=download, progress=progress)
        return {**record, "_trained": True}


def build_run_model(config: RunConfig, data: RunData, device: torch.device) -> nn.Module:
    """The run's model, initialised from its seed (``torch.manual_seed(config.seed)`` right before),
    on ``device`` and in the data's memory format."""

    torch.manual_seed(config.seed)
    model = build_model(
        config.model,
        config.activation,
        config.activation_params,
        data.in_shape,
        data.num_classes,
        **config.model_params,
    ).to(device)
    return model.to(memory_format=torch.channels_last) if data.channels_last else model


def shuffle_generator(config: RunConfig) -> torch.Generator:
    """The generator of the run's epoch orders (seeded apart from the initialisation's)."""
    return torch.Generator().manual_seed(config.seed + _SHUFFLE_SEED_OFFSET)


class _Run:
    """One claimed run's state: device, data, model, optimiser, schedule, shuffle generator, and
    what it has done so far (fresh, or restored from its checkpoint by :meth:`restore`)."""

    def __init__(self, config: RunConfig, store: ResultsStore, claim: RunClaim, data_dir: Any, download: bool):
        self.session_t0 = time.perf_counter()
        self.config, self.store, self.claim = config, store, claim
        self.allocator = tune_allocator()
        self.device = device = resolve_device(config.device)
        check_precision(config, device)
        self.threads = _configure_backends(config, device)
        self.channels_last = config.channels_last and (device.type == "cuda" or CPU_CHANNELS_LAST)
        self.data = prepare_run_data(config, device, data_dir, download, self.channels_last)
        self.model = build_run_model(config, self.data, device)
        self.optimizer = build_optimizer(config, self.model)
        self.scheduler = build_scheduler(config, self.optimizer)
        self.gen = shuffle_generator(config)
        self.history: list[dict[str, Any]] = []
        self.stats: list[dict[str, Any]] = []
        self.start_epoch, self.wall_before, self.start_time, self.resumes = 1, 0.0, utc_now(), 0

    def restore(self) -> None:
        """Continue from the run's checkpoint, if it has one; CheckpointError if it does not fit."""
        config, store = self.config, self.store
        ckpt = store.load_checkpoint(config, map_location="cpu")
        if ckpt is None:
            return
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("key") != config.key_dict():
            raise CheckpointError(f"{store.checkpoint_path(config)}: a checkpoint of another config or format")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            self.gen.set_state(ckpt["rng"]["shuffle"])
            if self.device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)
            self.history, self.stats = list(ckpt["history"]), list(ckpt["stats"])
            self.start_epoch = int(ckpt["epoch"]) + 1
            self.wall_before, self.start_time = float(ckpt["wall_seconds"]), ckpt["start_time"]
            self.resumes = int(ckpt["resumes"]) + 1
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:  # shapes/keys that do not fit
            raise CheckpointError(
                f"{store.checkpoint_path(config)}: does not fit the model ({type(e).__name__})"
            ) from None
        log.info("resuming %s after epoch %d", store.run_dir(config), self.start_epoch - 1)

    def wall(self) -> float:
        return self.wall_before + (time.perf_counter() - self.session_t0)

    def save_checkpoint(self, epoch: int) -> None:
        device, scheduler = self.device, self.scheduler
        self.store.save_checkpoint(
            self.config,
            {
                "format": CHECKPOINT_FORMAT,
                "key": self.config.key_dict(),
                "epoch": epoch,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "shuffle": self.gen.get_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                },
                "history": self.history,
                "stats": self.stats,
                "start_time": self.start_time,
                "wall_seconds": self.wall(),
                "resumes": self.resumes,
            },
        )

    def finish(self, status: str, **extra: Any) -> dict[str, Any]:
        """Write the record (``status``: complete or diverged) and delete the checkpoint."""
        config, data, device = self.config, self.data, self.device
        self.store.write_history(config, self.history)
        self.store.write_stats(config, self.stats)
        final = _final_evaluations(self.model, data, config, device) if status == "complete" else {}
        seconds = self.wall()
        prov = provenance(
            config,
            device=device,
            start_time=self.start_time,
            end_time=utc_now(),
            wall_seconds=seconds,
            num_threads=self.threads if device.type == "cpu" else None,
            resumes=self.resumes,
            channels_last_used=self.channels_last,
            train_images=int(data.y_train.numel()),
            test_images=int(data.y_test.numel()),
            data_caveats=data.caveats,
            activation_implementation=implementation(
                config.activation, device.type, ACTIVATION_DTYPES[config.precision]
            ),
            # the path the model ran: the trainer runs eager (the whole-step benchmark measures
            # torch.compile per model; it is adopted nowhere, see the methods page)
            model_execution="eager",
            allocator=self.allocator,
        )
        metrics = {**_final_metrics(config, self.history, self.stats, seconds), **final}
        record = self.store.write_result(config, status=status, metrics=metrics, provenance=prov, **extra)
        self.store.delete_checkpoint(config)
        return record

    def epoch(self, epoch: int, show: bool) -> bool:
        """Train and evaluate one epoch and checkpoint it; False if the run diverged in it."""
        config, data = self.config, self.data
        lr = float(self.optimizer.param_groups[0]["lr"])
        with tqdm(
            total=math.ceil(data.y_train.numel() / config.batch_size),
            desc=f"{config.activation} seed {config.seed} epoch {epoch}/{config.epochs}",
            leave=False,
            disable=not show,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as bar:
            tr = _train_epoch(self.model, self.optimizer, data, config, self.device, self.gen, bar)
        if not tr["finite"]:
            # info, not warning: in notebooks a warning would land in the cell's output; the
            # record's status says it.
            log.info("run %s diverged in epoch %d (non-finite training loss)", config.run_id(), epoch)
            return False
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            ev = _evaluate(self.model, data, config, self.device)
            if not math.isfinite(ev["test_loss"]):  # a non-finite network is not a result, whatever epoch
                log.info("run %s diverged in epoch %d (non-finite test loss)", config.run_id(), epoch)
                return False
        else:  # not evaluated this epoch (config.eval_every): the test columns stay empty
            ev = dict.fromkeys(TEST_COLUMNS, math.nan)
        self.history.append(
            {
                "epoch": epoch,
                "train_loss": tr["train_loss"],
                "train_error": tr["train_error"],
                **{k: ev[k] for k in TEST_COLUMNS},
                "epoch_seconds": tr["epoch_seconds"],
                "images_per_second": tr["images_per_second"],
                "lr": lr,
                **_alpha_columns(self.model),
            }
        )
        if self.scheduler is not None:
            self.scheduler.step()
        if epoch in config.stats_epochs:
            self.stats.extend(_activation_stats(self.model, data, config, self.device, epoch))
        self.save_checkpoint(epoch)
        self.claim.heartbeat()
        self.store.write_history(config, self.history)
        if epoch in config.stats_epochs:
            self.store.write_stats(config, self.stats)
        return True


# the history's test columns, in order (empty on an epoch that is not evaluated)
TEST_COLUMNS = ("test_loss", "test_accuracy", "test_error", "test_top5_error")


def _train_claimed(
    config: RunConfig, store: ResultsStore, claim: RunClaim, *, data_dir: Any, download: bool, progress: bool | None
) -> dict[str, Any]:
    """:func:`train`'s body, run while holding the run's claim."""
    run = _Run(config, store, claim, data_dir, download)
    try:
        run.restore()
    except CheckpointError as e:
        moved = store.set_aside_checkpoint(config)
        log.warning("%s; set aside as %s, training from scratch", e, moved.name if moved else "(gone)")
        # A failed restore may have loaded part of the state: start again with fresh objects.
        return _train_claimed(config, store, claim, data_dir=data_dir, download=download, progress=progress)
    store.begin(config)
    show = progress_enabled(progress)
    for epoch in range(run.start_epoch, config.epochs + 1):
        if not run.epoch(epoch, show):
            return run.finish("diverged", diverged_epoch=epoch)
    return run.finish("complete")


# Final metrics that measure time, not learning: they differ between two runs of the same config
# (everything else in a record must not).
TIMING_METRICS = _metrics.timing_metrics()


def learning_curve_metrics(test_accuracy: list[float], tolerance: float | None = None) -> dict[str, Any]:
    """``best_test_accuracy``, ``best_epoch`` (1-based, first of ties) and ``epochs_to_sweet_spot``
    (first epoch within ``tolerance`` of the best; default the metric registry's) of one run's
    per-epoch test accuracies."""
    if tolerance is None:
        tolerance = _metrics.metric_spec("epochs_to_sweet_spot").parameter("tolerance")
    acc = list(test_accuracy)
    if not acc or not all(isinstance(a, (int, float)) and math.isfinite(a) for a in acc):
        return {}
    best = max(acc)
    return {
        "best_test_accuracy": best,
        "best_epoch": acc.index(best) + 1,
        "epochs_to_sweet_spot": next(i for i, a in enumerate(acc, 1) if a >= best - tolerance),
    }


def coefficient_drift(history: list[dict[str, Any]]) -> dict[str, float]:
    """``alpha.<module>.late_drift`` for every learned coefficient in ``history``: the range (max - min)
    of the module's mean a over the last quarter of the epochs, counted from the end of the epoch
    where that quarter starts (epochs E - E//4 ... E), so that convergence is read from the record."""
    if not history:
        return {}
    start = len(history) - len(history) // 4 - 1  # the epoch before the last quarter (0-based)
    late = history[max(start, 0) :]
    out = {}
    for key in history[-1]:
        if key.startswith("alpha.") and key.endswith(".mean"):
            values = [r[key] for r in late if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
            if len(values) == len(late):
                out[key[: -len(".mean")] + ".late_drift"] = max(values) - min(values)
    return out


def _final_metrics(
    config: RunConfig, history: list[dict[str, Any]], stats: list[dict[str, Any]], wall_seconds: float
) -> dict[str, Any]:
    m: dict[str, Any] = {"epochs_completed": len(history), "wall_seconds": wall_seconds}
    if history:
        ips = [r["images_per_second"] for r in history if math.isfinite(r["images_per_second"])]
        m["images_per_second"] = sum(ips) / len(ips) if ips else float("nan")
        # Median over epochs: robust to the first epoch's warm-up and to a background burst.
        # Its log makes a paired difference a log ratio (how speed claims are tested).
        med = statistics.median(ips) if ips else float("nan")
        m["median_images_per_second"] = med
        m["log_median_images_per_second"] = math.log(med) if med > 0 else float("nan")
    if history and len(history) == config.epochs:  # complete runs only; a diverged run has no final model
        last = history[-1]
        for k in ("test_accuracy", "test_error", "test_top5_error", "test_loss", "train_loss", "train_error"):
            m[k] = last[k]
        m["first_epoch_train_loss"] = history[0]["train_loss"]  # how soon a run starts to learn
        m.update({k: v for k, v in last.items() if k.startswith("alpha.")})
        m.update(coefficient_drift(history))
        m.update(learning_curve_metrics([r["test_accuracy"] for r in history]))
        for rec in stats:
            if rec["epoch"] == config.epochs:
                for k in _STAT_SCALARS:
                    if k in rec:
                        m[f"{rec['layer']}.{k}"] = rec[k]
    return m
