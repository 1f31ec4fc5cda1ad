"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling  # here: pytest also runs without xdist

from relustudy.data import dataset_available
from relustudy.experiments import run_experiment

# The grid slice the scheduling tests (--jobs, Ray) compare against: trained once per session.
SCHEDULED_SLICE = dict(name="tf_rrelu_mnist_nobn", profile="smoke", seeds=[0], num_threads=1)


@pytest.fixture(scope="session")
def sequential_slice(tmp_path_factory):
    """``SCHEDULED_SLICE`` trained one run at a time: the records every other schedule must equal."""

    if not dataset_available("mnist"):
        pytest.skip("MNIST not found (set RELUSTUDY_DATA)")
    kw = dict(SCHEDULED_SLICE)
    return run_experiment(kw.pop("name"), kw.pop("profile"), results_dir=tmp_path_factory.mktemp("seq"), log=None, **kw)


# ``make test`` runs two xdist workers. A unit of work is one test file (its module-scoped fixtures
# are built once), except that the smoke book's module and the notebooks are one unit: nbval's cells
# read the runs the book trained into the same smoke store, and a cell must find them finished, not
# claimed by the other worker. (xdist's own ``--dist loadgroup`` marks do not take under pytest 9.2,
# which no longer reads a test's id from the attribute xdist rewrites.)
SMOKE_STORE_UNIT = ("tests/test_smoke_book.py", "notebooks/")


def xdist_unit(nodeid: str) -> str:
    """The unit of work a test belongs to (see above)."""
    path = nodeid.split("::", 1)[0]
    return "smoke store" if path.startswith(SMOKE_STORE_UNIT) else path


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own scheduler
def pytest_xdist_make_scheduler(config, log):
    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return ByUnit(config, log)
