"""Volume and stream files: suffixes, reading, writing, and outputs that appear only when complete."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .errors import CLIError, _codec, _one_line
from .progress import Progress

STREAM_SUFFIXES = (".ckl", ".ckl.gz", ".ckl.bz2", ".ckl.xz", ".ckl.zst")
VOLUME_SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".nii", ".nii.gz")
_OPTIONAL_LIBRARIES = {".tif": "tifffile", ".tiff": "tifffile", ".nii": "nibabel", ".nii.gz": "nibabel"}
_METADATA_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def _suffix_of(path: str, suffixes: Sequence[str]) -> str | None:
    """The longest of ``suffixes`` that ``path`` ends with (case-insensitive), or None."""
    name = os.fspath(path).lower()
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def _volume_suffix(path: str, role: str) -> str:
    suffix = _suffix_of(path, VOLUME_SUFFIXES)
    if suffix is None:
        raise CLIError(f"{path}: unknown {role} extension; expected one of {', '.join(VOLUME_SUFFIXES)}")
    return suffix


def _stream_suffix(path: str, role: str) -> str:
    suffix = _suffix_of(path, STREAM_SUFFIXES)
    if suffix is None:
        raise CLIError(f"{path}: unknown {role} extension; expected one of {', '.join(STREAM_SUFFIXES)}")
    return suffix


def _replace_suffix(path: str, suffixes: Sequence[str], new: str) -> str:
    """``path`` with its known suffix (one of ``suffixes``, if any) replaced by ``new``."""
    suffix = _suffix_of(path, suffixes)
    stem = path[: len(path) - len(suffix)] if suffix else path
    return stem + new


def _optional_library(suffix: str) -> Any:
    """Import the library that reads/writes files with ``suffix``, or fail with how to install it."""
    name = _OPTIONAL_LIBRARIES[suffix]
    try:
        return __import__(name)
    except ImportError:
        raise CLIError(f"{suffix} files need the {name} package: pip install {name}") from None


def _require_file(path: str) -> None:
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, not a file")


def _check_label_dtype(dtype: Any, path: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "uib":
        raise CLIError(f"{path}: dtype {dtype} is not an integer type; Crackle stores integer label "
                       "volumes (cast the data to an integer dtype first)")
    return dtype


def _read_volume(path: str, *, key: str | None = None, lazy: bool = False) -> Any:
    """The array stored in a volume file, kept in the axis order and memory order it was stored in.

    ``lazy`` returns something sliceable without reading it all where the format allows: a
    read-only memory map for ``.npy`` (and uncompressed TIFF), nibabel's array proxy for NIfTI.
    """
    _require_file(path)
    suffix = _volume_suffix(path, "input")
    if key is not None and suffix != ".npz":
        raise CLIError(f"--key applies to .npz files only, not {path}")
    library = _optional_library(suffix) if suffix in _OPTIONAL_LIBRARIES else None
    try:
        if suffix == ".npy":
            volume = np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False)
        elif suffix == ".npz":
            volume = _read_npz(path, key)
        elif suffix in (".tif", ".tiff"):
            volume = None
            if lazy:
                try:
                    volume = library.memmap(path, mode="r")
                except Exception:  # compressed or tiled: not mappable, so read it whole
                    volume = None
            if volume is None:
                volume = library.imread(path)
        else:
            volume = _read_nifti(library, path, lazy)
    except (CLIError, MemoryError):
        raise
    except Exception as exc:
        raise CLIError(f"{path}: not a readable {suffix} file ({_one_line(exc)})") from exc
    _check_label_dtype(volume.dtype, path)
    if len(volume.shape) == 0:
        raise CLIError(f"{path}: holds a 0-d array (a scalar), not a volume")
    return volume


def _read_npz(path: str, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if key is None:
            if len(names) != 1:
                raise CLIError(f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                               "choose one with --key NAME")
            key = names[0]
        elif key not in names:
            raise CLIError(f"{path}: no array named {key!r} (it holds {', '.join(names) or 'none'})")
        return archive[key]


def _read_nifti(nibabel: Any, path: str, lazy: bool) -> Any:
    image = nibabel.load(path)
    slope, inter = image.header.get_slope_inter()
    if (slope not in (None, 1.0) and not math.isnan(slope)) or (inter not in (None, 0.0) and not math.isnan(inter)):
        raise CLIError(f"{path}: the NIfTI header scales the data (slope {slope}, intercept {inter}); "
                       "label volumes must be stored unscaled")
    proxy = image.dataobj
    # Only an uncompressed .nii is read lazily: slicing a gzip stream region by region re-reads it
    # from the start for every region, so a .nii.gz is decompressed once, whole.
    lazy = lazy and not path.lower().endswith(".gz")
    return proxy if lazy else np.asanyarray(proxy)


def _write_volume(path: str, suffix: str, volume: np.ndarray, key: str, *,
                  tiff_metadata: dict[str, Any] | None = None) -> None:
    """Write ``volume`` to ``path`` in the format named by ``suffix`` (axis order unchanged);
    ``tiff_metadata`` (JSON values) goes into a TIFF's image description."""
    if suffix == ".npy":
        with open(path, "wb") as f:
            np.save(f, volume)
    elif suffix == ".npz":
        with open(path, "wb") as f:
            np.savez_compressed(f, **{key: volume})
    elif suffix in (".tif", ".tiff"):
        tifffile = _optional_library(suffix)
        tifffile.imwrite(path, volume.view(np.uint8) if volume.dtype == np.bool_ else volume,
                         metadata=tiff_metadata if tiff_metadata is not None else {})
    else:
        nibabel = _optional_library(suffix)
        data = volume.view(np.uint8) if volume.dtype == np.bool_ else volume
        # An explicit dtype: nibabel refuses 64-bit integers otherwise, and they are common labels.
        image = nibabel.Nifti1Image(data, np.eye(4), dtype=data.dtype)
        nibabel.save(image, path)


@contextlib.contextmanager
def _output_file(path: str, force: bool) -> Iterator[str]:
    """Yield a temporary path next to ``path`` that replaces ``path`` once the block succeeds.

    A failed or interrupted write never leaves a truncated output behind; the temporary name keeps
    the suffix of ``path`` because the writers choose their format (and compression) by extension.
    """
    _check_new_output(path, force)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    suffix = name[name.index("."):] if "." in name else ""
    fd, tmp = tempfile.mkstemp(prefix=".crackle-zarr-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_new_output(path: str, force: bool) -> None:
    if os.path.exists(path) and not force:
        raise CLIError(f"{path} already exists (use --force to overwrite it)")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{path}: directory {directory} does not exist")



def _read_stream(path: str) -> bytes:
    """A stream from a .ckl file (a .gz/.bz2/.xz/.zst suffix is undone), header checked."""
    cc = _codec()
    _require_file(path)
    try:
        return cc.load(path, decode=False)
    except cc.DecodeError as exc:
        message = " ".join(str(exc).split())
        if message.split(": ", 1)[0].endswith(" layer"):  # the outer gzip/bz2/xz/zstd layer is damaged
            raise CLIError(f"{path}: {message}") from exc
        raise CLIError(f"{path}: not a valid Crackle stream: {message}") from exc
    except OSError as exc:
        if exc.strerror:  # permission denied and the like: the OS message says it best
            raise
        raise CLIError(f"{path}: cannot read it ({_one_line(exc)})") from exc  # e.g. not gzip data
    except Exception as exc:  # the second stage's own errors (zstd, lzma, bz2) have no common base
        raise CLIError(f"{path}: cannot read it ({_one_line(exc)})") from exc


READ_SLAB_BYTES = 64 << 20  # compress reads a memory-mapped input this much at a time


def _read_whole(volume: Any, path: str, *, progress: bool) -> np.ndarray:
    """``volume`` (from ``_read_volume(lazy=True)``) in memory, same memory order.

    A memory map is copied a slab of slices at a time with a progress display, so reading a large
    file shows movement; anything else is read at once.
    """
    if not isinstance(volume, np.memmap) or volume.ndim == 0:
        return np.asarray(volume)
    order = "F" if volume.flags.f_contiguous and not volume.flags.c_contiguous else "C"
    out = np.empty(volume.shape, dtype=volume.dtype, order=order)
    axis = volume.ndim - 1 if order == "F" else 0  # the slowest-varying axis
    count = volume.shape[axis]
    per_slice = volume.size // count if count else 0
    step = max(1, READ_SLAB_BYTES // max(1, per_slice * volume.dtype.itemsize))
    with Progress(count, "slice", enabled=progress, desc=f"read {os.path.basename(path)}") as bar:
        for lo in range(0, count, step):
            box = [slice(None)] * volume.ndim
            box[axis] = slice(lo, min(count, lo + step))
            out[tuple(box)] = volume[tuple(box)]
            bar.update(box[axis].stop - lo, (box[axis].stop - lo) * per_slice)
    return out


def _chunks_hint(shape: Sequence[int], order: str = "C") -> str:
    """A ``--chunks`` value for a volume with more than 3 axes: 1 along the extra, slowest-varying
    axes (leading in C order, trailing in Fortran order), 128 along the other three."""
    extra = max(0, len(shape) - 3)
    dims = ["1"] * extra + ["128"] * (len(shape) - extra)
    return ",".join(dims[::-1] if order == "F" else dims)
