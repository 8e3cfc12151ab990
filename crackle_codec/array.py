"""CrackleArray: a numpy-like, read-mostly view of a Crackle stream.

Indexing decodes only the z range the index needs (an int, a slice or an integer array along z),
then applies the index with numpy semantics. Arithmetic and comparison with an integer rewrite
the labels section (no voxel is decoded); with another array they work a few slices at a time.
"""

from __future__ import annotations

import numbers
import operator
from typing import Any, Callable, Optional, Union

import numpy as np

from . import assemble, core, operations
from .core import BytesLike

__all__ = ["CrackleArray", "compressa"]


def _is_int(x: Any) -> bool:
    return not isinstance(x, (bool, np.bool_)) and isinstance(x, (numbers.Integral, np.integer))


class CrackleArray:
    """A Crackle stream that behaves like a read-only 3D numpy array of shape ``(sx, sy, sz)``.

    ``binary`` is the stream. ``parallel`` is the number of decoding threads (0 = all cores);
    ``verify`` is accepted for compatibility: CRCs are always checked when slices are decoded.
    """

    def __init__(self, binary: BytesLike, parallel: int = 0, verify: bool = True):
        if isinstance(binary, CrackleArray):
            binary = binary.binary
        self.binary = binary
        self.parallel = core._check_parallel(parallel)
        self.verify = bool(verify)
        self._header = core.header(binary)
        self.shape = self._header.shape

    # ------------------------------------------------------------------ array attributes
    @property
    def dtype(self) -> np.dtype:
        return self._header.dtype

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        sx, sy, sz = self.shape
        return sx * sy * sz

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded array (``len(self)`` is the stream's length)."""
        return self.size * self.dtype.itemsize

    @property
    def random_access(self) -> bool:
        """Whether a z range can be decoded on its own (always, in this format)."""
        return True

    def __len__(self) -> int:
        """The stream's length in bytes, as in the reference."""
        return len(memoryview(self.binary).cast("B"))

    def __repr__(self) -> str:
        return f"CrackleArray(shape={self.shape}, dtype={self.dtype}, nbytes={len(self)})"

    def create(self, binary: BytesLike) -> "CrackleArray":
        return CrackleArray(binary, parallel=self.parallel, verify=self.verify)

    # -------------------------------------------------------------------------- decoding
    def numpy(self, *args, **kwargs) -> np.ndarray:
        """The whole decoded array."""
        return core.decompress(self.binary, parallel=self.parallel)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def decompress(self, label: Optional[int] = None, crop: bool = False) -> np.ndarray:
        if label is not None:
            return core.decompress(self.binary, label=label, crop=crop, parallel=self.parallel)
        return self.numpy()

    def __getitem__(self, key: Any) -> Union[np.ndarray, np.generic]:
        key = key if isinstance(key, tuple) else (key,)
        z_at = _z_position(key)
        sz = self.shape[2]
        if z_at is None:  # the z axis is not indexed: all slices
            return self.numpy()[key]
        zkey = key[z_at]
        window = _z_window(zkey, sz)
        if window is None:  # bool arrays and the like: decode everything, numpy decides
            return self.numpy()[key]
        z0, z1, shifted = window
        if z1 <= z0:
            sx, sy, _ = self.shape
            part = np.zeros((sx, sy, 0), dtype=self.dtype, order="F" if self._header.order == "F" else "C")
        else:
            part = core.decompress(self.binary, z=slice(z0, z1), parallel=self.parallel)
        return part[key[:z_at] + (shifted,) + key[z_at + 1:]]

    def __setitem__(self, key: Any, value: Any) -> None:
        """Assign into the decoded z range the index touches, then splice it back (zsplit/zstack)."""
        key = key if isinstance(key, tuple) else (key,)
        z_at = _z_position(key)
        sz = self.shape[2]
        window = None if z_at is None else _z_window(key[z_at], sz)
        z0, z1, shifted = (0, sz, key[z_at] if z_at is not None else None) if window is None else window
        if z1 <= z0:
            return
        part = core.decompress(self.binary, z=slice(z0, z1), parallel=self.parallel)
        if z_at is not None:
            key = key[:z_at] + (shifted,) + key[z_at + 1:]
        part[key] = value
        pieces = []
        if z0 > 0:
            pieces.append(assemble._z_range(operations._Stream(self.binary), 0, z0))
        pieces.append(core.compress(part))
        if z1 < sz:
            pieces.append(assemble._z_range(operations._Stream(self.binary), z1, sz))
        self.binary = assemble.zstack(pieces)
        self._header = core.header(self.binary)

    # ----------------------------------------------------------------- stream queries
    def labels(self, z: Union[int, slice, None] = None) -> np.ndarray:
        """Sorted distinct labels, from the labels section (of slice(s) ``z`` only if given)."""
        if z is None:
            return core.labels(self.binary)
        if _is_int(z):
            z = assemble._check_z(z, self.shape[2])
            z = slice(z, z + 1)
        if not isinstance(z, slice):
            raise TypeError(f"z must be None, an int or a slice, not {type(z).__name__}")
        z0, z1, step = z.indices(self.shape[2])
        if step != 1:
            raise ValueError("z slices must have step 1")
        if z1 <= z0:
            return np.zeros(0, dtype=self.dtype)
        return core.labels(assemble._z_range(operations._Stream(self.binary), z0, z1))

    def num_labels(self) -> int:
        return core.num_labels(self.binary)

    def header(self, ignore_crc_check: bool = False) -> core.Header:
        return self._header

    def __contains__(self, elem: int) -> bool:
        return core.contains(self.binary, elem)

    def min(self) -> int:
        return int(self.labels().min())

    def max(self) -> int:
        return int(self.labels().max())

    def all(self, axis=None, out=None, keepdims=False, *, where=True):
        if axis is None and out is None and not keepdims and where is True:
            return np.bool_(0 not in self)
        return self.numpy().all(axis=axis, out=out, keepdims=keepdims, where=where)

    def any(self, axis=None, out=None, keepdims=False, *, where=True):
        if axis is None and out is None and not keepdims and where is True:
            return np.bool_(np.any(self.labels() != 0))
        return self.numpy().any(axis=axis, out=out, keepdims=keepdims, where=where)

    # ------------------------------------------------------------------ stream rewrites
    def remap(self, mapping: dict, preserve_missing_labels: bool = False) -> "CrackleArray":
        return self.create(core.remap(self.binary, mapping, preserve_missing_labels))

    def mask(self, labels, value: int = 0, in_place: bool = False) -> "CrackleArray":
        return self.create(operations.mask(self.binary, labels, value, in_place))

    def mask_except(self, labels, value: int = 0, in_place: bool = False) -> "CrackleArray":
        return self.create(operations.mask_except(self.binary, labels, value, in_place))

    def astype(self, dtype: Any, order: str = "K", casting: str = "unsafe") -> "CrackleArray":
        return self.create(operations.astype(self.binary, dtype, order, casting))

    def refit(self) -> "CrackleArray":
        return self.create(operations.refit(self.binary))

    def renumber(self, start: int = 0) -> tuple["CrackleArray", dict]:
        binary, mapping = operations.renumber(self.binary, start)
        return self.create(binary), mapping

    def recompress(self) -> "CrackleArray":
        return self.create(operations.recompress(self.binary, self.parallel))

    def condense(self) -> "CrackleArray":
        """The same volume with a condensed labels section (sorted, no duplicates)."""
        return self.create(core.remap(self.binary, {}, True))

    def ascontiguousarray(self) -> "CrackleArray":
        return self.create(operations.ascontiguousarray(self.binary))

    def asfortranarray(self) -> "CrackleArray":
        return self.create(operations.asfortranarray(self.binary))

    def copy(self, order: str = "K") -> "CrackleArray":
        binary = bytes(memoryview(self.binary).cast("B"))
        if order in ("C", "F"):
            binary = operations.astype(binary, self.dtype, order=order)
        return self.create(binary)

    def zrange(self, z_start: int, z_end: int) -> "CrackleArray":
        """Slices [z_start, z_end) as a new CrackleArray, without decoding FLAT streams."""
        z0, z1, _ = slice(z_start, z_end).indices(self.shape[2])
        return self.create(assemble._z_range(operations._Stream(self.binary), z0, max(z0, z1)))

    def mode_pooling_2x2x1(self, sparse: bool = False) -> "CrackleArray":
        return self.create(operations.mode_pooling_2x2x1(self.binary, sparse, self.parallel))

    def apply_binary_mask(self, other: "CrackleArray") -> "CrackleArray":
        other = other.binary if isinstance(other, CrackleArray) else other
        return self.create(operations.apply_binary_mask(self.binary, other, self.parallel))

    def array_equal(self, other: "CrackleArray") -> bool:
        other = other.binary if isinstance(other, CrackleArray) else other
        return assemble.array_equal(self.binary, other, self.parallel)

    def save(self, filelike) -> None:
        from .io import save

        save(self, filelike)

    # ----------------------------------------------------------------------- operators
    def _labelwise(self, fn: Callable[[np.ndarray], np.ndarray]) -> "CrackleArray":
        """``fn`` (elementwise, numpy semantics in the volume's dtype) applied to every label."""
        dtype = self.dtype

        def apply(values: np.ndarray) -> list[int]:
            with np.errstate(over="ignore"):
                return np.asarray(fn(values.astype(dtype))).astype(dtype).tolist()

        return self.create(operations.remap_values(self.binary, apply))

    def _voxelwise(self, other: "CrackleArray", fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> "CrackleArray":
        if other.shape != self.shape:
            raise ValueError(f"shapes differ: {self.shape} and {other.shape}")
        pieces = []
        sx, sy, sz = self.shape
        for z0, z1 in operations._z_chunks(sz, sx * sy * self.dtype.itemsize):
            a = core.decompress(self.binary, z=slice(z0, z1), parallel=self.parallel)
            b = core.decompress(other.binary, z=slice(z0, z1), parallel=self.parallel)
            with np.errstate(over="ignore"):
                r = np.asarray(fn(a, b))
            if r.dtype == np.bool_:
                r = r.view(np.uint8)
            pieces.append(core.compress(np.asfortranarray(r) if self._header.order == "F" else np.ascontiguousarray(r)))
        if not pieces:
            return self.create(self.binary)
        return self.create(assemble.zstack(pieces))

    def _operator(self, other: Any, fn: Callable) -> "CrackleArray":
        if isinstance(other, CrackleArray):
            return self._voxelwise(other, fn)
        if _is_int(other):
            info = np.iinfo(self.dtype)
            if not info.min <= int(other) <= info.max:
                raise OverflowError(f"Python integer {other} out of bounds for {self.dtype}")
            k = self.dtype.type(other)
            return self._labelwise(lambda v: fn(v, k))
        raise TypeError(f"Type {type(other)} is not supported.")

    def __add__(self, other): return self._operator(other, operator.add)
    def __radd__(self, other): return self._operator(other, lambda a, b: b + a)
    def __sub__(self, other): return self._operator(other, operator.sub)
    def __rsub__(self, other): return self._operator(other, lambda a, b: b - a)
    def __mul__(self, other): return self._operator(other, operator.mul)
    def __rmul__(self, other): return self._operator(other, lambda a, b: b * a)
    def __floordiv__(self, other):
        if _is_int(other) and int(other) == 0:
            raise ZeroDivisionError("Cannot divide by zero.")
        return self._operator(other, operator.floordiv)
    def __rfloordiv__(self, other): return self._operator(other, lambda a, b: b // a)
    def __mod__(self, other):
        if _is_int(other) and int(other) == 0:
            raise ZeroDivisionError("Cannot divide by zero.")
        return self._operator(other, operator.mod)
    def __and__(self, other): return self._operator(other, operator.and_)
    def __or__(self, other): return self._operator(other, operator.or_)
    def __xor__(self, other): return self._operator(other, operator.xor)
    def __lshift__(self, other): return self._operator(other, operator.lshift)
    def __rshift__(self, other): return self._operator(other, operator.rshift)
    def __eq__(self, other): return self._operator(other, operator.eq)  # type: ignore[override]
    def __ne__(self, other): return self._operator(other, operator.ne)  # type: ignore[override]
    def __lt__(self, other): return self._operator(other, operator.lt)
    def __le__(self, other): return self._operator(other, operator.le)
    def __gt__(self, other): return self._operator(other, operator.gt)
    def __ge__(self, other): return self._operator(other, operator.ge)
    def __invert__(self): return self._labelwise(operator.invert)
    def __neg__(self): return self._labelwise(operator.neg)
    def __pos__(self): return self.create(self.binary)

    __hash__ = None  # type: ignore[assignment]


def _z_position(key: tuple) -> Optional[int]:
    """Position in ``key`` of the index of the z axis, after Ellipsis and newaxis; None when z
    is not indexed or a multi-axis boolean mask covers it (then everything is decoded)."""
    def axes(k: Any) -> int:
        return k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1

    consumed = sum(axes(k) for k in key if k is not None and k is not Ellipsis)
    axis = 0
    for i, k in enumerate(key):
        if k is None:
            continue
        if k is Ellipsis:
            axis += max(0, 3 - consumed)
            continue
        n = axes(k)
        if axis <= 2 < axis + n:
            return i if n == 1 else None
        axis += n
    return None


def _z_window(zkey: Any, sz: int) -> Optional[tuple[int, int, Any]]:
    """(z0, z1, the z index relative to z0) for the z part of an index; None: decode all."""
    if _is_int(zkey):
        z = int(zkey)
        if not -sz <= z < sz:
            raise IndexError(f"index {z} is out of bounds for axis 2 with size {sz}")
        z %= sz
        return z, z + 1, 0
    if isinstance(zkey, slice):
        r = range(*zkey.indices(sz))
        if len(r) == 0:
            return 0, 0, slice(0, 0)
        lo, hi = min(r[0], r[-1]), max(r[0], r[-1])
        start, stop = r[0] - lo, r[-1] - lo + (1 if r.step > 0 else -1)
        return lo, hi + 1, slice(start, stop if stop >= 0 else None, r.step)
    if isinstance(zkey, (list, tuple, np.ndarray)):
        arr = np.asarray(zkey)
        if arr.dtype.kind not in "ui" or arr.size == 0:
            return None
        arr = np.where(arr < 0, arr + sz, arr)
        if arr.min() < 0 or arr.max() >= sz:
            raise IndexError(f"index out of bounds for axis 2 with size {sz}")
        lo = int(arr.min())
        return lo, int(arr.max()) + 1, arr - lo
    return None


def compressa(*args, **kwargs) -> CrackleArray:
    """``compress`` returning a CrackleArray."""
    return CrackleArray(core.compress(*args, **kwargs))
