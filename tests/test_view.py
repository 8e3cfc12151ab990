"""crackle_codec.view: lazy sources (Zarr 2/3, sharded, OME-Zarr, .ckl), the Neuroglancer server, and
a real browser (headless Chromium) showing the segmentation.

The browser tests skip, with the reason, where neuroglancer, selenium, Chromium or chromedriver is
missing; they run the browser in a subprocess with a timeout, because a browser without WebGL2
makes Neuroglancer's screenshot call wait forever.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import crackle_codec
from conftest import DATA_DIR, crop

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip(f"zarr {zarr.__version__} < 3", allow_module_level=True)

from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

from crackle_codec import viewer as view_module
HERE = Path(__file__).resolve().parent
SCREENSHOT_SCRIPT = HERE / "view_screenshot.py"
BROWSER_TIMEOUT = 240


def _segmentation(shape=(40, 36, 24), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(1, 50, size=tuple(-(-s // 6) for s in shape), dtype=np.uint32)
    seg = np.kron(blocks, np.ones((6, 6, 6), dtype=np.uint32))[tuple(slice(0, s) for s in shape)]
    return np.ascontiguousarray(seg)


def _write(path, seg, *, zarr_format=3, shards=None, chunks=(16, 16, 16), **kw):
    if zarr_format == 2:
        z = zarr.create_array(path, shape=seg.shape, chunks=chunks, dtype=seg.dtype, zarr_format=2,
                              compressors=crackle_codec.Crackle(), fill_value=0, **kw)
    else:
        z = zarr.create_array(path, shape=seg.shape, chunks=chunks, shards=shards, dtype=seg.dtype,
                              serializer=CrackleCodec(), compressors=None, fill_value=0, **kw)
    z[...] = seg
    return z


def _strided(ref, start, end, factors):
    return ref[tuple(slice(s * f, e * f, f) for s, e, f in zip(start, end, factors))]


BOXES = [((0, 0, 0), (40, 36, 24), (1, 1, 1)), ((3, 5, 7), (29, 31, 19), (1, 1, 1)),
         ((0, 0, 0), (20, 18, 12), (2, 2, 2)), ((1, 2, 0), (10, 9, 6), (4, 4, 4)),
         ((5, 0, 3), (20, 9, 24), (2, 4, 1))]


# ------------------------------------------------------------------------------------ sources

@pytest.mark.parametrize("kind", ["v3", "v2", "sharded", "ckl", "ckl.gz", "numpy"])
def test_reads_match_numpy(tmp_path, kind):
    seg = _segmentation()
    if kind == "v3":
        source = _write(tmp_path / "a.zarr", seg)
    elif kind == "v2":
        source = str(tmp_path / "a.zarr")
        _write(source, seg, zarr_format=2)
    elif kind == "sharded":
        source = str(tmp_path / "a.zarr")
        _write(source, seg, shards=(32, 32, 16))
    elif kind.startswith("ckl"):
        source = str(tmp_path / f"a.{kind}")
        crackle_codec.save(seg, source)
    else:
        source = seg
    vol = view_module.open_volume(source)
    assert vol.shape == seg.shape and vol.dtype == seg.dtype
    for start, end, factors in BOXES:
        np.testing.assert_array_equal(vol.read(start, end, factors), _strided(seg, start, end, factors))


def test_only_touched_chunks_are_decoded_once(tmp_path):
    seg = _segmentation((64, 64, 64))
    z = _write(tmp_path / "a.zarr", seg)  # 4 x 4 x 4 chunks of 16^3
    vol = view_module.open_volume(z)
    cache = vol.levels[0].array._cache
    vol.read((0, 0, 0), (16, 16, 16), (1, 1, 1))
    assert cache.decoded == 1
    vol.read((8, 8, 8), (24, 24, 24), (1, 1, 1))  # 8 chunks, one of them cached
    assert (cache.decoded, cache.hits) == (8, 1)
    vol.read((0, 0, 0), (2, 2, 2), (32, 32, 32))  # voxels 0 and 32 per axis: chunks 0 and 2
    assert cache.decoded == 8 + 8 - 1


def test_cache_is_bounded(tmp_path):
    seg = _segmentation((64, 64, 64))
    z = _write(tmp_path / "a.zarr", seg)
    vol = view_module.open_volume(z, cache_bytes=3 * 16**3 * 4)
    np.testing.assert_array_equal(vol.read((0, 0, 0), (64, 64, 64), (1, 1, 1)), seg)
    cache = vol.levels[0].array._cache
    assert cache._bytes <= cache.max_bytes and len(cache._blocks) == 3


def test_axes_defaults_metadata_and_override(tmp_path):
    seg = _segmentation()
    assert view_module.open_volume(_write(tmp_path / "a.zarr", seg)).axes == ("z", "y", "x")
    named = _write(tmp_path / "b.zarr", seg, dimension_names=("x", "y", "z"))
    assert view_module.open_volume(named).axes == ("x", "y", "z")
    v2 = _write(tmp_path / "c.zarr", seg, zarr_format=2)
    v2.attrs["_ARRAY_DIMENSIONS"] = ["x", "y", "z"]
    assert view_module.open_volume(str(tmp_path / "c.zarr")).axes == ("x", "y", "z")
    # Stored as the reverse of its axes, as convert writes a Fortran-ordered (x, y, z) volume.
    from zarr.codecs import TransposeCodec

    reversed3 = _write(tmp_path / "t.zarr", seg, filters=[TransposeCodec(order=(2, 1, 0))])
    assert view_module.open_volume(reversed3).axes == ("x", "y", "z")
    reversed2 = _write(tmp_path / "f.zarr", seg, zarr_format=2, order="F")
    assert view_module.open_volume(reversed2).axes == ("x", "y", "z")
    assert view_module.open_volume(named, axes="z,y,x").axes == ("z", "y", "x")
    assert view_module.open_volume(named, axes="zyx").axes == ("z", "y", "x")
    crackle_codec.save(np.asfortranarray(seg), tmp_path / "f.ckl")
    crackle_codec.save(seg, tmp_path / "c.ckl")
    assert view_module.open_volume(str(tmp_path / "f.ckl")).axes == ("x", "y", "z")
    assert view_module.open_volume(str(tmp_path / "c.ckl")).axes == ("z", "y", "x")
    assert view_module.open_volume(np.zeros((5, 6), np.uint8)).axes == ("y", "x")
    assert view_module.open_volume(np.zeros((1, 2, 5, 6, 7), np.uint8)).axes == ("t", "c", "z", "y", "x")
    with pytest.raises(ValueError, match="name 2 axes"):
        view_module.open_volume(named, axes="x,y")
    with pytest.raises(ValueError, match="distinct"):
        view_module.open_volume(named, axes="x,x,y")
    with pytest.raises(ValueError, match="voxel_size"):
        view_module.open_volume(named, voxel_size=(1, 2))
    with pytest.raises(ValueError, match="unknown unit"):
        view_module.open_volume(named, units="furlong")


def _ome_group(path, seg, ngff="0.4"):
    root = zarr.open_group(path, mode="w", zarr_format=2 if ngff == "0.4" else 3)
    levels = [seg, np.ascontiguousarray(seg[::2, ::2, ::2])]
    for i, level in enumerate(levels):
        z = root.create_array(str(i), shape=level.shape, chunks=(16, 16, 16), dtype=level.dtype,
                              **({"compressors": crackle_codec.Crackle()} if ngff == "0.4"
                                 else {"serializer": CrackleCodec(), "compressors": None}))
        z[...] = level
    ms = {
        "version": ngff,
        "axes": [{"name": "z", "type": "space", "unit": "nanometer"},
                 {"name": "y", "type": "space", "unit": "micrometer"},
                 {"name": "x", "type": "space", "unit": "angstrom"}],
        "datasets": [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [40 * 2**i, 8 * 2**i,
                                                                                               20 * 2**i]}]}
                     for i in range(2)],
    }
    root.attrs.update({"multiscales": [ms]} if ngff == "0.4" else {"ome": {"version": "0.5", "multiscales": [ms]}})
    return root


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
def test_ome_zarr_multiscales(tmp_path, ngff):
    seg = _segmentation((40, 36, 24))
    _ome_group(tmp_path / "ome.zarr", seg, ngff)
    vol = view_module.open_volume(str(tmp_path / "ome.zarr"))
    assert vol.axes == ("z", "y", "x")
    assert vol.units == ("nm", "um", "nm")
    assert vol.scales == pytest.approx((40, 8, 2))  # 20 angstrom = 2 nm
    assert [lv.factors for lv in vol.levels] == [(1, 1, 1), (2, 2, 2)]
    cache = vol.levels[0].array._cache  # shared by the levels; keys are (level name, block index)

    def levels_decoded():
        return sorted({name for name, _ in cache._blocks})

    np.testing.assert_array_equal(vol.read((0, 0, 0), (20, 18, 12), (2, 2, 2)), seg[::2, ::2, ::2])
    assert levels_decoded() == ["segmentation/1"]  # served from the stored level
    np.testing.assert_array_equal(vol.read((0, 0, 0), (10, 9, 6), (4, 4, 4)), seg[::4, ::4, ::4])
    assert levels_decoded() == ["segmentation/1"]
    np.testing.assert_array_equal(vol.read((0, 0, 0), (20, 18, 24), (2, 2, 1)), seg[::2, ::2, :])
    assert levels_decoded() == ["segmentation/0", "segmentation/1"]  # (2, 2, 1) is not stored: from level 0


def test_ome_image_with_labels_points_to_them(tmp_path):
    pytest.importorskip("neuroglancer")
    root = zarr.open_group(tmp_path / "img.zarr", mode="w")
    root.create_array("0", shape=(8, 8, 8), dtype="f4")
    root.attrs["multiscales"] = [{"version": "0.4", "axes": ["z", "y", "x"], "datasets": [{"path": "0"}]}]
    labels = root.create_group("labels")
    labels.create_group("cells")
    with pytest.raises(TypeError, match=r"integer labels, not float32; its label images: cells .*labels/cells"):
        crackle_codec.view(str(tmp_path / "img.zarr"))


def test_group_without_multiscales_names_its_arrays(tmp_path):
    root = zarr.open_group(tmp_path / "g.zarr", mode="w")
    root.create_array("labels", shape=(4, 4, 4), dtype="u4")
    with pytest.raises(ValueError, match="without OME-Zarr multiscales.*labels"):
        view_module.open_volume(str(tmp_path / "g.zarr"))


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError):
        view_module.open_volume(str(tmp_path / "missing.zarr"))
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a Zarr array"):
        view_module.open_volume(str(tmp_path / "x.txt"))
    with pytest.raises(TypeError):
        view_module.open_volume(42)


def test_missing_neuroglancer_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "neuroglancer", None)
    with pytest.raises(ImportError, match=r'pip install "crackle-zarr\[view\]"'):
        crackle_codec.view(_segmentation())


def test_label_ids_keep_their_bits():
    assert view_module._label_ids([3, np.uint32(7)], np.dtype(np.uint32)) == [3, 7]
    assert view_module._label_ids(-1, np.dtype(np.int16)) == [0xFFFF]
    with pytest.raises(ValueError, match="does not fit"):
        view_module._label_ids([300], np.dtype(np.uint8))
    with pytest.raises(TypeError):
        view_module._label_ids([1.5], np.dtype(np.uint8))


# ------------------------------------------------------------------- the server, without a browser

def test_server_serves_decoded_chunks_on_loopback(tmp_path):
    ng = pytest.importorskip("neuroglancer")
    seg = _segmentation().astype(np.int32)
    seg[0, 0, 0] = -5
    path = str(tmp_path / "a.zarr")
    _write(path, seg, dimension_names=("x", "y", "z"))
    viewer = crackle_codec.view(path, labels=[int(seg[10, 10, 10]), -5], voxel_size=(4, 4, 40), units="nm")
    url = viewer.get_viewer_url()
    assert url.startswith("http://127.0.0.1:")
    assert ng.server.global_server._bind_address == "127.0.0.1"
    state = viewer.state
    assert list(state.dimensions.names) == ["x", "y", "z"]
    layer = state.layers["segmentation"]
    assert set(layer.segments) == {int(seg[10, 10, 10]), 2**32 - 5}
    served = next(v for v in viewer.volume_manager.volumes.values())
    base = url.split("/v/")[0]
    key = f"{viewer.token}.{served.token}"
    with urllib.request.urlopen(f"{base}/neuroglancer/info/{key}", timeout=30) as r:
        info = json.load(r)
    assert info["shape"] == list(seg.shape) and info["dataType"] == "uint32"
    space = info["coordinateSpace"]
    assert [space[a][1] for a in "xyz"] == ["m"] * 3
    assert [space[a][0] for a in "xyz"] == pytest.approx([4e-9, 4e-9, 4e-8])
    for start, end in (((0, 2, 4), (16, 18, 20)), ((0, 0, 0), (8, 12, 24))):
        box = "/".join(",".join(map(str, v)) for v in (start, end))
        with urllib.request.urlopen(f"{base}/neuroglancer/raw/{key}/1,1,1/{box}", timeout=30) as r:
            block = np.frombuffer(r.read(), dtype=np.uint32)
        expected = seg[tuple(slice(a, b) for a, b in zip(start, end))].view(np.uint32)
        np.testing.assert_array_equal(block.reshape(expected.shape, order="F"), expected)  # first axis fastest
    assert block[0] == 2**32 - 5  # the signed label -5, shown by its bits
    assert served.requests == 2
    with pytest.raises(urllib.error.HTTPError):  # out of bounds
        urllib.request.urlopen(f"{base}/neuroglancer/raw/{key}/1,1,1/0,0,0/41,36,24", timeout=30)
    with pytest.raises(urllib.error.HTTPError):  # no meshes for lazily served volumes
        urllib.request.urlopen(f"{base}/neuroglancer/mesh/{key}/1", timeout=30)


def test_image_layer_beside(tmp_path):
    pytest.importorskip("neuroglancer")
    seg = _segmentation()
    np.save(tmp_path / "img.npy", (seg * 5).astype(np.uint8))
    viewer = crackle_codec.view(seg, image=str(tmp_path / "img.npy"), layout="xy", axes="x,y,z",
                                voxel_size=(4, 4, 40), units="nm")
    assert [layer.name for layer in viewer.state.layers] == ["image", "segmentation"]
    served = {v.volume.name: v.volume for v in viewer.volume_manager.volumes.values()}
    image = served["image"]  # a .npy says nothing of its axes: it takes the segmentation's
    assert (image.axes, image.scales, image.units) == (("x", "y", "z"), (4.0, 4.0, 40.0), ("nm",) * 3)
    np.testing.assert_array_equal(image.read((0, 0, 0), (8, 8, 8), (1, 1, 1)), seg[:8, :8, :8] * 5)


# ------------------------------------------------------------------------------- a real browser

def _require_browser():
    for module in ("neuroglancer", "selenium", "PIL"):
        pytest.importorskip(module, reason=f"the browser test needs {module}: pip install -e \".[test]\"")
    sys.path.insert(0, str(HERE))
    try:
        from view_screenshot import find_browser
    finally:
        sys.path.pop(0)
    browser, driver = find_browser()
    if browser is None or driver is None:
        pytest.skip("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")


def _screenshot(source, out, *args):
    """Run view_screenshot.py in its own process group, so that a timeout also ends its browser."""
    proc = subprocess.Popen([sys.executable, str(SCREENSHOT_SCRIPT), str(source), str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "SE_OFFLINE": "true"}, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"no screenshot within {BROWSER_TIMEOUT} s (a browser without WebGL2 never renders)")
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _assert_shows_segmentation(result, width=800, height=600):
    assert result["width"] == width and result["height"] == (height or result["height"])
    assert result["requests_served"] > 0, result  # the viewer asked the server for chunks ...
    assert result["codec_chunks_decoded"] > 0, result  # ... that our codec decoded
    # The centre of the x-y panel shows many segment colours, none of them the background.
    assert result["centre_colours"] >= 10, result
    assert result["centre_differs"] > 0.95, result


def _run_demo(tmp_path, *args):
    """Run ``crackle-zarr demo``; returns its output and the ``view`` command it ends with."""
    proc = subprocess.run([sys.executable, "-m", "crackle_codec.cli", "demo", "--zstd-levels", "3", *args],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env={**os.environ, "TMPDIR": str(tmp_path)})  # the demo keeps its array there
    assert proc.returncode == 0, proc.stderr
    command = shlex.split(proc.stdout.rstrip().splitlines()[-1])
    assert command[:2] == ["crackle-zarr", "view"], proc.stdout
    return proc.stdout, command[2:]


def test_demo_prints_a_view_command_that_shows_its_volume(tmp_path):
    from crackle_codec.cli import synthetic_segmentation

    _, args = _run_demo(tmp_path, "--shape", "48,40,24")
    path, options = args[0], args[1:]
    assert path.startswith(str(tmp_path)) and path.endswith("demo.zarr")
    axes = options[options.index("--axes") + 1] if "--axes" in options else None
    vol = view_module.open_volume(path, axes=axes)
    seg = synthetic_segmentation((48, 40, 24), 0)
    assert dict(zip(vol.axes, vol.shape)) == {"x": 48, "y": 40, "z": 24}
    expected = seg if tuple(vol.axes) == ("x", "y", "z") else seg.transpose([("x", "y", "z").index(a) for a in vol.axes])
    np.testing.assert_array_equal(vol.read((0, 0, 0), vol.shape, (1, 1, 1)), expected)


def test_browser_shows_the_demo_volume(tmp_path):
    _require_browser()
    _, args = _run_demo(tmp_path)  # the demo's volume, 256 x 256 x 128, as `crackle-zarr demo` writes it
    out = tmp_path / "view.png"
    result = _screenshot(args[0], out, *args[1:], "--layout", "4panel")
    _assert_shows_segmentation(result)
    keep = os.environ.get("CRACKLE_VIEW_SCREENSHOT")  # how docs/view.png is made
    if keep:
        shutil.copyfile(out, keep)


def test_browser_shows_a_real_volume(tmp_path):
    _require_browser()
    if not (DATA_DIR / "connectomics_512.npz").exists():
        pytest.skip("../shared/data/connectomics_512.npz not present (fresh clone)")
    seg = np.ascontiguousarray(crop("connectomics_512", (256, 256, 128)).T)  # (z, y, x), Zarr's convention
    path = tmp_path / "connectomics.zarr"
    z = zarr.create_array(path, shape=seg.shape, shards=(128, 256, 256), chunks=(64, 128, 128), dtype=seg.dtype,
                          serializer=CrackleCodec(), compressors=None, fill_value=0)
    z[...] = seg
    # Through the command line, as a user runs it: crackle-zarr view PATH, then Ctrl-C.
    result = _screenshot(path, tmp_path / "real.png", "--cli", "--layout", "xy")
    _assert_shows_segmentation(result, height=None)  # the browser's page, less its window frame
    assert result["header"].startswith("Serving Zarr array") and result["header"].endswith("axes z,y,x")
    assert result["exit_code"] == 0 and result["stopped"], result


# ------------------------------------------------------------------------------------- the CLI

def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "crackle_codec.cli", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, **kw)


def test_cli_view_serves_until_interrupted(tmp_path):
    pytest.importorskip("neuroglancer")
    seg = _segmentation()
    crackle_codec.save(np.asfortranarray(seg), tmp_path / "seg.ckl")
    proc = subprocess.Popen([sys.executable, "-m", "crackle_codec.cli", "view", str(tmp_path / "seg.ckl"),
                             "--no-browser", "--label", str(int(seg[3, 3, 3])), "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        first = proc.stdout.readline()
        url = proc.stdout.readline().strip()
        assert first.startswith("Serving Crackle stream") and "axes x,y,z" in first, first
        assert url.startswith("http://127.0.0.1:") and "/v/" in url, url
        assert proc.stdout.readline().startswith("Press Ctrl-C")
        with urllib.request.urlopen(url, timeout=30) as r:  # the bundled Neuroglancer client
            assert r.status == 200 and b"neuroglancer" in r.read().lower()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip().endswith("Stopped."), out
    assert "Traceback" not in err


def test_cli_view_without_neuroglancer_says_what_to_install(tmp_path):
    crackle_codec.save(_segmentation(), tmp_path / "seg.ckl")
    code = ("import sys; sys.modules['neuroglancer'] = None; from crackle_codec.cli import main; "
            f"sys.exit(main(['view', {str(tmp_path / 'seg.ckl')!r}, '--no-browser']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ('crackle-zarr: error: view needs the neuroglancer package: '
                                   'pip install "crackle-zarr[view]" (or: pip install neuroglancer)')


def test_cli_view_errors(tmp_path):
    pytest.importorskip("neuroglancer")
    proc = _cli("view", str(tmp_path / "missing.zarr"), "--no-browser")
    assert proc.returncode == 1 and proc.stderr.strip().endswith("missing.zarr: no such file or directory")
    crackle_codec.save(_segmentation(), tmp_path / "seg.ckl")
    proc = _cli("view", str(tmp_path / "seg.ckl"), "--axes", "x,y", "--no-browser")
    assert proc.returncode == 1 and "name 2 axes, but the array has 3" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    for bad in (["--port", "70000"], ["--voxel-size", "1,-2,3"], ["--label", "x"]):
        assert _cli("view", str(tmp_path / "seg.ckl"), "--no-browser", *bad).returncode == 2
