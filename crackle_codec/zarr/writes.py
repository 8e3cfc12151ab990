"""Writing whole chunks of a Crackle Zarr array without zarr's per-chunk write path (zarr 3.x).

``crackle_codec.zarr3.write_array`` and ``crackle-zarr convert`` write through ``chunk_writer``.
Why the path is shaped so (docs/zarr.md has the profile and the numbers): ``z[box] = block`` in
zarr 3.1 hops to its event-loop thread for every call, runs its codec pipeline there, checks every
chunk against the fill value (with ``write_empty_chunks=False``) and hands the chunk to the codec
through a second thread pool; on 128^3 uint32 chunks that costs about as much as a third of the
Crackle encode and serialises part of it on one thread. Here each chunk is a view of the caller's
volume, encoded on our own threads (the C++ encoder reads the view in place and releases the GIL),
passed through the array's own codecs after Crackle (``_V3Chain`` in format 3, the numcodecs
filters and compressor in format 2), sharded with zarr's own shard encoder, and the stored
objects are written through the array's store a batch at a time from the calling thread while
the workers encode. What lands in the store is what zarr would store for the same write: edge
chunks padded with the fill value, and with ``write_empty_chunks=False`` a chunk (or inner chunk)
holding only the fill value not stored (its key deleted), told from the stream's label table
rather than by comparing every voxel.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Any, Optional

import numpy as np

from ..core import labels as stream_labels
from ..layout import encode_chunk
from ..numcodecs_codec import Crackle
from .sources import Coords, _fill_or_default, _NumcodecsTail
from .sources_v3 import _build_shard, _V3Chain, _v3_chunk_spec, _Zarr3IO

Box = tuple[slice, ...]
Reader = Callable[[Box], Any]

_FLUSH = 16  # stored objects per batch of store writes


class _ChunkCodec:
    """Chunk (a full chunk-shaped block) -> the bytes zarr would store for it, or None for none."""

    def __init__(self, stream_of: Callable[[np.ndarray], bytes], redo: Callable[[bytes], bytes], fill: Any,
                 write_empty: bool):
        self.stream_of, self.redo, self.fill, self.write_empty = stream_of, redo, fill, write_empty

    def __call__(self, block: np.ndarray) -> Optional[bytes]:
        stream = self.stream_of(block)
        if not self.write_empty:
            values = stream_labels(stream)  # the label table only: no voxel is compared
            if len(values) == 1 and values[0] == self.fill:
                return None  # write_empty_chunks=False: a chunk of only the fill value is not stored
        return self.redo(stream)


class ChunkWriter:
    """Writes whole regions (chunks, or shards of a sharded array) of one zarr 3.x array."""

    def __init__(self, async_array: Any, chunks: tuple[int, ...], shard: Optional[tuple[int, ...]],
                 encode: Callable[[np.ndarray], Optional[bytes]], sharding: Any = None):
        meta = async_array.metadata
        self.io = _Zarr3IO(async_array)
        self.shape = tuple(meta.shape)
        self.dtype = np.dtype(meta.dtype.to_native_dtype())
        self.fill = _fill_or_default(meta.fill_value, self.dtype)
        self.chunks, self.region, self.sharding = chunks, shard or chunks, sharding
        self.encode = encode

    # ---------------------------------------------------------------------------- geometry

    def regions(self) -> list[Box]:
        """Every region of the array (shards, or chunks when unsharded), clipped to its shape."""
        grid = (range(-(-s // r)) for s, r in zip(self.shape, self.region))
        return [self._box(index, self.region) for index in itertools.product(*grid)]

    def _box(self, index: Coords, size: Sequence[int]) -> Box:
        return tuple(slice(i * n, min((i + 1) * n, s)) for i, n, s in zip(index, size, self.shape))

    def _chunks_in(self, region: Box) -> list[Coords]:
        """The chunks of ``region`` inside the array (zarr writes no chunk wholly outside it)."""
        return list(itertools.product(*(range(r.start // c, -(-r.stop // c)) for r, c in zip(region, self.chunks))))

    # ---------------------------------------------------------------------------- encoding

    def _block(self, read: Reader, coords: Coords) -> np.ndarray:
        """The chunk's data as a chunk-shaped array: a view of the source, padded at the array's edge."""
        box = self._box(coords, self.chunks)
        block = np.asarray(read(box))
        if block.dtype != self.dtype:
            block = block.astype(self.dtype)
        if block.shape != self.chunks:
            full = np.full(self.chunks, self.fill, dtype=self.dtype)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        return block

    def _stored(self, read: Reader, coords: Coords) -> Optional[bytes]:
        return self.encode(self._block(read, coords))

    # ----------------------------------------------------------------------------- writing

    def write(self, read: Reader, regions: Sequence[Box], pool: Executor,
              done: Optional[Callable[[Box], None]] = None) -> None:
        """Write ``regions`` with ``read(box)`` giving the data of a box (array coordinates).

        Chunks are encoded on ``pool``; each region is stored once its chunks are encoded, in
        batches of store writes from this thread, while the pool encodes the next chunks.
        """
        tasks = [(region, coords) for region in regions for coords in self._chunks_in(region)]
        results = pool.map(lambda task: self._stored(read, task[1]), tasks)
        pending: dict[str, Optional[bytes]] = {}
        for region, group in _grouped(zip(tasks, results)):
            pending[self._key(region)] = self._region_bytes(region, group)
            if done is not None:
                done(region)
            if len(pending) >= _FLUSH:
                self.io.set_many(pending)
                pending = {}
        if pending:
            self.io.set_many(pending)

    def _key(self, region: Box) -> str:
        return self.io.key(tuple(r.start // n for r, n in zip(region, self.region)))

    def _region_bytes(self, region: Box, chunks: list[tuple[Coords, Optional[bytes]]]) -> Optional[bytes]:
        if self.sharding is None:
            return chunks[0][1]
        origin = tuple(r.start // c for r, c in zip(region, self.chunks))
        per_shard = tuple(r // c for r, c in zip(self.region, self.chunks))
        local = {tuple(c - o for c, o in zip(coords, origin)): stored for coords, stored in chunks}
        shard = _build_shard(self.sharding, local, per_shard)
        return None if shard is None else shard.to_bytes()


def _grouped(items: Any) -> Iterator[tuple[Box, list[tuple[Coords, Optional[bytes]]]]]:
    """(region, [(chunk coords, stored bytes)...]) for consecutive tasks of the same region."""
    for region, group in itertools.groupby(items, key=lambda item: item[0][0]):
        yield region, [(task[1], stored) for task, stored in group]


# ------------------------------------------------------------------------------- per format

def chunk_writer(array: Any) -> Optional[ChunkWriter]:
    """A ChunkWriter for a zarr 3.x Crackle array (format 2 or 3, sharded or not), or None for
    arrays it does not handle (zarr 2.18, other codecs, sharding nested with other codecs)."""
    async_array = getattr(array, "_async_array", None)
    if async_array is None or not hasattr(async_array, "store_path") or math.prod(array.shape) == 0:
        return None
    try:
        if async_array.metadata.zarr_format == 2:
            return _format2_writer(async_array)
        return _format3_writer(async_array)
    except ValueError:  # not Crackle-compressed: zarr's own path writes it
        return None


def _write_empty(async_array: Any) -> bool:
    return bool(async_array.config.write_empty_chunks)


def _format2_writer(async_array: Any) -> Optional[ChunkWriter]:
    meta = async_array.metadata
    tail = _NumcodecsTail(meta.filters, meta.compressor)
    crackle, order = tail.crackle, meta.order
    if not isinstance(crackle, Crackle):
        return None

    def stream_of(block: np.ndarray) -> bytes:
        if crackle.x_axis is None:  # legacy streams record the chunk's memory order: zarr's
            block = np.asarray(block, order=order)
        return encode_chunk(block, crackle.x_axis, order, markov_model_order=crackle.markov_model_order,
                            allow_pins=crackle.allow_pins, optimize=crackle.optimize)

    fill = _fill_or_default(meta.fill_value, np.dtype(meta.dtype.to_native_dtype()))
    encode = _ChunkCodec(stream_of, tail.redo, fill, _write_empty(async_array))
    return ChunkWriter(async_array, tuple(meta.chunks), None, encode)


def _format3_writer(async_array: Any) -> Optional[ChunkWriter]:
    from zarr.codecs.sharding import ShardingCodec

    meta = async_array.metadata
    codecs, shard, sharding = meta.codecs, None, None
    if any(isinstance(c, ShardingCodec) for c in codecs):
        if len(codecs) != 1:
            return None
        sharding = codecs[0]
        shard, codecs = tuple(meta.chunk_grid.chunk_shape), sharding.codecs
        if any(isinstance(c, ShardingCodec) for c in codecs):
            return None
    chunks = tuple(sharding.chunk_shape if sharding is not None else meta.chunk_grid.chunk_shape)
    chain = _V3Chain(codecs, _v3_chunk_spec(async_array, chunks))
    fill = _fill_or_default(meta.fill_value, np.dtype(meta.dtype.to_native_dtype()))
    encode = _ChunkCodec(chain.stream, chain.redo, fill, _write_empty(async_array))
    return ChunkWriter(async_array, chunks, shard, encode, sharding)
