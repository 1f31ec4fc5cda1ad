"""Every registered claim, field by field, equals the committed snapshot (tests/claims_snapshot.json).

The snapshot was taken before the claims moved to ``ClaimSet``: the builder must generate the same
claims. A deliberate change to a claim updates the snapshot with
``RELUSTUDY_UPDATE_SNAPSHOT=1 pytest tests/test_claims_snapshot.py``, and the diff shows it."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest

from relustudy.claims import CLAIMS, ClaimSet, ComparisonClaim, RankClaim

SNAPSHOT = Path(__file__).with_name("claims_snapshot.json")


def _plain(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {"__class__": type(v).__name__, **{f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _registered() -> dict:
    return {name: _plain(CLAIMS.get(name)) for name in CLAIMS.names()}


def test_the_registered_claims_equal_the_snapshot():
    now = _registered()
    if os.environ.get("RELUSTUDY_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(now, indent=1, sort_keys=True))
    before = json.loads(SNAPSHOT.read_text())
    assert sorted(now) == sorted(before)
    changed = [name for name in now if now[name] != before[name]]
    assert not changed, f"claims differ from the snapshot: {changed}"


def test_a_claim_set_fills_the_shared_fields_and_overrides_them(monkeypatch):
    monkeypatch.setattr(CLAIMS, "_entries", dict(CLAIMS._entries))  # registrations vanish after the test
    claims = ClaimSet("xu2015", "xu_cifar10_nin", "4. Results")
    c = claims.better("toy_claim", quote="q", statement="s", arm="PReLU", others=["ReLU"], metrics=["test_error"])
    assert isinstance(c, ComparisonClaim) and CLAIMS.get("xu2015.toy_claim") is c
    assert (c.source, c.experiment, c.section, c.relation, c.others, c.metrics) == (
        "xu2015", "xu_cifar10_nin", "4. Results", "better", ("ReLU",), ("test_error",))  # fmt: skip
    r = claims.where(section="Abstract").rank("toy_rank", quote="q", statement="s", arm="ReLU", others=["PReLU"])
    assert isinstance(r, RankClaim) and r.section == "Abstract" and r.experiment == "xu_cifar10_nin"
    with pytest.raises(ValueError, match="unknown relation"):
        claims.compare(
            "bigger", "toy_bad", quote="q", statement="s", arm="PReLU", others=["ReLU"], metrics=["test_error"]
        )
