"""Progress of the long CLI commands: it moves while the work runs, with throughput."""

import io
import threading

import numpy as np
import pytest

from crackle_codec import cli
from crackle_codec.cli import progress as progress_module
from crackle_codec.cli.commands import zarr_arrays
from crackle_codec.cli.pool import ThreadPool


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_pool_reports_each_task_as_it_completes():
    """on_done runs while a slow task is still running, not after the whole batch."""
    release = threading.Event()
    results = []

    def slow():
        return release.wait(timeout=10)  # True only if on_done released it

    def on_done(result):
        results.append(result)
        if len(results) == 3:
            release.set()

    with ThreadPool(2) as pool:
        pool.run([slow] + [lambda i=i: i for i in range(3)], on_done=on_done)
    assert sorted(results[:3]) == [0, 1, 2] and results[3] is True  # the quick ones first, in any order


def test_convert_progress_updates_arrive_before_the_end(tmp_path, monkeypatch, capsys):
    """The last chunk's read waits for a progress update: it only comes if updates are live."""
    zarr = pytest.importorskip("zarr", reason="convert writes Zarr arrays")
    if int(zarr.__version__.split(".")[0]) < 3:
        pytest.skip("convert needs zarr >= 3")
    volume = cli.synthetic_segmentation((32, 32, 16), seed=1)
    first_update = threading.Event()
    last_read_saw_update = []
    updates = []

    class GatedSource:
        shape, dtype = volume.shape, volume.dtype

        def __getitem__(self, box):
            if all(s.stop == n for s, n in zip(box, volume.shape)):  # the last chunk of the grid
                last_read_saw_update.append(first_update.wait(timeout=10))
            return volume[box]

    class RecordingProgress(progress_module.Progress):
        def update(self, items=1, voxels=0):
            super().update(items, voxels)
            updates.append((self.items, self.total, self.voxels))
            first_update.set()

    monkeypatch.setattr(zarr_arrays, "open_source", lambda *a, **k: GatedSource())
    monkeypatch.setattr(zarr_arrays, "Progress", RecordingProgress)
    src = tmp_path / "seg.npy"
    np.save(src, volume)
    assert cli.main(["convert", str(src), str(tmp_path / "out.zarr"), "--chunks", "16,16,8",
                     "--workers", "2"]) == 0, capsys.readouterr().err
    assert last_read_saw_update == [True]
    assert updates[0][0] < updates[0][1] == 8  # the first update came with chunks still to write
    assert [u[0] for u in updates] == list(range(1, 9))
    assert updates[-1][2] == volume.size
    assert np.array_equal(zarr.open_array(tmp_path / "out.zarr", mode="r")[...], volume)


def test_progress_line_on_a_terminal_without_tqdm():
    clock, out = FakeClock(), io.StringIO()
    with progress_module.Progress(8, "chunk", stream=out, clock=clock, interactive=True,
                                  use_tqdm=False, desc="convert") as bar:
        clock.now += 2
        bar.update(2, 4_000_000)
        assert out.getvalue() == "\rconvert: 2/8 chunks (25%), 2.0 MVx/s, about 6 s left\x1b[K"
        clock.now += 0.01
        bar.update(1, 2_000_000)  # redrawn at most every 0.1 s
        assert out.getvalue().count("\r") == 1
    assert out.getvalue().endswith("\rconvert: 3/8 chunks (37%), 3.0 MVx/s, about 3 s left\x1b[K\n")


def test_progress_in_a_log_is_quiet_then_periodic():
    clock, out = FakeClock(), io.StringIO()
    with progress_module.Progress(100, "shard", stream=out, clock=clock, interactive=False) as bar:
        clock.now += 5
        bar.update(10, 50_000_000)
        assert out.getvalue() == ""  # a short command prints nothing
        clock.now += 6
        bar.update(10, 50_000_000)
    assert out.getvalue() == "20/100 shards (20%), 9.1 MVx/s, about 44 s left\n"


def test_progress_tqdm_bar_shows_throughput():
    pytest.importorskip("tqdm", reason="the terminal bar is tqdm's")
    out = io.StringIO()
    with progress_module.Progress(4, "chunk", stream=out, interactive=True) as bar:
        for _ in range(4):
            bar.update(1, 1_000_000)
    text = out.getvalue()
    assert "4/4" in text and "MVx/s" in text


def test_progress_disabled_writes_nothing():
    out = io.StringIO()
    with progress_module.Progress(4, "chunk", enabled=False, stream=out, interactive=True) as bar:
        bar.update(4, 10)
    assert out.getvalue() == ""


@pytest.mark.parametrize("order", ["C", "F"])
def test_compress_reads_a_memory_map_slab_by_slab_with_progress(tmp_path, monkeypatch, order):
    from crackle_codec.cli import files

    volume = np.asarray(cli.synthetic_segmentation((20, 16, 12), seed=2), order=order)
    np.save(tmp_path / "v.npy", volume)
    updates = []

    class RecordingProgress(progress_module.Progress):
        def update(self, items=1, voxels=0):
            super().update(items, voxels)
            updates.append((self.items, self.total, self.voxels))

    monkeypatch.setattr(files, "Progress", RecordingProgress)
    monkeypatch.setattr(files, "READ_SLAB_BYTES", 20 * 16 * 4 * 5)  # 5 slices of 20x16 (C: 5 planes of 16x12)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    out = files._read_whole(mapped, str(tmp_path / "v.npy"), progress=True)
    assert np.array_equal(out, volume) and not isinstance(out, np.memmap)
    assert out.flags.f_contiguous == (order == "F") and out.flags.c_contiguous == (order == "C")
    assert len(updates) >= 3 and updates[-1][0] == updates[-1][1] and updates[-1][2] == volume.size
