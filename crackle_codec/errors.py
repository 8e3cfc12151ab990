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


class MissingLabelsError(KeyError, ValueError):
    """``remap`` without ``preserve_missing_labels`` met labels its mapping does not cover. A
    KeyError (a mapping lookup that failed) and a ValueError; its message names the labels."""

    def __str__(self) -> str:  # KeyError would show the message's repr
        return str(self.args[0]) if self.args else ""
