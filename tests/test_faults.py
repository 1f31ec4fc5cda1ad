"""The fault-injection suite (relustudy.faults), short: every fault kind once or twice on the tiny
run. Each trial must survive: the resumed record equals the uninterrupted one, the neighbour record
is untouched, nothing wrong is ever counted complete, nothing is left behind."""

from __future__ import annotations

import random

import pytest
from tiny_runs import mnist_available

from relustudy import faults
from relustudy import store as faults_store

# each fault kind once, the link and the claim in both of their forms (`make faults` runs more)
SHORT_PLAN = {
    "random_kill": 1,
    "kill_in_write": 1,
    "disk_full": 1,
    "checkpoint_byte": 1,
    "record_byte": 1,
    "linked_folder": 2,
    "stale_claim": 2,
}
NONE = dict.fromkeys(faults.FAULTS, 0)


@pytest.mark.slow
@pytest.mark.skipif(not mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")
def test_no_fault_loses_a_record_or_counts_a_wrong_one_complete(tmp_path):
    summary = faults.run_suite(tmp_path, trials=SHORT_PLAN, seed=7)
    assert summary["trials"] == sum(SHORT_PLAN.values())
    bad = [t for t in summary["runs"] if t["outcome"] != "survived"]
    assert bad == [], bad
    assert summary["total"]["survived"] == summary["trials"]
    assert {t["fault"] for t in summary["runs"]} == set(faults.FAULTS)
    assert summary["files_outside_changed"] == 0


@pytest.mark.slow
@pytest.mark.skipif(not mnist_available(), reason="MNIST not found (set RELUSTUDY_DATA)")
def test_the_suite_sees_a_store_that_writes_through_a_link_or_is_blocked_by_a_stale_claim(tmp_path, monkeypatch):
    """The judge can fail: with containment switched off the linked trials are 'escaped', and with
    claims that never go stale the stale-claim trials are 'blocked'."""
    monkeypatch.setattr(faults_store.ResultsStore, "escape", lambda self, folder: None)
    monkeypatch.setattr(faults_store.RunClaim, "_stale", lambda self, who: False)
    summary = faults.run_suite(tmp_path, trials={**NONE, "linked_folder": 2, "stale_claim": 1}, seed=3)
    assert [t["outcome"] for t in summary["runs"]] == ["escaped", "escaped", "blocked"]


def test_flip_byte_changes_exactly_one_byte(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(200)))
    offset = faults.flip_byte(path, random.Random(3))
    after = path.read_bytes()
    assert [i for i in range(200) if after[i] != i] == [offset]


def test_an_unknown_fault_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown fault.*random_kil.*valid: random_kill"):
        faults.run_suite(tmp_path, trials={"random_kil": 1})
