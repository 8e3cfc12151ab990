"""Codecs the benchmark can run, by name.

Each entry is a ``BenchCodec``: how to encode one chunk to bytes and decode it back, plus the
``family`` (implementation) and ``option`` (settings) it stands for, so that the report can put
our implementation next to the reference with the same option.

To add a codec: write a factory returning a ``BenchCodec`` and register it in ``CODECS``;
``available()`` should return a reason string when the package it needs is not installed or does
not import, so that a run skips it with a printed reason instead of failing.

Every codec is run single-threaded. Besides the two Crackle implementations there are:

- compresso (PyPI ``compresso``): its defaults, steps (4,4,1), on 3D arrays of any unsigned dtype;
- compressed_segmentation (PyPI ``compressed-segmentation``): block size (8,8,8) as Neuroglancer
  uses; it encodes uint32/uint64 only, so uint8/uint16 chunks are converted to uint32 before
  encoding and back after decoding, both conversions inside the timed calls;
- Blosc-zstd (``numcodecs.Blosc``): zstd level 5, byte shuffle (``Blosc.SHUFFLE``, which gave
  smaller output than ``BITSHUFFLE`` on these labels), Blosc's internal threads off;
- zstd on the raw bytes (``numcodecs.Zstd``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable

import numpy as np

OURS = "crackle_codec"
REFERENCE = "crackle"

# option name -> keyword arguments of crackle_codec.compress
CRACKLE_OPTIONS: dict[str, dict] = {
    "flat": {},
    "markov 5": {"markov_model_order": 5},
    "pins + markov 5": {"allow_pins": True, "markov_model_order": 5},
}


@dataclasses.dataclass
class BenchCodec:
    name: str          # unique key, e.g. "crackle_codec/markov 5"
    family: str        # implementation: "crackle_codec", "crackle", "zstd", ...
    option: str        # settings within the family: "flat", "markov 5", "level 3", ...
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes, tuple, np.dtype], np.ndarray]  # (data, chunk shape, dtype) -> array
    available: Callable[[], str | None] = lambda: None     # None, or why it cannot run here
    crackle_stream: bool = False   # the bytes are a Crackle stream (checked across implementations)


def _missing(module: str, package: str) -> Callable[[], str | None]:
    """A check that ``module`` imports: None if it does, else the reason (not installed, or the error)."""
    def check() -> str | None:
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -r bench/requirements.txt)"
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken install: skip with the reason rather than fail the run
            return f"{package} does not import ({type(exc).__name__}: {exc})"
        return None
    return check


def _ours_available() -> str | None:
    try:
        import crackle_codec  # noqa: F401
    except ImportError as exc:
        return f"crackle_codec is not importable ({exc})"
    return None


def ours(option: str) -> BenchCodec:
    kwargs = CRACKLE_OPTIONS[option]

    def encode(chunk):
        import crackle_codec
        return crackle_codec.compress(chunk, parallel=1, **kwargs)

    def decode(data, shape, dtype):
        import crackle_codec
        return crackle_codec.decompress(data, parallel=1)

    return BenchCodec(f"{OURS}/{option}", OURS, option, encode, decode, _ours_available, crackle_stream=True)


def reference(option: str) -> BenchCodec:
    kwargs = dict(CRACKLE_OPTIONS[option])
    if kwargs.pop("allow_pins", False):
        kwargs["allow_pins"] = 1  # the reference's "fast" pins
    import_check = _missing("crackle", "crackle-codec (the reference)")

    def encode(chunk):
        import crackle
        return crackle.compress(chunk, parallel=1, **kwargs)

    def decode(data, shape, dtype):
        import crackle
        return crackle.decompress(data, parallel=1)

    return BenchCodec(f"{REFERENCE}/{option}", REFERENCE, option, encode, decode, import_check, crackle_stream=True)


def zstd(level: int) -> BenchCodec:
    """zstd (numcodecs) on the raw chunk bytes, in the chunk's (Fortran) memory order."""

    state: dict = {}

    def codec():
        if "z" not in state:  # made once, outside the timed calls' steady state
            from numcodecs import Zstd
            state["z"] = Zstd(level=level)
        return state["z"]

    def encode(chunk):
        return bytes(codec().encode(np.asfortranarray(chunk).ravel(order="K")))

    def decode(data, shape, dtype):
        return np.frombuffer(codec().decode(data), dtype=dtype).reshape(shape, order="F")

    return BenchCodec(f"zstd/level {level}", "zstd", f"level {level}", encode, decode,
                      _missing("numcodecs", "numcodecs"))


def compresso_codec() -> BenchCodec:
    """compresso (seung-lab), default settings: steps (4,4,1), random-access z index."""

    def encode(chunk):
        import compresso
        return compresso.compress(chunk)

    def decode(data, shape, dtype):
        import compresso
        return compresso.decompress(data)

    return BenchCodec("compresso", "compresso", "steps (4,4,1)", encode, decode,
                      _missing("compresso", "compresso"))


CSEG_BLOCK = (8, 8, 8)


def compressed_segmentation_codec() -> BenchCodec:
    """compressed_segmentation, block size (8,8,8); uint8/uint16 go through uint32 (timed)."""

    def encode(chunk):
        import compressed_segmentation as cseg
        if chunk.dtype not in (np.uint32, np.uint64):
            chunk = chunk.astype(np.uint32, order="F")
        return cseg.compress(chunk, block_size=CSEG_BLOCK, order="F")

    def decode(data, shape, dtype):
        import compressed_segmentation as cseg
        wide = np.dtype(dtype) if np.dtype(dtype) in (np.uint32, np.uint64) else np.dtype(np.uint32)
        out = cseg.decompress(data, tuple(shape), wide, block_size=CSEG_BLOCK, order="F")
        return out if out.dtype == dtype else out.astype(dtype, order="F")

    return BenchCodec("compressed_segmentation", "compressed_segmentation", "block 8x8x8", encode, decode,
                      _missing("compressed_segmentation", "compressed-segmentation"))


def blosc_zstd(shuffle: str) -> BenchCodec:
    """Blosc with zstd level 5 (numcodecs), byte shuffle or bit shuffle, one thread."""

    state: dict = {}

    def codec():
        if "c" not in state:
            import numcodecs.blosc as nb
            from numcodecs import Blosc
            nb.use_threads = False  # Blosc's own threads off: one thread, like every codec here
            nb.set_nthreads(1)
            state["c"] = Blosc(cname="zstd", clevel=5,
                               shuffle=Blosc.BITSHUFFLE if shuffle == "bitshuffle" else Blosc.SHUFFLE)
        return state["c"]

    def encode(chunk):
        # The element size Blosc shuffles by is the chunk's dtype size.
        return bytes(codec().encode(np.asfortranarray(chunk).ravel(order="K")))

    def decode(data, shape, dtype):
        return np.frombuffer(codec().decode(data), dtype=dtype).reshape(shape, order="F")

    return BenchCodec(f"blosc-zstd/{shuffle}", "blosc-zstd", f"clevel 5, {shuffle}", encode, decode,
                      _missing("numcodecs.blosc", "numcodecs (with Blosc)"))


def _registry() -> dict[str, Callable[[], BenchCodec]]:
    reg: dict[str, Callable[[], BenchCodec]] = {}
    for option in CRACKLE_OPTIONS:
        reg[f"{OURS}/{option}"] = lambda o=option: ours(o)
        reg[f"{REFERENCE}/{option}"] = lambda o=option: reference(o)
    reg["compresso"] = compresso_codec
    reg["compressed_segmentation"] = compressed_segmentation_codec
    for level in (1, 3, 9, 19, 22):
        reg[f"zstd/level {level}"] = lambda lv=level: zstd(lv)
    for shuffle in ("shuffle", "bitshuffle"):
        reg[f"blosc-zstd/{shuffle}"] = lambda sh=shuffle: blosc_zstd(sh)
    return reg


CODECS = _registry()

# What a plain run measures: ours and the reference with each option, then the other codecs.
DEFAULT_CODECS = [name for option in CRACKLE_OPTIONS for name in (f"{OURS}/{option}", f"{REFERENCE}/{option}")]
DEFAULT_CODECS += ["compresso", "compressed_segmentation", "zstd/level 3", "blosc-zstd/shuffle"]
