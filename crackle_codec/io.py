"""Save and load Crackle streams as ``.ckl`` files, with an optional second compression stage."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from typing import Callable, Union

import numpy as np

from .core import BytesLike, compress, decompress, header

__all__ = ["save", "load", "aload", "bload", "save_numpy"]

PathLike = Union[str, "os.PathLike[str]"]


def _zstd_compress(data: bytes) -> bytes:
    from numcodecs import Zstd

    return bytes(Zstd(level=19).encode(data))


def _zstd_decompress(data: bytes) -> bytes:
    from numcodecs import Zstd

    return bytes(Zstd().decode(data))


# extension -> (compress, decompress)
_STAGES: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    ".gz": (gzip.compress, gzip.decompress),
    ".bz2": (bz2.compress, bz2.decompress),
    ".xz": (lzma.compress, lzma.decompress),
    ".zst": (_zstd_compress, _zstd_decompress),
}


def _stage_for(path: PathLike):
    name = os.fspath(path).lower()
    for ext, stage in _STAGES.items():
        if name.endswith(ext):
            return stage
    return None


def save(obj: Union[np.ndarray, BytesLike], path: PathLike, **compress_kwargs) -> None:
    """Write an array (compressed first, with ``compress_kwargs``) or a Crackle stream to ``path``.

    A numpy array is always treated as labels to compress; pass a stream as bytes, bytearray or
    memoryview.
    The file is a plain Crackle stream (conventionally ``.ckl``); a name ending in ``.gz``, ``.bz2``,
    ``.xz`` or ``.zst`` adds that second compression stage. A stream passed as bytes is checked to
    be a Crackle stream (header and layout) before it is written. A CrackleArray is saved as its
    stream. ``path`` may also be a writable file-like object, which gets the plain stream.
    """
    from .array import CrackleArray

    if isinstance(obj, CrackleArray):
        obj = obj.binary
    if isinstance(obj, np.ndarray):
        data = compress(obj, **compress_kwargs)
    else:
        if compress_kwargs:
            raise TypeError("compression options apply only when saving an array")
        header(obj)  # raises DecodeError / TypeError for anything that is not a stream
        data = bytes(memoryview(obj).cast("B")) if not isinstance(obj, bytes) else obj
    if hasattr(path, "write"):  # a file-like object: the plain stream
        path.write(data)
        return
    stage = _stage_for(path)
    if stage is not None:
        data = stage[0](data)
    with open(path, "wb") as f:
        f.write(data)


def load(path: PathLike, *, decode: bool = True, parallel: int = 1) -> Union[np.ndarray, bytes]:
    """Read a ``.ckl`` file (undoing a ``.gz``/``.bz2``/``.xz``/``.zst`` stage named by its extension).

    Returns the decoded array, or the stream itself with ``decode=False``. ``path`` may also be a
    readable file-like object; a second stage is then recognised by its magic number.
    """
    data = _read(path)
    if not decode:
        header(data)
        return data
    return decompress(data, parallel=parallel)


# --------------------------------------------------- file-like objects, CrackleArray, .npy
_MAGICS = {b"\x1f\x8b": ".gz", b"BZh": ".bz2", b"\xfd7zXZ\x00": ".xz", b"\x28\xb5\x2f\xfd": ".zst"}


def _read(filelike, allow_mmap: bool = False):
    """The stream in a path or a readable file-like object, its second stage undone (named by the
    path's extension; for file objects, recognised by its magic number)."""
    if hasattr(filelike, "read"):
        data = filelike.read()
        if data[:4] != b"crkl":
            for magic, ext in _MAGICS.items():
                if data.startswith(magic):
                    return _STAGES[ext][1](data)
        return data
    stage = _stage_for(filelike)
    if stage is None and allow_mmap:
        import mmap

        with open(filelike, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with open(filelike, "rb") as f:
        data = f.read()
    return data if stage is None else stage[1](data)


def bload(filelike, allow_mmap: bool = False):
    """The stream in a file (path or file-like object), not decoded; ``allow_mmap`` maps an
    uncompressed file instead of reading it. Its header is checked."""
    data = _read(filelike, allow_mmap)
    header(data)
    return data


def aload(filelike, allow_mmap: bool = False):
    """The stream in a file as a CrackleArray (see ``bload``)."""
    from .array import CrackleArray

    return CrackleArray(bload(filelike, allow_mmap))


def save_numpy(arr, filelike, block_size: int = 200_000_000) -> None:
    """Write an array, CrackleArray or stream as a ``.npy`` file (path or file-like object).

    A stream is decoded about ``block_size`` bytes of slices at a time and written in Fortran
    order (z blocks are contiguous there), so memory stays bounded by a block. A path ending in
    ``.gz``, ``.bz2`` or ``.xz`` is written through that compressor.
    """
    from .array import CrackleArray

    if isinstance(arr, np.ndarray):
        def write(f):
            np.save(f, arr)
    else:
        binary = arr.binary if isinstance(arr, CrackleArray) else arr
        h = header(binary)
        sx, sy, sz = h.shape
        per_slice = max(1, sx * sy * h.dtype.itemsize)
        step = max(1, int(block_size) // per_slice)

        def write(f):
            np.lib.format.write_array_header_2_0(
                f, {"descr": np.lib.format.dtype_to_descr(h.dtype), "fortran_order": True, "shape": (sx, sy, sz)})
            for z0 in range(0, sz, step):
                block = decompress(binary, z=slice(z0, min(sz, z0 + step)))
                f.write(np.asfortranarray(block).tobytes(order="F"))

    if hasattr(filelike, "write"):
        write(filelike)
        return
    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    name = os.fspath(filelike).lower()
    opener = next((fn for ext, fn in openers.items() if name.endswith(ext)), open)
    with opener(filelike, "wb") as f:
        write(f)
