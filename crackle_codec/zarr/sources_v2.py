"""Crackle arrays opened with zarr 2.18 (format 2; the store is a MutableMapping)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .sources import _fill_or_default, _Format2Codecs, _NumcodecsTail, _Unsharded


class _Zarr2(_Format2Codecs, _Unsharded):
    """A zarr 2.x ``Array`` (format 2); the store is a MutableMapping."""

    def __init__(self, array: Any):
        self.array = array
        store = getattr(array, "chunk_store", None)
        self.store = store if store is not None else array.store
        self.tail = _NumcodecsTail(array.filters, array.compressor)
        self.shape = tuple(array.shape)
        self.chunks = tuple(array.chunks)
        self.dtype = np.dtype(array.dtype)
        self.order = array.order
        self.x_axis = self.tail.x_axis
        self.fill = _fill_or_default(array.fill_value, self.dtype)
        self.direct = True

    def _key(self, coords):
        return self.array._chunk_key(coords)  # zarr 2.x: the store key of a chunk

    def _get_many(self, keys):
        out = []
        for key in keys:
            try:
                out.append(self.store[key])
            except KeyError:
                out.append(None)
        return out

    def _set_many(self, items):
        for key, value in items.items():
            self.store[key] = value

    def _delete_many(self, keys):
        for key in keys:
            try:
                del self.store[key]
            except KeyError:
                pass

    def create_like(self, store, dtype, fill):
        import zarr

        a = self.array
        new = zarr.create(shape=self.shape, chunks=self.chunks, dtype=dtype, fill_value=fill,
                          compressor=a.compressor, filters=a.filters, order=self.order, store=store,
                          dimension_separator=getattr(a, "_dimension_separator", None))
        new.attrs.update(a.attrs.asdict())
        return new
