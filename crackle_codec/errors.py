"""Exceptions raised by crackle_codec."""


class DecodeError(ValueError):
    """A Crackle stream is malformed: truncated, corrupted or not a Crackle stream at all.

    The message names the section that failed (header, crack index, labels, markov model,
    slice z=N, trailer).
    """
