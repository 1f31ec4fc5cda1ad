"""Notebook parameters: every bad value fails with a ValueError that names the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from relustudy.experiments import default_results_dir, project_root
from relustudy.notebook_params import NotebookParams, validate

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_defaults():
    p = validate(profile="smoke", seeds=None, device="cpu", data_dir=None, results_dir=None)
    assert isinstance(p, NotebookParams)
    assert (p.profile, p.seeds, p.device, p.data_dir) == ("smoke", None, "cpu", None)
    assert p.results_dir == default_results_dir("smoke").resolve()
    assert p.run_kwargs() == {"seeds": None, "device": "cpu", "results_dir": p.results_dir, "data_dir": None}


def test_good_values_are_normalised(tmp_path):
    p = validate(profile="quick", seeds=[2, 0], device="auto", data_dir=str(tmp_path), results_dir=str(tmp_path / "r"))
    assert p.seeds == (2, 0)
    assert p.data_dir == tmp_path.resolve() and p.results_dir == (tmp_path / "r").resolve()
    assert p.run_kwargs()["seeds"] == [2, 0] and p.run_kwargs()["data_dir"] == str(tmp_path.resolve())
    assert validate(profile="paper", seeds=(1,), device="cpu").seeds == (1,)  # cuda: see the test below


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"profile": "fast"}, "profile"),
        ({"profile": None}, "profile"),
        ({"seeds": 3}, "seeds"),
        ({"seeds": "0,1"}, "seeds"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [0, -1]}, "seeds"),
        ({"seeds": [0, 1.5]}, "seeds"),
        ({"seeds": [True]}, "seeds"),
        ({"seeds": [1, 1]}, "seeds"),
        ({"device": "gpu"}, "device"),
        ({"device": None}, "device"),
        ({"data_dir": "/no/such/folder/anywhere"}, "data_dir"),
        ({"data_dir": 5}, "data_dir"),
        ({"data_dir": ""}, "data_dir"),
        ({"results_dir": 3.0}, "results_dir"),
    ],
)
def test_bad_values_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError) as err:
        validate(**{"profile": "smoke", "seeds": None, "device": "cpu", **kwargs})
    msg = str(err.value)
    assert msg.startswith(f"invalid notebook parameter {name}="), msg
    assert "expected" in msg


def test_data_dir_must_be_a_directory_and_results_dir_not_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="data_dir"):
        validate(data_dir=str(f))
    with pytest.raises(ValueError, match="results_dir"):
        validate(results_dir=str(f))


def test_default_results_dir_is_found_from_the_notebooks_folder(monkeypatch):
    # nbval runs a notebook with its own folder as cwd: the project root is still found.
    monkeypatch.delenv("RELUSTUDY_RESULTS", raising=False)
    monkeypatch.chdir(ROOT / "notebooks")
    assert project_root() == ROOT
    assert validate(profile="smoke").results_dir == ROOT / "_build" / "smoke-results"
    assert validate(profile="quick").results_dir == ROOT / "results"


def test_results_env_overrides_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("RELUSTUDY_RESULTS", str(tmp_path))
    assert validate(profile="quick").results_dir == tmp_path.resolve()


def test_seeds_as_text_say_how_to_pass_a_list_and_large_seeds_are_refused():
    with pytest.raises(ValueError, match=r"papermill -y 'seeds: \[0, 1, 2\]'"):
        validate(profile="smoke", seeds="[0,0]", device="cpu")
    with pytest.raises(ValueError, match=r"seeds=.*integers in \[0, 4294967295\]"):
        validate(profile="smoke", seeds=[2**32], device="cpu")


def test_cuda_without_a_device_is_refused_in_the_parameters_cell(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^invalid notebook parameter device='cuda': expected 'cuda' only where"):
        validate(profile="smoke", seeds=None, device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert validate(profile="smoke", seeds=None, device="cuda").device == "cuda"
