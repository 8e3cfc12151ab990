"""Decode the reference streams in ../shared/streams (read in place, never copied into the repo).

* valid/: every stream decodes exactly to its ``expected`` array (values, dtype, 3D shape, memory
  order from the header's F bit), ``header()`` matches an independent parse of the header bytes,
  ``verify()`` passes, and ``labels()`` agrees with the data.
* reference-bugs/: streams the reference writes but cannot decode; we must raise DecodeError.
"""

from __future__ import annotations

import numpy as np
import pytest

import crackle_codec
from conftest import assert_decoded_equal, read_shared_stream, shared_stream_names

VALID = shared_stream_names("valid")
BUGS = shared_stream_names("reference-bugs")


def _params(names, sub):
    if names:
        return names
    return [pytest.param(None, marks=pytest.mark.skip(reason=f"../shared/streams/{sub} not present (fresh clone)"))]


# Placeholder expected (README: "op_mode_pool expects only that decoding succeeds").
DECODE_ONLY = {"v055__op_mode_pool"}


def raw_header(data: bytes) -> dict:
    """Independent parse of the header bytes (FORMAT.md section 2), for cross-checking ``header()``."""
    version = data[4]
    ff = int.from_bytes(data[5:7], "little")
    sx, sy, sz = (int.from_bytes(data[o:o + 4], "little") for o in (7, 11, 15))
    hb = 24 if version == 0 else 29
    nlb = int.from_bytes(data[20:24] if version == 0 else data[20:28], "little")
    return dict(
        version=version,
        data_width=1 << (ff & 3),
        stored_width=1 << ((ff >> 2) & 3),
        crack_format=(ff >> 4) & 1,
        label_format=(ff >> 5) & 3,
        fortran=bool((ff >> 7) & 1),
        signed=bool((ff >> 8) & 1),
        markov=(ff >> 9) & 15,
        unsorted=bool((ff >> 13) & 1),
        remapped=bool((ff >> 14) & 1),
        shape=(sx, sy, sz),
        header_bytes=hb,
        label_bytes=nlb,
    )


def decodes_to(data: bytes, expected: np.ndarray) -> np.ndarray:
    """What a correct decoder returns for this stream, from its ``expected`` input array.

    ``expected`` is what the writer was given. For signed streams the reference's writer may have
    picked a stored width too narrow for the values (FORMAT 5.3) and stored them wrapped; a correct
    decoder sign-extends each stored value (so e.g. v055__i32_m5 holds -36000..0 but can only
    decode to the values wrapped to 1 byte). A single-label volume takes the reference's Python
    shortcut (FORMAT 10.6: the stored value zero-extended), which for these streams gives back the
    input itself. Computed from the header bytes and ``expected`` only.
    """
    h = raw_header(data)
    exp = expected.reshape(expected.shape + (1,) * (3 - expected.ndim))
    if not h["signed"] or h["stored_width"] >= h["data_width"] or np.unique(exp).size <= 1:
        return exp
    bits = 8 * h["stored_width"]
    v = exp.astype(np.int64)
    wrapped = ((v + (1 << (bits - 1))) & ((1 << bits) - 1)) - (1 << (bits - 1))
    return wrapped.astype(exp.dtype)


@pytest.mark.parametrize("name", _params(VALID, "valid"))
def test_valid_stream_decodes(name):
    data, expected = read_shared_stream("valid", name)
    out = crackle_codec.decompress(data)
    if name in DECODE_ONLY:
        h = raw_header(data)
        assert out.shape == h["shape"]
        return
    order = "F" if raw_header(data)["fortran"] else "C"
    assert_decoded_equal(out, decodes_to(data, expected), order, what=name)
    # the same from a bytearray, a memoryview and a uint8 array
    for wrapped in (bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        np.testing.assert_array_equal(crackle_codec.decompress(wrapped), out)
    np.testing.assert_array_equal(crackle_codec.decompress(data, parallel=2), out)


@pytest.mark.parametrize("name", _params(VALID, "valid"))
def test_valid_stream_z_ranges(name):
    data, _ = read_shared_stream("valid", name)
    full = crackle_codec.decompress(data)
    sz = full.shape[2]
    for z in [slice(1, sz - 1), slice(sz // 2, None), slice(0, 1), -1, 0]:
        if isinstance(z, int) and sz == 0:
            with pytest.raises(IndexError):
                crackle_codec.decompress(data, z=z)
            continue
        part = crackle_codec.decompress(data, z=z)
        want = full[:, :, z] if isinstance(z, slice) else full[:, :, z % sz:z % sz + 1]
        assert_decoded_equal(part, want, None, what=f"{name} z={z}")


@pytest.mark.parametrize("name", _params(VALID, "valid"))
def test_valid_stream_header(name):
    data, expected = read_shared_stream("valid", name)
    raw = raw_header(data)
    h = crackle_codec.header(data)
    assert h.version == raw["version"]
    assert h.shape == raw["shape"]
    assert h.dtype == np.dtype(("i" if raw["signed"] else "u") + str(raw["data_width"]))
    assert h.order == ("F" if raw["fortran"] else "C")
    assert h.label_format == {0: "flat", 2: "pins"}[raw["label_format"]]
    assert h.crack_format == {0: "impermissible", 1: "permissible"}[raw["crack_format"]]
    assert h.markov_model_order == raw["markov"]
    assert h.stored_width == raw["stored_width"]
    assert h.unsorted == raw["unsorted"]
    assert h.remapped == raw["remapped"]
    assert h.header_bytes == raw["header_bytes"]
    assert h.label_bytes == raw["label_bytes"]
    assert h.nbytes == len(data)
    sx, sy, sz = raw["shape"]
    if sx * sy * sz == 0:
        assert h.voxels == 0
    else:
        assert h.index_bytes == 4 * sz + (4 if h.has_crcs else 0)
        if raw["markov"]:
            assert h.markov_model_bytes == (5 * 4 ** raw["markov"] + 7) // 8
        assert h.crc_bytes == (4 * (sz + 1) if h.has_crcs else 0)
    # v0 and the 0.17.x v1-without-CRCs form have no CRCs; every 0.55.0 stream has them
    if name.startswith("v055__") and sx * sy * sz:
        assert h.has_crcs
    if raw["version"] == 0 or name.startswith("v0173__"):
        assert not h.has_crcs
    if name not in DECODE_ONLY:
        assert h.dtype == expected.dtype
        assert h.shape == expected.reshape(expected.shape + (1,) * (3 - expected.ndim)).shape


@pytest.mark.parametrize("name", _params(VALID, "valid"))
def test_valid_stream_verifies(name):
    data, _ = read_shared_stream("valid", name)
    crackle_codec.verify(data)
    crackle_codec.verify(data, parallel=2)


@pytest.mark.parametrize("name", _params(VALID, "valid"))
def test_valid_stream_labels(name):
    """``labels`` is sorted, distinct, in the volume's dtype, and equals the distinct decoded values.

    What holds for derived (remap/mask) streams too: our labels() deduplicates, and in every
    stream here the list matches the data exactly (the reference's own list for op_remap_* and
    op_mask has duplicates or stale entries; ours must not).
    """
    data, expected = read_shared_stream("valid", name)
    got = crackle_codec.labels(data)
    h = crackle_codec.header(data)
    assert got.dtype == h.dtype
    assert got.ndim == 1
    assert np.all(got[1:] > got[:-1]), "labels must be sorted and distinct"
    decoded = crackle_codec.decompress(data)
    np.testing.assert_array_equal(got, np.unique(decoded), err_msg=f"{name}: labels() != unique(decompress())")
    if name not in DECODE_ONLY:
        np.testing.assert_array_equal(got, np.unique(decodes_to(data, expected)))
    assert crackle_codec.num_labels(data) == got.size
    for v in got[:20]:
        assert crackle_codec.contains(data, int(v)), f"{name}: contains({v}) is False"
    present = set(int(v) for v in got)
    info = np.iinfo(h.dtype)
    for v in (int(info.min), -1, 0, 1, 12345, int(info.max)):
        if info.min <= v <= info.max:
            assert crackle_codec.contains(data, v) == (v in present), f"{name}: contains({v})"


@pytest.mark.parametrize("name", _params(VALID, "valid"))
def test_valid_stream_matches_reference_decoder(name):
    """Where the reference can read the stream, our output equals crackle.decompress exactly."""
    crackle = pytest.importorskip("crackle", reason="reference package crackle-codec not installed")
    data, _ = read_shared_stream("valid", name)
    try:
        ref = crackle.decompress(data)
    except Exception as exc:  # v0 empty (24 bytes) and 0.17.x v1-without-CRC streams
        assert name.endswith(("__empty", "__empty_z", "__v1_nocrc")), f"reference cannot read {name}: {exc}"
        return
    ours = crackle_codec.decompress(data)
    order = "F" if crackle.header(data).fortran_order else "C"
    assert_decoded_equal(ours, ref, order, what=f"{name} vs reference")


@pytest.mark.parametrize("name", _params(BUGS, "reference-bugs"))
def test_reference_bug_streams_rejected(name):
    data, _ = read_shared_stream("reference-bugs", name)
    with pytest.raises(crackle_codec.DecodeError):
        crackle_codec.decompress(data)
    with pytest.raises(crackle_codec.DecodeError):
        crackle_codec.decompress(data, parallel=2)
    with pytest.raises(crackle_codec.DecodeError):
        crackle_codec.verify(data)
    sz = raw_header(data)["shape"][2]
    # no z range may yield silently wrong voxels either: each range raises or matches ``expected``
    _, expected = read_shared_stream("reference-bugs", name)
    for z0 in range(0, sz, max(1, sz // 4)):
        try:
            part = crackle_codec.decompress(data, z=slice(z0, z0 + 1))
        except crackle_codec.DecodeError:
            continue
        np.testing.assert_array_equal(part, expected[:, :, z0:z0 + 1], err_msg=f"{name} z={z0}")
