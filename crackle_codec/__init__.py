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

__version__ = "0.1.0"

__all__ = [
    "DecodeError",
    "Header",
    "compress",
    "contains",
    "decompress",
    "header",
    "labels",
    "load",
    "num_labels",
    "remap",
    "save",
    "verify",
]
