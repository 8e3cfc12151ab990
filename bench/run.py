#!/usr/bin/env python3
"""Benchmark crackle_codec against the reference `crackle` (and zstd) on real segmentations.

One process, one thread, the same chunks for every codec. Before timing, every chunk is encoded
and decoded once by every codec and checked (decoded == chunk; our Crackle streams decode in the
reference and the reference's in ours). Then REPS repetitions: in each, every codec encodes all
chunks and decodes all its streams, the codec order rotating from one repetition to the next. The
reported speed uses the median repetition.

    python bench/run.py                  # full run (connectomics_512, 128^3 chunks, 5 repetitions)
    python bench/run.py --quick          # 8 chunks, 2 repetitions: a smoke run
    python bench/run.py --write-docs     # also rewrite docs/benchmarks.md from the results

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
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": usable,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numcodecs": _version("numcodecs"),
        "crackle-codec (reference)": _version("crackle-codec"),
        "crackle-zarr (ours)": _version("crackle-zarr"),
        "commit": commit,
        "load average at start (1, 5, 15 min)": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# ------------------------------------------------------------------------------------- measuring

def check_and_encode(codecs, chunks) -> dict[str, list[bytes]]:
    """Encode every chunk with every codec once; check every round trip and Crackle interop."""
    streams: dict[str, list[bytes]] = {}
    for codec in codecs:
        out = []
        for i, chunk in enumerate(chunks):
            data = codec.encode(chunk)
            back = codec.decode(data, chunk.shape, chunk.dtype)
            if back.shape != chunk.shape or back.dtype != chunk.dtype or not np.array_equal(back, chunk):
                raise SystemExit(f"{codec.name}: chunk {i} does not round-trip")
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


CLOCKS = {
    "wall": time.perf_counter,   # elapsed time
    "cpu": time.process_time,    # CPU time of this process: less disturbed by other work on the machine
}


def _timed_pass(fn, items, clock=time.perf_counter) -> float:
    """Sum of the times of fn(item) over items, with the garbage collector off."""
    gc.collect()
    gc.disable()
    try:
        total = 0.0
        for item in items:
            t0 = clock()
            fn(item)
            total += clock() - t0
        return total
    finally:
        gc.enable()


def time_codecs(codecs, chunks, streams, reps: int, clock=time.perf_counter,
                log=print) -> dict[str, dict[str, list[float]]]:
    """REPS repetitions of (encode all chunks, decode all streams) per codec, order rotating."""
    times = {c.name: {"encode_s": [], "decode_s": []} for c in codecs}
    for rep in range(reps):
        shift = rep % len(codecs)
        order = codecs[shift:] + codecs[:shift]
        for codec in order:
            t_enc = _timed_pass(codec.encode, chunks, clock)
            pairs = list(zip(streams[codec.name], chunks))
            t_dec = _timed_pass(lambda p, c=codec: c.decode(p[0], p[1].shape, p[1].dtype), pairs, clock)
            times[codec.name]["encode_s"].append(t_enc)
            times[codec.name]["decode_s"].append(t_dec)
        log(f"  repetition {rep + 1}/{reps} done")
    return times


def summarize(codecs, chunks, streams, times) -> list[dict]:
    voxels = sum(c.size for c in chunks)
    raw = sum(c.nbytes for c in chunks)
    rows = []
    for codec in codecs:
        size = sum(len(s) for s in streams[codec.name])
        enc = statistics.median(times[codec.name]["encode_s"])
        dec = statistics.median(times[codec.name]["decode_s"])
        rows.append({
            "codec": codec.name, "family": codec.family, "option": codec.option,
            "bytes": size, "ratio": raw / size,
            "encode_mvx_s": voxels / enc / 1e6, "decode_mvx_s": voxels / dec / 1e6,
            "encode_s": times[codec.name]["encode_s"], "decode_s": times[codec.name]["decode_s"],
        })
    ref = {r["option"]: r for r in rows if r["family"] == bench_codecs.REFERENCE}
    for r in rows:
        other = ref.get(r["option"]) if r["family"] == bench_codecs.OURS else None
        if other:
            r["encode_vs_ref"] = r["encode_mvx_s"] / other["encode_mvx_s"]
            r["decode_vs_ref"] = r["decode_mvx_s"] / other["decode_mvx_s"]
            r["size_vs_ref"] = r["bytes"] / other["bytes"]
    return rows


# ---------------------------------------------------------------------------------------- report

def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def markdown_table(rows: list[dict], raw_bytes: int) -> str:
    lines = [
        "| codec | option | size | ratio vs raw | encode MVx/s | decode MVx/s | encode vs ref | decode vs ref | size vs ref |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| raw | | {_mb(raw_bytes)} | 1.0x | | | | | |",
    ]
    for r in rows:
        vs = [f"{r[k]:.2f}x" if k in r else "" for k in ("encode_vs_ref", "decode_vs_ref", "size_vs_ref")]
        name = f"**{r['family']}**" if r["family"] == bench_codecs.OURS else r["family"]
        lines.append(f"| {name} | {r['option']} | {_mb(r['bytes'])} | {r['ratio']:.1f}x | "
                     f"{r['encode_mvx_s']:.1f} | {r['decode_mvx_s']:.1f} | {' | '.join(vs)} |")
    return "\n".join(lines)


def _shown_command(argv: list[str]) -> str:
    """The command line as run, with the text of --note left out (it is quoted in the doc)."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--note":
            skip = True
            continue
        if a.startswith("--note=") or a.startswith("--from-json"):
            continue
        shown.append(f'"{a}"' if " " in a else a)
    return " ".join(["python bench/run.py", *shown])


def write_doc(path: Path, results: dict, note: str | None) -> None:
    """Write docs/benchmarks.md from a results dict (as saved in bench/out/*.json)."""
    facts, runs = results["machine"], results["runs"]
    command = _shown_command(results["argv"])
    quick = any(r.get("quick") for r in runs)
    clock = runs[0].get("clock", "wall") if runs else "wall"
    clock_text = ("`time.process_time`, the CPU time of the benchmark process (chosen with `--clock cpu` "
                  "because other work was running on the machine; CPU time leaves out the time the "
                  "process waited for a core)" if clock == "cpu"
                  else "`time.perf_counter`, elapsed (wall-clock) time")
    parts = [
        "# Benchmarks",
        "",
        f"Measured numbers from one run of `{command}` on {facts['date']} at commit {facts['commit']}."
        + (" **Quick run** (a few chunks, 2 repetitions): indicative only." if quick else ""),
        "The file is written by that script; do not edit the numbers by hand.",
    ]
    if note:
        parts += ["", f"> {note}"]
    for run in runs:
        parts += [
            "",
            f"## {run['volume']}, {run['chunk']}^3 chunks, one thread",
            "",
            f"{run['description']}: {run['n_chunks']} chunks, {run['voxels']:,} voxels, "
            f"{_mb(run['raw_bytes'])} raw; {run['reps']} repetitions, median.",
            "",
            markdown_table(run["rows"], run["raw_bytes"]),
        ]
    parts += [
        "",
        "Columns: *size* is the sum of the encoded chunks; *MVx/s* is megavoxels (10^6 voxels) per second",
        "over all chunks; *vs ref* compares crackle_codec with the reference `crackle` (crackle-codec) with",
        "the same option: speeds as ours / reference (above 1 = we are faster), size as ours / reference",
        "(below 1 = we are smaller).",
        "",
        "## Method",
        "",
        "- One Python process, one thread: `parallel=1` for both Crackle implementations; zstd is",
        "  `numcodecs.Zstd` on the raw chunk bytes (Fortran order), single-threaded.",
        "- The volume is read from `../shared/data` and cut into chunks (smaller ones at the far edges if",
        "  the shape is not a multiple), each a Fortran-ordered copy; every codec gets the same chunks.",
        "- Before timing, every chunk is encoded and decoded once by every codec and compared with the",
        "  input, and every Crackle stream is decoded by the other implementation too (ours reads the",
        "  reference's streams and the reference reads ours, voxel for voxel).",
        "- Then the repetitions: in each one, every codec encodes all chunks and then decodes all its",
        "  streams. The codec order rotates by one place per repetition, so that the implementations",
        "  alternate and none always runs first. Each call is timed on its own (clock below), with the",
        "  garbage collector off during a pass; the pass time is the sum over chunks. The table reports",
        "  total voxels / median pass time. All repetition times are in the JSON file in `bench/out/`.",
        f"- Clock: {clock_text}.",
        "- Options: *flat* = `compress(chunk)` (FLAT labels, markov order 0); *markov 5* =",
        "  `markov_model_order=5`; *pins + markov 5* = pins allowed and order 5 (ours: `allow_pins=True`;",
        "  reference: `allow_pins=1`, its fast pin strategy). The reference decodes with its defaults",
        "  (`verify=True`: all CRCs checked), as ours always does.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    parts += [f"| {k} | {v} |" for k, v in facts.items()]
    parts += [
        "",
        "## Reproduce",
        "",
        "```",
        "pip install -e \".[test]\"        # installs the reference crackle-codec and numcodecs too",
        "python bench/run.py              # add --quick for a short run, --write-docs to rewrite this file",
        "```",
        "",
        "Options: `--volumes`, `--chunks` (e.g. `--chunks 128 64`), `--codecs` (see `--list`), `--reps`,",
        "`--clock cpu` (CPU time instead of elapsed time, for a machine that is busy with other work).",
        "",
    ]
    path.write_text("\n".join(parts))


# ------------------------------------------------------------------------------------------ main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--volumes", nargs="+", default=["connectomics_512"], choices=sorted(bench_volumes.VOLUMES),
                   help="volumes from the shared data folder (default: connectomics_512)")
    p.add_argument("--chunks", nargs="+", type=int, default=[128], metavar="N",
                   help="chunk edge lengths (default: 128)")
    p.add_argument("--codecs", nargs="+", default=bench_codecs.DEFAULT_CODECS, metavar="NAME",
                   help="codecs to run (default: ours and the reference with each option, zstd level 3)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (default 5, 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="only 8 chunks (spread over the volume) and 2 repetitions")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="wall: elapsed time (default); cpu: this process's CPU time, for a busy machine")
    p.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--write-docs", action="store_true", help="rewrite docs/benchmarks.md from this run")
    p.add_argument("--note", default=None, help="a line to put at the top of docs/benchmarks.md")
    p.add_argument("--from-json", metavar="FILE", default=None,
                   help="only rewrite docs/benchmarks.md from a saved bench/out/results-*.json")
    p.add_argument("--list", action="store_true", help="list the codecs and volumes, then exit")
    args = p.parse_args(argv)
    unknown = [c for c in args.codecs if c not in bench_codecs.CODECS]
    if unknown:
        p.error(f"unknown codec(s) {unknown}; see --list")
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    if args.reps < 1 or any(c < 1 for c in args.chunks):
        p.error("--reps and --chunks must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_json:
        write_doc(DOC, json.loads(Path(args.from_json).read_text()), args.note)
        print(f"wrote {DOC.relative_to(REPO)} from {args.from_json}")
        return 0
    if args.list:
        print("codecs:", *bench_codecs.CODECS, sep="\n  ")
        print("volumes:", *(f"{v.name}: {v.description}" for v in bench_volumes.VOLUMES.values()), sep="\n  ")
        return 0

    codecs = []
    for name in args.codecs:
        codec = bench_codecs.CODECS[name]()
        reason = codec.available()
        if reason:
            print(f"skipping {name}: {reason}", file=sys.stderr)
            continue
        codecs.append(codec)
    if not codecs:
        print("no codec can run here", file=sys.stderr)
        return 1

    facts = machine_facts()
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items()))
    folder = bench_volumes.data_dir(args.data)
    runs = []
    for vname in args.volumes:
        try:
            volume = bench_volumes.load(vname, folder)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if volume.ndim != 3:
            print(f"skipping {vname}: not a 3D volume", file=sys.stderr)
            continue
        for size in args.chunks:
            chunks = bench_volumes.chunks(volume, size, limit=8 if args.quick else None)
            voxels = sum(c.size for c in chunks)
            raw = sum(c.nbytes for c in chunks)
            print(f"\n{vname} {volume.shape} {volume.dtype}: {len(chunks)} chunks of {size}^3, "
                  f"{voxels / 1e6:.1f} MVx, {_mb(raw)} raw")
            t0 = time.perf_counter()
            streams = check_and_encode(codecs, chunks)
            print(f"  round trips and interop checked ({time.perf_counter() - t0:.0f} s)")
            times = time_codecs(codecs, chunks, streams, args.reps, CLOCKS[args.clock])
            rows = summarize(codecs, chunks, streams, times)
            print()
            print(markdown_table(rows, raw))
            runs.append({
                "volume": vname, "description": bench_volumes.VOLUMES[vname].description,
                "shape": list(volume.shape), "dtype": str(volume.dtype), "chunk": size,
                "n_chunks": len(chunks), "voxels": voxels, "raw_bytes": raw, "reps": args.reps,
                "quick": args.quick, "clock": args.clock, "rows": rows,
            })
        del volume

    facts["load average at end (1, 5, 15 min)"] = _loadavg()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = OUT_DIR / f"results-{stamp}.json"
    results = {"machine": facts, "argv": sys.argv[1:], "runs": runs}
    out.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out.relative_to(REPO)}")
    if args.write_docs:
        write_doc(DOC, results, args.note)
        print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
