"""The ``crackle-zarr`` command line.

Subcommands (``crackle-zarr COMMAND --help`` for each):

* ``demo``: build a synthetic 3D segmentation in memory, compress it with Crackle and zstd, print
  sizes and speeds, then answer label queries on the compressed stream without decoding it.
* ``info FILE``: header fields, section sizes, label count and compression ratio of a stream.
* ``verify FILE...``: check streams completely (every CRC and structural rule).

Adding a subcommand: write a ``_setup_NAME(parser)`` function decorated with ``@_subcommand`` that
adds its arguments and sets ``run`` to a function ``run(args) -> int``. Errors are raised as
exceptions; ``main`` prints them as one line on stderr (a traceback only with ``--debug``).

Exit codes: 0 success, 1 failure (including a stream that fails to verify), 2 usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
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


# ---------------------------------------------------------------------------------- info / verify

def _read_stream(path: str) -> bytes:
    """A stream from a .ckl file (a .gz/.bz2/.xz/.zst suffix is undone), header checked."""
    cc = _codec()
    try:
        return cc.load(path, decode=False)
    except cc.DecodeError as exc:
        raise CLIError(f"{path}: not a valid Crackle stream: {exc}") from exc


@_subcommand("info", "Print the header, section sizes, label count and compression ratio of a stream.")
def _setup_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a Crackle stream (.ckl, optionally .gz/.bz2/.xz/.zst)")
    p.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    cc = _codec()
    stream = _read_stream(args.file)
    h = cc.header(stream)
    try:
        n_labels: Any = cc.num_labels(stream)
    except cc.DecodeError as exc:
        n_labels = f"unreadable ({' '.join(str(exc).split())})"
    sx, sy, sz = h.shape
    raw = h.voxels * h.dtype.itemsize
    rows = [
        ("file", f"{args.file} ({len(stream):,} bytes of stream)"),
        ("format version", f"{h.version}" + ("" if h.has_crcs else " (no CRCs)")),
        ("shape", f"{sx} x {sy} x {sz} ({h.voxels:,} voxels), decodes {h.order}-ordered"),
        ("dtype", f"{h.dtype.name} (labels stored in {h.stored_width} byte{'s' if h.stored_width > 1 else ''})"),
        ("labels", f"{n_labels}, {h.label_format}" + (", unsorted" if h.unsorted else "")
         + (", remapped" if h.remapped else "")),
        ("crack codes", f"{h.crack_format}, markov model order {h.markov_model_order}"),
        ("ratio", f"{raw / len(stream):.1f}x (raw {raw:,} bytes)" if len(stream) else "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("sections")
    sections = [("header", h.header_bytes), ("crack index", h.index_bytes), ("labels", h.label_bytes),
                ("markov model", h.markov_model_bytes), ("crack codes", h.crack_code_bytes), ("CRCs", h.crc_bytes)]
    for name, size in sections:
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
    cc = _codec()
    failed = 0
    for path in args.files:
        try:
            cc.verify(_read_stream(path), parallel=args.parallel)
        except (CLIError, cc.DecodeError, OSError) as exc:
            failed += 1
            message = _one_line(exc)
            if message.startswith(f"{path}: "):
                message = message[len(path) + 2:]
            print(f"FAIL  {path}: {message}")
            continue
        if not args.quiet:
            print(f"OK    {path}")
    if len(args.files) > 1 and not args.quiet:
        print(f"{len(args.files) - failed} ok, {failed} failed")
    return EXIT_FAILURE if failed else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
