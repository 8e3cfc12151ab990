"""Save and load Crackle streams as files, with an optional outer compression layer.

The layer is chosen by the file name when saving (``.gz``, ``.bz2``, ``.xz``/``.lzma``, ``.zst``)
and recognised by its magic bytes when loading, so a file reads back whatever its name says:
the reference's ``.bz2`` and ``.zst`` files (plain streams) as well as ours (compressed).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import tempfile
import zlib
from typing import IO, TYPE_CHECKING, Callable, Optional, Union

import numpy as np

if TYPE_CHECKING:
    import mmap

from .core import BytesLike, compress, decompress, header
from .errors import DecodeError

__all__ = ["save", "load", "aload", "bload", "save_numpy"]

PathLike = Union[str, "os.PathLike[str]"]

CRACKLE_MAGIC = b"crkl"


def _zstd_compress(data: bytes) -> bytes:
    from numcodecs import Zstd

    return bytes(Zstd(level=19).encode(data))


def _zstd_decompress(data: bytes) -> bytes:
    from numcodecs import Zstd

    return bytes(Zstd().decode(data))


def _xz_compress(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ)


def _lzma_decompress(data: bytes) -> bytes:
    return lzma.decompress(data, format=lzma.FORMAT_AUTO)  # .xz, or the legacy .lzma ("alone")


def _lzma_alone_decompress(data: bytes) -> bytes:
    try:
        return lzma.decompress(data, format=lzma.FORMAT_ALONE)
    except lzma.LZMAError as exc:
        raise lzma.LZMAError(f"neither .xz data nor legacy .lzma data, nor a Crackle stream: {exc}") from exc


# layer name -> (file name suffixes, magic bytes, compress, decompress)
_LAYERS: dict[str, tuple[tuple[str, ...], bytes, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "gzip": ((".gz",), b"\x1f\x8b", gzip.compress, gzip.decompress),
    "bz2": ((".bz2",), b"BZh", bz2.compress, bz2.decompress),
    "xz": ((".xz", ".lzma"), b"\xfd7zXZ\x00", _xz_compress, _lzma_decompress),
    "zstd": ((".zst",), b"\x28\xb5\x2f\xfd", _zstd_compress, _zstd_decompress),
}

# What each layer's library raises for damaged data (zstd's errors come from numcodecs).
_LAYER_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError)


def _layer_named(path: PathLike) -> str | None:
    """The outer layer that the name of ``path`` asks for, or None."""
    name = os.fspath(path).lower()
    for layer, (suffixes, _, _, _) in _LAYERS.items():
        if name.endswith(suffixes):
            return layer
    return None


def _is_file_object(obj: object) -> bool:
    return not isinstance(obj, (str, bytes, os.PathLike)) and (hasattr(obj, "read") or hasattr(obj, "write"))


def save(obj: Union[np.ndarray, BytesLike], path: Union[PathLike, IO[bytes]], *, overwrite: bool = True,
         **compress_kwargs) -> None:
    """Write an array (compressed first, with ``compress_kwargs``) or a Crackle stream to ``path``.

    A numpy array is always treated as labels to compress; pass a stream as bytes, bytearray or
    memoryview, which is checked to be a Crackle stream (header and layout) before it is written.
    The file is a plain Crackle stream (conventionally ``.ckl``); a name ending in ``.gz``,
    ``.bz2``, ``.xz``, ``.lzma`` (an ``.xz`` container, as the reference writes) or ``.zst`` adds
    that outer compression layer. ``path`` may also be a binary file object (no layer then). A CrackleArray is saved as
    its stream.

    The file is written to a temporary name and renamed into place, so a failure never leaves a
    truncated file or destroys the one it would have replaced. ``overwrite=False`` raises
    FileExistsError instead of replacing an existing file (the default replaces it, as the
    reference's ``save`` does).
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
    if _is_file_object(path):
        path.write(data)
        return
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, not {overwrite!r}")
    layer = _layer_named(path)
    if layer is not None:
        data = _LAYERS[layer][2](data)
    path = os.fspath(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} already exists (pass overwrite=True to replace it)")
    _write_atomically(path, data, exclusive=not overwrite)


def _write_atomically(path: str, data: bytes, *, exclusive: bool) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".crackle-", suffix=".tmp", dir=directory)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; files get the usual permissions
        if exclusive:
            _link_new(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _link_new(tmp: str, path: str) -> None:
    """Move ``tmp`` to ``path`` only if ``path`` does not exist (a hard link is atomic about it)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} already exists (pass overwrite=True to replace it)") from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(f"{path} already exists (pass overwrite=True to replace it)") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def load(path: Union[PathLike, IO[bytes]], label: Optional[int] = None, parallel: int = 1, *,
         decode: bool = True, max_voxels: Optional[int] = None) -> Union[np.ndarray, bytes]:
    """Read a Crackle file, undoing a gzip, bz2, xz/lzma or zstd outer layer.

    The layer is recognised by its magic bytes, whatever the name says (a plain stream named
    ``.ckl.bz2`` or ``.ckl.zst``, as the reference writes them, reads fine). Returns the decoded
    array, or the stream itself with ``decode=False`` (its header checked). ``path`` may also be a
    binary file object.

    With ``label``, returns that label's binary image instead (see ``decompress``).

    Raises DecodeError, naming the layer, for a damaged outer layer or for a file whose name asks
    for a layer it does not have; DecodeError for a malformed stream; OSError from the file system.
    ``max_voxels``: refuse (DecodeError) a stream whose header claims more voxels, before decoding
    (see ``decompress``).
    """
    if _is_file_object(path):
        data, named = path.read(), None
    else:
        with open(path, "rb") as f:
            data = f.read()
        named = _layer_named(path)
    data = _undo_layer(bytes(data), named)
    if not decode:
        header(data)
        return data
    return decompress(data, label=label, parallel=parallel, max_voxels=max_voxels)


def _undo_layer(data: bytes, named: str | None) -> bytes:
    """``data`` without its outer layer (found by magic bytes); errors name the layer."""
    if data.startswith(CRACKLE_MAGIC):
        return data
    for layer, (_, magic, _, decompress_layer) in _LAYERS.items():
        if data.startswith(magic):
            return _decompress_layer(layer, decompress_layer, data)
    if named == "xz":  # the legacy .lzma ("alone") format has no magic bytes: let lzma try it
        return _decompress_layer("xz", _lzma_alone_decompress, data)
    if named is not None:
        raise DecodeError(f"{named} layer: the file holds neither {named} data nor a Crackle stream "
                          f"(it starts with {data[:6]!r})")
    return data  # the stream's own header check names what is wrong


def _decompress_layer(layer: str, decompress_layer: Callable[[bytes], bytes], data: bytes) -> bytes:
    try:
        return decompress_layer(data)
    except MemoryError:
        raise
    except _LAYER_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise DecodeError(f"{layer} layer: corrupt or truncated {layer} data ({detail})") from exc


# --------------------------------------------------- file-like objects, CrackleArray, .npy

def _read(filelike: Union[PathLike, IO[bytes]], allow_mmap: bool = False) -> Union[bytes, "mmap.mmap"]:
    """The stream in a path or a readable file-like object, its outer layer undone (see ``load``);
    ``allow_mmap`` maps a plain (layerless) file instead of reading it."""
    if _is_file_object(filelike):
        return _undo_layer(bytes(filelike.read()), None)
    named = _layer_named(filelike)
    if named is None and allow_mmap and os.path.getsize(filelike) > 0:  # mmap refuses empty files
        import mmap

        with open(filelike, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if mapped[:len(CRACKLE_MAGIC)] == CRACKLE_MAGIC:
            return mapped
        return _undo_layer(bytes(mapped), None)
    with open(filelike, "rb") as f:
        return _undo_layer(f.read(), named)


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
