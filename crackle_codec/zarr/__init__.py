"""Array-level tools for Crackle Zarr arrays: chunk label queries, label rewrites and analytics.

Everything here works chunk by chunk from the Crackle streams of an array (Zarr format 2 and 3,
sharded or not, any bytes-to-bytes codec after Crackle), without decoding a whole array:

* ``sources`` (with ``sources_v3`` for zarr 3.x and ``sources_v2`` for zarr 2.18): how chunks
  are found, read and rewritten for each kind of array;
* ``queries``: ``chunk_labels``, ``find_label``, ``label_index``;
* ``rewrites``: ``remap_array``, ``mask_array``, ``mask_except_array``, ``renumber_array`` (label
  rewrites of every chunk, in place or into another array);
* ``analytics``: ``label_stats``, ``stats_columns``, ``extract_label``, ``point_cloud_array``;
* ``pyramids``: ``downsample`` (label pyramids by mode pooling);
* ``demo``: ``zarr_demo`` (``crackle-zarr demo``).

The codecs themselves stay where zarr finds them: ``crackle_codec.Crackle`` (numcodecs, format 2)
and ``crackle_codec.zarr3.CrackleCodec`` (format 3). The public functions are also exported from
``crackle_codec``. Importing this package does not import zarr.
"""

from .analytics import extract_label, label_stats, point_cloud_array, stats_columns
from .demo import zarr_demo
from .pyramids import downsample
from .queries import chunk_labels, find_label, label_index
from .rewrites import mask_array, mask_except_array, remap_array, renumber_array

__all__ = ["chunk_labels", "find_label", "label_index", "remap_array", "mask_array", "mask_except_array",
           "renumber_array", "label_stats", "stats_columns", "extract_label", "point_cloud_array", "zarr_demo",
           "downsample"]
