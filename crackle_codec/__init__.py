"""crackle_codec: a fast, safe Crackle codec for 3D dense segmentations, made for Zarr.

The stream format is the one written by the reference package ``crackle-codec`` (format
versions 0 and 1); see docs/format.md.
"""

from .errors import DecodeError
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
from .chunks import chunk_labels, find_label, label_index, remap_array
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
    "chunk_labels",
    "compress",
    "contains",
    "decompress",
    "find_label",
    "header",
    "label_index",
    "labels",
    "load",
    "num_labels",
    "remap",
    "remap_array",
    "save",
    "verify",
]
