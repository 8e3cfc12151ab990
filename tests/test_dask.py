"""Scale-out: the codecs pickle, Dask writes Crackle Zarr arrays on a distributed cluster of processes,
and the array-level analytics and queries run their chunk batches on it (``scheduler=``)."""

from __future__ import annotations

import pickle
import sys
import warnings

import numpy as np
import pytest

from conftest import crop

zarr = pytest.importorskip("zarr")
if int(zarr.__version__.split(".")[0]) < 3:
    pytest.skip(f"zarr {zarr.__version__} < 3: see tests/zarr2", allow_module_level=True)
da = pytest.importorskip("dask.array", reason="dask[array] is a test dependency")
distributed = pytest.importorskip("distributed", reason="distributed is a test dependency")
cloudpickle = pytest.importorskip("cloudpickle")

from zarr.codecs import ZstdCodec  # noqa: E402

from crackle_codec.zarr import (chunk_labels, extract_label, find_label, label_index,  # noqa: E402
                                label_stats, point_cloud_array)
from crackle_codec.numcodecs_codec import Crackle  # noqa: E402
from crackle_codec.zarr3 import CrackleCodec  # noqa: E402

warnings.filterwarnings("ignore", message=".*sharding_indexed.*")


@pytest.mark.parametrize("codec", [Crackle(), Crackle(markov_model_order=5, allow_pins=True),
                                   CrackleCodec(), CrackleCodec(markov_model_order=3)], ids=repr)
def test_codecs_pickle(codec):
    for dumps in (pickle.dumps, cloudpickle.dumps):
        again = pickle.loads(dumps(codec))
        assert again == codec and type(again) is type(codec)
    if isinstance(codec, Crackle):
        assert Crackle.from_config(codec.get_config()) == codec
    else:
        assert CrackleCodec.from_dict(codec.to_dict()) == codec


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, worker_dashboard_address=None)
        c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def volume():
    return crop("flyem_medulla_ws", (100, 90, 80))


def _check(path, vol, client):
    back = zarr.open_array(str(path), mode="r")
    assert np.array_equal(back[...], vol)
    assert np.array_equal(da.from_zarr(str(path)).compute(), vol)  # decoded on the workers
    per_chunk = chunk_labels(back)
    chunks = back.chunks
    for coords, labels in per_chunk.items():
        box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunks))
        assert np.array_equal(labels, np.unique(vol[box]))
    assert all(client.run(lambda: "crackle_codec" in sys.modules).values())


@pytest.mark.parametrize("layout", ["v2", "v3", "v3+zstd", "v3-sharded"])
def test_to_zarr_on_distributed_cluster(client, volume, tmp_path, layout):
    path = tmp_path / "a.zarr"
    if layout == "v2":
        d = da.from_array(volume, chunks=(32, 32, 32))
        kwargs = dict(zarr_format=2, compressors=Crackle())
    elif layout == "v3-sharded":
        d = da.from_array(volume, chunks=(64, 64, 64))  # one dask chunk per shard
        kwargs = dict(serializer=CrackleCodec(), compressors=None, shards=(64, 64, 64), chunks=(32, 32, 32))
    else:
        d = da.from_array(volume, chunks=(32, 32, 32))
        kwargs = dict(serializer=CrackleCodec(), compressors=ZstdCodec(level=3) if "zstd" in layout else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delayed = d.to_zarr(str(path), mode="w", compute=False, **kwargs)
        client.compute(delayed).result()
    _check(path, volume, client)


def test_store_into_existing_v2_array(client, volume, tmp_path):
    path = tmp_path / "a.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.create_array(str(path), shape=volume.shape, chunks=(40, 40, 40), dtype=volume.dtype,
                              zarr_format=2, compressors=Crackle(markov_model_order=2), order="F", fill_value=0)
    d = da.from_array(volume, chunks=(40, 40, 40))
    client.compute(da.store(d, z, lock=False, compute=False)).result()
    _check(path, volume, client)


# ------------------------------------------------------------------ analytics on the cluster

@pytest.fixture(scope="module")
def analytics_array(volume, tmp_path_factory):
    """A format-3 array with edge chunks and two never-written chunks of a fill value found nowhere else."""
    vol = np.ascontiguousarray(volume[:70, :60, :50])
    fill = int(vol.max()) + 3
    vol[:16, :16, :16] = fill
    vol[16:32, 48:, 48:] = fill
    path = tmp_path_factory.mktemp("analytics") / "a.zarr"
    z = zarr.create_array(str(path), shape=vol.shape, chunks=(16, 16, 16), dtype=vol.dtype,
                          serializer=CrackleCodec(), compressors=ZstdCodec(level=1), fill_value=fill)
    z[...] = vol
    z = zarr.open_array(str(path), mode="r")
    assert z.nchunks_initialized < z.nchunks
    return z, vol, fill


def _same(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def test_label_stats_on_distributed_cluster(client, analytics_array):
    z, vol, fill = analytics_array
    local = label_stats(z, max_workers=1)
    labels, counts = np.unique(vol, return_counts=True)
    assert np.array_equal(local["label"], labels) and np.array_equal(local["voxel_count"], counts)
    calls = []
    with distributed.get_task_stream(client) as tasks:
        remote = label_stats(z, scheduler=client, progress=calls.append)
    _same(remote, local)
    assert sum(calls) == 5 * 4 * 4 and len(calls) > 1
    ran = [t for t in tasks.data if "_stats_batch" in str(t["key"])]
    assert len(ran) == len(calls)  # one task per batch of chunks, on the workers
    assert {t["worker"] for t in ran} <= set(client.scheduler_info()["workers"])
    region = (slice(5, 40), slice(None), slice(3, 45))
    _same(label_stats(z, region=region, labels=labels[::7].tolist(), scheduler=client),
          label_stats(z, region=region, labels=labels[::7].tolist()))


def test_queries_and_masks_on_distributed_cluster(client, analytics_array):
    z, vol, fill = analytics_array
    label = int(vol[40, 30, 20])
    remote_mask, remote_offset = extract_label(z, label, scheduler=client)
    mask, offset = extract_label(z, label)
    assert remote_offset == offset and np.array_equal(remote_mask, mask) and mask.any()
    assert np.array_equal(point_cloud_array(z, label, scheduler=client), point_cloud_array(z, label))
    per_chunk = chunk_labels(z, scheduler=client)
    assert list(per_chunk) == list(chunk_labels(z))
    assert all(np.array_equal(per_chunk[c], v) for c, v in chunk_labels(z).items())
    assert find_label(z, fill, scheduler=client) == find_label(z, fill)
    assert label_index(z, scheduler=client) == label_index(z)


@pytest.mark.parametrize("scheduler", ["sync", "threads", "dask"])
def test_label_stats_on_local_dask_schedulers(analytics_array, scheduler):
    z, _, _ = analytics_array
    _same(label_stats(z, scheduler=scheduler), label_stats(z))


def test_without_dask_a_clear_import_error(analytics_array, monkeypatch):
    z, _, _ = analytics_array
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match="pip install dask"):
        label_stats(z, scheduler="threads")
    assert label_stats(z)["label"].size  # the thread pool needs no dask
    monkeypatch.undo()
    with pytest.raises(TypeError, match="scheduler"):
        label_stats(z, scheduler=3)
