#!/usr/bin/env python3
"""Stream sizes of crackle_codec's encoder choices against the reference, and the optimize encode speed.

Every volume in ../shared/data is cut into 128^3 chunks (the 2D image into 128x128 tiles), all of
them, and each chunk is encoded as its own stream (as a chunked store holds them) by:

- crackle_codec: flat (model 0), markov 5, pins + markov 5, optimize=True;
- the reference crackle-codec 0.55.0: pins + markov 5 (``allow_pins=1``, its best fixed mode).

Each stream is also compressed by zstd (numcodecs, levels 3 and 19), stream by stream. Sizes are
totals per volume, and pooled over the 3D volumes (the 2D image apart). Every optimize stream is
decoded by the reference and compared with its chunk before anything is reported.

Speed: optimize, our pins + markov 5 and the reference's pins + markov 5 encode the 128^3 chunks of
the uint32 volumes (one thread, CPU time of this process); REPS repetitions, the order of the three
rotating; the median repetition is reported. Ratios are measured in the same run.

    flock /tmp/crackle-bench.lock python bench/sizes.py      # writes its section of docs/benchmarks.md
    python bench/sizes.py --no-docs --volumes ovule_cells_100   # a quick look, prints only

Results are also written as JSON to bench/out/sizes.json. This is a script, not a test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_volumes  # noqa: E402

REPO = bench_volumes.REPO
DOC = REPO / "docs" / "benchmarks.md"
OUT = REPO / "bench" / "out" / "sizes.json"
SECTION = "<!-- bench/sizes.py: everything below is written by bench/sizes.py -->"
CHUNK = 128
IMAGE = "nuclei2d_stardist"

MODES = ["flat", "markov 5", "pins + markov 5", "optimize", "reference pins + markov 5"]
POST = ["", " + zstd 3", " + zstd 19"]


def encoders():
    import crackle
    import crackle_codec
    return {
        "flat": lambda c: crackle_codec.compress(c),
        "markov 5": lambda c: crackle_codec.compress(c, markov_model_order=5),
        "pins + markov 5": lambda c: crackle_codec.compress(c, allow_pins=True, markov_model_order=5),
        "optimize": lambda c: crackle_codec.compress(c, optimize=True),
        "reference pins + markov 5": lambda c: crackle.compress(c, allow_pins=1, markov_model_order=5),
    }


def sizes_of(chunks: list[np.ndarray], log) -> dict:
    """Total size of every mode (and + zstd) over the chunks; checks optimize streams in the reference."""
    import crackle
    import crackle_codec
    from numcodecs import Zstd

    zstd = {" + zstd 3": Zstd(level=3), " + zstd 19": Zstd(level=19)}
    enc = encoders()
    totals = {m + p: 0 for m in MODES for p in POST}
    formats: dict[str, int] = {}
    orders: dict[int, int] = {}
    labels = {"pins + markov 5": 0, "optimize": 0, "reference pins + markov 5": 0, "flat": 0}
    for chunk in chunks:
        for mode in MODES:
            stream = enc[mode](chunk)
            totals[mode] += len(stream)
            for post, codec in zstd.items():
                totals[mode + post] += len(codec.encode(stream))
            if mode in labels:
                labels[mode] += crackle_codec.header(stream).label_bytes
            if mode == "optimize":
                h = crackle_codec.header(stream)
                formats[h.label_format] = formats.get(h.label_format, 0) + 1
                orders[h.markov_model_order] = orders.get(h.markov_model_order, 0) + 1
                back = crackle.decompress(stream)
                if not np.array_equal(back.reshape(chunk.shape), chunk):
                    raise AssertionError("the reference decodes an optimize stream wrongly")
    return {"totals": totals, "label_bytes": labels, "formats": formats,
            "orders": {str(k): v for k, v in sorted(orders.items())}, "chunks": len(chunks),
            "voxels": int(sum(c.size for c in chunks))}


def speed(chunks: list[np.ndarray], reps: int, log) -> dict:
    """Median-repetition encode speed (MVx/s, CPU time) of optimize and both pins + markov 5."""
    enc = encoders()
    names = ["optimize", "pins + markov 5", "reference pins + markov 5"]
    times: dict[str, list[float]] = {n: [] for n in names}
    voxels = sum(c.size for c in chunks)
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            t0 = time.process_time()
            for c in chunks:
                enc[name](c)
            times[name].append(time.process_time() - t0)
        log(f"  speed repetition {rep + 1}/{reps}: " + ", ".join(f"{n} {voxels / times[n][-1] / 1e6:.1f} MVx/s" for n in names))
    return {n: voxels / statistics.median(t) / 1e6 for n, t in times.items()} | {"voxels": int(voxels), "reps": reps}


def load_avg() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows: list[tuple[str, dict]]) -> list[str]:
    """Markdown: one row per group, sizes in bytes and ratios to the reference's pins + markov 5."""
    out = ["| data | chunks | " + " | ".join(MODES[:-1]) + " | reference pins + markov 5 |",
           "|---|---:|" + "---:|" * len(MODES)]
    for post in POST:
        for name, r in rows:
            t = r["totals"]
            ref = t["reference pins + markov 5" + post]
            cells = [f"{t[m + post]:,} ({t[m + post] / ref:.3f}x)" for m in MODES[:-1]]
            label = name + (f" ({post.strip(' +')} after)" if post else "")
            out.append(f"| {label} | {r['chunks']} | " + " | ".join(cells) + f" | {ref:,} |")
    return out


def render(results: dict) -> str:
    s = results["settings"]
    rows = [(n, r) for n, r in results["volumes"].items() if n != IMAGE]
    pooled = results["pooled"]
    lines = [
        SECTION,
        "",
        "## Stream sizes: optimize against the reference's best mode",
        "",
        f"Measured by `python bench/sizes.py` on {s['date']} at commit {s['commit']}, one thread "
        f"({s['cpu']}); load average (1, 5, 15 min) {s['load_start']} at start, {s['load_end']} at end. "
        f"Every {CHUNK}^3 chunk of each volume ({CHUNK}x{CHUNK} tiles of the 2D image), each its own stream; "
        "sizes in bytes, summed; in brackets the ratio to the reference's pins + markov 5 on the same chunks "
        "(with zstd after, to the reference's pins + markov 5 with the same zstd after). "
        "Every optimize stream was decoded by the reference crackle-codec 0.55.0 and equals its chunk.",
        "",
    ]
    lines += table(rows + [("**3D volumes pooled**", pooled)] + [(IMAGE + " (2D tiles)", results["volumes"][IMAGE])]
                   if IMAGE in results["volumes"] else rows + [("**3D volumes pooled**", pooled)])
    lines += ["", "Labels section alone (bytes, summed over the same chunks; ratio to the reference's pins + markov 5):", "",
              "| data | FLAT (ours = reference) | our pins + markov 5 | optimize | reference pins + markov 5 |",
              "|---|---:|---:|---:|---:|"]
    for name, r in rows + [("**3D volumes pooled**", pooled)]:
        lb = r["label_bytes"]
        ref = lb["reference pins + markov 5"]
        lines.append(f"| {name} | {lb['flat']:,} ({lb['flat'] / ref:.3f}x) | {lb['pins + markov 5']:,} "
                     f"({lb['pins + markov 5'] / ref:.3f}x) | {lb['optimize']:,} ({lb['optimize'] / ref:.3f}x) | {ref:,} |")
    lines += ["", "What optimize chose (chunks per label format and per markov order):", "",
              "| data | label formats | markov orders |", "|---|---|---|"]
    for name, r in list(results["volumes"].items()):
        lines.append(f"| {name} | " + ", ".join(f"{k} {v}" for k, v in sorted(r["formats"].items())) + " | "
                     + ", ".join(f"{k}: {v}" for k, v in r["orders"].items()) + " |")
    sp = results.get("speed")
    if sp:
        lines += ["", f"Encode speed, {CHUNK}^3 chunks of the uint32 volumes ({', '.join(sp['volumes'])}; "
                  f"{sp['voxels']:,} voxels), one thread, CPU time of the process, median of {sp['reps']} "
                  "repetitions (the three alternating):", "",
                  "| encoder | MVx/s | vs reference pins + markov 5 |", "|---|---:|---:|"]
        ref = sp["reference pins + markov 5"]
        for name in ("optimize", "pins + markov 5", "reference pins + markov 5"):
            label = name if name.startswith("reference") else f"crackle_codec {name}"
            lines.append(f"| {label} | {sp[name]:.1f} | {sp[name] / ref:.2f}x |")
    lines.append("")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    old = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    i = old.find(SECTION)
    head = old if i < 0 else old[:i]
    DOC.write_text(head.rstrip("\n") + "\n\n" + text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="folder of the shared volumes (default ../shared/data)")
    ap.add_argument("--volumes", nargs="*", default=list(bench_volumes.VOLUMES))
    ap.add_argument("--reps", type=int, default=3, help="speed repetitions (0: no speed run)")
    ap.add_argument("--no-docs", action="store_true", help="print the section instead of writing docs/benchmarks.md")
    args = ap.parse_args()
    folder = bench_volumes.data_dir(args.data)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = datetime.datetime.now(datetime.timezone.utc)
    results = {"settings": {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
                            "load_start": load_avg(), "cpu": _cpu()}, "volumes": {}}
    uint32_chunks, uint32_names = [], []
    pooled: dict = {"totals": {}, "label_bytes": {}, "chunks": 0, "voxels": 0}
    for name in args.volumes:
        vol = bench_volumes.as_3d(bench_volumes.load(name, folder))
        chunks = bench_volumes.chunks(vol, CHUNK)
        log(f"{name}: {len(chunks)} chunks")
        r = sizes_of(chunks, log)
        results["volumes"][name] = r
        if name != IMAGE:
            for key in ("totals", "label_bytes"):
                for k, v in r[key].items():
                    pooled[key][k] = pooled[key].get(k, 0) + v
            pooled["chunks"] += r["chunks"]
            pooled["voxels"] += r["voxels"]
        if vol.dtype == np.uint32:
            uint32_chunks += chunks
            uint32_names.append(name)
        t = r["totals"]
        log(f"  optimize / reference pins + markov 5: {t['optimize'] / t['reference pins + markov 5']:.3f}")
    results["pooled"] = pooled
    if args.reps > 0 and uint32_chunks:
        results["speed"] = speed(uint32_chunks, args.reps, log) | {"volumes": uint32_names}
    results["settings"]["load_end"] = load_avg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    text = render(results)
    if args.no_docs:
        print(text)
    else:
        write_doc(text)
        log(f"wrote its section of {DOC.relative_to(REPO)}; JSON in {OUT.relative_to(REPO)}")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown cpu"


if __name__ == "__main__":
    main()
