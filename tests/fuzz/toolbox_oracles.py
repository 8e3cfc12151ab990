"""Oracles for the toolbox entry points (issue #13, groups 4-6) on arbitrary streams.

``check_toolbox(stream, vol)`` runs the stream rewrites (mask, mask_except, add_scalar, astype,
refit, renumber, ascontiguousarray, reencode), the assembling functions (zsplit, zshatter,
zstack, array_equal) and CrackleArray slicing on ``stream``; ``vol`` is its full decode, or
``oracles.FAILED`` when it does not decode. It raises ``oracles.Finding`` when

* an entry point raises anything but ``DecodeError`` (or MemoryError);
* the input decodes and an output decodes to other voxels than the operation applied to ``vol``,
  or does not decode;
* the input does not decode, yet every output of an operation decodes (a corrupt stream laundered
  into a valid one: rewrites check the labels CRC and copy the crack codes with their CRCs), or
  ``array_equal`` finds it equal to a valid stream.
"""

from __future__ import annotations

import numpy as np

import crackle_codec as cc

from . import oracles

FAILED = oracles.FAILED
call = oracles.call


def _decodes(stream) -> object:
    return call(cc.decompress, stream)


def _expect(name: str, out, expected: np.ndarray) -> None:
    got = _decodes(out)
    if got is FAILED:
        raise oracles.Finding(f"{name}: output of a valid stream does not decode")
    if got.shape != expected.shape or not np.array_equal(got, expected):
        raise oracles.Finding(f"{name}: output decodes to other voxels")


def _no_laundering(name: str, outs) -> None:
    if all(_decodes(o) is not FAILED for o in outs):
        raise oracles.Finding(f"{name}: a stream that does not decode became one that does")


def check_toolbox(stream: bytes, vol, zsel: int = 0) -> None:
    head = call(cc.header, stream)
    if head is FAILED:
        for fn, args in ((cc.mask, ([0],)), (cc.astype, (np.uint64,)), (cc.zshatter, ()), (cc.reencode, (1,)),
                         (cc.refit, ()), (cc.ascontiguousarray, ())):
            if call(fn, stream, *args) is not FAILED:
                raise oracles.Finding(f"{fn.__name__} accepted a stream whose header is invalid")
        return
    if head.voxels * head.dtype.itemsize > oracles.MAX_OUTPUT_BYTES or head.voxels == 0:
        return
    labels = call(cc.labels, stream)
    if labels is FAILED or len(labels) > 4096:
        return
    first = int(labels[0]) if len(labels) else 0
    dtype = head.dtype
    wide = np.dtype(np.int64 if dtype.kind == "i" else np.uint64)
    sz = head.shape[2]
    z = zsel % sz
    other_order = 1 if head.markov_model_order != 1 else 0

    outs = {
        "mask": call(cc.mask, stream, [first]),
        "mask_except": call(cc.mask_except, stream, [first], 1),
        "add_scalar": call(cc.add_scalar, stream, 3),
        "astype": call(cc.astype, stream, wide),
        "refit": call(cc.refit, stream),
        "ascontiguousarray": call(cc.ascontiguousarray, stream),
        "reencode": call(cc.reencode, stream, other_order),
    }
    renumbered = call(cc.renumber, stream, 1)
    outs["renumber"] = renumbered if renumbered is FAILED else renumbered[0]
    parts = call(cc.zsplit, stream, z)
    stacked = call(cc.zstack, [stream, stream])
    arr = call(cc.CrackleArray, stream)
    piece = FAILED if arr is FAILED else call(arr.__getitem__, (slice(None), slice(None), z))

    if vol is FAILED:
        for name, out in outs.items():
            if out is not FAILED:
                _no_laundering(name, [out])
        if parts is not FAILED:
            _no_laundering("zsplit", parts)
        if stacked is not FAILED:
            _no_laundering("zstack", [stacked])
        # array_equal says True only after every slice of both streams decoded with its CRCs.
        if call(cc.array_equal, stream, cc.compress(np.zeros(head.shape, dtype))) is True:
            raise oracles.Finding("array_equal: a stream that does not decode equals one that does")
        return

    for name, out in outs.items():
        if out is FAILED:
            raise oracles.Finding(f"{name} failed on a stream that decodes: {oracles._last_error[0]}")
    _expect("mask", outs["mask"], np.where(vol == first, dtype.type(0), vol))
    _expect("mask_except", outs["mask_except"], np.where(vol == first, vol, dtype.type(1)))
    with np.errstate(over="ignore"):
        _expect("add_scalar", outs["add_scalar"], vol + dtype.type(3))
    _expect("astype", outs["astype"], vol.astype(wide))
    _expect("refit", outs["refit"], vol)
    _expect("ascontiguousarray", outs["ascontiguousarray"], vol)
    _expect("reencode", outs["reencode"], vol)
    mapping = renumbered[1]
    if not np.isin(np.unique(vol), list(mapping)).all():
        raise oracles.Finding("renumber: its mapping misses a voxel value")
    keys = np.array(sorted(mapping), dtype=vol.dtype)
    _expect("renumber", outs["renumber"], np.searchsorted(keys, vol) + 1)
    if parts is FAILED or stacked is FAILED or piece is FAILED:
        raise oracles.Finding("zsplit/zstack/CrackleArray failed on a stream that decodes")
    for got, want in zip(parts, (vol[:, :, :z], vol[:, :, z:z + 1], vol[:, :, z + 1:])):
        _expect("zsplit", got, want)
    _expect("zstack", stacked, np.concatenate([vol, vol], axis=2))
    if not np.array_equal(piece, vol[:, :, z]):
        raise oracles.Finding("CrackleArray[:, :, z] differs from the decode")
    if call(cc.array_equal, stream, cc.compress(vol)) is not True:
        raise oracles.Finding("array_equal(stream, compress(decode(stream))) is not True")
    other = vol.copy()
    other.flat[zsel % other.size] ^= 1
    if call(cc.array_equal, stream, cc.compress(other, allow_pins=True)) is not False:
        raise oracles.Finding("array_equal: a stream equals the encoding of other voxels")
