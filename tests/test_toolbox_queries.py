"""The reference's stream queries, one-label decoding and geometry (issue #13, groups 1-3).

The reference crackle-codec is the oracle where its answer is the documented one; where
docs/api.md lists a deliberate difference (bounding boxes and crops on PINS streams, the
connectivity graph's border bits on permissible streams, point_cloud's surface), the answer is
checked against numpy on the decoded volume instead. Streams are the reference's own, FLAT and
PINS, with and without a markov model, of random volumes and of crops of the shared real volumes.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import crackle_codec as cc
from conftest import DATA_DIR, load_volume
from fuzz import oracles

crackle = pytest.importorskip("crackle", reason="the reference crackle-codec is not installed")

GROUP_1_3 = [
    "labels", "num_labels", "contains", "contains_range", "min", "max", "labels_for_z_range", "nbytes", "header",
    "components", "component_lengths", "crack_codes", "decompress", "each", "load", "voxel_counts",
    "bounding_boxes", "centroids", "point_cloud", "edge_labels", "contacts", "voxel_connectivity_graph",
    "component_map", "select_enclosed_points", "signed_distance_to_boundary", "to_parquet",
    "connected_components",
]


def _random_volume(seed: int) -> np.ndarray:
    rs = np.random.RandomState(seed)
    shape = (rs.randint(1, 20), rs.randint(1, 20), rs.randint(1, 9))
    if seed % 3 == 0:
        vol = rs.randint(0, 3, shape).astype(np.uint16)
    else:
        vol = np.zeros(shape, np.uint32)
        for _ in range(rs.randint(0, 8)):
            x, y, z = (rs.randint(0, s) for s in shape)
            vol[x:x + rs.randint(1, 8), y:y + rs.randint(1, 8), z:z + rs.randint(1, 5)] = rs.randint(0, 6)
    return np.asarray(vol, order="F" if seed % 2 else "C")


def _streams():
    for seed in range(8):
        vol = _random_volume(seed)
        for pins in (False, True):
            for order in (0, 3):
                yield f"r{seed}-{'pins' if pins else 'flat'}-m{order}", vol, pins, order


CASES = list(_streams())


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def case(request):
    _, vol, pins, order = request.param
    return vol, crackle.compress(vol, allow_pins=pins, markov_model_order=order)


def _pins(stream) -> bool:
    return cc.header(stream).label_format == "pins"


def _box(vol, label):
    where = np.argwhere(vol == label)
    return np.concatenate([where.min(axis=0), where.max(axis=0)])


# ------------------------------------------------------------------------------ signatures

@pytest.mark.parametrize("name", GROUP_1_3)
def test_signature_matches_the_reference(name):
    ours = inspect.signature(getattr(cc, name)).parameters
    ref = inspect.signature(getattr(crackle, name)).parameters
    positional = [p for p in ours.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in positional]
    if name == "load":  # its first parameter (a path, or a file object: #13b) is passed positionally
        names, ref = names[1:], list(ref)[1:]
    assert names == list(ref), f"{name}: {list(ours)} vs {list(ref)}"


def test_header_has_the_reference_field_names():
    vol = np.zeros((5, 6, 7), np.uint16, order="F")
    vol[1:3] = 300
    b = crackle.compress(vol, markov_model_order=2)
    ours, ref = cc.header(b), crackle.header(b)
    for field in ("sx", "sy", "sz", "data_width", "stored_data_width", "is_sorted", "fortran_order", "format_version",
                  "num_label_bytes", "signed", "is_remapped", "markov_model_order"):
        assert getattr(ours, field) == getattr(ref, field), field
    assert ours.stored_dtype == np.dtype(ref.stored_dtype)
    broken = bytearray(b)
    broken[28] ^= 0xFF  # the header CRC8
    with pytest.raises(cc.DecodeError):
        cc.header(bytes(broken))
    assert cc.header(bytes(broken), ignore_crc_check=True).shape == (5, 6, 7)


# ---------------------------------------------------------------------------- stream queries

def test_stream_queries_match_the_reference(case):
    vol, b = case
    assert np.array_equal(cc.labels(b), crackle.labels(b))
    assert cc.num_labels(b) == crackle.num_labels(b)
    assert (cc.min(b), cc.max(b)) == (crackle.min(b), crackle.max(b))
    assert cc.nbytes(b) == crackle.nbytes(b) == vol.nbytes
    assert cc.component_lengths(b) == crackle.component_lengths(b)
    for key, part in crackle.components(b).items():
        assert bytes(cc.components(b)[key]) == bytes(part), key
    if cc.header(b).markov_model_order == 0:  # the reference misplaces the slices after a model
        assert cc.crack_codes(b) == crackle.crack_codes(b)
    assert b"".join(cc.crack_codes(b)) in b
    for lo in (0, 1, 3):
        assert np.array_equal(cc.contains_range(b, lo, lo + 3), np.sort(crackle.contains_range(b, lo, lo + 3)))
    sz = vol.shape[2]
    for z0 in range(sz):
        for z1 in (z0 + 1, sz):
            expected = np.unique(vol[:, :, z0:z1])
            assert np.array_equal(cc.labels_for_z_range(b, z0, z1), expected)
            if not _pins(b):
                assert np.array_equal(cc.labels_for_z_range(b, z0, z1), crackle.labels_for_z_range(b, z0, z1))
    assert cc.labels_for_z_range(b, 1, 1).size == 0


def test_stream_query_errors():
    b = crackle.compress(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    with pytest.raises(IndexError):
        cc.labels_for_z_range(b, 0, 5)
    with pytest.raises(TypeError):
        cc.contains_range(b, 1.5, 3)
    with pytest.raises(cc.DecodeError):
        cc.labels_for_z_range(b[:-3], 0, 1)
    with pytest.raises(TypeError):
        cc.nbytes("not a stream")


# ------------------------------------------------------------------------- one-label decoding

def test_decompress_label_matches_the_reference(case):
    vol, b = case
    for label in np.unique(vol).tolist() + [77]:
        full = cc.decompress(b, label)
        ref = crackle.decompress(b, label=label)
        assert full.dtype == ref.dtype == bool and full.flags.f_contiguous == ref.flags.f_contiguous
        assert np.array_equal(full, ref) and np.array_equal(full, vol == label)
        cropped = cc.decompress(b, label, crop=True)
        if label == 77:
            assert cropped.shape == crackle.decompress(b, label=77, crop=True).shape == (0, 0, 0)
            continue
        zs = np.flatnonzero((vol == label).any(axis=(0, 1)))
        assert np.array_equal(cropped, (vol == label)[:, :, zs[0]:zs[-1] + 1])
        if not _pins(b):  # the reference's PINS crop may keep empty slices
            assert np.array_equal(cropped, crackle.decompress(b, label=label, crop=True))
        assert np.array_equal(cc.decompress(b, label, verify=False), full)
        assert np.array_equal(cc.decompress(b, label, z=slice(0, 1)), full[:, :, :1])


def test_decompress_keeps_the_full_decode(case):
    vol, b = case
    assert np.array_equal(cc.decompress(b), vol)
    assert np.array_equal(cc.decompress(b, None, 1), vol)


def test_each_matches_the_reference(case):
    vol, b = case
    crop_ok = not _pins(b)
    ours = list(cc.each(b, crop=crop_ok))
    ref = list(crackle.each(b, crop=crop_ok))
    assert [int(l) for l, _ in ours] == [int(l) for l, _ in ref]
    for (_, a), (_, r) in zip(ours, ref):
        assert a.shape == r.shape and np.array_equal(a, r)
    for (label, image) in cc.each(b, labels=[int(vol.flat[0]), 77]):
        box = _box(vol, label)
        assert np.array_equal(image, (vol == label)[box[0]:box[3] + 1, box[1]:box[4] + 1, box[2]:box[5] + 1])
    ours = [(int(l), n, img.copy()) for l, n, img in cc.each(b, multi=True)]
    ref = [(int(l), n, img.copy()) for l, n, img in crackle.each(b, multi=True)]
    assert [o[:2] for o in ours] == [r[:2] for r in ref]
    assert all(np.array_equal(o[2], r[2]) for o, r in zip(ours, ref))


def test_load_with_label(tmp_path):
    vol = _random_volume(4)
    path = tmp_path / "v.ckl"
    cc.save(vol, path)
    label = int(vol.flat[0])
    assert np.array_equal(cc.load(path, label), vol == label)
    assert np.array_equal(cc.load(path), vol)


# ------------------------------------------------------------------------------- geometry

def _naive_connectivity(vol, connectivity):
    pad = np.pad(vol, 1, mode="edge")
    c = pad[1:-1, 1:-1, 1:-1]
    neighbours = [pad[2:, 1:-1, 1:-1], pad[:-2, 1:-1, 1:-1], pad[1:-1, 2:, 1:-1], pad[1:-1, :-2, 1:-1],
                  pad[1:-1, 1:-1, 2:], pad[1:-1, 1:-1, :-2]]
    out = np.zeros(vol.shape, np.uint8)
    for bit, n in enumerate(neighbours[:connectivity]):
        out |= (n == c).astype(np.uint8) << bit
    return out


def test_counts_boxes_centroids(case):
    vol, b = case
    values, counts = np.unique(vol, return_counts=True)
    assert cc.voxel_counts(b) == crackle.voxel_counts(b) == dict(zip(values.tolist(), counts.tolist()))
    boxes = cc.bounding_boxes(b)
    raw = cc.bounding_boxes(b, no_slice_conversion=True)
    centroids, ref_centroids = cc.centroids(b), crackle.centroids(b)
    for v in values.tolist():
        box = _box(vol, v)
        assert raw[v].dtype == np.uint32 and raw[v].tolist() == box.tolist()
        assert boxes[v] == tuple(slice(int(box[a]), int(box[a + 3]) + 1) for a in range(3))
        assert cc.voxel_counts(b, v) == crackle.voxel_counts(b, label=v)
        assert cc.bounding_boxes(b, v) == boxes[v]
        np.testing.assert_allclose(centroids[v], ref_centroids[v])
        np.testing.assert_allclose(cc.centroids(b, v), np.argwhere(vol == v).mean(axis=0))
    for fn in (cc.voxel_counts, cc.bounding_boxes, cc.centroids, cc.point_cloud):
        with pytest.raises(ValueError, match="not contained"):
            fn(b, 77)


def test_neighbour_queries(case):
    vol, b = case
    assert cc.edge_labels(b) == crackle.edge_labels(b)
    assert cc.contacts(b) == crackle.contacts(b)
    assert cc.contacts(b, (2, 3, 5)) == crackle.contacts(b, anisotropy=(2, 3, 5))
    for connectivity in (4, 6):
        graph = cc.voxel_connectivity_graph(b, connectivity)
        assert graph.flags.f_contiguous and np.array_equal(graph, _naive_connectivity(vol, connectivity))
        head = cc.header(b)
        if head.order == "F" and head.crack_format == "impermissible":  # the reference's own quirks elsewhere
            assert np.array_equal(graph, crackle.voxel_connectivity_graph(b, connectivity=connectivity))
    assert cc.component_map(b, b) == crackle.component_map(b, b)
    # Threads share the slices out in ranges: the same answer whatever the split.
    assert cc.contacts(b, parallel=3) == cc.contacts(b, parallel=1)
    for connectivity in (4, 6):
        assert np.array_equal(cc.voxel_connectivity_graph(b, connectivity, parallel=3),
                              _naive_connectivity(vol, connectivity))
    rs = np.random.RandomState(vol.size)
    points = rs.randint(-1, max(vol.shape) + 1, (40, 3))
    for v in np.unique(vol).tolist():
        assert np.array_equal(cc.select_enclosed_points(b, v, points), crackle.select_enclosed_points(b, v, points))


def test_point_cloud_is_the_surface(case):
    vol, b = case
    every = cc.point_cloud(b)
    assert 0 not in every
    threaded = cc.point_cloud(b, parallel=3)  # slice ranges on threads: the same arrays
    assert threaded.keys() == every.keys() and all(np.array_equal(threaded[v], every[v]) for v in every)
    for v in np.unique(vol).tolist():
        one = cc.point_cloud(b, v, skip_background=False)
        assert one.dtype == np.uint16 and one.shape[1] == 3
        assert len({tuple(p) for p in one.tolist()}) == len(one)  # each voxel once
        assert {tuple(p) for p in one.tolist()} == oracles.surface_truth(vol, v)
        if v:
            assert np.array_equal(every[v], one)
        sz = vol.shape[2]
        part = cc.point_cloud(b, v, z_start=1, z_end=sz - 1)
        assert {tuple(p) for p in part.tolist()} == {p for p in oracles.surface_truth(vol, v) if 1 <= p[2] < sz - 1}
    assert set(cc.point_cloud(b, [int(vol.flat[0])], skip_background=False)) == {int(vol.flat[0])}


def test_signed_distance_to_boundary(case):
    vol, b = case
    label = int(vol.flat[-1])
    rs = np.random.RandomState(1)
    points = rs.uniform(-1, max(vol.shape), (25, 3)).astype(np.float32)
    surface = np.array(sorted(oracles.surface_truth(vol, label)), dtype=np.float64)
    d = np.sqrt(((points[:, None, :].astype(np.float64) - surface[None]) ** 2).sum(axis=2)).min(axis=1)
    inside = cc.select_enclosed_points(b, label, np.floor(points).astype(np.int64))
    expected = np.where(inside, -(d + 1), d)
    np.testing.assert_allclose(cc.signed_distance_to_boundary(b, label, points), expected, rtol=1e-6)


def test_to_parquet(case):
    vol, b = case
    pa = pytest.importorskip("pyarrow")
    ours, ref = cc.to_parquet(b), crackle.to_parquet(b)
    assert ours.schema.names == ref.schema.names and ours.schema.types == ref.schema.types
    assert ours.column("label").to_pylist() == ref.column("label").to_pylist()
    assert ours.column("voxel_count").to_pylist() == ref.column("voxel_count").to_pylist()
    assert isinstance(ours, pa.Table)


def test_to_parquet_without_pyarrow(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install pyarrow"):
        cc.to_parquet(crackle.compress(np.ones((2, 2, 2), np.uint8)))


def _naive_components(vol, connectivity, binary_image=False):
    """cc3d's numbering (first voxel, x fastest) by a plain flood fill."""
    fg = vol != 0
    out = np.zeros(vol.shape, np.int64)
    offsets = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
               if (dx, dy, dz) != (0, 0, 0) and (connectivity == 26 or abs(dx) + abs(dy) + abs(dz) == 1)]
    n = 0
    for start in np.argwhere(fg.transpose(2, 1, 0))[:, ::-1]:  # x fastest
        start = tuple(start)
        if out[start]:
            continue
        n += 1
        out[start] = n
        stack = [start]
        while stack:
            p = stack.pop()
            for d in offsets:
                q = tuple(a + b for a, b in zip(p, d))
                if all(0 <= c < s for c, s in zip(q, vol.shape)) and fg[q] and not out[q] and (
                        binary_image or vol[q] == vol[p]):
                    out[q] = n
                    stack.append(q)
    return out


def test_connected_components(case):
    vol, b = case
    for connectivity in (6, 26):
        out, mapping = cc.connected_components(b, connectivity, return_mapping=True)
        labelled = cc.decompress(out)
        assert np.array_equal(labelled, _naive_components(vol, connectivity))
        assert np.array_equal(crackle.decompress(out), labelled)  # the reference reads it
        cc.verify(out)
        assert all(vol[tuple(np.argwhere(labelled == k)[0])] == v for k, v in mapping.items() if k)
        if not _pins(b) and cc.header(b).order == "F":  # the reference's own: FLAT only
            ref, ref_mapping = crackle.connected_components(b, connectivity=connectivity, return_mapping=True)
            assert np.array_equal(crackle.decompress(ref), labelled) and ref_mapping == mapping
        binary = cc.decompress(cc.connected_components(b, connectivity, True))
        assert np.array_equal(binary, _naive_components(vol, connectivity, binary_image=True))
    with pytest.raises(ValueError):
        cc.connected_components(b, connectivity=8)


# ---------------------------------------------------------------------------- real volumes

REAL = [("connectomics_512", (slice(100, 164), slice(200, 264), slice(300, 332))),
        ("flyem_medulla_ws", (slice(0, 48), slice(60, 108), slice(100, 132))),
        ("atlas_glasser_mni1mm", (slice(60, 124), slice(80, 144), slice(80, 112)))]


@pytest.mark.parametrize("name,region", REAL, ids=[r[0] for r in REAL])
@pytest.mark.parametrize("pins", [False, True], ids=["flat", "pins_m5"])
def test_real_crops(name, region, pins):
    if not DATA_DIR.is_dir():
        pytest.skip("../shared/data not present (fresh clone)")
    vol = np.asfortranarray(load_volume(name)[region])
    b = crackle.compress(vol, allow_pins=pins, markov_model_order=5 if pins else 0)
    values, counts = np.unique(vol, return_counts=True)
    assert cc.voxel_counts(b) == crackle.voxel_counts(b) == dict(zip(values.tolist(), counts.tolist()))
    cent = cc.centroids(b)
    raw = cc.bounding_boxes(b, no_slice_conversion=True)
    for v in values[:: max(1, len(values) // 25)].tolist():  # a spread of labels
        np.testing.assert_allclose(cent[v], np.argwhere(vol == v).mean(axis=0))
        assert raw[v].tolist() == _box(vol, v).tolist()
        assert np.array_equal(cc.decompress(b, v), vol == v)
        assert {tuple(p) for p in cc.point_cloud(b, v).tolist()} == oracles.surface_truth(vol, v)
    assert np.array_equal(cc.labels_for_z_range(b, 3, 9), np.unique(vol[:, :, 3:9]))
    assert cc.edge_labels(b) == crackle.edge_labels(b)
    assert cc.contacts(b) == crackle.contacts(b)
    assert np.array_equal(cc.voxel_connectivity_graph(b), _naive_connectivity(vol, 6))
    assert cc.component_map(b, b) == crackle.component_map(b, b)


# -------------------------------------------------------------------------- bounded memory

MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    import numpy as np
    import crackle_codec as cc
    from crackle_codec import _crackle

    def repeat_slices(one, n):
        # A FLAT stream of n copies of the single slice of `one` (FORMAT 1, 5.1): the index,
        # component counts, keys, crack codes and slice CRCs repeat; the labels CRC is redone.
        h = cc.header(one)
        info = _crackle.info(memoryview(one))
        H, I = h.header_bytes, 4
        index = one[H:H + I]
        lab = one[info["label_offset"]:info["label_offset"] + info["label_bytes"]]
        u = info["unique_offset"] - info["label_offset"]
        g = info["cc_per_grid_offset"] - info["label_offset"]
        k = info["keys_offset"] - info["label_offset"]
        labels = lab[:g] + lab[g:k] * n + lab[k:] * n
        codes_at = info["label_offset"] + info["label_bytes"]
        codes = one[codes_at:codes_at + h.crack_code_bytes]
        slice_crc = one[-4:]
        head = bytearray(one[:H])
        head[15:19] = n.to_bytes(4, "little")
        head[20:28] = len(labels).to_bytes(8, "little")
        head[28] = _crackle.crc8(memoryview(bytes(head))[5:28])
        index = index * n
        index += _crackle.crc32c(memoryview(index)).to_bytes(4, "little")
        crcs = _crackle.crc32c(memoryview(labels)).to_bytes(4, "little") + slice_crc * n
        return bytes(head) + index + labels + codes * n + crcs

    sx = sy = 1024
    sz = 256
    plane = np.zeros((sx, sy, 1), dtype=np.uint64, order="F")
    for i in range(8):
        plane[i * 100:i * 100 + 90, 50 + i * 30:700, 0] = 2**40 + i
    one = cc.compress(plane)
    b = repeat_slices(one, sz)
    label = 2**40 + 3
    assert cc.header(b).shape == (sx, sy, sz)
    del plane
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    results = {}
    calls = {
        "voxel_counts": lambda: cc.voxel_counts(b),
        "bounding_boxes": lambda: cc.bounding_boxes(b),
        "centroids": lambda: cc.centroids(b),
        "voxel_counts(label=)": lambda: cc.voxel_counts(b, label),
        "labels_for_z_range": lambda: cc.labels_for_z_range(b, 0, sz),
        "edge_labels": lambda: cc.edge_labels(b),
        "contacts": lambda: cc.contacts(b),
        "component_map": lambda: cc.component_map(b, b),
        "select_enclosed_points": lambda: cc.select_enclosed_points(b, label, np.array([[150, 200, 7], [5, 5, 100]])),
        "point_cloud(label=, z range)": lambda: cc.point_cloud(b, label, z_start=100, z_end=104),
        "decompress(label=, z=)": lambda: cc.decompress(b, label, z=slice(10, 12)),
        "connected_components": lambda: cc.connected_components(b),
    }
    for name, fn in calls.items():
        tracemalloc.reset_peak()
        out = fn()
        results[name] = tracemalloc.get_traced_memory()[1]
        del out
    assert cc.voxel_counts(b)[label] == 90 * (700 - 140) * sz
    print(json.dumps({"peaks": results, "rss_growth": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss,
                      "full_decode": sx * sy * sz * 8}))
""")


@pytest.mark.skipif(bool(os.environ.get("CRACKLE_SANITIZED")), reason="ASan's shadow memory inflates the RSS")
def test_memory_stays_bounded_by_a_few_slices():
    """On a 1024x1024x256 uint64 stream (a 2 GiB decode), the per-slice queries allocate a few
    slices at most: numpy allocations (tracemalloc) and the process's peak RSS (C++ included)."""
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    slice_bytes = 1024 * 1024 * 8
    for name, peak in out["peaks"].items():
        assert peak < 4 * slice_bytes, f"{name} allocated {peak} bytes through numpy"
    # ru_maxrss is in KiB: the whole run must stay far below one full decode.
    assert out["rss_growth"] * 1024 < out["full_decode"] // 8, out


# ----------------------------------------------------------------------------- corruption

def _mutants(stream: bytes):
    for n in range(0, len(stream), 3):
        yield stream[:n]
    for i in range(len(stream)):
        m = bytearray(stream)
        m[i] ^= 1 << (i % 8)
        yield bytes(m)


@pytest.mark.parametrize("pins", [False, True], ids=["flat", "pins_m3"])
def test_corrupt_streams_give_decode_error_or_the_truth(pins):
    """Every third truncation and a bit flip in every byte: each toolbox query raises DecodeError
    or, when the mutant still decodes, gives exactly the decoded volume's answer."""
    vol = np.zeros((9, 7, 5), np.uint32, order="F")
    vol[1:6, 2:5, 1:4] = 5
    vol[4:9, 0:3, :] = 70000
    vol[0, 6, 4] = 3
    b = crackle.compress(vol, allow_pins=pins, markov_model_order=3 if pins else 0)
    assert cc.header(b).label_format == ("pins" if pins else "flat")
    for m in _mutants(b):
        decoded = oracles.call(cc.decompress, m)
        oracles.check_toolbox(m, decoded)
