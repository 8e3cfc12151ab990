"""Exceptions raised by crackle_codec."""


class DecodeError(ValueError):
    """A Crackle stream is malformed: truncated, corrupted or not a Crackle stream at all.

    The message names the section that failed (header, crack index, labels, markov model,
    slice z=N, trailer).
    """


class SliceOutOfRange(DecodeError, IndexError):
    """``decompress(z=k)`` for a slice the stream's header does not declare. A DecodeError (code
    that guards decoding with ``except DecodeError`` catches it) and an IndexError (as a numpy
    index out of range is)."""
