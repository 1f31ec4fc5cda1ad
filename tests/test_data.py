"""Tests for relustudy.data: the registry, verified loading, conversions, error messages, helpers.

Every test runs with a fresh cache folder (RELUSTUDY_CACHE in tmp_path) except the one test that
asks for the ``real_cache`` fixture: it decodes CIFAR-10 into the user cache, where training runs
and later test sessions reuse it. Tests that need the shared offline data skip, with the reason,
when RELUSTUDY_DATA (or ../shared/data) does not hold it; in CI it is present.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from PIL import Image

from relustudy import data as D
from relustudy import datafiles as DF
from relustudy.data import DATASETS, DataError, content_sha256, load_dataset
from relustudy.registry import UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
_env = os.environ.get("RELUSTUDY_DATA")
SHARED = Path(_env) if _env else ROOT.parent / "shared" / "data"

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def shared_file(name: str) -> Path:
    p = SHARED / name
    if not p.is_file():
        pytest.skip(
            f"offline dataset {name} not found in {SHARED} (set RELUSTUDY_DATA to the shared data folder, "
            f"e.g. RELUSTUDY_DATA=/work/shared/data; the Makefile does this when ../shared/data exists)"
        )
    return p


@pytest.fixture(autouse=True)
def _isolated(request, tmp_path, monkeypatch):
    """A private cache per test (unless it asks for ``real_cache``) and no Debian package."""
    if "real_cache" not in request.fixturenames:
        monkeypatch.setenv("RELUSTUDY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(D.ENV_ALLOW_DRIFT, raising=False)
    monkeypatch.setitem(D.DEBIAN_DIRS, "fashion_mnist", tmp_path / "no-debian-package")


@pytest.fixture
def real_cache() -> Path:
    """The user's cache folder ($RELUSTUDY_CACHE if set, else ~/.cache/relustudy)."""
    return D.default_cache_dir()


@pytest.fixture
def no_data_env(monkeypatch):
    monkeypatch.delenv("RELUSTUDY_DATA", raising=False)


# --- fixture writers: torchvision's on-disk formats and idx files ------------------------------
def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    raw = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)


def make_grey(rng, n_train=20, n_test=10):
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n_train, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }


def write_idx_set(folder: Path, arrays: dict, gz: bool) -> None:
    names = dict(zip(("x_train", "y_train", "x_test", "y_test"), D.IDX_FILES, strict=True))
    for key, stem in names.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key], gz=gz)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, monkeypatch, rng, cifar100: bool = False, per_batch: int = 4):
    """Pickled batches in torchvision's layout; the class's md5 table is pointed at them."""

    cls = tvd.CIFAR100 if cifar100 else tvd.CIFAR10
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    n_cls = 100 if cifar100 else 10
    label_key = "fine_labels" if cifar100 else "labels"
    names = [f[0] for f in cls.train_list]
    xs, ys = [], []
    for fname in names + [cls.test_list[0][0]]:
        n = per_batch * (5 if cifar100 and fname == "train" else 1)
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, n_cls, n)]
        entry = {"data": x, label_key: y}
        if cifar100:
            entry["coarse_labels"] = [v // 5 for v in y]
        (folder / fname).write_bytes(pickle.dumps(entry, protocol=2))
        xs.append(x), ys.append(y)
    class_names = [f"class_{i:03d}" for i in range(n_cls)]
    meta_key = cls.meta["key"]
    (folder / cls.meta["filename"]).write_bytes(pickle.dumps({meta_key: class_names}, protocol=2))
    monkeypatch.setattr(cls, "train_list", [[f, md5(folder / f)] for f in names])
    monkeypatch.setattr(cls, "test_list", [[cls.test_list[0][0], md5(folder / cls.test_list[0][0])]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})
    hwc = lambda a: np.concatenate(a).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # noqa: E731
    return {
        "x_train": hwc(xs[:-1]),
        "y_train": np.concatenate(ys[:-1]).astype(np.uint8),
        "x_test": hwc(xs[-1:]),
        "y_test": np.asarray(ys[-1], dtype=np.uint8),
        "classes": class_names,
    }


def corrupt_copy(src: Path, dst: Path, key: str = "x_train") -> np.ndarray:
    """Copy ``src`` to ``dst`` with a few bytes of array ``key`` altered; returns the altered array."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    a = arrays[key].copy()
    a.reshape(-1)[100:104] ^= 0xFF
    arrays[key] = a
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, **arrays)  # uncompressed: quicker, and any valid npz will do
    return a


# --- the registry ------------------------------------------------------------------------------
def test_registry_holds_the_four_specs():
    assert DATASETS.names() == ["cifar10", "cifar100", "fashion_mnist", "mnist"]
    m, c = DATASETS.get("mnist"), DATASETS.get("cifar10")
    assert (m.file_name, m.in_shape, m.num_classes, m.n_train, m.n_test) == ("mnist.npz", (1, 28, 28), 10, 60000, 10000)
    assert (c.in_shape, c.hwc, c.packed_file) == ((3, 32, 32), (32, 32, 3), "cifar10_jpeg.npz")
    assert DATASETS.get("cifar100").num_classes == 100 and DATASETS.get("cifar100").sha256 == ()
    assert dict(DATASETS.get("fashion_mnist").sha256)["x_test"].startswith("c867c93f")
    assert DATASETS.get("cifar100").torchvision_dataset.__name__ == "CIFAR100"
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.num_classes = 3  # type: ignore[misc]
    hash(m)  # frozen specs are hashable
    with pytest.raises(UnknownNameError, match="valid names: cifar10, cifar100, fashion_mnist, mnist"):
        load_dataset("svhn")


def test_content_sha256_is_of_raw_c_order_bytes():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert content_sha256(a) == hashlib.sha256(a.tobytes()).hexdigest()
    assert content_sha256(a.T) == hashlib.sha256(np.ascontiguousarray(a.T).tobytes()).hexdigest()


# --- loading the shared offline data -----------------------------------------------------------
def test_load_mnist_from_relustudy_data(monkeypatch):
    shared_file("mnist.npz")
    monkeypatch.setenv("RELUSTUDY_DATA", str(SHARED))
    ds = DATASETS.get("mnist")()  # the spec is the registry's factory
    assert ds.name == "mnist" and ds.source_path == SHARED / "mnist.npz" and ds.caveats == []
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    assert ds.x_train.is_contiguous() and ds.x_test.is_contiguous()
    assert ds.in_shape == (1, 28, 28) and ds.num_classes == 10 and ds.classes == [str(i) for i in range(10)]
    assert torch.bincount(ds.y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(ds.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert content_sha256(ds.x_test[:, 0].numpy()) == dict(DATASETS.get("mnist").sha256)["x_test"]


def test_load_fashion_mnist_from_data_dir(no_data_env):
    shared_file("fashion_mnist.npz")
    ds = load_dataset("fashion_mnist", data_dir=SHARED)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[-1] == "Ankle boot"
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10 and torch.bincount(ds.y_test).tolist() == [1000] * 10


# --- checksums and the verification cache -------------------------------------------------------
def test_corrupted_copy_raises_even_after_a_good_load(tmp_path, no_data_env):
    src = shared_file("mnist.npz")
    data = tmp_path / "data"
    data.mkdir()
    dst = data / "mnist.npz"
    shutil.copyfile(src, dst)
    assert load_dataset("mnist", data_dir=data).x_train.shape[0] == 60000  # verified and remembered
    bad = corrupt_copy(src, dst)  # same path, new content (new size/mtime)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=data)
    msg = str(err.value)
    for part in (
        str(dst),
        "'x_train'",
        dict(DATASETS.get("mnist").sha256)["x_train"],
        content_sha256(bad),
        "RELUSTUDY_DATA",
        "--download",
    ):
        assert part in msg, part
    assert "'y_train'" not in msg  # only the altered array is named


def test_not_a_zip_file_is_reported(tmp_path, no_data_env):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read .*mnist.npz.*RELUSTUDY_DATA"):
        load_dataset("mnist", data_dir=tmp_path)


def test_verification_is_cached_per_path_size_and_mtime(tmp_path, monkeypatch, no_data_env):
    src = shared_file("mnist.npz")
    data = tmp_path / "data"
    data.mkdir()
    dst = data / "mnist.npz"
    shutil.copyfile(src, dst)
    calls = []
    real = DF.content_sha256
    monkeypatch.setattr(DF, "content_sha256", lambda a: calls.append(a.shape) or real(a))
    load_dataset("mnist", data_dir=data)
    assert len(calls) == 4
    load_dataset("mnist", data_dir=data)
    assert len(calls) == 4  # unchanged file: not hashed again
    table = json.loads((tmp_path / "cache" / DF.VERIFY_CACHE_NAME).read_text())
    assert table[os.path.realpath(dst)]["size"] == dst.stat().st_size
    st = dst.stat()
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a "change": hashed again
    load_dataset("mnist", data_dir=data)
    assert len(calls) == 8
    # A cache entry for other expected hashes does not count as verified.
    table = json.loads((tmp_path / "cache" / DF.VERIFY_CACHE_NAME).read_text())
    table[os.path.realpath(dst)]["sha256"]["x_train"] = "0" * 64
    (tmp_path / "cache" / DF.VERIFY_CACHE_NAME).write_text(json.dumps(table))
    load_dataset("mnist", data_dir=data)
    assert len(calls) == 12


def test_a_same_size_rewrite_with_its_mtime_restored_misses_the_cache(tmp_path):
    cache = tmp_path / "cache"
    f = tmp_path / "data.npz"
    f.write_bytes(b"a" * 64)
    hashes = {"x": "1" * 64}
    DF._verify_cache_record(cache, DF._stat_key(f), hashes)
    assert DF._verify_cache_hit(cache, DF._stat_key(f), hashes)  # unchanged: trusted
    st = f.stat()
    time.sleep(0.01)  # a later change time
    f.write_bytes(b"b" * 64)  # same size, other content
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime put back
    key = DF._stat_key(f)
    assert key[1:3] == (st.st_size, st.st_mtime_ns)  # size and mtime alone would call it unchanged
    assert not DF._verify_cache_hit(cache, key, hashes)


def test_dataset_temporary_files_never_follow_a_planted_link(tmp_path):
    out = tmp_path / "x.npz"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for name in (f".{out.name}.{os.getpid()}.tmp", f".{out.name}.tmp"):  # the old predictable names
        (tmp_path / name).symlink_to(victim)
    DF._write_npz_atomic(out, {"a": np.arange(3)}, compress=False)
    assert victim.read_text() == "keep me" and np.load(out)["a"].tolist() == [0, 1, 2]


# --- missing data --------------------------------------------------------------------------------
def test_missing_dataset_message(tmp_path, no_data_env):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=empty)
    msg = str(err.value)
    for part in (
        "RELUSTUDY_DATA",
        "--data-dir",
        "--download",
        str(empty / "mnist.npz"),
        str(tmp_path / "cache" / "mnist.npz"),
    ):
        assert part in msg, part
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_dataset("fashion_mnist", data_dir=empty)
    with pytest.raises(DataError, match="cifar10_jpeg.npz"):
        load_dataset("cifar10", data_dir=empty)
    with pytest.raises(DataError) as err:
        load_dataset("cifar100", data_dir=empty)
    assert "not available offline" in str(err.value) and "--download" in str(err.value)


def test_missing_message_names_the_env_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RELUSTUDY_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"nowhere/mnist.npz \(RELUSTUDY_DATA; folder does not exist\)"):
        load_dataset("mnist")


# --- torchvision conversions (offline: files made here, download=False or already present) ------
def test_torchvision_mnist_conversion_and_sidecar(tmp_path):
    rng = np.random.default_rng(0)
    arrays = make_grey(rng)
    write_idx_set(tmp_path / "tv" / "MNIST" / "raw", arrays, gz=False)  # torchvision's _check_exists: raw files
    out = tmp_path / "conv" / "mnist.npz"
    meta = D.convert_torchvision("mnist", tmp_path / "tv", out, download=False)
    with np.load(out) as z:
        for k in D.ARRAY_KEYS:
            np.testing.assert_array_equal(z[k], arrays[k])
            assert z[k].dtype == np.uint8
        assert list(z["classes"]) == [str(i) for i in range(10)]
    side = json.loads((tmp_path / "conv" / "mnist.npz.sha256.json").read_text())
    assert side == json.loads(json.dumps(meta))
    assert side["kind"] == "torchvision" and side["dataset"] == "mnist"
    assert {k: v["sha256"] for k, v in side["arrays"].items()} == {k: content_sha256(arrays[k]) for k in D.ARRAY_KEYS}
    assert side["reference_check"].startswith("not comparable")  # 20 images: not the reference shapes
    assert not list((tmp_path / "conv").glob("*.tmp"))
    with pytest.raises(DataError, match="does not overwrite"):
        D.convert_torchvision("mnist", tmp_path / "tv", out, download=False)


def test_download_path_converts_once_into_the_cache(tmp_path, no_data_env):
    cache = tmp_path / "cache"
    arrays = make_grey(np.random.default_rng(1))
    # Files already in torchvision's layout under <cache>/torchvision: its download() finds them
    # (_check_exists) and touches no network.
    write_idx_set(cache / "torchvision" / "FashionMNIST" / "raw", arrays, gz=False)
    ds = load_dataset("fashion_mnist", download=True)
    assert ds.source_path == cache / "fashion_mnist.npz"
    np.testing.assert_array_equal(ds.x_train[:, 0].numpy(), arrays["x_train"])
    assert ds.y_test.tolist() == arrays["y_test"].tolist() and ds.classes[1] == "Trouser"
    assert (cache / "fashion_mnist.npz.sha256.json").exists()
    mtime = (cache / "fashion_mnist.npz").stat().st_mtime_ns
    ds2 = load_dataset("fashion_mnist", download=True)  # found in the cache now: no second conversion
    assert (cache / "fashion_mnist.npz").stat().st_mtime_ns == mtime
    assert torch.equal(ds2.x_test, ds.x_test)
    # The sidecar is checked on every load.
    with np.load(cache / "fashion_mnist.npz") as z:
        altered = {k: z[k] for k in z.files}
    altered["y_train"] = (altered["y_train"] + 1) % 10
    np.savez(cache / "fashion_mnist.npz", **altered)
    with pytest.raises(DataError, match=r"'y_train'.*fashion_mnist.npz.sha256.json"):
        load_dataset("fashion_mnist")


def test_download_failure_is_a_data_error(tmp_path, no_data_env, monkeypatch):
    def offline(self):
        raise RuntimeError("no network")

    monkeypatch.setattr(tvd.MNIST, "download", offline)
    with pytest.raises(DataError, match="could not download mnist.*needs internet"):
        load_dataset("mnist", download=True)
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_full_size_mnist_download_must_equal_the_reference(tmp_path):
    zeros = {
        "x_train": np.zeros((60000, 28, 28), np.uint8),
        "y_train": np.zeros(60000, np.uint8),
        "x_test": np.zeros((10000, 28, 28), np.uint8),
        "y_test": np.zeros(10000, np.uint8),
    }
    write_idx_set(tmp_path / "tv" / "MNIST" / "raw", zeros, gz=False)
    out = tmp_path / "mnist.npz"
    with pytest.raises(DataError, match="differs from relustudy's reference copy.*x_train: reference 741c9888"):
        D.convert_torchvision("mnist", tmp_path / "tv", out, download=False)
    assert not out.exists() and not Path(str(out) + ".sha256.json").exists()


def test_torchvision_cifar10_conversion(tmp_path, monkeypatch, no_data_env):
    fx = write_cifar(tmp_path / "tv", monkeypatch, np.random.default_rng(2))
    out = tmp_path / "cache" / "cifar10.npz"
    meta = D.convert_torchvision("cifar10", tmp_path / "tv", out, download=False)
    with np.load(out) as z:
        assert z["x_train"].shape == (20, 32, 32, 3) and z["x_test"].shape == (4, 32, 32, 3)
        for k in D.ARRAY_KEYS:
            np.testing.assert_array_equal(z[k], fx[k])
        assert list(z["classes"]) == list(DATASETS.get("cifar10").classes)
    assert meta["kind"] == "torchvision" and meta["caveats"] == []
    ds = load_dataset("cifar10", data_dir=tmp_path / "nothing-here")  # found in the cache, verified by the sidecar
    assert ds.in_shape == (3, 32, 32) and ds.x_train.is_contiguous() and ds.caveats == []
    np.testing.assert_array_equal(ds.x_train.permute(0, 2, 3, 1).numpy(), fx["x_train"])


def test_torchvision_cifar100_conversion_uses_fine_labels(tmp_path, monkeypatch, no_data_env):
    fx = write_cifar(tmp_path / "tv", monkeypatch, np.random.default_rng(3), cifar100=True)
    D.convert_torchvision("cifar100", tmp_path / "tv", tmp_path / "cache" / "cifar100.npz", download=False)
    ds = load_dataset("cifar100", data_dir=tmp_path / "nothing-here")
    assert ds.num_classes == 100 and ds.classes[:2] == ["class_000", "class_001"]
    assert ds.y_train.tolist() == fx["y_train"].tolist() and ds.y_test.tolist() == fx["y_test"].tolist()
    assert ds.x_test.shape == (4, 3, 32, 32)


def test_cifar100_without_sidecar_cannot_be_verified(tmp_path, no_data_env):
    rng = np.random.default_rng(4)
    np.savez(
        tmp_path / "cifar100.npz",
        x_train=rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
        y_train=np.zeros(2, np.uint8),
        x_test=np.zeros((1, 32, 32, 3), np.uint8),
        y_test=np.zeros(1, np.uint8),
        classes=np.asarray([f"c{i}" for i in range(100)]),
    )
    with pytest.raises(DataError, match="no checksum sidecar.*--download"):
        load_dataset("cifar100", data_dir=tmp_path)


# --- Fashion-MNIST from the Debian package's idx files ------------------------------------------
def test_debian_idx_files_are_converted_into_the_cache(tmp_path, monkeypatch, no_data_env):
    deb = tmp_path / "usr-share-datasets-fashion-mnist"
    arrays = make_grey(np.random.default_rng(5), n_train=30, n_test=12)
    write_idx_set(deb, arrays, gz=True)
    monkeypatch.setitem(D.DEBIAN_DIRS, "fashion_mnist", deb)
    row = {r.name: r for r in D.check_datasets()}["fashion_mnist"]
    assert row.status == "ok" and row.path == str(deb) and "Debian" in row.message  # checked, nothing written...
    assert row.message and not (tmp_path / "cache" / "fashion_mnist.npz").exists()
    ds = load_dataset("fashion_mnist")
    assert ds.source_path == tmp_path / "cache" / "fashion_mnist.npz"
    np.testing.assert_array_equal(ds.x_train[:, 0].numpy(), arrays["x_train"])
    assert ds.y_train.tolist() == arrays["y_train"].tolist()
    side = json.loads((tmp_path / "cache" / "fashion_mnist.npz.sha256.json").read_text())
    assert side["kind"] == "idx" and str(deb) in side["source"]


def test_read_idx(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte.gz", a, gz=True)
    np.testing.assert_array_equal(D.read_idx(tmp_path / "a-idx3-ubyte.gz"), a)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01" + b"\x00" * 4)  # float32 idx
    with pytest.raises(DataError, match="unsigned bytes"):
        D.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(DataError, match="file holds 2"):
        D.read_idx(tmp_path / "short")


# --- CIFAR-10 from JPEG ---------------------------------------------------------------------------
def test_cifar10_jpeg_decode_of_a_slice_matches_pillow():
    with np.load(shared_file("cifar10_jpeg.npz")) as z:
        jpeg, offsets = z["jpeg_train"], z["offsets_train"]
    x = D.decode_cifar10_jpeg(jpeg, offsets, 0, 50)
    assert x.shape == (50, 32, 32, 3) and x.dtype == np.uint8
    for i in (0, 49):
        direct = np.asarray(Image.open(io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB"))
        np.testing.assert_array_equal(x[i], direct)
    np.testing.assert_array_equal(
        D.decode_cifar10_jpeg(jpeg, offsets, 0, 64, processes=2), D.decode_cifar10_jpeg(jpeg, offsets, 0, 64)
    )


def test_bad_jpeg_bytes_are_a_data_error():
    blob = np.frombuffer(b"\xff\xd8 not really a jpeg", dtype=np.uint8)
    with pytest.raises(DataError, match="cannot decode the CIFAR-10 JPEG data"):
        D.decode_cifar10_jpeg(blob, np.array([0, len(blob)]))


def test_corrupted_jpeg_copy_is_caught_before_decoding(tmp_path, monkeypatch, no_data_env):
    src = shared_file("cifar10_jpeg.npz")
    bad = corrupt_copy(src, tmp_path / "data" / "cifar10_jpeg.npz", key="jpeg_test")
    monkeypatch.setattr(D, "decode_cifar10_jpeg", lambda *a, **k: pytest.fail("decoded unverified JPEG data"))
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", data_dir=tmp_path / "data")
    msg = str(err.value)
    for part in (
        "'jpeg_test'",
        dict(DATASETS.get("cifar10").packed_sha256)["jpeg_test"],
        content_sha256(bad),
        "RELUSTUDY_DATA",
        "--download",
    ):
        assert part in msg, part
    assert not (tmp_path / "cache" / "cifar10.npz").exists()


@pytest.mark.slow
def test_full_cifar10_decode_into_the_real_cache(real_cache, monkeypatch):
    """Decodes all 60,000 JPEGs once (about 10-25 s on 2 cores) into the user cache; later runs reuse it."""
    shared_file("cifar10_jpeg.npz")
    monkeypatch.setenv("RELUSTUDY_DATA", str(SHARED))
    ds = load_dataset("cifar10")
    assert ds.source_path == SHARED / "cifar10_jpeg.npz"
    assert ds.x_train.shape == (50000, 3, 32, 32) and ds.x_test.shape == (10000, 3, 32, 32)
    assert ds.x_train.is_contiguous() and ds.x_train.dtype == torch.uint8
    assert torch.bincount(ds.y_train).tolist() == [5000] * 10 and torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert any("JPEG quality 75" in c for c in ds.caveats)
    side = json.loads((real_cache / "cifar10.npz.sha256.json").read_text())
    assert {k: v["sha256"] for k, v in side["arrays"].items()} == dict(DATASETS.get("cifar10").sha256)  # MANIFEST's
    assert side["kind"] == "jpeg-decode" and side["decoder_drift"] is False
    # The decoded tensors are the MANIFEST-hashed HWC arrays, transposed.
    assert content_sha256(ds.x_test.permute(0, 2, 3, 1).numpy()) == dict(DATASETS.get("cifar10").sha256)["x_test"]


def test_decoder_drift_is_an_error_unless_allowed(tmp_path, monkeypatch):
    shared_file("cifar10_jpeg.npz")
    monkeypatch.setenv("RELUSTUDY_DATA", str(SHARED))
    # Stand in for a different JPEG decoder: pixels that do not reproduce MANIFEST's hashes.
    monkeypatch.setattr(
        D, "decode_cifar10_jpeg", lambda jpeg, offsets, *a, **k: np.zeros((len(offsets) - 1, 32, 32, 3), np.uint8)
    )
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        load_dataset("cifar10")
    msg = str(err.value)
    assert "Pillow 13.0.0" in msg and "RELUSTUDY_ALLOW_DECODER_DRIFT=1" in msg and "x_train: MANIFEST 5aaf8a2c" in msg
    assert not (cache / "cifar10.npz").exists()
    monkeypatch.setenv("RELUSTUDY_ALLOW_DECODER_DRIFT", "1")
    with pytest.warns(RuntimeWarning, match="differs from MANIFEST"):
        ds = load_dataset("cifar10")
    assert any("accepted via RELUSTUDY_ALLOW_DECODER_DRIFT=1" in c for c in ds.caveats)
    assert json.loads((cache / "cifar10.npz.sha256.json").read_text())["decoder_drift"] is True
    assert load_dataset("cifar10").caveats == ds.caveats  # reused from the cache, caveats kept
    monkeypatch.delenv("RELUSTUDY_ALLOW_DECODER_DRIFT")
    with pytest.raises(DataError, match="RELUSTUDY_ALLOW_DECODER_DRIFT=1"):
        load_dataset("cifar10")


def test_lossless_cifar10_npz_in_a_data_dir_wins_over_the_jpeg_file(tmp_path, monkeypatch, no_data_env):
    fx = write_cifar(tmp_path / "tv", monkeypatch, np.random.default_rng(6))
    data = tmp_path / "data"
    D.convert_torchvision("cifar10", tmp_path / "tv", data / "cifar10.npz", download=False)
    (data / "cifar10_jpeg.npz").write_bytes(b"never read")
    ds = load_dataset("cifar10", data_dir=data)
    assert ds.source_path == data / "cifar10.npz" and ds.caveats == []
    assert ds.y_train.tolist() == fx["y_train"].tolist()


def test_jpeg_source_never_overwrites_a_different_cache_file(tmp_path, monkeypatch, no_data_env):
    write_cifar(tmp_path / "tv", monkeypatch, np.random.default_rng(7))
    cache = tmp_path / "cache"
    D.convert_torchvision("cifar10", tmp_path / "tv", cache / "cifar10.npz", download=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "cifar10_jpeg.npz").write_bytes(b"not read either")
    with pytest.raises(DataError, match="not a decode of it.*does not overwrite"):
        load_dataset("cifar10", data_dir=data)


# --- check_datasets ------------------------------------------------------------------------------
def test_check_datasets_rows(tmp_path, monkeypatch):
    shared_file("mnist.npz")
    monkeypatch.setenv("RELUSTUDY_DATA", str(SHARED))
    rows = {r.name: r for r in D.check_datasets()}
    assert sorted(rows) == ["cifar10", "cifar100", "fashion_mnist", "mnist"]
    assert rows["mnist"].status == "ok" and rows["mnist"].path == str(SHARED / "mnist.npz")
    assert rows["cifar100"].status == "missing" and rows["cifar100"].path is None
    if (SHARED / "cifar10_jpeg.npz").exists():
        assert rows["cifar10"].status == "ok" and "JPEG" in rows["cifar10"].message
    name, status, path, message = rows["mnist"]  # rows unpack as the CLI expects
    corrupt_copy(SHARED / "mnist.npz", tmp_path / "bad" / "mnist.npz", key="y_test")
    row = {r.name: r for r in D.check_datasets(data_dir=tmp_path / "bad")}["mnist"]
    assert row.status == "corrupt" and "'y_test'" in row.message and row.path == str(tmp_path / "bad" / "mnist.npz")


# --- stratified_subset ---------------------------------------------------------------------------
def test_stratified_subset_proportions_and_largest_remainder():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    idx = D.stratified_subset(labels, 10, seed=0)
    assert idx.dtype == torch.int64 and torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == 10
    assert torch.bincount(labels[idx]).tolist() == [5, 3, 2]
    # 3/3/4 of 10, n=5: quotas 1.5/1.5/2.0 -> floors 1/1/2, the one left goes to the largest
    # remainder (tie between classes 0 and 1: the lower label).
    lab = np.array([2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    assert np.bincount(lab[D.stratified_subset(lab, 5, seed=3).numpy()]).tolist() == [2, 1, 2]
    # 7 classes of 1 example, n=3: all remainders equal, lowest labels win
    assert D.stratified_subset(list(range(7)), 3, seed=0).tolist() == [0, 1, 2]


def test_stratified_subset_is_deterministic_per_seed():
    labels = torch.arange(1000) % 7
    a, b, c = (D.stratified_subset(labels, 100, seed=s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(D.stratified_subset(labels, 1000, seed=5), torch.arange(1000))
    assert D.stratified_subset(labels, 0, seed=0).numel() == 0
    with pytest.raises(D.SubsetSizeError, match="1001 examples from 1000"):
        D.stratified_subset(labels, 1001, seed=0)
    with pytest.raises(ValueError):
        D.stratified_subset(labels, -1, seed=0)


def test_stratified_subset_on_mnist_keeps_proportions(no_data_env):
    shared_file("mnist.npz")
    y = load_dataset("mnist", data_dir=SHARED).y_train
    counts = torch.bincount(y[D.stratified_subset(y, 1000, seed=0)], minlength=10)
    expected = torch.tensor(MNIST_TRAIN_COUNTS, dtype=torch.float64) * 1000 / 60000
    assert counts.sum() == 1000 and ((counts - expected).abs() < 1).all()


# --- channel_stats -------------------------------------------------------------------------------
def test_channel_stats_known_values():
    x = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    x[:, 0] = 255  # mean 1, std 0
    x[:2, 1] = 255  # half 0, half 255: mean 0.5, std 0.5
    x[:, 2, 0, 0] = 51  # one value in four is 0.2: mean 0.05, E[v^2] = 0.01, std sqrt(0.01 - 0.05^2)
    mean, std = D.channel_stats(x, chunk_images=3)  # chunks of 3 then 1
    assert mean[0] == pytest.approx(1.0) and std[0] == pytest.approx(0.0, abs=1e-12)
    assert mean[1] == pytest.approx(0.5) and std[1] == pytest.approx(0.5)
    assert mean[2] == pytest.approx(0.05) and std[2] == pytest.approx(np.sqrt(0.01 - 0.05**2))
    assert isinstance(mean, tuple) and len(std) == 3


def test_channel_stats_matches_numpy_on_random_images():
    x = np.random.default_rng(8).integers(0, 256, (37, 3, 5, 4), dtype=np.uint8)
    mean, std = D.channel_stats(torch.from_numpy(x), chunk_images=8)
    f = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean, f.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, f.std(axis=(0, 2, 3)), rtol=1e-10)
    with pytest.raises(ValueError, match="uint8"):
        D.channel_stats(torch.from_numpy(f))
