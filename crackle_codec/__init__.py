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

from .errors import DecodeError, SliceOutOfRange  # noqa: E402  (after the compiled core, which they use)
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
from .view import view  # needs neuroglancer only when called

__version__ = "0.1.0"

__all__ = [
    "Crackle",
    "DecodeError",
    "Header",
    "SliceOutOfRange",
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
    "view",
]
