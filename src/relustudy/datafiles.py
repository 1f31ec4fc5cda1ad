"""Dataset files: their formats and their integrity, below :mod:`relustudy.data`'s loading.

Content hashes of arrays and the verification cache; the sidecars of files relustudy wrote;
writing converted files (atomically, never overwriting); reading IDX files; decoding the
CIFAR-10 JPEG copy. Errors are :class:`DataError`, meant for the user.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL
import torch
from PIL import Image, features

from .store import atomic_write

__all__ = ["DataError", "SubsetSizeError", "content_sha256", "read_idx", "decode_cifar10_jpeg"]


if TYPE_CHECKING:
    from .data import DatasetSpec

ENV_DATA = "RELUSTUDY_DATA"
ENV_CACHE = "RELUSTUDY_CACHE"
ENV_ALLOW_DRIFT = "RELUSTUDY_ALLOW_DECODER_DRIFT"
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
SIDECAR_SUFFIX = ".sha256.json"
SIDECAR_FORMAT = "relustudy-npz-sha256/1"
VERIFY_CACHE_NAME = "verified-sha256.json"
# Debian package folders (dataset name -> folder with the four *-idx?-ubyte.gz files).
DEBIAN_DIRS: dict[str, Path] = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# The decoder that produced MANIFEST.md's decoded CIFAR-10 hashes.
PINNED_PILLOW = "13.0.0"
PINNED_LIBJPEG_TURBO = "3.2.0"


class DataError(Exception):
    """A dataset is missing, corrupt or unusable. The message says what to do."""


class SubsetSizeError(DataError, ValueError):
    """A subset larger than the set (or negative) was asked for."""


def _sidecar_path(path: Path) -> Path:
    return Path(str(path) + SIDECAR_SUFFIX)


# ---------------------------------------------------------------------------------------------
# Content hashes and the verification cache
# ---------------------------------------------------------------------------------------------
def content_sha256(a: np.ndarray) -> str:
    """sha256 of an array's raw C-order bytes (MANIFEST.md's *content* sha256)."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.reshape(-1).view(np.uint8)).hexdigest()


def _stat_key(path: Path) -> tuple[str, int, int, int, int]:
    """``(real path, size, mtime_ns, ctime_ns, inode)``: the change time cannot be set back by
    a user (``os.utime`` moves it forward), so a same-size rewrite with its old mtime restored
    still misses the cache; so does a replacement file (another inode)."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def _verify_cache_hit(cache: Path, key: tuple[str, int, int, int, int], expected: Mapping[str, str]) -> bool:
    try:
        entry = _read_json(cache / VERIFY_CACHE_NAME).get(key[0])
    except (OSError, ValueError, AttributeError):
        return False
    return (
        isinstance(entry, dict)
        and entry.get("size") == key[1]
        and entry.get("mtime_ns") == key[2]
        and entry.get("ctime_ns") == key[3]
        and entry.get("inode") == key[4]
        and entry.get("sha256") == dict(expected)
    )


def _verify_cache_record(cache: Path, key: tuple[str, int, int, int, int], expected: Mapping[str, str]) -> None:
    """Remember that the file ``key`` had the ``expected`` content hashes. Best effort."""
    path = cache / VERIFY_CACHE_NAME
    try:
        table = _read_json(path)
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    table = {p: e for p, e in table.items() if p == key[0] or os.path.exists(p)}  # drop stale files
    table[key[0]] = {"size": key[1], "mtime_ns": key[2], "ctime_ns": key[3], "inode": key[4], "sha256": dict(expected)}
    try:
        _write_json_atomic(path, table)
    except OSError:
        pass  # a read-only cache only costs re-hashing


def _mismatch_error(path: Path, bad: list[tuple[str, str, str]], origin: str, hint: str = "") -> DataError:
    parts = [f"array {k!r}: expected sha256 {e}, actual {a}" for k, e, a in bad]
    return DataError(
        f"checksum mismatch in {path}: {'; '.join(parts)} (expected values from {origin}). The file is corrupt "
        f"or not the expected copy. {hint + ' ' if hint else ''}Replace it with a good copy in the folder named by "
        f"{ENV_DATA} or --data-dir, or move it away and rerun with --download to fetch and convert a fresh copy "
        f"(needs internet); relustudy never re-downloads or overwrites it by itself."
    )


def _read_npz(path: Path, keys: Iterable[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(
                    f"{path} is not a valid dataset file: it lacks the arrays {missing} "
                    f"(has {sorted(z.files)}); see MANIFEST.md for the format"
                )
            return {k: z[k] for k in keys}
    except DataError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError (pickles), OSError, zlib errors, ...
        raise DataError(
            f"cannot read {path} as a .npz dataset file ({type(e).__name__}: {e}); the file is "
            f"corrupt. Replace it (folder named by {ENV_DATA} or --data-dir), or move it away and "
            f"rerun with --download."
        ) from e


def _verify_file(
    path: Path,
    expected: Mapping[str, str],
    origin: str,
    cache: Path,
    *,
    extra_keys: Sequence[str] = (),
    use_cache: bool = True,
    need_arrays: bool = True,
    hint: str = "",
) -> dict[str, np.ndarray] | None:
    """Load ``path``'s arrays and check their content hashes (skipped if verified before, unchanged)."""
    key = _stat_key(path)  # taken before reading: a change while we read gives a new key next time
    hit = use_cache and _verify_cache_hit(cache, key, expected)
    if hit and not need_arrays:
        return None
    arrays = _read_npz(path, list(expected) + [k for k in extra_keys if k not in expected])
    if not hit:
        actual = {k: content_sha256(arrays[k]) for k in expected}
        bad = [(k, expected[k], actual[k]) for k in expected if actual[k] != expected[k]]
        if bad:
            raise _mismatch_error(path, bad, origin, hint)
        _verify_cache_record(cache, key, expected)
    return arrays


# ---------------------------------------------------------------------------------------------
# Sidecars (hashes of files relustudy wrote)
# ---------------------------------------------------------------------------------------------
def _read_sidecar(spec: DatasetSpec, path: Path) -> dict | None:
    sc = _sidecar_path(path)
    if not sc.exists():
        return None
    try:
        meta = _read_json(sc)
        hashes = {k: str(meta["arrays"][k]["sha256"]) for k in ARRAY_KEYS}
        if meta.get("dataset") != spec.name:
            raise ValueError(f"it describes dataset {meta.get('dataset')!r}, not {spec.name!r}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"cannot use the checksum sidecar {sc} of {path} ({type(e).__name__}: {e}). Move both "
            f"files away and rerun with --download, or point {ENV_DATA} / --data-dir at a good copy."
        ) from e
    meta["_hashes"] = hashes
    return meta


def _expected_hashes(spec: DatasetSpec, path: Path, sidecar: dict | None) -> tuple[dict[str, str], str]:
    if sidecar is not None:
        return sidecar["_hashes"], f"its sidecar {_sidecar_path(path)}"
    if spec.sha256:
        return dict(spec.sha256), "relustudy's checksum table of the reference copy (MANIFEST.md)"
    raise DataError(
        f"{path} has no checksum sidecar {_sidecar_path(path).name} and relustudy has no reference "
        f"checksums for {spec.name}, so it cannot be verified. Use a copy made by relustudy (rerun with "
        f"--download after moving this file away, or copy the file together with its sidecar into the "
        f"folder named by {ENV_DATA} or --data-dir)."
    )


def _allow_drift() -> bool:
    return os.environ.get(ENV_ALLOW_DRIFT, "") == "1"


def _versions() -> dict[str, str]:
    out = {
        "numpy": np.__version__,
        "torch": torch.__version__,
        "Pillow": PIL.__version__,
        "libjpeg_turbo": str(features.version("libjpeg_turbo")),
    }
    try:
        import torchvision  # noqa: PLC0415 (optional dependency)

        out["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


# ---------------------------------------------------------------------------------------------
# Writing converted files (atomic, never overwriting)
# ---------------------------------------------------------------------------------------------
def _refuse_overwrite(out: Path) -> None:
    # A sidecar without its npz (an interrupted conversion) describes nothing and may be replaced.
    if out.exists():
        raise DataError(
            f"{out} already exists; relustudy does not overwrite dataset files. Move it (and its "
            f"sidecar {_sidecar_path(out).name}) away to convert again."
        )


def _write_npz_atomic(out: Path, arrays: Mapping[str, np.ndarray], compress: bool) -> None:
    # atomic_write creates its temporary file exclusively (O_EXCL, a random name) in the target
    # folder: no predictable name, no symbolic link followed.
    atomic_write(out, lambda f: (np.savez_compressed if compress else np.savez)(f, **arrays))


def _reference_check(
    spec: DatasetSpec,
    arrays: Mapping[str, np.ndarray],
    hashes: Mapping[str, str],
    reference_keys: Sequence[str],
    source: str,
    out: Path | None,
) -> str:
    """Compare ``reference_keys`` with our reference copy's hashes when all four arrays have the
    reference shapes (a mismatch raises DataError); returns a note for the sidecar."""
    ref = dict(spec.sha256)
    if not (reference_keys and ref):
        return "no reference checksums apply (source data of its own)"
    if not all(tuple(arrays[k].shape) == s for k, s in spec.reference_shapes().items()):
        return "not comparable: shapes differ from the reference copy"
    bad = [(k, ref[k], hashes[k]) for k in reference_keys if hashes[k] != ref[k]]
    if bad:
        parts = "; ".join(f"{k}: reference {e}, got {a}" for k, e, a in bad)
        raise DataError(
            f"the {spec.name} data from {source} differs from relustudy's reference copy "
            f"(MANIFEST.md): {parts}."
            + (f" Nothing was written to {out}." if out else "")
            + f" Check the source files, or point {ENV_DATA} / --data-dir at the shared copy."
        )
    return f"equal to the reference copy (MANIFEST.md) for {', '.join(reference_keys)}"


def _write_converted(
    spec: DatasetSpec,
    out: Path,
    arrays: dict[str, np.ndarray],
    *,
    kind: str,
    source: str,
    reference_keys: Sequence[str],
    caveats: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    compress: bool = True,
    cache: Path | None = None,
) -> dict:
    """Check ``arrays`` against the reference table where comparable, then write npz + sidecar.

    ``reference_keys`` must equal our reference copy's hashes when all four arrays have the
    reference shapes (a mismatch raises DataError and nothing is written); with other shapes the
    sidecar says the comparison did not apply.
    """
    _refuse_overwrite(out)
    hashes = {k: content_sha256(arrays[k]) for k in ARRAY_KEYS}
    reference_check = _reference_check(spec, arrays, hashes, reference_keys, source, out)
    meta = {
        "format": SIDECAR_FORMAT,
        "dataset": spec.name,
        "file": out.name,
        "kind": kind,
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
        "arrays": {
            k: {"shape": list(arrays[k].shape), "dtype": str(arrays[k].dtype), "sha256": hashes[k]} for k in ARRAY_KEYS
        },
        "reference_check": reference_check,
        "caveats": list(caveats),
        **(extra or {}),
    }
    # Sidecar first: a sidecar without its npz is harmless (the npz is not found; the sidecar is replaced).
    _write_json_atomic(_sidecar_path(out), meta)
    _write_npz_atomic(
        out, {**{k: arrays[k] for k in ARRAY_KEYS}, "classes": np.asarray(arrays["classes"], dtype=str)}, compress
    )
    if cache is not None:
        _verify_cache_record(cache, _stat_key(out), hashes)
    return meta


def _labels_u8(y: Any, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() > 255):
        raise DataError(f"{where}: labels outside 0..255")
    return y.astype(np.uint8)


# ---------------------------------------------------------------------------------------------
def _idx_file(folder: Path, stem: str) -> Path | None:
    for cand in (folder / f"{stem}.gz", folder / stem):
        if cand.is_file():
            return cand
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx file of unsigned bytes (MNIST format), gzip-compressed or not."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: corrupt gzip data ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an idx file of unsigned bytes (magic {raw[:4].hex()})")
    nd = raw[3]
    if not 1 <= nd <= 4 or len(raw) < 4 + 4 * nd:
        raise DataError(f"{path}: bad idx header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: idx header says {dims} ({int(np.prod(dims))} bytes), file holds {data.size}")
    return data.reshape(dims).copy()


def _read_idx_dir(spec: DatasetSpec, folder: Path) -> dict[str, np.ndarray]:
    files = {stem: _idx_file(folder, stem) for stem in IDX_FILES}
    missing = [s for s, p in files.items() if p is None]
    if missing:
        raise DataError(f"{folder}: missing idx files {missing}")
    arrays = {
        "x_train": read_idx(files[IDX_FILES[0]]),
        "y_train": read_idx(files[IDX_FILES[1]]),
        "x_test": read_idx(files[IDX_FILES[2]]),
        "y_test": read_idx(files[IDX_FILES[3]]),
        "classes": np.asarray(spec.classes, dtype=str),
    }
    for s in ("train", "test"):
        if arrays[f"x_{s}"].ndim != 3 or arrays[f"y_{s}"].ndim != 1 or len(arrays[f"x_{s}"]) != len(arrays[f"y_{s}"]):
            raise DataError(
                f"{folder}: {s} images {arrays[f'x_{s}'].shape} and labels {arrays[f'y_{s}'].shape} do not match"
            )
    return arrays


# ---------------------------------------------------------------------------------------------
# CIFAR-10 from JPEG
# ---------------------------------------------------------------------------------------------
def _decode_chunk(blob: bytes, offsets: np.ndarray) -> np.ndarray:
    out = np.empty((len(offsets) - 1, 32, 32, 3), dtype=np.uint8)
    for i in range(len(offsets) - 1):
        img = Image.open(io.BytesIO(blob[offsets[i] : offsets[i + 1]])).convert("RGB")
        a = np.asarray(img)
        if a.shape != (32, 32, 3):
            raise ValueError(f"image {i} decodes to shape {a.shape}, expected (32, 32, 3)")
        out[i] = a
    return out


def decode_cifar10_jpeg(
    jpeg: np.ndarray, offsets: np.ndarray, start: int = 0, stop: int | None = None, processes: int | None = None
) -> np.ndarray:
    """Decode images ``start:stop`` of a packed JPEG split into (n, 32, 32, 3) uint8 HWC RGB.

    Each image is ``Image.open(io.BytesIO(b)).convert("RGB")`` with Pillow. ``processes`` > 1
    decodes chunks in a process pool (default: 2 processes for 10,000 images or more, else 1).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n_all = len(offsets) - 1
    stop = n_all if stop is None else min(stop, n_all)
    n = max(stop - start, 0)
    if processes is None:
        processes = min(2, os.cpu_count() or 1) if n >= 10_000 else 1
    n_chunks = 1 if processes <= 1 else processes * 4
    bounds = np.linspace(start, stop, n_chunks + 1).astype(np.int64)
    chunks = [
        (jpeg[offsets[a] : offsets[b]].tobytes(), offsets[a : b + 1] - offsets[a])
        for a, b in itertools.pairwise(bounds)
    ]
    parts = None
    if processes > 1:
        try:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ProcessPoolExecutor(processes, mp_context=ctx) as ex:
                parts = list(ex.map(_decode_chunk, *zip(*chunks, strict=True)))
        except Exception:  # no usable pool here (or a bad image): decode serially, which reports errors
            parts = None
    if parts is None:
        try:
            parts = [_decode_chunk(*c) for c in chunks]
        except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
            raise DataError(f"cannot decode the CIFAR-10 JPEG data: {e}") from e
    return np.concatenate(parts) if parts else np.empty((0, 32, 32, 3), np.uint8)
