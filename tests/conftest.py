"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

# The grid slice the scheduling tests (--jobs, Ray) compare against: trained once per session.
SCHEDULED_SLICE = dict(name="tf_rrelu_mnist_nobn", profile="smoke", seeds=[0], num_threads=1)


@pytest.fixture(scope="session")
def sequential_slice(tmp_path_factory):
    """``SCHEDULED_SLICE`` trained one run at a time: the records every other schedule must equal."""
    from relustudy.data import dataset_available
    from relustudy.experiments import run_experiment

    if not dataset_available("mnist"):
        pytest.skip("MNIST not found (set RELUSTUDY_DATA)")
    kw = dict(SCHEDULED_SLICE)
    return run_experiment(kw.pop("name"), kw.pop("profile"), results_dir=tmp_path_factory.mktemp("seq"), log=None, **kw)
