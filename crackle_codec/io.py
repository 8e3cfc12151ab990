"""Save and load Crackle streams as ``.ckl`` files, with an optional second compression stage."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from typing import Callable, Optional, Union

import numpy as np

from .core import BytesLike, compress, decompress, header

__all__ = ["save", "load"]

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
    be a Crackle stream (header and layout) before it is written.
    """
    if isinstance(obj, np.ndarray):
        data = compress(obj, **compress_kwargs)
    else:
        if compress_kwargs:
            raise TypeError("compression options apply only when saving an array")
        header(obj)  # raises DecodeError / TypeError for anything that is not a stream
        data = bytes(memoryview(obj).cast("B")) if not isinstance(obj, bytes) else obj
    stage = _stage_for(path)
    if stage is not None:
        data = stage[0](data)
    with open(path, "wb") as f:
        f.write(data)


def load(path: PathLike, label: Optional[int] = None, parallel: int = 1, *, decode: bool = True) -> Union[np.ndarray, bytes]:
    """Read a ``.ckl`` file (undoing a ``.gz``/``.bz2``/``.xz``/``.zst`` stage named by its extension).

    Returns the decoded array, ``label``'s binary image when a label is given (see
    ``decompress``), or the stream itself with ``decode=False``.
    """
    with open(path, "rb") as f:
        data = f.read()
    stage = _stage_for(path)
    if stage is not None:
        data = stage[1](data)
    if not decode:
        header(data)
        return data
    return decompress(data, label=label, parallel=parallel)
