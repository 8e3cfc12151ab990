"""``python -m crackle_codec.cli``: the same as the ``crackle-zarr`` command."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
