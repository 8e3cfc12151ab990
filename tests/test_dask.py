"""Scale-out: the codecs pickle, and Dask writes Crackle Zarr arrays on a distributed cluster of processes."""

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

from crackle_codec.zarr import chunk_labels  # noqa: E402
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
