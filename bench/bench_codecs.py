"""Codecs the benchmark can run, by name.

Each entry is a ``BenchCodec``: how to encode one chunk to bytes and decode it back, plus the
``family`` (implementation) and ``option`` (settings) it stands for, so that the report can put
our implementation next to the reference with the same option.

To add a codec (compresso, compressed_segmentation, Blosc, ...): write a factory returning a
``BenchCodec`` and register it in ``CODECS``; ``available()`` should return a reason string when
the package it needs is not installed, so that a run skips it with a message instead of failing.
"""

from __future__ import annotations

import dataclasses
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
    def check() -> str | None:
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed"
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

    def codec():
        from numcodecs import Zstd
        return Zstd(level=level)

    state: dict = {}

    def encode(chunk):
        z = state.setdefault("z", codec())
        return bytes(z.encode(np.asfortranarray(chunk).ravel(order="K")))

    def decode(data, shape, dtype):
        z = state.setdefault("z", codec())
        return np.frombuffer(z.decode(data), dtype=dtype).reshape(shape, order="F")

    return BenchCodec(f"zstd/level {level}", "zstd", f"level {level}", encode, decode,
                      _missing("numcodecs", "numcodecs"))


def _registry() -> dict[str, Callable[[], BenchCodec]]:
    reg: dict[str, Callable[[], BenchCodec]] = {}
    for option in CRACKLE_OPTIONS:
        reg[f"{OURS}/{option}"] = lambda o=option: ours(o)
        reg[f"{REFERENCE}/{option}"] = lambda o=option: reference(o)
    for level in (1, 3, 9, 19, 22):
        reg[f"zstd/level {level}"] = lambda lv=level: zstd(lv)
    return reg


CODECS = _registry()

# What a plain run measures: ours and the reference with each option, and zstd level 3 as a baseline.
DEFAULT_CODECS = [name for option in CRACKLE_OPTIONS for name in (f"{OURS}/{option}", f"{REFERENCE}/{option}")]
DEFAULT_CODECS.append("zstd/level 3")
