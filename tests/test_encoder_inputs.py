"""Encoder input checks: every input gives a clear TypeError/ValueError or a correct stream.

Non-integer dtypes, object arrays, >3D arrays, 0-d arrays, non-arrays, bad options -> TypeError or
ValueError with a message. Read-only, non-contiguous, negative-stride, zero-stride, big-endian,
subclassed and zero-size inputs -> a stream that decodes to exactly the input. Dimensions beyond
the format's limits -> ValueError, before the input is copied (checked in a memory-capped child).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import crackle_codec as cc

SANITIZED = os.environ.get("CRACKLE_SANITIZED") == "1"


def _logical(arr: np.ndarray) -> np.ndarray:
    out = np.asarray(arr)
    while out.ndim > 3 and out.shape[-1] == 1:
        out = out[..., 0]
    out = out.reshape(out.shape + (1,) * (3 - out.ndim))
    return out.astype(np.uint8) if out.dtype == np.bool_ else out


def _roundtrip(arr, **kwargs) -> bytes:
    before = np.array(arr, copy=True)
    stream = cc.compress(arr, **kwargs)
    assert isinstance(stream, bytes)
    out = cc.decompress(stream)
    want = _logical(arr)
    assert out.shape == want.shape, (out.shape, want.shape)
    assert out.dtype == want.dtype.newbyteorder("=") or out.dtype == want.dtype, (out.dtype, want.dtype)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(np.asarray(arr), before)  # input untouched
    cc.verify(stream)
    return stream


def _labels(shape=(9, 7, 5), dtype=np.uint32, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.zeros(shape, dtype=dtype)
    if a.size:
        a[...] = rng.integers(0, 4, size=shape).astype(dtype)
        a[: shape[0] // 2] = 3
    return a


# --------------------------------------------------------------------------- refused inputs

BAD_DTYPES = [np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128, object,
              "U3", "S3", "M8[s]", "m8[ms]", "V4", [("a", "u1"), ("b", "u2")]]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: str(np.dtype(d)))
def test_non_integer_dtypes_raise_type_error(dtype):
    arr = np.zeros((3, 2, 2), dtype=dtype)
    with pytest.raises(TypeError, match=r"\S"):
        cc.compress(arr)


def test_object_array_of_ints_is_refused():
    arr = np.array([[1, 2], [3, 2**70]], dtype=object)
    with pytest.raises(TypeError):
        cc.compress(arr)


@pytest.mark.parametrize("obj", [[1, 2, 3], (1, 2), b"abc", "abc", None, 3, np.uint8(3), memoryview(b"ab")],
                         ids=lambda o: type(o).__name__)
def test_non_arrays_raise_type_error(obj):
    with pytest.raises(TypeError):
        cc.compress(obj)


@pytest.mark.parametrize("shape", [(2, 2, 2, 2), (1, 2, 3, 4), (2, 3, 4, 5, 1), (3, 1, 1, 2), ()])
def test_bad_ranks_raise_value_error(shape):
    with pytest.raises(ValueError, match=r"\S"):
        cc.compress(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("kwargs,exc", [
    ({"markov_model_order": -1}, ValueError), ({"markov_model_order": 16}, ValueError),
    ({"markov_model_order": 1.5}, ValueError), ({"markov_model_order": True}, ValueError),
    ({"markov_model_order": "3"}, ValueError), ({"allow_pins": 1}, TypeError),
    ({"allow_pins": "yes"}, TypeError), ({"parallel": -1}, ValueError), ({"parallel": 1.0}, ValueError),
    ({"parallel": True}, ValueError),
])
def test_bad_options(kwargs, exc):
    with pytest.raises(exc):
        cc.compress(_labels(), **kwargs)


# ---------------------------------------------------------------------- accepted, any layout

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32,
                                   np.int64, np.bool_, ">u2", ">i4", ">u8", "<u4"], ids=str)
def test_every_integer_dtype_and_byte_order(dtype):
    a = _labels(dtype=np.uint8).astype(dtype)
    if np.dtype(dtype).kind == "i":
        a = (a.astype(np.int64) - 2).astype(dtype)
    _roundtrip(a)
    _roundtrip(np.asfortranarray(a), allow_pins=True, markov_model_order=3)


def test_extreme_values():
    for dtype in (np.uint64, np.int64, np.int8, np.uint32):
        info = np.iinfo(dtype)
        a = np.full((5, 4, 3), info.max, dtype=dtype)
        a[1:3, 1:3, :] = info.min
        a[0, 0, 0] = 0
        _roundtrip(a)
        _roundtrip(a, allow_pins=True)


def test_read_only_inputs():
    a = _labels()
    a.setflags(write=False)
    _roundtrip(a)
    f = np.asfortranarray(_labels())
    f.setflags(write=False)
    _roundtrip(f, markov_model_order=2)
    buf = bytes(_labels(dtype=np.uint16).tobytes())  # read-only memory behind the array
    ro = np.frombuffer(buf, dtype=np.uint16).reshape(9, 7, 5)
    _roundtrip(ro)


@pytest.mark.parametrize("view", [
    lambda a: a[::2, ::3, :], lambda a: a[:, :, ::2], lambda a: a[::-1], lambda a: a[:, ::-1, ::-1],
    lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(1, 2, 0)[1:, :, 1:], lambda a: a[..., 1],
    lambda a: np.asfortranarray(a)[1:-1, ::2], lambda a: a[:, 3:4, :], lambda a: a[2],
], ids=["step-x", "step-z", "reverse-x", "reverse-yz", "transpose", "transpose-crop", "2d-slice",
        "fortran-crop", "one-row", "2d-first"])
def test_non_contiguous_views(view):
    base = _labels()
    v = view(base)
    assert not (v.flags.c_contiguous and v.flags.f_contiguous) or v.size <= 1 or True
    _roundtrip(v)
    _roundtrip(view(np.asfortranarray(base)), allow_pins=True)


def test_zero_stride_and_subclass_inputs():
    _roundtrip(np.broadcast_to(np.uint16(9), (6, 5, 4)))
    _roundtrip(np.broadcast_to(np.arange(6, dtype=np.uint8)[:, None, None], (6, 5, 4)))
    m = np.ma.masked_array(_labels(), mask=False)
    stream = cc.compress(m)
    np.testing.assert_array_equal(cc.decompress(stream), _labels())
    # an unaligned buffer
    raw = np.zeros(9 * 7 * 5 * 4 + 1, np.uint8)
    una = raw[1:].view(np.uint32).reshape(9, 7, 5)
    una[...] = _labels()
    assert not una.flags.aligned
    _roundtrip(una)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (0, 5, 5), (5, 0, 5), (5, 5, 0), (0, 0, 0), (0, 1, 1),
                                   (3, 0, 7, 1)])
def test_zero_size_axes(shape):
    for dtype in (np.uint8, np.int32, np.uint64):
        a = np.zeros(shape, dtype=dtype)
        stream = _roundtrip(a)
        assert cc.header(stream).voxels == 0
        assert cc.decompress(stream).shape == _logical(a).shape
        _roundtrip(a, allow_pins=True, markov_model_order=4)


def test_one_wide_and_long_axes():
    for shape in [(1, 1, 1), (1, 1, 300), (300, 1, 1), (1, 300, 1), (257, 2, 2), (2, 257, 2), (1, 70000)]:
        a = np.zeros(shape, np.uint8)
        a.flat[:: max(1, a.size // 7)] = 3
        _roundtrip(a)
        _roundtrip(a, allow_pins=True, markov_model_order=1)


# ------------------------------------------------------------------------ limits, memory-capped

_CHILD = textwrap.dedent(r'''
    import json, resource, sys
    import numpy as np
    with open("/proc/self/status") as f:
        vm = [int(l.split()[1]) for l in f if l.startswith("VmSize:")][0] * 1024
    if sys.argv[1] != "0":
        cap = vm + (int(sys.argv[1]) << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import crackle_codec as cc
    out = {}
    for shape in json.loads(sys.argv[2]):
        a = np.broadcast_to(np.uint8(7), tuple(shape))
        try:
            cc.compress(a)
            out[str(shape)] = "ok"
        except BaseException as e:
            out[str(shape)] = type(e).__name__ + ": " + str(e)[:100]
    print(json.dumps(out))
''')


def test_huge_dimensions_refused_before_copying():
    """Dimensions past the format's limits (an axis >= 2^32, a slice of >= 2^32 pixels) raise
    ValueError at once -- not after copying a zero-stride view into gigabytes (finding F6)."""
    if SANITIZED:
        pytest.skip("RLIMIT_AS cannot be combined with AddressSanitizer")
    shapes = [[2**32], [2**32, 1, 1], [1, 2**32], [1, 1, 2**32 + 5], [2**31, 2, 1], [65536, 65536, 1]]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(cc.__file__).resolve().parents[1])] + sys.path)
    proc = subprocess.run([sys.executable, "-c", _CHILD, "512", json.dumps(shapes)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    bad = {k: v for k, v in res.items() if not v.startswith("ValueError")}
    assert not bad, f"expected ValueError (no copy) for every shape, got {bad}"


@pytest.mark.parametrize("order", ["C", "F"])
def test_strided_and_unaligned_inputs_give_the_stream_of_a_contiguous_copy(order):
    """Views are read in place (strided rows and slices), unaligned buffers (e.g. off the wire) are
    copied first; either way the stream is that of the contiguous array."""
    rng = np.random.default_rng(5)
    big = np.repeat(rng.integers(0, 4, size=(12, 10, 9)), 2, axis=0).astype(np.uint32)
    big = np.asarray(big, order=order)
    view = big[3:20, 1:9, 2:8]
    assert cc.compress(view) == cc.compress(np.array(view, order="K"))
    raw = bytearray(view.nbytes + 1)
    unaligned = np.ndarray(view.shape, dtype=view.dtype, buffer=memoryview(raw)[1:], order=order)
    unaligned[...] = view
    assert not unaligned.flags.aligned
    assert cc.compress(unaligned) == cc.compress(np.array(view, order=order))
