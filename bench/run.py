#!/usr/bin/env python3
"""Benchmark crackle_codec against the reference `crackle` and other segmentation codecs.

One process, one thread, the same chunks for every codec: crackle_codec and the reference
crackle-codec (flat; markov 5; pins + markov 5), compresso, compressed_segmentation, zstd on the raw
bytes and Blosc-zstd. Data: every volume in ../shared/data, whole and cut into 128^3 and 64^3
chunks (the 2D image: whole, and 128x128 tiles). Before timing, every chunk is encoded and decoded
once by every codec and checked (decoded == chunk; our Crackle streams decode in the reference and
the reference's in ours). Then REPS repetitions: in each, every codec encodes all chunks and
decodes all its streams, the codec order rotating from one repetition to the next; each call is
timed on its own and the reported speed uses the median repetition. Finally crackle_codec with
parallel=2 against parallel=1 on the whole 512^3 volume, in elapsed time. The issue's targets are
checked against the 128^3 chunks of the 3D volumes, pooled.

    pip install -r bench/requirements.txt   # compresso, compressed-segmentation, matplotlib, ...
    python bench/run.py            # full run; writes docs/benchmarks.md and docs/benchmarks.png
    python bench/run.py --quick    # a few chunks, 3 repetitions (about a minute); writes bench/out/

Results are also written as JSON to bench/out/ (not committed), for plots and later comparisons.
This is a script, not a test: it asserts correctness, never speed.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_codecs  # noqa: E402
import bench_volumes  # noqa: E402

REPO = bench_volumes.REPO
OUT_DIR = REPO / "bench" / "out"
DOC = REPO / "docs" / "benchmarks.md"
PLOT = REPO / "docs" / "benchmarks.png"

SIZES = ["128", "64", "whole"]          # chunk sizes, in the order they are run
TARGET_SIZE = "128"                      # the targets are measured on these chunks
PARALLEL_VOLUME = "connectomics_512"     # the whole 512^3 volume for parallel=2 vs parallel=1
LOAD_WARNING = 1.5                       # warn in the doc above this 1-minute load average
QUICK_WHOLE_MAX_VOXELS = 8_000_000       # --quick runs whole volumes only up to this size


# ---------------------------------------------------------------------------------- machine facts

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:
        return "not installed"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_facts() -> dict:
    commit = _git("rev-parse", "--short", "HEAD")
    if _git("status", "--porcelain", "--", "ext", "crackle_codec", "setup.py"):
        commit += " (with uncommitted changes to the core)"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import numcodecs.blosc as nb
        blosc = nb.VERSION_STRING
        blosc = blosc.decode() if isinstance(blosc, bytes) else str(blosc)
    except Exception:
        blosc = "not available"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": usable,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "crackle-codec (reference)": _version("crackle-codec"),
        "crackle-zarr (ours)": _version("crackle-zarr"),
        "compresso": _version("compresso"),
        "compressed-segmentation": _version("compressed-segmentation"),
        "numcodecs (zstd, Blosc)": _version("numcodecs"),
        "c-blosc (in numcodecs)": blosc,
        "commit": commit,
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class LoadLog:
    """Samples of the machine's load average (1, 5, 15 min) at points of the run."""

    def __init__(self):
        self.samples: list[dict] = []

    def sample(self, when: str) -> None:
        self.samples.append({"when": when, "load": _loadavg()})


# ------------------------------------------------------------------------------------- measuring

CLOCKS = {
    "wall": time.perf_counter,   # elapsed time
    "cpu": time.process_time,    # CPU time of this process: less disturbed by other work on the machine
}
CLOCK_TEXT = {
    "cpu": "CPU time of the benchmark process (`time.process_time`)",
    "wall": "elapsed time (`time.perf_counter`)",
}


def check_and_encode(codecs, chunks) -> dict[str, list[bytes]]:
    """Encode every chunk with every codec once; check every round trip and Crackle interop."""
    streams: dict[str, list[bytes]] = {}
    for codec in codecs:
        out = []
        for i, chunk in enumerate(chunks):
            data = codec.encode(chunk)
            back = codec.decode(data, chunk.shape, chunk.dtype)
            if back.shape != chunk.shape or back.dtype != chunk.dtype or not np.array_equal(back, chunk):
                raise SystemExit(f"{codec.name}: chunk {i} {chunk.shape} {chunk.dtype} does not round-trip")
            out.append(data)
        streams[codec.name] = out
    # Interop: each Crackle stream must decode to the same chunk in the other implementation.
    by_option: dict[str, dict[str, object]] = {}
    for codec in codecs:
        if codec.crackle_stream:
            by_option.setdefault(codec.option, {})[codec.family] = codec
    for option, fams in by_option.items():
        if len(fams) < 2:
            continue
        for writer in fams.values():
            for reader in fams.values():
                if reader is writer:
                    continue
                for i, chunk in enumerate(chunks):
                    back = reader.decode(streams[writer.name][i], chunk.shape, chunk.dtype)
                    if not np.array_equal(back, chunk):
                        raise SystemExit(f"interop: {reader.family} misreads chunk {i} written by {writer.name}")
    return streams


def _timed_pass(fn, items, clock=time.perf_counter) -> list[float]:
    """The time of fn(item) for each item, with the garbage collector off."""
    gc.collect()
    gc.disable()
    try:
        times = []
        for item in items:
            t0 = clock()
            fn(item)
            times.append(clock() - t0)
        return times
    finally:
        gc.enable()


def time_codecs(codecs, chunks, streams, reps: int, clock=time.perf_counter,
                log=print) -> dict[str, dict[str, list[list[float]]]]:
    """REPS repetitions of (encode all chunks, decode all streams) per codec, order rotating.

    Returns, per codec, "encode" and "decode": one list of per-chunk times per repetition.
    """
    times = {c.name: {"encode": [], "decode": []} for c in codecs}
    for rep in range(reps):
        shift = rep % len(codecs)
        order = codecs[shift:] + codecs[:shift]
        t0 = time.perf_counter()
        for codec in order:
            t_enc = _timed_pass(codec.encode, chunks, clock)
            pairs = list(zip(streams[codec.name], chunks))
            t_dec = _timed_pass(lambda p, c=codec: c.decode(p[0], p[1].shape, p[1].dtype), pairs, clock)
            times[codec.name]["encode"].append(t_enc)
            times[codec.name]["decode"].append(t_dec)
        log(f"  repetition {rep + 1}/{reps} done ({time.perf_counter() - t0:.0f} s)")
    return times


def summarize(codecs, chunks, streams, times, idx: list[int]) -> list[dict]:
    """One row per codec for the chunks ``idx``: size, ratio, median speeds, ours vs the reference."""
    voxels = sum(chunks[i].size for i in idx)
    raw = sum(chunks[i].nbytes for i in idx)
    rows = []
    for codec in codecs:
        t = times[codec.name]
        enc_reps = [sum(rep[i] for i in idx) for rep in t["encode"]]
        dec_reps = [sum(rep[i] for i in idx) for rep in t["decode"]]
        size = sum(len(streams[codec.name][i]) for i in idx)
        enc, dec = statistics.median(enc_reps), statistics.median(dec_reps)
        rows.append({
            "codec": codec.name, "family": codec.family, "option": codec.option,
            "bytes": size, "ratio": raw / size,
            "encode_mvx_s": voxels / enc / 1e6, "decode_mvx_s": voxels / dec / 1e6,
            "encode_s": enc_reps, "decode_s": dec_reps,
        })
    ref = {r["option"]: r for r in rows if r["family"] == bench_codecs.REFERENCE}
    for r in rows:
        other = ref.get(r["option"]) if r["family"] == bench_codecs.OURS else None
        if other:
            r["encode_vs_ref"] = r["encode_mvx_s"] / other["encode_mvx_s"]
            r["decode_vs_ref"] = r["decode_mvx_s"] / other["decode_mvx_s"]
            r["size_vs_ref"] = r["bytes"] / other["bytes"]
    return rows


def _wall(fn) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def measure_parallel(volume: np.ndarray, runs: int, only_target: bool = False, log=print) -> list[dict]:
    """parallel=2 against parallel=1 on a whole volume, elapsed time, median of RUNS alternating runs.

    crackle_codec flat (the target) and, unless ``only_target``, crackle_codec markov 5 and the
    reference flat for context.
    """
    cases = []
    if bench_codecs._ours_available() is None:
        import crackle_codec
        for option in (("flat",) if only_target else ("flat", "markov 5")):
            kw = bench_codecs.CRACKLE_OPTIONS[option]
            cases.append((bench_codecs.OURS, option,
                          lambda v, p, kw=kw: crackle_codec.compress(v, parallel=p, **kw),
                          lambda d, p: crackle_codec.decompress(d, parallel=p)))
    try:
        if only_target:
            raise ImportError
        import crackle
        cases.append((bench_codecs.REFERENCE, "flat",
                      lambda v, p: crackle.compress(v, parallel=p),
                      lambda d, p: crackle.decompress(d, parallel=p)))
    except ImportError:
        pass
    results = []
    for family, option, enc, dec in cases:
        s1, s2 = enc(volume, 1), enc(volume, 2)
        for s, p in ((s1, 1), (s2, 2)):
            if not np.array_equal(dec(s, p), volume):
                raise SystemExit(f"parallel: {family}/{option} does not round-trip with parallel={p}")
        t = {"encode": {1: [], 2: []}, "decode": {1: [], 2: []}}
        for r in range(runs):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for p in order:
                t["encode"][p].append(_wall(lambda: enc(volume, p)))
            for p in order:
                t["decode"][p].append(_wall(lambda: dec(s1, p)))
        row = {"family": family, "option": option, "voxels": int(volume.size), "runs": runs,
               "same_stream": s1 == s2}
        for kind in ("encode", "decode"):
            m1, m2 = statistics.median(t[kind][1]), statistics.median(t[kind][2])
            row[kind] = {"p1_s": t[kind][1], "p2_s": t[kind][2], "p1_mvx_s": volume.size / m1 / 1e6,
                         "p2_mvx_s": volume.size / m2 / 1e6, "speedup": m1 / m2}
        log(f"  {family}/{option}: encode x{row['encode']['speedup']:.2f}, decode x{row['decode']['speedup']:.2f}"
            f" with parallel=2")
        results.append(row)
    return results


# ---------------------------------------------------------------------------------------- targets

def _row(rows, family, option):
    for r in rows:
        if r["family"] == family and r["option"] == option:
            return r
    return None


def _ratio(rows, key, option):
    ours, ref = _row(rows, bench_codecs.OURS, option), _row(rows, bench_codecs.REFERENCE, option)
    if not ours or not ref:
        return None
    return ours[key] / ref[key]


# Each target: (id, text, kind, threshold, how it is computed from a table's rows)
# kind ">=": measured must be at least threshold; "<=": at most.
TARGETS = [
    ("enc_flat", "encode, flat (model 0): ours / reference", ">=", 2.0,
     lambda rows: _ratio(rows, "encode_mvx_s", "flat")),
    ("size_flat", "size, flat: ours / reference", "<=", 1.0,
     lambda rows: _ratio(rows, "bytes", "flat")),
    ("dec_flat", "decode of flat streams: ours / reference", ">=", 2.0,
     lambda rows: _ratio(rows, "decode_mvx_s", "flat")),
    ("dec_m5", "decode of markov-5 streams: ours / reference", ">=", 3.0,
     lambda rows: _ratio(rows, "decode_mvx_s", "markov 5")),
    ("enc_pins", "encode, pins + markov 5: ours / reference (same mode)", ">=", 10.0,
     lambda rows: _ratio(rows, "encode_mvx_s", "pins + markov 5")),
    ("size_pins", "size, pins + markov 5: ours / reference pins + markov 5", "<=", 1.0,
     lambda rows: _ratio(rows, "bytes", "pins + markov 5")),
]
ABS_TARGET = ("dec_abs", "decode of 128^3 uint32 chunks, flat streams (MVx/s, absolute)", ">=", 1000.0)
PAR_TARGET = 1.8
# Reported beside the targets, without a threshold.
INFO = [
    ("dec_pins", "decode of pins + markov-5 streams: ours / reference",
     lambda rows: _ratio(rows, "decode_mvx_s", "pins + markov 5")),
    ("enc_m5", "encode, markov 5: ours / reference",
     lambda rows: _ratio(rows, "encode_mvx_s", "markov 5")),
]


def _passes(kind, value, threshold):
    if value is None:
        return None
    return value >= threshold if kind == ">=" else value <= threshold


def evaluate_targets(group: dict, parallel: list[dict]) -> dict:
    """The target table (pooled 3D volumes) and the per-volume detail, from the 128^3 group."""
    tables = {t["subset"]: t for t in group["tables"]}
    pooled = tables.get("pooled")
    out = {"rows": [], "detail": [], "clock": group["clock"]}
    if pooled:
        for tid, text, kind, thr, fn in TARGETS:
            v = fn(pooled["rows"])
            out["rows"].append({"id": tid, "text": text, "kind": kind, "threshold": thr, "value": v,
                                "unit": "x size" if tid.startswith("size") else "x", "pass": _passes(kind, v, thr), "clock": group["clock"],
                                "data": f"128^3 chunks of the 3D volumes, pooled ({pooled['n_chunks']} chunks)"})
        u32 = tables.get("pooled uint32")
        r = _row(u32["rows"], bench_codecs.OURS, "flat") if u32 else None
        tid, text, kind, thr = ABS_TARGET
        v = r["decode_mvx_s"] if r else None
        out["rows"].append({"id": tid, "text": text, "kind": kind, "threshold": thr, "value": v, "unit": "MVx/s",
                            "pass": _passes(kind, v, thr), "clock": group["clock"],
                            "data": (f"128^3 chunks of the uint32 volumes, pooled ({u32['n_chunks']} chunks: "
                                     f"{', '.join(u32['volumes'])})") if u32 else "no uint32 volume"})
    par = next((p for p in parallel if p["family"] == bench_codecs.OURS and p["option"] == "flat"), None)
    if par:
        for kind in ("encode", "decode"):
            v = par[kind]["speedup"]
            out["rows"].append({"id": f"par_{kind}", "text": f"{kind}, parallel=2 / parallel=1 (flat)",
                                "kind": ">=", "threshold": PAR_TARGET, "value": v, "unit": "x",
                                "pass": _passes(">=", v, PAR_TARGET), "clock": "wall",
                                "data": f"whole {PARALLEL_VOLUME}, median of {par['runs']} runs"})
    if pooled:
        for tid, text, fn in INFO:
            out["rows"].append({"id": tid, "text": text, "kind": None, "threshold": None,
                                "value": fn(pooled["rows"]), "unit": "x", "pass": None,
                                "clock": group["clock"], "data": "as above (reported, no target)"})
    for t in group["tables"]:
        if t["subset"].startswith("pooled") or t["ndim_source"] != 3:
            continue
        d = {"volume": t["subset"], "dtype": t["dtype"], "n_chunks": t["n_chunks"], "values": {}}
        for tid, text, kind, thr, fn in TARGETS:
            v = fn(t["rows"])
            d["values"][tid] = {"value": v, "pass": _passes(kind, v, thr)}
        r = _row(t["rows"], bench_codecs.OURS, "flat")
        v = r["decode_mvx_s"] if r else None
        d["values"]["dec_abs"] = {"value": v, "pass": _passes(">=", v, ABS_TARGET[3]) if t["dtype"] == "uint32" else None}
        out["detail"].append(d)
    return out


# ---------------------------------------------------------------------------------------- report

def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _fmt_speed(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def markdown_table(rows: list[dict], raw_bytes: int) -> str:
    lines = [
        "| codec | option | size | ratio vs raw | encode MVx/s | decode MVx/s | encode vs ref | decode vs ref | size vs ref |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| raw | | {_mb(raw_bytes)} | 1.0x | | | | | |",
    ]
    for r in rows:
        vs = [(f"{r[k]:.3f}x" if k == "size_vs_ref" else f"{r[k]:.2f}x") if k in r else ""
              for k in ("encode_vs_ref", "decode_vs_ref", "size_vs_ref")]
        name = f"**{r['family']}**" if r["family"] == bench_codecs.OURS else r["family"]
        lines.append(f"| {name} | {r['option']} | {_mb(r['bytes'])} | {r['ratio']:.1f}x | "
                     f"{_fmt_speed(r['encode_mvx_s'])} | {_fmt_speed(r['decode_mvx_s'])} | {' | '.join(vs)} |")
    return "\n".join(lines)


def _mark(p) -> str:
    return "" if p is None else ("pass" if p else "**FAIL**")


def _val(v, unit="x") -> str:
    if v is None:
        return "n/a"
    if unit == "MVx/s":
        return f"{v:.0f} MVx/s"
    return f"{v:.3f}x" if unit == "x size" else f"{v:.2f}x"


def targets_table(tg: dict) -> str:
    lines = ["| target | required | measured | result | clock | data |", "|---|---:|---:|---|---|---|"]
    for r in tg["rows"]:
        req = "" if r["kind"] is None else f"{'≥' if r['kind'] == '>=' else '≤'} {_val(r['threshold'], r['unit'])}"
        lines.append(f"| {r['text']} | {req} | {_val(r['value'], r['unit'])} | "
                     f"{_mark(r['pass']) if r['kind'] else 'reported'} | {r['clock']} | {r['data']} |")
    return "\n".join(lines)


def targets_detail(tg: dict) -> str:
    cols = [(tid, text.split(":")[0]) for tid, text, *_ in TARGETS] + [("dec_abs", "decode flat, MVx/s")]
    lines = ["| volume | dtype | chunks | " + " | ".join(c[1] for c in cols) + " |",
             "|---|---|---:|" + "---:|" * len(cols)]
    for d in tg["detail"]:
        cells = []
        for tid, _ in cols:
            v = d["values"][tid]
            unit = "MVx/s" if tid == "dec_abs" else "x size" if tid.startswith("size") else "x"
            text = f"{v['value']:.0f}" if (unit == "MVx/s" and v["value"] is not None) else _val(v["value"], unit)
            if v["pass"] is False:
                text += " ✗"
            elif v["pass"]:
                text += " ✓"
            cells.append(text)
        lines.append(f"| {d['volume']} | {d['dtype']} | {d['n_chunks']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parallel_table(par: list[dict]) -> str:
    lines = ["| codec | option | encode p=1 MVx/s | encode p=2 MVx/s | encode speedup | decode p=1 MVx/s | "
             "decode p=2 MVx/s | decode speedup | same stream |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for p in par:
        e, d = p["encode"], p["decode"]
        name = f"**{p['family']}**" if p["family"] == bench_codecs.OURS else p["family"]
        lines.append(f"| {name} | {p['option']} | {_fmt_speed(e['p1_mvx_s'])} | {_fmt_speed(e['p2_mvx_s'])} | "
                     f"{e['speedup']:.2f}x | {_fmt_speed(d['p1_mvx_s'])} | {_fmt_speed(d['p2_mvx_s'])} | "
                     f"{d['speedup']:.2f}x | {'yes' if p['same_stream'] else 'no'} |")
    return "\n".join(lines)


def write_plot(path: Path, group: dict) -> bool:
    """Size ratio vs decode speed (log) per codec option, 128^3 chunks pooled. False if no matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        print(f"skipping {path.name}: matplotlib does not import ({exc})", file=sys.stderr)
        return False
    pooled = next(t for t in group["tables"] if t["subset"] == "pooled")
    colors = {bench_codecs.OURS: "tab:red", bench_codecs.REFERENCE: "tab:blue", "compresso": "tab:green",
              "compressed_segmentation": "tab:purple", "zstd": "tab:gray", "blosc-zstd": "tab:brown"}
    markers = {"flat": "o", "markov 5": "s", "pins + markov 5": "D"}
    short = {bench_codecs.OURS: "ours", bench_codecs.REFERENCE: "ref"}
    legend_suffix = {bench_codecs.OURS: " (ours)", bench_codecs.REFERENCE: " (reference)"}
    abbrev = {"flat": "flat", "markov 5": "m5", "pins + markov 5": "pins+m5"}
    # label placement by option, so that the close Crackle points keep their labels apart
    offsets = {"flat": ((-8, 0), "right"), "markov 5": ((0, 11), "center"), "pins + markov 5": ((8, -9), "left")}
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    for r in pooled["rows"]:
        fam = r["family"]
        ax.scatter(r["ratio"], r["decode_mvx_s"], s=70, color=colors.get(fam, "black"),
                   marker=markers.get(r["option"], "^"), label=f"{fam}{legend_suffix.get(fam, '')}: {r['option']}", zorder=3,
                   edgecolors="black" if fam == bench_codecs.OURS else "none")
        text = f"{short[fam]} {abbrev[r['option']]}" if fam in short else fam
        (dx, dy), ha = offsets.get(r["option"], ((7, 4), "left"))
        ax.annotate(text, (r["ratio"], r["decode_mvx_s"]), xytext=(dx, dy), textcoords="offset points",
                    fontsize=8, color=colors.get(fam, "black"), ha=ha, va="center")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_xscale("log")
    ax.set_yscale("log")
    ratios = [r["ratio"] for r in pooled["rows"]]
    speeds = [r["decode_mvx_s"] for r in pooled["rows"]]
    ax.set_xlim(min(ratios) / 1.3, max(ratios) * 1.5)
    ax.set_ylim(min(speeds) / 1.4, max(speeds) * 1.4)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("size ratio vs raw (log scale; higher = smaller output)")
    ax.set_ylabel("decode speed, MVx/s (log scale)")
    ax.set_title(f"Size vs decode speed: 128^3 chunks of the 3D volumes, pooled ({pooled['n_chunks']} chunks)\n"
                 f"one thread, {'CPU' if group['clock'] == 'cpu' else 'elapsed'} time, median of "
                 f"{group['reps']} repetitions; up and right is better", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _shown_command(argv: list[str]) -> str:
    """The command line as run, with the text of --note left out (it is quoted in the doc)."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--note", "--from-json"):
            skip = True
            continue
        if a.startswith("--note=") or a.startswith("--from-json="):
            continue
        shown.append(f'"{a}"' if " " in a else a)
    return " ".join(["python bench/run.py", *shown])


def _size_title(size: str) -> str:
    return "whole volumes" if size == "whole" else f"{size}^3 chunks"


def write_doc(path: Path, results: dict, note: str | None, plot_name: str | None) -> None:
    """Write the benchmark report (docs/benchmarks.md) from a results dict (as saved in bench/out/*.json)."""
    facts, groups, s = results["machine"], results["groups"], results["settings"]
    command = _shown_command(results["argv"])
    loads = [x for x in results["load"] if x["load"]]
    max1 = max((x["load"][0] for x in loads), default=None)
    clock = s["clock"]
    parts = [
        "# Benchmarks",
        "",
        "Reproduce (from the repository root, with `../shared/data` beside it):",
        "",
        "```",
        "pip install -e \".[test]\"              # crackle_codec, the reference crackle-codec, numcodecs",
        "pip install -r bench/requirements.txt  # benchmark-only: compresso, compressed-segmentation, matplotlib",
        command,
        "```",
        "",
        f"Measured numbers from one run of `{command}` on {facts['date']} at commit {facts['commit']}, "
        f"{facts['cores']} cores ({facts['cpu']}); the run took {results['runtime_s'] / 60:.1f} min. "
        "This file and `benchmarks.png` are written by that script; do not edit the numbers by hand.",
    ]
    if s["quick"]:
        parts += ["", f"**Quick run** ({s['max_chunks']} chunks per volume and size, {s['reps']} repetitions, "
                      "whole volumes only up to 8 MVx): indicative only."]
    if max1 is not None:
        parts += ["", "Machine load average (1 min) during the run: "
                  + ", ".join(f"{x['load'][0]:.2f} ({x['when']})" for x in loads) + "."]
        if max1 > LOAD_WARNING:
            parts += ["", f"> **Warning: the machine was busy** (1-minute load average up to {max1:.2f}, above "
                          f"{LOAD_WARNING} on {facts['cores']} cores): other work shared the cores. CPU-time "
                          "tables are less affected than elapsed-time ones, but caches and memory bandwidth "
                          "were shared too, and the parallel=2 measurement (elapsed time, two threads) is "
                          "directly affected. Rerun on a quiet machine for final numbers."]
    if note:
        parts += ["", f"> {note}"]

    target_group = next((g for g in groups if g["size"] == TARGET_SIZE), None)
    tg = results.get("targets")
    if tg and tg["rows"]:
        parts += [
            "",
            "## Targets",
            "",
            "Ratios measured in this run against the reference crackle-codec "
            f"{facts['crackle-codec (reference)']}, one thread, on the 128^3 chunks of the 3D volumes, pooled "
            "(total voxels / median total time over the repetitions; sizes are totals). Speed clock: "
            f"{CLOCK_TEXT[clock]}, except the parallel rows: elapsed time (`time.perf_counter`), as threads "
            "must be. The 2D image is not part of the 128^3 pool.",
            "",
            targets_table(tg),
        ]
        if tg["detail"]:
            parts += [
                "",
                f"Per volume (128^3 chunks, clock: {CLOCK_TEXT[clock]}); ✓/✗ against the same thresholds "
                "(the absolute decode target applies to uint32 volumes only):",
                "",
                targets_detail(tg),
            ]
    if results.get("parallel"):
        parts += [
            "",
            f"## parallel=2 vs parallel=1, whole {PARALLEL_VOLUME}",
            "",
            f"Elapsed (wall-clock) time, `time.perf_counter`; median of {results['parallel'][0]['runs']} runs, "
            "parallel=1 and parallel=2 alternating. Decode reads the stream written with parallel=1. "
            "*same stream*: parallel=2 writes the same bytes as parallel=1.",
            "",
            parallel_table(results["parallel"]),
        ]
    if plot_name and target_group:
        parts += [
            "",
            "## Size ratio vs decode speed",
            "",
            f"![size ratio vs decode speed, 128^3 chunks pooled]({plot_name})",
            "",
            f"128^3 chunks of the 3D volumes pooled, one point per codec option; clock: {CLOCK_TEXT[clock]}. "
            "Up and to the right is better.",
        ]
    for g in groups:
        parts += ["", f"## {_size_title(g['size'])}, one thread", ""]
        parts += [f"Clock: {CLOCK_TEXT[g['clock']]}; {g['reps']} repetitions, median. {g['note']}"]
        for t in g["tables"]:
            head = ("all 3D volumes, pooled" if t["subset"] == "pooled" else
                    "uint32 volumes, pooled" if t["subset"] == "pooled uint32" else t["subset"])
            if t["subset"] == "pooled uint32":
                continue  # used for the absolute target only; its rows are in the volumes' tables
            parts += [
                "",
                f"### {_size_title(g['size'])}: {head}",
                "",
                f"{t['description']}: {t['n_chunks']} {'volume' if g['size'] == 'whole' else 'chunks'}, "
                f"{t['voxels']:,} voxels, {_mb(t['raw_bytes'])} raw.",
                "",
                markdown_table(t["rows"], t["raw_bytes"]),
            ]
    parts += [
        "",
        "Columns: *size* is the sum of the encoded chunks; *ratio vs raw* is raw bytes / size (raw in the",
        "volume's own dtype); *MVx/s* is megavoxels (10^6 voxels) per second over all chunks; *vs ref*",
        "compares crackle_codec with the reference `crackle` (crackle-codec) with the same option: speeds",
        "as ours / reference (above 1 = we are faster), size as ours / reference (below 1 = we are smaller).",
        "",
        "## Method",
        "",
        "- One Python process, one thread: `parallel=1` for both Crackle implementations; every other",
        "  codec is single-threaded (Blosc's internal threads are turned off).",
        "- Codecs: *crackle_codec* and the reference *crackle* (crackle-codec) with three options: *flat* =",
        "  `compress(chunk)` (FLAT labels, markov order 0); *markov 5* = `markov_model_order=5`; *pins +",
        "  markov 5* = pins allowed and order 5 (ours: `allow_pins=True`; reference: `allow_pins=1`, its",
        "  fast pin strategy). The reference decodes with its defaults (`verify=True`: all CRCs checked), as",
        "  ours always does. *compresso*: `compresso.compress(chunk)` with its defaults (steps (4,4,1),",
        "  random-access z index). *compressed_segmentation*: block size (8,8,8), as Neuroglancer uses; it",
        "  encodes uint32/uint64 only, so uint8 and uint16 chunks are converted to uint32 before encoding",
        "  and back after decoding, inside the timed calls (its ratio is still against the raw bytes in",
        "  the volume's own dtype). *zstd*: `numcodecs.Zstd(level=3)` on the raw chunk bytes (Fortran",
        "  order). *blosc-zstd*: `numcodecs.Blosc(cname=\"zstd\", clevel=5, shuffle=Blosc.SHUFFLE)` (byte",
        "  shuffle by the dtype's size; it gave smaller output than `BITSHUFFLE` on these labels, which",
        "  `--codecs blosc-zstd/bitshuffle` measures) on the raw chunk bytes.",
        "- Data: every volume in `../shared/data` (see its README), read there, never copied. Each 3D",
        "  volume is measured whole (one chunk), and cut into 128^3 and 64^3 chunks (cropped at the far",
        "  edges when the shape is not a multiple), each a Fortran-ordered copy. Where a volume has more",
        f"  than {s['max_chunks']} chunks of a size, {s['max_chunks']} are taken, spread evenly over the volume",
        "  (evenly spaced in x-fastest chunk order), to keep the run short. The 2D image",
        "  (nuclei2d_stardist) is given to every codec as an (x, y, 1) array (both Crackle implementations",
        "  decode a 2D input as (x, y, 1)), measured whole and in 128x128 tiles only; it is left out of the",
        "  pooled tables. Every codec gets the same chunks.",
        "- Before timing, every chunk is encoded and decoded once by every codec and compared with the",
        "  input (values, shape and dtype), and every Crackle stream is decoded by the other implementation",
        "  too (ours reads the reference's streams and the reference reads ours, voxel for voxel).",
        "- Then the repetitions, per chunk size with all volumes' chunks together: in each one, every codec",
        "  encodes all chunks and then decodes all its streams. The codec order rotates by one place per",
        "  repetition, so that the implementations alternate and none always runs first. Each call is",
        "  timed on its own, with the garbage collector off during a pass. For a table (one volume, or a",
        "  pool), a repetition's time is the sum over its chunks, and the table reports total voxels /",
        "  median repetition time. All repetition times are in the JSON file in `bench/out/`.",
        f"- Clock of the codec tables and of all targets but the parallel ones: {CLOCK_TEXT[clock]}"
        + ("; CPU time leaves out the time the process waited for a core while other work ran on the "
           "machine." if clock == "cpu" else "."),
        f"- parallel=2 vs parallel=1: crackle_codec on the whole {PARALLEL_VOLUME} volume, encode and",
        "  decode, elapsed time (`time.perf_counter`; CPU time would count both threads), parallel=1 and",
        "  parallel=2 alternating, median of the runs; a full run also shows crackle_codec markov 5 and",
        "  the reference (flat) with parallel=2, for context.",
        "- Targets: computed from the 128^3 tables as described above the target table.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    parts += [f"| {k} | {v} |" for k, v in facts.items()]
    parts += [f"| load average (1, 5, 15 min) {x['when']} | {', '.join(f'{v:.2f}' for v in x['load'])} |"
              for x in loads]
    parts += [
        "",
        "## Options",
        "",
        "`--quick` (3 chunks per volume and size, 3 repetitions, whole volumes only up to 8 MVx, 3",
        "parallel runs; writes to `bench/out/` unless `--write-docs`), `--volumes`, `--sizes` (e.g.",
        "`--sizes 128 whole`), `--codecs` (see `--list`), `--reps`, `--max-chunks`, `--parallel-runs`,",
        "`--clock wall|cpu` (default cpu), `--no-docs`, `--from-json FILE` (rewrite the docs from a saved",
        "run). A full default run writes `docs/benchmarks.md` and `docs/benchmarks.png`; any other run",
        "writes `bench/out/benchmarks.md` and `.png` unless `--write-docs`.",
        "",
    ]
    # Keep the section bench/sizes.py writes at the end of the file (it has its own run).
    kept = ""
    if path.exists():
        old = path.read_text()
        at = old.find("<!-- bench/sizes.py:")
        kept = "\n" + old[at:] if at >= 0 else ""
    path.write_text("\n".join(parts) + kept)


# ------------------------------------------------------------------------------------------ main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--volumes", nargs="+", default=list(bench_volumes.VOLUMES), choices=list(bench_volumes.VOLUMES),
                   help="volumes from the shared data folder (default: all)")
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES,
                   help="chunk sizes: 128, 64 (edge lengths) and whole (default: all)")
    p.add_argument("--codecs", nargs="+", default=bench_codecs.DEFAULT_CODECS, metavar="NAME",
                   help="codecs to run (default: %(default)s)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (default 5, 3 with --quick)")
    p.add_argument("--max-chunks", type=int, default=None,
                   help="at most this many chunks per volume and size, spread over the volume (default 16, 3 with --quick)")
    p.add_argument("--parallel-runs", type=int, default=None,
                   help="runs of the parallel=2 vs parallel=1 measurement (default 7, 3 with --quick; 0 = skip)")
    p.add_argument("--quick", action="store_true",
                   help="3 chunks per volume and size, 3 repetitions, whole volumes only up to 8 MVx")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                   help="cpu: this process's CPU time (default; robust on a busy machine); wall: elapsed time")
    p.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--write-docs", action="store_true",
                   help="write docs/benchmarks.md and .png even for a quick or partial run")
    p.add_argument("--no-docs", action="store_true", help="write no report, only the JSON")
    p.add_argument("--note", default=None, help="a line to put at the top of the report")
    p.add_argument("--from-json", metavar="FILE", default=None,
                   help="only rewrite docs/benchmarks.md and .png from a saved bench/out/results-*.json")
    p.add_argument("--list", action="store_true", help="list the codecs and volumes, then exit")
    args = p.parse_args(argv)
    unknown = [c for c in args.codecs if c not in bench_codecs.CODECS]
    if unknown:
        p.error(f"unknown codec(s) {unknown}; see --list")
    if args.reps is None:
        args.reps = 3 if args.quick else 5
    if args.max_chunks is None:
        args.max_chunks = 3 if args.quick else 16
    if args.parallel_runs is None:
        args.parallel_runs = 3 if args.quick else 7
    if args.reps < 1 or args.max_chunks < 1 or args.parallel_runs < 0:
        p.error("--reps and --max-chunks must be positive, --parallel-runs not negative")
    defaults = parse_defaults()
    args.full_default = (not args.quick and all(getattr(args, k) == v for k, v in defaults.items()))
    return args


def parse_defaults() -> dict:
    return {"volumes": list(bench_volumes.VOLUMES), "sizes": list(SIZES), "codecs": bench_codecs.DEFAULT_CODECS,
            "reps": 5, "max_chunks": 16, "parallel_runs": 7}


def build_groups(volumes: dict[str, np.ndarray], sizes: list[str], max_chunks: int, quick: bool, log=print):
    """Per size: the chunks of every volume, concatenated, and which volume each came from."""
    groups = []
    for size in sizes:
        chunks, owner, skipped = [], [], []
        for name, vol in volumes.items():
            is_2d = vol.shape[2] == 1
            if size == "whole":
                if quick and vol.size > QUICK_WHOLE_MAX_VOXELS:
                    skipped.append(name)
                    continue
                cs = [vol]
            else:
                if is_2d and size != "128":
                    continue  # the 2D image: whole and 128x128 tiles only
                cs = bench_volumes.chunks(vol, int(size), limit=max_chunks)
            chunks += cs
            owner += [name] * len(cs)
        if not chunks:
            continue
        note = ""
        if size == "128":
            note = "The 2D image is cut into 128x128 tiles."
        if skipped:
            note += f" Quick run: whole volumes above 8 MVx left out ({', '.join(skipped)})."
        groups.append({"size": size, "chunks": chunks, "owner": owner, "note": note.strip()})
    return groups


def group_tables(group, volumes, codecs, streams, times) -> list[dict]:
    chunks, owner = group["chunks"], group["owner"]
    tables = []
    subsets: list[tuple[str, list[int], str, str, int]] = []
    for name in volumes:
        idx = [i for i, o in enumerate(owner) if o == name]
        if idx:
            vol = volumes[name]
            ndim = 2 if vol.shape[2] == 1 else 3
            subsets.append((name, idx, bench_volumes.VOLUMES[name].description, str(vol.dtype), ndim))
    three_d = [s for s in subsets if s[4] == 3]
    if group["size"] != "whole" and len(three_d) > 1:
        idx = sorted(i for s in three_d for i in s[1])
        subsets.insert(0, ("pooled", idx, f"all 3D volumes ({', '.join(s[0] for s in three_d)})", "mixed", 3))
    u32 = [s for s in three_d if s[3] == "uint32"]
    if group["size"] == TARGET_SIZE and u32:
        idx = sorted(i for s in u32 for i in s[1])
        subsets.append(("pooled uint32", idx, "uint32 3D volumes", "uint32", 3))
    for name, idx, desc, dtype, ndim in subsets:
        tables.append({
            "subset": name, "description": desc, "dtype": dtype, "ndim_source": ndim,
            "volumes": sorted({owner[i] for i in idx}),
            "shape": list(volumes[name].shape) if name in volumes else None,
            "n_chunks": len(idx), "voxels": int(sum(chunks[i].size for i in idx)),
            "raw_bytes": int(sum(chunks[i].nbytes for i in idx)),
            "rows": summarize(codecs, chunks, streams, times, idx),
        })
    # A single 3D volume in the target size: it is its own pool.
    if group["size"] == TARGET_SIZE and not any(t["subset"] == "pooled" for t in tables):
        one = next((t for t in tables if t["ndim_source"] == 3 and not t["subset"].startswith("pooled")), None)
        if one:
            tables.insert(0, dict(one, subset="pooled"))
    return tables


def write_report(results: dict, md: Path, png: Path, note: str | None) -> None:
    target_group = next((g for g in results["groups"] if g["size"] == TARGET_SIZE), None)
    plotted = False
    if target_group and any(t["subset"] == "pooled" for t in target_group["tables"]):
        plotted = write_plot(png, target_group)
    md.parent.mkdir(parents=True, exist_ok=True)
    write_doc(md, results, note, png.name if plotted else None)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_json:
        write_report(json.loads(Path(args.from_json).read_text()), DOC, PLOT, args.note)
        print(f"wrote {DOC.relative_to(REPO)} and {PLOT.relative_to(REPO)} from {args.from_json}")
        return 0
    if args.list:
        print("codecs (* = default):", *(f"{'*' if c in bench_codecs.DEFAULT_CODECS else ' '} {c}"
                                         for c in bench_codecs.CODECS), sep="\n  ")
        print("volumes:", *(f"{v.name}: {v.description}" for v in bench_volumes.VOLUMES.values()), sep="\n  ")
        return 0

    t_start = time.perf_counter()
    codecs = []
    for name in args.codecs:
        codec = bench_codecs.CODECS[name]()
        reason = codec.available()
        if reason:
            print(f"skipping {name}: {reason}")
            continue
        codecs.append(codec)
    if not codecs:
        print("no codec can run here", file=sys.stderr)
        return 1

    loads = LoadLog()
    loads.sample("at start")
    facts = machine_facts()
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()), f"load {loads.samples[0]['load']}")
    folder = bench_volumes.data_dir(args.data)
    volumes: dict[str, np.ndarray] = {}
    for vname in args.volumes:
        try:
            volumes[vname] = bench_volumes.as_3d(bench_volumes.load(vname, folder))
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    clock = CLOCKS[args.clock]

    groups_out = []
    for group in build_groups(volumes, args.sizes, args.max_chunks, args.quick):
        chunks = group["chunks"]
        voxels = sum(c.size for c in chunks)
        per_vol = {v: group["owner"].count(v) for v in volumes if v in group["owner"]}
        print(f"\n{_size_title(group['size'])}: {len(chunks)} chunks ("
              + ", ".join(f"{v} {n}" for v, n in per_vol.items()) + f"), {voxels / 1e6:.1f} MVx, "
              f"{_mb(sum(c.nbytes for c in chunks))} raw")
        t0 = time.perf_counter()
        streams = check_and_encode(codecs, chunks)
        print(f"  round trips and interop checked ({time.perf_counter() - t0:.0f} s)")
        times = time_codecs(codecs, chunks, streams, args.reps, clock)
        tables = group_tables(group, volumes, codecs, streams, times)
        for t in tables:
            if t["subset"] in ("pooled", PARALLEL_VOLUME) or len(tables) == 1:
                print(f"\n{_size_title(group['size'])}: {t['subset']} ({t['n_chunks']} chunks)")
                print(markdown_table(t["rows"], t["raw_bytes"]))
        groups_out.append({"size": group["size"], "note": group["note"], "reps": args.reps,
                           "clock": args.clock, "n_chunks": len(chunks), "tables": tables})
        loads.sample(f"after {_size_title(group['size'])}")
        del streams, times

    parallel = []
    if args.parallel_runs and PARALLEL_VOLUME in volumes:
        print(f"\nparallel=2 vs parallel=1, whole {PARALLEL_VOLUME}, elapsed time, {args.parallel_runs} runs")
        parallel = measure_parallel(volumes[PARALLEL_VOLUME], args.parallel_runs, only_target=args.quick)
        print(parallel_table(parallel))
        loads.sample("after the parallel runs")

    target_group = next((g for g in groups_out if g["size"] == TARGET_SIZE), None)
    targets = evaluate_targets(target_group, parallel) if target_group else {"rows": [], "detail": []}
    if targets["rows"]:
        print("\nTargets:")
        print(targets_table(targets))
    loads.sample("at end")
    runtime = time.perf_counter() - t_start

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = OUT_DIR / f"results-{stamp}.json"
    results = {
        "machine": facts, "argv": sys.argv[1:] if argv is None else list(argv),
        "settings": {"quick": args.quick, "reps": args.reps, "clock": args.clock, "max_chunks": args.max_chunks,
                     "parallel_runs": args.parallel_runs, "volumes": args.volumes, "sizes": args.sizes,
                     "codecs": [c.name for c in codecs]},
        "load": loads.samples, "runtime_s": runtime,
        "groups": groups_out, "parallel": parallel, "targets": targets,
    }
    out.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out.relative_to(REPO)}; run time {runtime / 60:.1f} min; load {loads.samples[-1]['load']}")
    if not args.no_docs:
        if args.full_default or args.write_docs:
            md, png = DOC, PLOT
        else:
            md, png = OUT_DIR / "benchmarks.md", OUT_DIR / "benchmarks.png"
        write_report(results, md, png, args.note)
        print(f"wrote {md.relative_to(REPO)}" + (f" and {png.relative_to(REPO)}" if png.exists() else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
