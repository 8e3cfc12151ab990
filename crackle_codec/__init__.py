"""crackle_codec: a fast, safe Crackle codec for 3D dense segmentations, made for Zarr.

The stream format is the one written by the reference package ``crackle-codec`` (format
versions 0 and 1); see docs/format.md.
"""

import sys as _sys

try:
    import _crackle_codec as _crackle  # the compiled core, a top-level module (see setup.py)
except ImportError as _exc:
    raise ImportError(
        f"crackle_codec's compiled core (_crackle_codec) cannot be imported ({_exc}). Install the "
        "package (pip install crackle-zarr, or pip install . in a clone); in a development checkout, "
        "build it with: python setup.py build_ext --inplace"
    ) from _exc
_sys.modules[__name__ + "._crackle"] = _crackle  # its name inside the package: crackle_codec._crackle

from .errors import DecodeError, MissingLabelsError, SliceOutOfRange  # noqa: E402  (after the compiled core, which they use)
from .core import (
    Header,
    compress,
    contains,
    decompress,
    header,
    labels,
    num_labels,
    remap,
    verify,
)
from .io import load, save
from .numcodecs_codec import Crackle
from .zarr import chunk_labels, find_label, label_index, remap_array
from .zarr import mask_array, mask_except_array, renumber_array
from .zarr import extract_label, label_stats, point_cloud_array
from .zarr import downsample
from .viewer import view  # needs neuroglancer only when called
from .operations import (
    add_scalar,
    apply_binary_mask,
    ascontiguousarray,
    asfortranarray,
    astype,
    floordiv_scalar,
    mask,
    mask_except,
    mode_pooling_2x2x1,
    multiply_scalar,
    recompress,
    reencode,
    refit,
    renumber,
    subtract_scalar,
)
from .assemble import array_equal, full, ones, zeros, zshatter, zsplit, zstack
from .array import CrackleArray, compressa
from .io import aload, bload, save_numpy

__version__ = "0.1.0"

__all__ = [
    "CrackleArray",
    "add_scalar",
    "aload",
    "apply_binary_mask",
    "array_equal",
    "ascontiguousarray",
    "asfortranarray",
    "astype",
    "bload",
    "compressa",
    "floordiv_scalar",
    "full",
    "mask",
    "mask_except",
    "mask_array",
    "mask_except_array",
    "mode_pooling_2x2x1",
    "multiply_scalar",
    "ones",
    "recompress",
    "reencode",
    "refit",
    "renumber",
    "save_numpy",
    "subtract_scalar",
    "zeros",
    "zshatter",
    "zsplit",
    "zstack",
    "Crackle",
    "DecodeError",
    "Header",
    "MissingLabelsError",
    "SliceOutOfRange",
    "chunk_labels",
    "compress",
    "contains",
    "decompress",
    "downsample",
    "extract_label",
    "find_label",
    "header",
    "label_index",
    "label_stats",
    "labels",
    "load",
    "num_labels",
    "point_cloud_array",
    "remap",
    "remap_array",
    "renumber_array",
    "save",
    "verify",
    "view",
]

# The reference's toolbox (issue #13): stream queries, one-label decoding, geometry.
from .queries import (  # noqa: E402
    component_lengths,
    components,
    contains_range,
    crack_codes,
    labels_for_z_range,
    max,
    min,
    nbytes,
)
from .decoding import each  # noqa: E402
from .geometry import (  # noqa: E402
    bounding_boxes,
    centroids,
    component_map,
    connected_components,
    contacts,
    edge_labels,
    point_cloud,
    select_enclosed_points,
    signed_distance_to_boundary,
    to_parquet,
    voxel_connectivity_graph,
    voxel_counts,
)

from . import geometry as _geometry, queries as _queries  # noqa: E402

__all__ += [*_queries.__all__, "each", *_geometry.__all__]
