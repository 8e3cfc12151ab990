"""The ``crackle-zarr`` command line.

Subcommands (``crackle-zarr COMMAND --help`` for each):

* ``demo``: build a synthetic 3D segmentation in memory, compress it with Crackle and zstd, print
  sizes and speeds, then answer label queries on the compressed stream without decoding it.
* ``info FILE``: header fields, section sizes, label count and compression ratio of a stream.
* ``verify FILE...``: check streams completely (every CRC and structural rule).
* ``compress IN``: a volume (``.npy``, ``.npz``, ``.tif``, ``.nii``...) to a ``.ckl`` stream.
* ``decompress IN``: a ``.ckl`` stream back to a volume file.
* ``labels FILE``: the label values of a stream, read from its labels section.
* ``remap FILE MAPPING.json -o OUT``: rewrite a stream's label values without decoding voxels.
* ``convert SRC DST.zarr``: a volume, stream or Zarr array into a new Crackle Zarr array, chunk by
  chunk (or shard by shard) on a thread pool, with bounded memory.
* ``query STORE.zarr``: which chunks hold a label, or the labels of every chunk, without decoding.

See docs/cli.md for every option with examples.

Adding a subcommand: write a ``_setup_NAME(parser)`` function decorated with ``@_subcommand`` that
adds its arguments and sets ``run`` to a function ``run(args) -> int``. Errors are raised as
exceptions; ``main`` prints them as one line on stderr (a traceback only with ``--debug``).

Exit codes: 0 success, 1 failure (including a stream that fails to verify), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

PROG = "crackle-zarr"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

DEMO_SHAPE = (256, 256, 128)
DEMO_MAX_VOXELS = 1 << 30


class CLIError(Exception):
    """A failure to report to the user as one line (exit code 1)."""


# ------------------------------------------------------------------------------ parser plumbing

_SUBCOMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = []


def _subcommand(name: str, summary: str):
    """Register ``setup(parser)`` as the builder of subcommand ``name``."""

    def register(setup: Callable[[argparse.ArgumentParser], None]):
        _SUBCOMMANDS.append((name, summary, setup))
        return setup

    return register


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("crackle-zarr")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser: global options, then one subparser per registered subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Crackle codec for 3D dense segmentations (integer label volumes).",
        epilog=f"Run '{PROG} COMMAND --help' for the options of a command.",
    )
    debug_help = "show the full traceback on errors"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    # --debug is also accepted after the subcommand name; SUPPRESS keeps a subcommand from
    # resetting a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for name, summary, setup in _SUBCOMMANDS:
        p = sub.add_parser(name, parents=[common], help=summary, description=summary)
        setup(p)
    return parser


def _one_line(exc: BaseException) -> str:
    """A single-line description of ``exc`` for the user."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None:
            text = f"{exc.filename}: {text}"
    elif isinstance(exc, (CLIError,)):
        text = str(exc)
    else:
        msg = str(exc)
        if isinstance(exc, KeyError) and exc.args:
            msg = repr(exc.args[0])
        text = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    try:
        return int(args.run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        try:
            sys.stdout = open(os.devnull, "w")  # silence the flush at exit
        except OSError:
            pass
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE


def _codec():
    """Import crackle_codec, turning a missing compiled extension into one clear message."""
    try:
        import crackle_codec
    except ImportError as exc:
        raise CLIError(
            f"cannot import crackle_codec ({' '.join(str(exc).split())}); "
            "is the package installed with its compiled extension? (pip install .)"
        ) from exc
    return crackle_codec


# -------------------------------------------------------------------------- argument parsing helpers

def _shape_arg(text: str) -> tuple[int, int, int]:
    """'256,256,128' or '256x256x128' (or 2 values, giving sz = 1) -> (sx, sy, sz)."""
    parts = text.replace("x", ",").replace("X", ",").split(",")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SX,SY,SZ (integers), got {text!r}") from None
    if len(dims) not in (2, 3) or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected 2 or 3 positive integers SX,SY[,SZ], got {text!r}")
    if len(dims) == 2:
        dims.append(1)
    if dims[0] * dims[1] * dims[2] > DEMO_MAX_VOXELS:
        raise argparse.ArgumentTypeError(f"{text} is more than {DEMO_MAX_VOXELS:,} voxels")
    return dims[0], dims[1], dims[2]


def _threads_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (0 = all cores), got {text!r}")
    return n


def _levels_arg(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated zstd levels, got {text!r}") from None
    if any(not 1 <= lv <= 22 for lv in levels):
        raise argparse.ArgumentTypeError(f"zstd levels are 1..22, got {text!r}")
    return levels


# ------------------------------------------------------------------------ synthetic segmentation

def synthetic_segmentation(
    shape: tuple[int, int, int] = DEMO_SHAPE,
    seed: int = 0,
    *,
    cell_size: tuple[int, int, int] = (32, 32, 48),
    tubes: int | None = None,
) -> np.ndarray:
    """A deterministic, realistic-looking dense 3D segmentation (uint32, Fortran order), numpy only.

    Irregular cells: a power (weighted Voronoi) diagram of one jittered seed per block of
    ``cell_size`` voxels, on coordinates bent by a smooth random warp so that boundaries curve.
    Neurite-like tubes (discs of radius 1.5..5 wandering from slice to slice) are then drawn
    through the cells. Labels are large random ids, as in real segmentations. Memory stays bounded
    because the volume is computed block by block (each block only looks at its 27 neighbour seeds).
    """
    sx, sy, sz = (int(s) for s in shape)
    rng = np.random.default_rng(seed)
    cs = np.asarray(cell_size, dtype=np.int64)
    gx, gy, gz = (int(g) for g in -(-np.asarray((sx, sy, sz)) // cs))

    # One seed per block, with a one-block margin on every side so that edge blocks have 27 neighbours.
    idx = np.stack(np.meshgrid(np.arange(-1, gx + 1), np.arange(-1, gy + 1), np.arange(-1, gz + 1),
                               indexing="ij"), axis=-1)
    seeds = ((idx + rng.random(idx.shape)) * cs).astype(np.float32)
    weights = ((rng.random(seeds.shape[:3]) - 0.5) * (0.5 * cs.min()) ** 2).astype(np.float32)
    n_seeds = weights.size
    ids = (rng.choice(2**31 - 2, size=n_seeds, replace=False) + 1).astype(np.uint32).reshape(weights.shape)

    # Smooth warp: per axis, a sum of a few random plane waves.
    waves = 3
    freqs = (rng.normal(scale=2 * np.pi / 48, size=(3, waves, 3))).astype(np.float32)
    phases = (rng.random((3, waves)) * 2 * np.pi).astype(np.float32)
    amp = np.float32(0.12 * cs.min())

    out = np.empty((sx, sy, sz), dtype=np.uint32, order="F")
    for i in range(gx):
        x0, x1 = i * cs[0], min(sx, (i + 1) * cs[0])
        x = np.arange(x0, x1, dtype=np.float32)[:, None, None]
        for j in range(gy):
            y0, y1 = j * cs[1], min(sy, (j + 1) * cs[1])
            y = np.arange(y0, y1, dtype=np.float32)[None, :, None]
            for k in range(gz):
                z0, z1 = k * cs[2], min(sz, (k + 1) * cs[2])
                z = np.arange(z0, z1, dtype=np.float32)[None, None, :]
                warped = []
                for axis, base in enumerate((x, y, z)):
                    w = base
                    for m in range(waves):
                        f = freqs[axis, m]
                        w = w + amp * np.sin(x * f[0] + y * f[1] + z * f[2] + phases[axis, m])
                    warped.append(w)
                best = label = None
                for di in range(3):
                    for dj in range(3):
                        for dk in range(3):
                            s = seeds[i + di, j + dj, k + dk]
                            d = ((warped[0] - s[0]) ** 2 + (warped[1] - s[1]) ** 2 + (warped[2] - s[2]) ** 2
                                 - weights[i + di, j + dj, k + dk])
                            value = ids[i + di, j + dj, k + dk]
                            if best is None:
                                best, label = d, np.full(d.shape, value, dtype=np.uint32)
                            else:
                                closer = d < best
                                np.minimum(best, d, out=best)
                                label[closer] = value
                out[x0:x1, y0:y1, z0:z1] = label

    if tubes is None:
        tubes = max(1, round(sx * sy / 1100))
    _draw_tubes(out, rng, tubes, first_id=2**31)
    return out


def _draw_tubes(volume: np.ndarray, rng: np.random.Generator, count: int, first_id: int) -> None:
    """Draw ``count`` neurite-like tubes (a disc per slice on a smooth random walk) into ``volume``."""
    sx, sy, sz = volume.shape
    for t in range(count):
        radius = rng.uniform(1.5, 5.0)
        pos = rng.uniform(0, [sx, sy])
        vel = rng.normal(0, 0.6, 2)
        z0 = int(rng.integers(0, max(1, sz // 2))) if rng.random() < 0.3 else 0
        z1 = sz if rng.random() < 0.7 else int(rng.integers(z0 + 1, sz + 1))
        r = int(np.ceil(radius))
        ox, oy = np.mgrid[-r:r + 1, -r:r + 1]
        disc = ox ** 2 + oy ** 2 <= radius * radius
        value = np.uint32(first_id + t)
        for zz in range(z0, z1):
            vel = 0.9 * vel + rng.normal(0, 0.35, 2)
            pos = pos + vel
            cx, cy = int(round(pos[0])), int(round(pos[1]))
            xa, xb = max(0, cx - r), min(sx, cx + r + 1)
            ya, yb = max(0, cy - r), min(sy, cy + r + 1)
            if xa >= xb or ya >= yb:
                continue
            mask = disc[xa - (cx - r):xb - (cx - r), ya - (cy - r):yb - (cy - r)]
            volume[xa:xb, ya:yb, zz][mask] = value


# ---------------------------------------------------------------------------------- measuring

@dataclasses.dataclass
class Codec:
    """A codec under test: ``encode(volume) -> bytes`` and ``decode(bytes) -> volume``."""

    name: str
    encode: Callable[[np.ndarray], Any]
    decode: Callable[[Any], np.ndarray]


@dataclasses.dataclass
class Measurement:
    name: str
    nbytes: int
    encode_s: float
    decode_s: float
    data: Any  # the encoded form


def _best_time(fn: Callable[[], Any], budget_s: float = 0.3, max_runs: int = 3) -> tuple[float, Any]:
    """Run ``fn`` once, and again (up to ``max_runs``) while that stays cheap; the fastest time."""
    t0 = time.perf_counter()
    result = fn()
    best = time.perf_counter() - t0
    runs = 1
    while runs < max_runs and best * (runs + 1) < budget_s:
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return best, result


def measure(volume: np.ndarray, codecs: Sequence[Codec]) -> Iterator[Measurement]:
    """Encode and decode ``volume`` with each codec, check the round trip, yield the timings."""
    for codec in codecs:
        enc_s, data = _best_time(lambda: codec.encode(volume))
        dec_s, back = _best_time(lambda: codec.decode(data))
        if back.shape != volume.shape or back.dtype != volume.dtype or not np.array_equal(back, volume):
            raise CLIError(f"{codec.name}: the decoded volume differs from the input")
        yield Measurement(codec.name, len(data), enc_s, dec_s, data)


def _zstd_codec(level: int, volume: np.ndarray) -> Codec:
    from numcodecs import Zstd

    zstd = Zstd(level=level)
    shape, dtype = volume.shape, volume.dtype

    def encode(v: np.ndarray) -> bytes:
        return bytes(zstd.encode(np.asfortranarray(v).ravel(order="K")))

    def decode(data: bytes) -> np.ndarray:
        flat = np.frombuffer(zstd.decode(data), dtype=dtype)
        return flat.reshape(shape, order="F")

    return Codec(f"zstd level {level}", encode, decode)


def _crackle_codecs(parallel: int) -> list[Codec]:
    cc = _codec()

    def crackle(name: str, **options: Any) -> Codec:
        return Codec(name,
                     lambda v: cc.compress(v, parallel=parallel, **options),
                     lambda data: cc.decompress(data, parallel=parallel))

    return [
        crackle("crackle flat"),
        crackle("crackle markov 5", markov_model_order=5),
        crackle("crackle pins + markov 5", allow_pins=True, markov_model_order=5),
    ]


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


class Table:
    """A fixed-width text table printed row by row (so slow rows show progress)."""

    def __init__(self, columns: Sequence[tuple[str, int]], out=None, indent: int = 0):
        self.columns = list(columns)
        self.out = out or sys.stdout
        self.indent = " " * indent

    def _line(self, cells: Sequence[str]) -> str:
        first, *rest = self.columns
        parts = [f"{cells[0]:<{first[1]}}"] + [f"{c:>{w}}" for c, (_, w) in zip(cells[1:], rest)]
        return (self.indent + "  ".join(parts)).rstrip()

    def header(self) -> None:
        print(self._line([name for name, _ in self.columns]), file=self.out)
        print(self._line(["-" * w for _, w in self.columns]), file=self.out)

    def row(self, *cells: str) -> None:
        print(self._line(cells), file=self.out, flush=True)


# ---------------------------------------------------------------------------------------- demo

def demo_codec_table(volume: np.ndarray, *, zstd_levels: Sequence[int], parallel: int,
                     out=None) -> dict[str, Measurement]:
    """Print size, ratio and speed of raw, zstd and Crackle on ``volume``; return the measurements."""
    out = out or sys.stdout
    mvx = volume.size / 1e6
    raw = volume.nbytes
    table = Table([("codec", 24), ("size", 10), ("ratio", 8), ("encode MVx/s", 12), ("decode MVx/s", 12)], out)
    table.header()
    table.row("raw", _fmt_bytes(raw), "1.0x", "-", "-")
    codecs = [_zstd_codec(level, volume) for level in zstd_levels] + _crackle_codecs(parallel)
    results = {}
    for m in measure(volume, codecs):
        results[m.name] = m
        table.row(m.name, _fmt_bytes(m.nbytes), f"{raw / m.nbytes:.1f}x",
                  f"{mvx / m.encode_s:.1f}", f"{mvx / m.decode_s:.1f}")
    return results


def demo_label_queries(volume: np.ndarray, stream: bytes, name: str, decode_s: float, out=None) -> None:
    """Answer label questions on a compressed stream without decoding it, with their timings."""
    out = out or sys.stdout
    cc = _codec()
    t_labels, found = _best_time(lambda: cc.labels(stream), max_runs=5)
    present = int(found[len(found) // 2]) if len(found) else 0
    absent = int(found.max()) + 1 if len(found) and int(found.max()) < np.iinfo(found.dtype).max else 0
    t_in, has_present = _best_time(lambda: cc.contains(stream, present), max_runs=5)
    t_out, has_absent = _best_time(lambda: cc.contains(stream, absent), max_runs=5)
    t_unique, truth = _best_time(lambda: np.unique(volume), max_runs=1)
    if not np.array_equal(found, truth) or not has_present or (has_absent and absent not in truth):
        raise CLIError("a label query on the compressed stream disagrees with the volume")
    rows = [
        ("labels(stream)", f"{len(found)} labels", t_labels),
        (f"contains(stream, {present})", str(has_present), t_in),
        (f"contains(stream, {absent})", str(has_absent), t_out),
        ("decompress, then numpy.unique", f"{len(truth)} labels", decode_s + t_unique),
    ]
    print(f"Label queries on the '{name}' stream ({_fmt_bytes(len(stream))}), without decoding it:", file=out)
    table = Table([("query", 32), ("answer", 10), ("time", 9)], out, indent=2)
    table.header()
    for query, answer, seconds in rows:
        table.row(query, answer, _fmt_time(seconds))


@_subcommand("demo", "Compress a synthetic segmentation and compare Crackle with zstd (no data needed).")
def _setup_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shape", type=_shape_arg, default=DEMO_SHAPE, metavar="SX,SY,SZ",
                   help="volume shape (default: 256,256,128)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the volume (default: 0)")
    p.add_argument("--zstd-levels", type=_levels_arg, default=(3, 19), metavar="L1,L2",
                   help="zstd levels to compare with (default: 3,19; 20-22 take minutes)")
    p.add_argument("--parallel", type=_threads_arg, default=1, metavar="N",
                   help="Crackle threads, 0 = all cores (default: 1)")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    _codec()  # fail early and clearly if the extension is missing
    t0 = time.perf_counter()
    volume = synthetic_segmentation(args.shape, args.seed)
    made_s = time.perf_counter() - t0
    sx, sy, sz = volume.shape
    n_labels = len(np.unique(volume))
    print(f"Synthetic segmentation {sx}x{sy}x{sz} {volume.dtype} (seed {args.seed}): cells and neurite-like "
          f"tubes, {n_labels} labels, {volume.size:,} voxels, {_fmt_bytes(volume.nbytes)} raw "
          f"(made in {_fmt_time(made_s)})")
    threads = "all cores" if args.parallel == 0 else f"{args.parallel} thread{'s' if args.parallel != 1 else ''}"
    print(f"Encode and decode speeds in megavoxels per second (MVx/s); Crackle on {threads}, zstd on 1.")
    print()
    results = demo_codec_table(volume, zstd_levels=args.zstd_levels, parallel=args.parallel)
    print("Every round trip was checked: decoded == input.")
    print()
    name = "crackle pins + markov 5"
    demo_label_queries(volume, results[name].data, name, results[name].decode_s)
    print()
    demo_zarr(volume)
    return EXIT_OK


def demo_zarr(volume: np.ndarray, out=None) -> None:
    """The Zarr part of the demo: needs zarr 3, which `pip install "crackle-zarr[zarr]"` brings."""
    try:
        import zarr
    except ImportError:
        zarr = None
    if zarr is None or int(zarr.__version__.split(".")[0]) < 3:
        print("Zarr part skipped: it needs zarr >= 3 (pip install \"crackle-zarr[zarr]\").", file=out)
        return
    from .chunks import zarr_demo

    print(zarr_demo(volume), file=out)


# ------------------------------------------------------------------------------- file formats

STREAM_SUFFIXES = (".ckl", ".ckl.gz", ".ckl.bz2", ".ckl.xz", ".ckl.zst")
VOLUME_SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".nii", ".nii.gz")
_OPTIONAL_LIBRARIES = {".tif": "tifffile", ".tiff": "tifffile", ".nii": "nibabel", ".nii.gz": "nibabel"}
_METADATA_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def _suffix_of(path: str, suffixes: Sequence[str]) -> str | None:
    """The longest of ``suffixes`` that ``path`` ends with (case-insensitive), or None."""
    name = os.fspath(path).lower()
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def _volume_suffix(path: str, role: str) -> str:
    suffix = _suffix_of(path, VOLUME_SUFFIXES)
    if suffix is None:
        raise CLIError(f"{path}: unknown {role} extension; expected one of {', '.join(VOLUME_SUFFIXES)}")
    return suffix


def _stream_suffix(path: str, role: str) -> str:
    suffix = _suffix_of(path, STREAM_SUFFIXES)
    if suffix is None:
        raise CLIError(f"{path}: unknown {role} extension; expected one of {', '.join(STREAM_SUFFIXES)}")
    return suffix


def _replace_suffix(path: str, suffixes: Sequence[str], new: str) -> str:
    """``path`` with its known suffix (one of ``suffixes``, if any) replaced by ``new``."""
    suffix = _suffix_of(path, suffixes)
    stem = path[: len(path) - len(suffix)] if suffix else path
    return stem + new


def _optional_library(suffix: str) -> Any:
    """Import the library that reads/writes files with ``suffix``, or fail with how to install it."""
    name = _OPTIONAL_LIBRARIES[suffix]
    try:
        return __import__(name)
    except ImportError:
        raise CLIError(f"{suffix} files need the {name} package: pip install {name}") from None


def _require_file(path: str) -> None:
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, not a file")


def _check_label_dtype(dtype: Any, path: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "uib":
        raise CLIError(f"{path}: dtype {dtype} is not an integer type; Crackle stores integer label "
                       "volumes (cast the data to an integer dtype first)")
    return dtype


def _read_volume(path: str, *, key: str | None = None, lazy: bool = False) -> Any:
    """The array stored in a volume file, kept in the axis order and memory order it was stored in.

    ``lazy`` returns something sliceable without reading it all where the format allows: a
    read-only memory map for ``.npy`` (and uncompressed TIFF), nibabel's array proxy for NIfTI.
    """
    _require_file(path)
    suffix = _volume_suffix(path, "input")
    if key is not None and suffix != ".npz":
        raise CLIError(f"--key applies to .npz files only, not {path}")
    library = _optional_library(suffix) if suffix in _OPTIONAL_LIBRARIES else None
    try:
        if suffix == ".npy":
            volume = np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False)
        elif suffix == ".npz":
            volume = _read_npz(path, key)
        elif suffix in (".tif", ".tiff"):
            volume = None
            if lazy:
                try:
                    volume = library.memmap(path, mode="r")
                except Exception:  # compressed or tiled: not mappable, so read it whole
                    volume = None
            if volume is None:
                volume = library.imread(path)
        else:
            volume = _read_nifti(library, path, lazy)
    except (CLIError, MemoryError):
        raise
    except Exception as exc:
        raise CLIError(f"{path}: not a readable {suffix} file ({_one_line(exc)})") from exc
    _check_label_dtype(volume.dtype, path)
    if len(volume.shape) == 0:
        raise CLIError(f"{path}: holds a 0-d array (a scalar), not a volume")
    return volume


def _read_npz(path: str, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if key is None:
            if len(names) != 1:
                raise CLIError(f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                               "choose one with --key NAME")
            key = names[0]
        elif key not in names:
            raise CLIError(f"{path}: no array named {key!r} (it holds {', '.join(names) or 'none'})")
        return archive[key]


def _read_nifti(nibabel: Any, path: str, lazy: bool) -> Any:
    image = nibabel.load(path)
    slope, inter = image.header.get_slope_inter()
    if (slope not in (None, 1.0) and not math.isnan(slope)) or (inter not in (None, 0.0) and not math.isnan(inter)):
        raise CLIError(f"{path}: the NIfTI header scales the data (slope {slope}, intercept {inter}); "
                       "label volumes must be stored unscaled")
    proxy = image.dataobj
    # Only an uncompressed .nii is read lazily: slicing a gzip stream region by region re-reads it
    # from the start for every region, so a .nii.gz is decompressed once, whole.
    lazy = lazy and not path.lower().endswith(".gz")
    return proxy if lazy else np.asanyarray(proxy)


def _write_volume(path: str, suffix: str, volume: np.ndarray, key: str) -> None:
    """Write ``volume`` to ``path`` in the format named by ``suffix`` (axis order unchanged)."""
    if suffix == ".npy":
        with open(path, "wb") as f:
            np.save(f, volume)
    elif suffix == ".npz":
        with open(path, "wb") as f:
            np.savez_compressed(f, **{key: volume})
    elif suffix in (".tif", ".tiff"):
        tifffile = _optional_library(suffix)
        tifffile.imwrite(path, volume.view(np.uint8) if volume.dtype == np.bool_ else volume)
    else:
        nibabel = _optional_library(suffix)
        data = volume.view(np.uint8) if volume.dtype == np.bool_ else volume
        # An explicit dtype: nibabel refuses 64-bit integers otherwise, and they are common labels.
        image = nibabel.Nifti1Image(data, np.eye(4), dtype=data.dtype)
        nibabel.save(image, path)


@contextlib.contextmanager
def _output_file(path: str, force: bool) -> Iterator[str]:
    """Yield a temporary path next to ``path`` that replaces ``path`` once the block succeeds.

    A failed or interrupted write never leaves a truncated output behind; the temporary name keeps
    the suffix of ``path`` because the writers choose their format (and compression) by extension.
    """
    _check_new_output(path, force)
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    suffix = name[name.index("."):] if "." in name else ""
    fd, tmp = tempfile.mkstemp(prefix=".crackle-zarr-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_new_output(path: str, force: bool) -> None:
    if os.path.exists(path) and not force:
        raise CLIError(f"{path} already exists (use --force to overwrite it)")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{path}: directory {directory} does not exist")


def _markov_arg(text: str) -> int:
    try:
        order = int(text)
    except ValueError:
        order = -1
    if not 0 <= order <= 15:
        raise argparse.ArgumentTypeError(f"expected a markov model order 0..15, got {text!r}")
    return order


def _positive_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return n


def _dims_arg(text: str) -> tuple[int, ...]:
    """'128,128,128' or '128x128x128' or '64' (every axis) -> a tuple of positive ints."""
    parts = text.replace("x", ",").replace("X", ",").split(",")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return dims


def _add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="overwrite OUT if it exists")


def _add_parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parallel", type=_threads_arg, default=0, metavar="N",
                   help="threads of the Crackle encoder/decoder, 0 = all cores (default: 0)")


def _shape_text(shape: Sequence[int]) -> str:
    return " x ".join(str(int(s)) for s in shape)


# ---------------------------------------------------------------------------------- info / verify

def _read_stream(path: str) -> bytes:
    """A stream from a .ckl file (a .gz/.bz2/.xz/.zst suffix is undone), header checked."""
    cc = _codec()
    _require_file(path)
    try:
        return cc.load(path, decode=False)
    except cc.DecodeError as exc:
        raise CLIError(f"{path}: not a valid Crackle stream: {exc}") from exc
    except OSError as exc:
        if exc.strerror:  # permission denied and the like: the OS message says it best
            raise
        raise CLIError(f"{path}: cannot read it ({_one_line(exc)})") from exc  # e.g. not gzip data
    except Exception as exc:  # the second stage's own errors (zstd, lzma, bz2) have no common base
        raise CLIError(f"{path}: cannot read it ({_one_line(exc)})") from exc


def stream_info(path: str, stream: bytes) -> dict[str, Any]:
    """The facts ``info`` prints about ``stream`` (read from ``path``), as a JSON-ready dict."""
    cc = _codec()
    h = cc.header(stream)
    try:
        n_labels: Any = cc.num_labels(stream)
        labels_error = None
    except cc.DecodeError as exc:
        n_labels, labels_error = None, " ".join(str(exc).split())
    raw = h.voxels * h.dtype.itemsize
    info: dict[str, Any] = {
        "file": path,
        "file_bytes": os.path.getsize(path),
        "stream_bytes": len(stream),
        "version": h.version,
        "has_crcs": h.has_crcs,
        "shape": list(h.shape),
        "voxels": h.voxels,
        "dtype": h.dtype.name,
        "order": h.order,
        "stored_width": h.stored_width,
        "label_format": h.label_format,
        "labels": n_labels,
        "unsorted": h.unsorted,
        "remapped": h.remapped,
        "crack_format": h.crack_format,
        "markov_model_order": h.markov_model_order,
        "raw_bytes": raw,
        "ratio": raw / len(stream) if len(stream) else None,
        "sections": {
            "header": h.header_bytes,
            "crack index": h.index_bytes,
            "labels": h.label_bytes,
            "markov model": h.markov_model_bytes,
            "crack codes": h.crack_code_bytes,
            "CRCs": h.crc_bytes,
        },
    }
    if labels_error is not None:
        info["labels_error"] = labels_error
    return info


@_subcommand("info", "Print the header, section sizes, label count and compression ratio of a stream.")
def _setup_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a Crackle stream (.ckl, optionally .gz/.bz2/.xz/.zst)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    """``info FILE [--json]``: the facts of ``stream_info``, as text or one JSON object."""
    stream = _read_stream(args.file)
    info = stream_info(args.file, stream)
    if args.json:
        print(json.dumps(info))
        return EXIT_OK
    sx, sy, sz = info["shape"]
    width_bytes = info["stored_width"]
    n_labels = info["labels"] if info["labels"] is not None else f"unreadable ({info['labels_error']})"
    file_text = f"{args.file} ({len(stream):,} bytes of stream"
    if info["file_bytes"] != len(stream):
        file_text += f", {info['file_bytes']:,} bytes on disk"
    rows = [
        ("file", file_text + ")"),
        ("format version", f"{info['version']}" + ("" if info["has_crcs"] else " (no CRCs)")),
        ("shape", f"{sx} x {sy} x {sz} ({info['voxels']:,} voxels), decodes {info['order']}-ordered"),
        ("dtype", f"{info['dtype']} (labels stored in {width_bytes} byte{'s' if width_bytes > 1 else ''})"),
        ("labels", f"{n_labels}, {info['label_format']}" + (", unsorted" if info["unsorted"] else "")
         + (", remapped" if info["remapped"] else "")),
        ("crack codes", f"{info['crack_format']}, markov model order {info['markov_model_order']}"),
        ("ratio", f"{info['ratio']:.1f}x (raw {info['raw_bytes']:,} bytes)" if info["ratio"] else "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("sections")
    for name, size in info["sections"].items():
        share = 100.0 * size / len(stream) if len(stream) else 0.0
        print(f"  {name:<{width - 2}}  {size:>12,} bytes  {share:5.1f}%")
    return EXIT_OK


@_subcommand("verify", "Check streams completely (every CRC and structural rule); exit 1 if any fails.")
def _setup_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="Crackle streams (.ckl, optionally compressed)")
    p.add_argument("--parallel", type=_threads_arg, default=1, metavar="N", help="threads, 0 = all cores")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    p.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """``verify FILE...``: OK/FAIL per stream (FAIL names the failing section); 1 if any fails."""
    cc = _codec()
    failed = 0
    for path in args.files:
        try:
            cc.verify(_read_stream(path), parallel=args.parallel)
        except (CLIError, cc.DecodeError, OSError) as exc:
            failed += 1
            # A DecodeError's message starts with the failing section; the class name adds nothing.
            message = " ".join(str(exc).split()) if isinstance(exc, cc.DecodeError) else _one_line(exc)
            if message.startswith(f"{path}: "):
                message = message[len(path) + 2:]
            print(f"FAIL  {path}: {message}")
            continue
        if not args.quiet:
            print(f"OK    {path}")
    if len(args.files) > 1 and not args.quiet:
        print(f"{len(args.files) - failed} ok, {failed} failed")
    return EXIT_FAILURE if failed else EXIT_OK


# ------------------------------------------------------------------------- compress / decompress

@_subcommand("compress", "Compress a volume (.npy, .npz, .tif, .nii[.gz]) into a Crackle stream (.ckl[.gz|.bz2|.xz|.zst]).")
def _setup_compress(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="a volume: " + ", ".join(VOLUME_SUFFIXES))
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the stream to write; its extension picks a second compression stage: "
                        + ", ".join(STREAM_SUFFIXES) + " (default: IN with its extension replaced by .ckl)")
    p.add_argument("--key", metavar="NAME", help="the array to read from an .npz holding several")
    p.add_argument("--markov", type=_markov_arg, default=0, metavar="N",
                   help="markov model order of the crack codes, 0..15 (0 = none, fastest; 5 = smaller)")
    p.add_argument("--pins", action="store_true", help="allow the PINS label format (often smaller)")
    p.add_argument("--transpose", action="store_true",
                   help="reverse the axes first: a (z, y, x) TIFF stack becomes (x, y, z), so that "
                        "Crackle's slices are its image planes")
    _add_parallel(p)
    _add_force(p)
    p.set_defaults(run=run_compress)


def run_compress(args: argparse.Namespace) -> int:
    """``compress IN``: a volume file to a Crackle stream file (second stage by OUT extension)."""
    cc = _codec()
    _require_file(args.input)
    _volume_suffix(args.input, "input")
    out = args.output or _replace_suffix(args.input, VOLUME_SUFFIXES, ".ckl")
    _stream_suffix(out, "output")
    _check_new_output(out, args.force)  # before the (possibly long) read
    volume = _read_volume(args.input, key=args.key)
    if args.transpose:
        volume = volume.T
    t0 = time.perf_counter()
    try:
        stream = cc.compress(volume, allow_pins=args.pins, markov_model_order=args.markov, parallel=args.parallel)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"{args.input}: {exc}") from exc
    with _output_file(out, args.force) as tmp:
        cc.save(stream, tmp)
    seconds = time.perf_counter() - t0
    size = os.path.getsize(out)
    print(f"{args.input} -> {out}: {_shape_text(volume.shape)} {volume.dtype}, {volume.nbytes:,} bytes -> "
          f"{size:,} bytes ({volume.nbytes / max(size, 1):.1f}x smaller) in {_fmt_time(seconds)}")
    return EXIT_OK


@_subcommand("decompress", "Decode a Crackle stream into a volume file (.npy, .npz, .tif, .nii[.gz]).")
def _setup_decompress(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="a Crackle stream (.ckl, optionally .gz/.bz2/.xz/.zst)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the volume to write, format by extension: " + ", ".join(VOLUME_SUFFIXES)
                        + " (default: IN with its extension replaced by .npy)")
    p.add_argument("--key", metavar="NAME", default="labels", help="array name in an .npz output (default: labels)")
    p.add_argument("--transpose", action="store_true", help="reverse the axes of the decoded volume")
    _add_parallel(p)
    _add_force(p)
    p.set_defaults(run=run_decompress)


def run_decompress(args: argparse.Namespace) -> int:
    """``decompress IN``: a Crackle stream file to a volume file (format by OUT extension)."""
    cc = _codec()
    _require_file(args.input)
    out = args.output or _replace_suffix(args.input, STREAM_SUFFIXES, ".npy")
    suffix = _volume_suffix(out, "output")
    if suffix in _OPTIONAL_LIBRARIES:
        _optional_library(suffix)
    _check_new_output(out, args.force)
    stream = _read_stream(args.input)
    t0 = time.perf_counter()
    try:
        volume = cc.decompress(stream, parallel=args.parallel)
    except cc.DecodeError as exc:
        raise CLIError(f"{args.input}: not a valid Crackle stream: {exc}") from exc
    if args.transpose:
        volume = volume.T
    with _output_file(out, args.force) as tmp:
        _write_volume(tmp, suffix, volume, args.key)
    print(f"{args.input} -> {out}: {_shape_text(volume.shape)} {volume.dtype} ({volume.nbytes:,} bytes) "
          f"in {_fmt_time(time.perf_counter() - t0)}")
    return EXIT_OK


# -------------------------------------------------------------------------------- labels / remap

@_subcommand("labels", "Print the label values of a stream (from its labels section, no voxel decoding).")
def _setup_labels(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a Crackle stream (.ckl, optionally compressed)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of one label per line")
    p.set_defaults(run=run_labels)


def run_labels(args: argparse.Namespace) -> int:
    """``labels FILE``: the stream's sorted label values, from its labels section."""
    cc = _codec()
    stream = _read_stream(args.file)
    try:
        values = cc.labels(stream).tolist()
    except cc.DecodeError as exc:
        raise CLIError(f"{args.file}: not a valid Crackle stream: {exc}") from exc
    if args.json:
        print(json.dumps(values))
    else:
        sys.stdout.write("".join(f"{int(v)}\n" for v in values))
    return EXIT_OK


def read_mapping(path: str) -> dict[int, int]:
    """A label mapping from a JSON object ``{"old": new, ...}`` (keys are strings in JSON)."""
    _require_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{path}: not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not valid JSON: not UTF-8 text") from exc
    if not isinstance(raw, dict):
        raise CLIError(f"{path}: expected a JSON object {{\"old label\": new label, ...}}, got a {type(raw).__name__}")
    mapping: dict[int, int] = {}
    for key, value in raw.items():
        try:
            old = int(key.strip())
        except ValueError:
            raise CLIError(f"{path}: key {key!r} is not an integer label") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise CLIError(f"{path}: label {key} maps to {json.dumps(value)}, which is not an integer")
        if old in mapping:
            raise CLIError(f"{path}: label {old} is mapped twice")
        mapping[old] = value
    return mapping


@_subcommand("remap", "Rewrite the label values of a stream with a JSON mapping, without decoding voxels.")
def _setup_remap(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a Crackle stream (.ckl, optionally compressed)")
    p.add_argument("mapping", metavar="MAPPING.json", help='a JSON object {"old": new, ...}')
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="the stream to write (" + ", ".join(STREAM_SUFFIXES) + ")")
    p.add_argument("--preserve-missing-labels", action="store_true",
                   help="labels not in the mapping keep their value (default: they are an error)")
    _add_force(p)
    p.set_defaults(run=run_remap)


def run_remap(args: argparse.Namespace) -> int:
    """``remap FILE MAPPING.json -o OUT``: ``crackle_codec.remap`` with a mapping read from JSON."""
    cc = _codec()
    _stream_suffix(args.output, "output")
    mapping = read_mapping(args.mapping)
    stream = _read_stream(args.file)
    _check_new_output(args.output, args.force)
    try:
        new = cc.remap(stream, mapping, preserve_missing_labels=args.preserve_missing_labels)
    except KeyError as exc:
        raise CLIError(f"{args.file}: label {exc.args[0]} is not in {args.mapping} (map it, or pass "
                       "--preserve-missing-labels to keep the labels that are not mapped)") from exc
    except cc.DecodeError as exc:
        raise CLIError(f"{args.file}: not a valid Crackle stream: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CLIError(f"{args.file}: {exc}") from exc
    with _output_file(args.output, args.force) as tmp:
        cc.save(new, tmp)
    before, after = cc.labels(stream), cc.labels(new)
    print(f"{args.file} -> {args.output}: {len(before)} labels -> {len(after)} labels "
          f"({sum(1 for v in before.tolist() if mapping.get(v, v) != v)} changed)")
    return EXIT_OK


# ------------------------------------------------------------------------------------ convert

class _Transposed:
    """A sliceable volume seen with its axes reversed (a view; nothing is read up front)."""

    def __init__(self, source: Any):
        self.source = source
        self.shape = tuple(source.shape)[::-1]
        self.dtype = source.dtype

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self.source[box[::-1]]).T


class _StreamSource:
    """A Crackle stream read as a volume, one slab of z slices at a time (``slab``)."""

    def __init__(self, path: str, stream: bytes, transpose: bool):
        cc = _codec()
        self.path = path
        self.stream = stream
        self.header = cc.header(stream)
        self.transpose = transpose
        shape = tuple(self.header.shape)
        self.shape = shape[::-1] if transpose else shape
        self.dtype = self.header.dtype
        self.slab_axis = 0 if transpose else 2  # the stream's z axis, in output axes

    def slab(self, lo: int, hi: int, parallel: int) -> "_Slab":
        """The volume's slices lo..hi along ``slab_axis``, decoded once, for the regions inside them."""
        cc = _codec()
        try:
            block = cc.decompress(self.stream, z=slice(lo, hi), parallel=parallel)
        except cc.DecodeError as exc:
            raise CLIError(f"{self.path}: not a valid Crackle stream: {exc}") from exc
        return _Slab(block.T if self.transpose else block, self.slab_axis, lo)


class _Slab:
    """A decoded slab of a stream, indexed with boxes in whole-volume coordinates."""

    def __init__(self, block: np.ndarray, axis: int, offset: int):
        self.block, self.axis, self.offset = block, axis, offset

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        local = list(box)
        s = local[self.axis]
        local[self.axis] = slice(s.start - self.offset, s.stop - self.offset)
        return self.block[tuple(local)]


def _is_zarr_path(path: str) -> bool:
    return "://" in path or os.path.isdir(path)


def _open_zarr_array(path: str) -> Any:
    """An existing Zarr array (any format and codec), read-only."""
    try:
        import zarr
    except ImportError:
        raise CLIError("Zarr arrays need zarr >= 3: pip install \"crackle-zarr[zarr]\"") from None
    if "://" not in path and not os.path.exists(path):
        raise CLIError(f"{path}: no such Zarr array")
    try:
        return zarr.open_array(path, mode="r")
    except Exception as exc:
        raise CLIError(f"{path}: cannot open it as a Zarr array ({_one_line(exc)})") from exc


def _memory_order_of(source: Any) -> str:
    """The memory order that makes copies of ``source`` blocks cheap ("F" or "C")."""
    if isinstance(source, _Transposed):
        return "C" if _memory_order_of(source.source) == "F" else "F"
    if isinstance(source, _StreamSource):
        order = source.header.order
        return ("C" if order == "F" else "F") if source.transpose else order
    if isinstance(source, np.ndarray):
        return "F" if source.flags.f_contiguous and not source.flags.c_contiguous else "C"
    if type(source).__module__.startswith("nibabel"):
        return "F"  # NIfTI voxels are stored x fastest
    order = getattr(source, "order", None)
    return order if order in ("C", "F") else "C"


def open_source(path: str, *, key: str | None = None, transpose: bool = False) -> Any:
    """A convert source: a lazily read volume with ``shape``, ``dtype`` and ``source[box]``."""
    if _is_zarr_path(path):
        if key is not None:
            raise CLIError("--key applies to .npz sources only")
        source: Any = _open_zarr_array(path)
        _check_label_dtype(source.dtype, path)
    elif _suffix_of(path, STREAM_SUFFIXES) is not None:
        if key is not None:
            raise CLIError("--key applies to .npz sources only")
        return _StreamSource(path, _read_stream(path), transpose)
    elif _suffix_of(path, VOLUME_SUFFIXES) is not None:
        source = _read_volume(path, key=key, lazy=True)
    else:
        _require_file(path)
        raise CLIError(f"{path}: unknown source extension; expected a Zarr array or one of "
                       f"{', '.join(VOLUME_SUFFIXES + STREAM_SUFFIXES)}")
    if transpose:
        source = source.T if isinstance(source, np.ndarray) else _Transposed(source)
    return source


def _grid(shape: Sequence[int], chunks: Sequence[int], shards: Sequence[int] | None,
          ) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """Chunk (and shard) shapes fitted to ``shape``: none bigger than needed, shards still multiples."""
    ndim = len(shape)

    def per_axis(dims: Sequence[int], what: str) -> tuple[int, ...]:
        if len(dims) == 1:
            return tuple(dims) * ndim
        if len(dims) != ndim:
            raise CLIError(f"--{what} has {len(dims)} values, the volume has {ndim} axes {tuple(shape)}")
        return tuple(dims)

    chunks = per_axis(chunks, "chunks")
    fitted = tuple(max(1, min(c, s)) for c, s in zip(chunks, shape))
    if shards is None:
        return fitted, None
    shards = per_axis(shards, "shards")
    bad = [(sh, c) for sh, c in zip(shards, chunks) if sh % c]
    if bad:
        raise CLIError(f"--shards {','.join(map(str, shards))} must be multiples of --chunks "
                       f"{','.join(map(str, chunks))}")
    fitted_shards = tuple(min(sh, -(-max(s, 1) // c) * c) for sh, s, c in zip(shards, shape, fitted))
    return fitted, fitted_shards


def _stored_bytes(path: str) -> int | None:
    if "://" in path or not os.path.isdir(path):
        return None
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files if f not in _METADATA_FILES)


def _progress(total: int, unit: str, enabled: bool) -> Any:
    """A tqdm bar on stderr when tqdm is installed and stderr is a terminal; else a no-op."""
    if enabled and sys.stderr.isatty():
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass
    return contextlib.nullcontext(None)


def create_crackle_array(path: str, *, shape: Sequence[int], dtype: np.dtype, chunks: Sequence[int],
                         shards: Sequence[int] | None, zarr_format: int, markov: int, pins: bool,
                         order: str, overwrite: bool) -> Any:
    """A new, empty Crackle-compressed Zarr array (format 2: numcodecs compressor; 3: serializer)."""
    import zarr

    cc = _codec()
    common = dict(shape=tuple(shape), chunks=tuple(chunks), dtype=dtype, fill_value=0, overwrite=overwrite)
    if zarr_format == 2:
        if shards is not None:
            raise CLIError("--shards needs --zarr-format 3 (format 2 has no sharding)")
        return zarr.create_array(path, zarr_format=2, compressors=cc.Crackle(markov_model_order=markov, allow_pins=pins),
                                 filters=None, order=order, **common)
    from .zarr3 import CrackleCodec

    return zarr.create_array(path, zarr_format=3, shards=None if shards is None else tuple(shards),
                             serializer=CrackleCodec(markov_model_order=markov, allow_pins=pins),
                             compressors=None, config={"order": order}, **common)


@_subcommand("convert", "Write a volume, a .ckl stream or any Zarr array into a new Crackle Zarr array, "
                        "chunk by chunk on all cores.")
def _setup_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SRC",
                   help="a volume (" + ", ".join(VOLUME_SUFFIXES) + "), a Crackle stream (.ckl...) or a Zarr array")
    p.add_argument("dest", metavar="DST.zarr", help="the Zarr array to create")
    p.add_argument("--chunks", type=_dims_arg, default=(128,), metavar="CX,CY,CZ",
                   help="chunk shape, one value per axis or one for all (default: 128; fitted to the volume)")
    p.add_argument("--shards", type=_dims_arg, default=None, metavar="SX,SY,SZ",
                   help="shard shape, multiples of --chunks (format 3 only; default: no sharding)")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3,
                   help="3: CrackleCodec serializer (default); 2: Crackle numcodecs compressor")
    p.add_argument("--markov", type=_markov_arg, default=0, metavar="N",
                   help="markov model order of the crack codes, 0..15 (default: 0)")
    p.add_argument("--pins", action="store_true", help="allow the PINS label format")
    p.add_argument("--key", metavar="NAME", help="the array to read from an .npz holding several")
    p.add_argument("--transpose", action="store_true", help="reverse the axes of SRC first (see compress)")
    p.add_argument("--workers", type=_positive_arg, default=os.cpu_count() or 1, metavar="N",
                   help=f"chunks (or shards) written concurrently (default: all cores, {os.cpu_count() or 1})")
    p.add_argument("--verify", action="store_true", help="read every chunk back and compare it with SRC")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-f", "--force", action="store_true", help="replace DST if it exists")
    p.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    """``convert SRC DST``: SRC into a new Crackle Zarr array, one whole chunk or shard per write."""
    _codec()
    try:
        import zarr
    except ImportError:
        zarr = None
    if zarr is None or int(zarr.__version__.split(".")[0]) < 3:
        raise CLIError("convert needs zarr >= 3: pip install \"crackle-zarr[zarr]\"")
    dest, source_path = args.dest, args.source
    local_dest = "://" not in dest
    if local_dest and os.path.exists(dest):
        if not args.force:
            raise CLIError(f"{dest} already exists (use --force to replace it)")
        if os.path.exists(source_path) and os.path.samefile(dest, source_path):
            raise CLIError(f"{dest}: the destination is the source")
        # --force deletes what is there: only ever a Zarr array or group, or an empty directory.
        if not os.path.isdir(dest) or (os.listdir(dest) and not _METADATA_FILES & set(os.listdir(dest))):
            raise CLIError(f"{dest} exists and is not a Zarr array; refusing to replace it, even with --force")
    source = open_source(source_path, key=args.key, transpose=args.transpose)
    shape = tuple(int(s) for s in source.shape)
    dtype = np.dtype(source.dtype)
    if dtype.itemsize > 1 and not dtype.isnative:
        dtype = dtype.newbyteorder("=")  # the codecs take native integers; values are unchanged
    chunks, shards = _grid(shape, args.chunks, args.shards)
    region = shards or chunks
    existed = local_dest and os.path.exists(dest)
    t0 = time.perf_counter()
    try:
        out = create_crackle_array(dest, shape=shape, dtype=dtype, chunks=chunks, shards=shards,
                                   zarr_format=args.zarr_format, markov=args.markov, pins=args.pins,
                                   order=_memory_order_of(source), overwrite=args.force)
        _write_regions(source, out, shape, region, dtype=dtype, workers=args.workers, verify=args.verify,
                       progress=not args.no_progress, unit="shard" if shards else "chunk")
    except BaseException:
        if local_dest and not existed:
            shutil.rmtree(dest, ignore_errors=True)  # no half-written array left behind
        raise
    seconds = time.perf_counter() - t0
    voxels = math.prod(shape)
    raw = voxels * dtype.itemsize
    stored = _stored_bytes(dest)
    n_regions = math.prod(-(-s // r) for s, r in zip(shape, region)) if voxels else 0
    what = f"{n_regions} {'shard' if shards else 'chunk'}{'s' if n_regions != 1 else ''}"
    size = (f"{stored:,} bytes written ({raw / stored:.1f}x smaller than raw)" if stored
            else "bytes written unknown" if stored is None else "0 bytes written")
    print(f"{source_path} -> {dest}: {voxels:,} voxels {dtype} ({raw:,} bytes raw) in {what}, {size}, "
          f"{seconds:.2f} s, {voxels / 1e6 / max(seconds, 1e-9):.1f} MVx/s"
          + (", verified" if args.verify else ""))
    return EXIT_OK


def _write_regions(source: Any, out: Any, shape: tuple[int, ...], region: tuple[int, ...], *,
                   dtype: np.dtype, workers: int, verify: bool, progress: bool, unit: str) -> None:
    """Copy ``source`` into ``out`` one region (a whole chunk or shard) per task, ``workers`` at a time.

    Each task reads its own block, so memory stays near ``workers`` blocks. A stream source is
    decoded one slab of z slices at a time (all of its regions in that slab, then the next), since
    decoding a few slices costs as much per slice as decoding them all.
    """
    if any(s == 0 for s in shape):
        return
    grid = [range(-(-s // r)) for s, r in zip(shape, region)]

    def box_of(index: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(i * r, min((i + 1) * r, s)) for i, r, s in zip(index, region, shape))

    boxes = [box_of(index) for index in itertools.product(*grid)]
    if isinstance(source, _StreamSource):
        axis = source.slab_axis
        slabs: dict[int, list[tuple[slice, ...]]] = {}
        for box in boxes:
            slabs.setdefault(box[axis].start, []).append(box)
        groups = [(lambda b=group[0][axis]: source.slab(b.start, b.stop, workers), group) for group in slabs.values()]
    else:
        groups = [(lambda: source, boxes)]

    def write(reader: Any, box: tuple[slice, ...]) -> None:
        block = np.asarray(reader[box])
        if block.dtype != dtype:
            block = block.astype(dtype)
        out[box] = block
        if verify and not np.array_equal(np.asarray(out[box]), block):
            raise CLIError(f"chunk at {', '.join(f'{s.start}:{s.stop}' for s in box)} does not read back equal")

    with _progress(len(boxes), unit, progress) as bar, ThreadPool(workers) as pool:
        for make_reader, group in groups:
            reader = make_reader()
            pool.run([lambda box=box: write(reader, box) for box in group],
                     on_done=(lambda: bar.update(1)) if bar is not None else None)


class ThreadPool:
    """A thread pool that runs a batch of tasks, stopping at (and re-raising) the first failure."""

    def __init__(self, workers: int):
        from concurrent.futures import ThreadPoolExecutor

        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def __enter__(self) -> "ThreadPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: Sequence[Callable[[], Any]], on_done: Callable[[], Any] | None = None) -> None:
        if self.pool is None:
            for task in tasks:
                task()
                if on_done:
                    on_done()
            return
        from concurrent.futures import FIRST_EXCEPTION, wait

        pending = {self.pool.submit(task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()  # re-raises the task's exception
                    if on_done:
                        on_done()
        finally:
            for future in pending:
                future.cancel()


# -------------------------------------------------------------------------------------- query

@_subcommand("query", "Which chunks of a Crackle Zarr array hold a label, or the labels of every chunk "
                      "(read from the chunks' label tables, no voxel decoding).")
def _setup_query(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE.zarr", help="a Zarr array whose chunks are Crackle streams")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--label", type=int, metavar="N", help="list the chunks that hold label N")
    what.add_argument("--chunk-labels", action="store_true", help="list the labels of every chunk")
    what.add_argument("--index", action="store_true", help="list, for every label, the chunks that hold it")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--workers", type=_positive_arg, default=16, metavar="N",
                   help="chunks read concurrently (default: 16)")
    p.set_defaults(run=run_query)


def _coords_text(coords: Sequence[int]) -> str:
    return ",".join(str(int(c)) for c in coords)


def run_query(args: argparse.Namespace) -> int:
    """``query STORE``: find_label / chunk_labels / label_index on a Crackle Zarr array."""
    cc = _codec()
    array = _open_zarr_array(args.store)
    try:
        from .chunks import _source

        chunk_shape = list(_source(array).chunks)  # inner chunks for sharded arrays
        if args.label is not None:
            found = cc.find_label(array, args.label, max_workers=args.workers)
        elif args.chunk_labels:
            per_chunk = cc.chunk_labels(array, max_workers=args.workers)
        else:
            index = cc.label_index(array, max_workers=args.workers)
    except (ValueError, TypeError, NotImplementedError, cc.DecodeError) as exc:
        raise CLIError(f"{args.store}: {exc}") from exc
    if args.label is not None:
        if args.json:
            print(json.dumps({"label": args.label, "chunk_shape": chunk_shape, "chunks": [list(c) for c in found]}))
        else:
            sys.stdout.write("".join(_coords_text(c) + "\n" for c in found))
    elif args.chunk_labels:
        if args.json:
            print(json.dumps({"chunk_shape": chunk_shape, "chunks": [
                {"chunk": list(c), "labels": [int(v) for v in values.tolist()]} for c, values in per_chunk.items()]}))
        else:
            sys.stdout.write("".join(f"{_coords_text(c)}: {' '.join(str(int(v)) for v in values.tolist())}\n"
                                     for c, values in per_chunk.items()))
    else:
        if args.json:
            print(json.dumps({"chunk_shape": chunk_shape,
                              "labels": {str(int(k)): [list(c) for c in v] for k, v in index.items()}}))
        else:
            sys.stdout.write("".join(f"{int(k)}: {' '.join(_coords_text(c) for c in v)}\n" for k, v in index.items()))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
