"""A run's data on its device: the training and test images as uint8, loaded once per process,
and the batches the trainer gives the network (``RunData``), made by ``prepare_run_data``.

- The whole split lives on the device as uint8; a training batch is gathered by index
  (``index_select``) from a float copy of the training images made once per run where that copy
  fits ``FLOAT_TRAIN_LIMIT_BYTES``, else converted per batch: the same values either way.
- ``normalize="per_channel"`` uses the mean/std of the training images actually used (the
  subset, if any); ``"scale01"`` only divides by 255.
- Subsets are stratified (``relustudy.data.stratified_subset``) with ``config.subset_seed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import RunConfig
from .data import channel_stats, load_dataset, stratified_subset

__all__ = ["RunData", "prepare_run_data", "load_cached_dataset", "EVAL_BATCH_SIZE", "FLOAT_TRAIN_LIMIT_BYTES"]

EVAL_BATCH_SIZE = 1000
# A run makes one float copy of its training images where that copy takes at most this many bytes
# (our choice; 50,000 CIFAR-10 images take 614 MB): a training batch is then one row gather of
# the values the network sees, not a gather, a conversion and a division every step.
FLOAT_TRAIN_LIMIT_BYTES = 2 * 1024**3

_DATASET_CACHE: dict[tuple[str, str | None], Any] = {}
_DEVICE_CACHE: dict[tuple[str, str | None, str], tuple[torch.Tensor, ...]] = {}
_STATS_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def load_cached_dataset(name: str, data_dir: Any, download: bool) -> Any:
    key = (name, None if data_dir is None else str(data_dir))
    if key not in _DATASET_CACHE:
        _DATASET_CACHE[key] = load_dataset(name, data_dir=data_dir, download=download)
    return _DATASET_CACHE[key]


@dataclass
class RunData:
    x_train: torch.Tensor  # uint8 (N, C, H, W) on the device
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor | None  # float32 (1, C, 1, 1) or None (scale01)
    std: torch.Tensor | None
    in_shape: tuple[int, int, int]
    num_classes: int
    channels_last: bool
    caveats: Any = None
    _float_train: torch.Tensor | None = field(default=None, repr=False)

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images as the values the network sees (standard layout)."""
        x = x.float().div_(255)
        if self.mean is not None:
            x = x.sub_(self.mean).div_(self.std)
        return x

    def _laid_out(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        return self._laid_out(self._scaled(x))

    def _pixel_rows(self) -> bool:
        """Whether the float copy is stored pixel by pixel (N, H, W, C): a channels_last network
        with more than one channel, whose batches are then gathered already laid out (a gather
        from NCHW rows and a conversion took 3x as long at 3x32x32, batch 128)."""
        return self.channels_last and self.x_train.dim() == 4 and self.x_train.shape[1] > 1

    def float_train(self) -> torch.Tensor | None:
        """The training images as the network sees them, made once (elementwise, so each value is
        the one ``to_float`` gives; channels_last where the network is); None where they would take
        over FLOAT_TRAIN_LIMIT_BYTES."""
        if self._float_train is None and self.x_train.numel() * 4 <= FLOAT_TRAIN_LIMIT_BYTES:
            if self._pixel_rows():
                n, c, h, w = self.x_train.shape
                rows = torch.empty((n, h, w, c), device=self.x_train.device)
                for start in range(0, n, EVAL_BATCH_SIZE):  # in chunks: no second full-size copy
                    end = start + EVAL_BATCH_SIZE
                    rows[start:end] = self._scaled(self.x_train[start:end]).permute(0, 2, 3, 1)
                self._float_train = rows.permute(0, 3, 1, 2)  # NCHW, channels_last strides
            else:
                self._float_train = self._scaled(self.x_train)
        return self._float_train

    def train_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images and labels at ``idx``. index_select copies whole rows: it is 2-3x
        faster than advanced indexing here, with the same values."""
        xf = self.float_train()
        if xf is None:
            x = self._scaled(torch.index_select(self.x_train, 0, idx))
        elif self._pixel_rows():
            x = torch.index_select(xf.permute(0, 2, 3, 1), 0, idx).permute(0, 3, 1, 2)
        else:
            x = torch.index_select(xf, 0, idx)
        return self._laid_out(x), torch.index_select(self.y_train, 0, idx)

    def test_batches(self, batch_size: int = EVAL_BATCH_SIZE) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.y_test.numel(), batch_size):
            yield self.to_float(self.x_test[start : start + batch_size]), self.y_test[start : start + batch_size]

    def train_batches(self, batch_size: int = EVAL_BATCH_SIZE) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The training images in order (for evaluating the trained network on them)."""
        xf = self.float_train()
        for start in range(0, self.y_train.numel(), batch_size):
            end = start + batch_size
            x = self.to_float(self.x_train[start:end]) if xf is None else self._laid_out(xf[start:end])
            yield x, self.y_train[start:end]


def prepare_run_data(
    config: RunConfig, device: torch.device, data_dir: Any, download: bool, channels_last: bool
) -> RunData:
    ds = load_cached_dataset(config.dataset, data_dir, download)
    dkey = (config.dataset, None if data_dir is None else str(data_dir), str(device))
    if dkey not in _DEVICE_CACHE:
        _DEVICE_CACHE[dkey] = tuple(
            torch.as_tensor(t).to(device) for t in (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
        )
    x_train, y_train, x_test, y_test = _DEVICE_CACHE[dkey]
    train_idx = test_idx = None  # CPU index tensors (None = the whole split)
    if config.train_subset is not None:
        train_idx = torch.as_tensor(
            stratified_subset(ds.y_train, config.train_subset, config.subset_seed), dtype=torch.long
        )
        x_train, y_train = x_train[train_idx.to(device)], y_train[train_idx.to(device)]
    if config.test_subset is not None:
        test_idx = torch.as_tensor(
            stratified_subset(ds.y_test, config.test_subset, config.subset_seed), dtype=torch.long
        )
        x_test, y_test = x_test[test_idx.to(device)], y_test[test_idx.to(device)]
    y_train, y_test = y_train.long(), y_test.long()
    mean = std = None
    if config.normalize == "per_channel":
        skey = (*dkey[:2], config.train_subset, config.subset_seed if config.train_subset is not None else None)
        if skey not in _STATS_CACHE:  # on the CPU copy: the statistics of the training images used
            _STATS_CACHE[skey] = channel_stats(ds.x_train if train_idx is None else ds.x_train[train_idx])
        m, s = _STATS_CACHE[skey]
        c = x_train.shape[1]
        mean = torch.as_tensor(m, dtype=torch.float32).reshape(1, c, 1, 1).to(device)
        std = torch.as_tensor(s, dtype=torch.float32).reshape(1, c, 1, 1).to(device)
    return RunData(
        x_train,
        y_train,
        x_test,
        y_test,
        mean,
        std,
        tuple(ds.in_shape),
        int(ds.num_classes),
        channels_last,
        list(getattr(ds, "caveats", None) or []),
    )
