"""The trainer's epoch loop on synthetic images: its batches hold the values ``to_float`` gives,
with and without the float copy of the training set, and its loss and error are those of a
per-step float64 running sum (the loop the committed records were made with)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from relustudy import rundata
from relustudy.config import RunConfig
from relustudy.rundata import RunData
from relustudy.trainer import _add_losses, _train_epoch

CPU = torch.device("cpu")


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _data(n: int = 150, normalised: bool = True, channels_last: bool = True, channels: int = 3) -> RunData:
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (n, channels, 8, 8), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    mean = torch.tensor([0.4, 0.5, 0.6][:channels]).reshape(1, channels, 1, 1) if normalised else None
    std = torch.tensor([0.2, 0.25, 0.3][:channels]).reshape(1, channels, 1, 1) if normalised else None
    return RunData(x, y, x[:10], y[:10], mean, std, (channels, 8, 8), 10, channels_last)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(4), nn.Flatten(), nn.Linear(144, 10))


def _config(batch_size: int) -> RunConfig:
    return RunConfig(
        experiment="epoch_test",
        profile="smoke",
        dataset="cifar10",
        model="nin",
        activation="prelu",
        batch_size=batch_size,
        normalize="per_channel",
    )


@pytest.mark.parametrize("normalised", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("float_copy", [True, False])
@pytest.mark.parametrize("channels", [3, 1])
def test_a_training_batch_holds_the_values_and_layout_to_float_gives(
    monkeypatch, normalised, channels_last, float_copy, channels
):
    """Values and strides: a network given other strides could take another kernel path."""
    if not float_copy:
        monkeypatch.setattr(rundata, "FLOAT_TRAIN_LIMIT_BYTES", 0)
    monkeypatch.setattr(rundata, "EVAL_BATCH_SIZE", 64)  # the float copy is made in 3 chunks
    data = _data(normalised=normalised, channels_last=channels_last, channels=channels)
    assert (data.float_train() is not None) == float_copy
    idx = torch.tensor([7, 0, 149, 7, 42, 64, 128])
    x, y = data.train_batch(idx)
    expected = data.to_float(data.x_train[idx])
    assert torch.equal(x, expected) and torch.equal(y, data.y_train[idx])
    assert x.stride() == expected.stride()
    assert x.is_contiguous(memory_format=torch.channels_last) == (channels_last or channels == 1)
    batches = [b for b, _ in data.train_batches(64)]
    whole = data.to_float(data.x_train)
    assert torch.equal(torch.cat(batches), whole)
    assert all(b.stride()[1:] == whole.stride()[1:] for b in batches)


def _reference_epoch(model, optimizer, data, batch_size, gen):
    """The epoch loop as the committed records were made: a float64 tensor running sum per step."""
    n = data.y_train.numel()
    perm = torch.randperm(n, generator=gen)
    loss_sum = torch.zeros((), dtype=torch.float64)
    wrong = torch.zeros((), dtype=torch.int64)
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        x, y = data.to_float(data.x_train[idx]), data.y_train[idx]
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            loss_sum += loss.detach().double() * y.numel()
            wrong += (logits.detach().argmax(dim=1) != y).sum()
    return float(loss_sum) / n, float(wrong) / n


@pytest.mark.parametrize("float_copy", [True, False])
def test_the_epochs_loss_and_error_are_bit_for_bit_those_of_a_per_step_running_sum(monkeypatch, float_copy):
    if not float_copy:
        monkeypatch.setattr(rundata, "FLOAT_TRAIN_LIMIT_BYTES", 0)
    data, config = _data(), _config(batch_size=32)  # 150 images: the last batch holds 22
    ours, theirs = _model(), _model()
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        got = _train_epoch(ours, opt_ours, data, config, CPU, torch.Generator().manual_seed(5), _NoBar())
        loss, error = _reference_epoch(theirs, opt_theirs, data, 32, torch.Generator().manual_seed(5))
        assert got["finite"] and got["train_loss"] == loss and got["train_error"] == error
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))


def test_a_non_finite_loss_stops_the_epoch_before_its_step():
    data, config = _data(), _config(batch_size=32)
    model = _model()
    with torch.no_grad():
        model[3].bias.fill_(float("inf"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    got = _train_epoch(model, opt, data, config, CPU, torch.Generator().manual_seed(0), _NoBar())
    assert got["finite"] is False
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no step was taken


def test_losses_read_in_a_batch_sum_in_step_order_and_carry_a_non_finite_one():
    steps = [(torch.tensor(0.1), 3), (torch.tensor(1e-9), 7), (torch.tensor(2.5), 1)]
    running = 0.25
    for value, size in steps:
        running += value.item() * size
    pending = list(steps)
    assert _add_losses(0.25, pending) == running and pending == []
    assert math.isnan(_add_losses(0.0, [(torch.tensor(1.0), 2), (torch.tensor(float("nan")), 2)]))
    assert _add_losses(0.0, [(torch.tensor(float("inf")), 1)]) == math.inf
