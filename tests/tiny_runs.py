"""Tiny training runs shared by the trainer tests: 256 MNIST training images, 200 test images,
batch 64, smith_cnn, 2 epochs, one thread (tiny batches gain little from more, and a busy machine
hurts multi-threaded runs most)."""

from __future__ import annotations

from relustudy import rundata
from relustudy.config import RunConfig

SMALL = dict(
    experiment="trainer_test",
    profile="smoke",
    dataset="mnist",
    model="smith_cnn",
    train_subset=256,
    test_subset=200,
    batch_size=64,
    epochs=2,
    num_threads=1,
)


def small(**changes) -> RunConfig:
    return RunConfig.from_dict({"activation": "relu", **SMALL, **changes})


def mnist_available() -> bool:
    try:
        rundata.load_cached_dataset("mnist", None, False)
        return True
    except Exception:
        return False
