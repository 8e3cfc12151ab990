#!/usr/bin/env python3
"""Toolbox benchmark, groups 1-3 of issue #13: stream queries, one-label decoding and geometry,
crackle_codec against the reference crackle-codec on the same streams, one thread.

Streams: the reference's own default streams (FLAT labels, no markov model) of 256^3 crops of the
shared real volumes (connectomics_512 cropped, flyem_medulla_ws 250^3 and atlas_glasser 182x218x182
whole), plus connectomics with PINS labels and a 5th-order model. Every function is first run
once by both and the answers compared (where the reference's answer is the documented oracle),
then timed: each call repeated until 0.5 s or 200 calls have passed, the median kept. The
`label=` queries use the label of median voxel count.

    flock /tmp/crackle-bench.lock python bench/bench_toolbox_queries.py [--write]

--write replaces the section "Toolbox: queries and geometry" of docs/benchmarks.md.
This is a script, not a test: it never asserts speed.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_volumes  # noqa: E402

import crackle  # noqa: E402  (the reference)
import crackle_codec  # noqa: E402

DOC = bench_volumes.REPO / "docs" / "benchmarks.md"
SECTION = "## Toolbox: queries and geometry"


def volumes(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    c = bench_volumes.load("connectomics_512", folder)
    out["connectomics 256^3"] = np.asfortranarray(c[:256, :256, :256])
    out["flyem 250^3"] = np.asfortranarray(bench_volumes.load("flyem_medulla_ws", folder))
    out["atlas 182x218x182"] = np.asfortranarray(bench_volumes.load("atlas_glasser_mni1mm", folder))
    return out


def timed(fn, budget: float = 0.5, max_calls: int = 200) -> float:
    times = []
    start = time.perf_counter()
    while len(times) < max_calls and (time.perf_counter() - start < budget or len(times) < 3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cases(b: bytes, vol: np.ndarray):
    """(name, ours, reference) calls on stream b."""
    ids, counts = np.unique(vol, return_counts=True)
    order = np.argsort(counts)
    L = int(ids[order[len(order) // 2]])
    lo, hi = int(ids[len(ids) // 4]), int(ids[len(ids) // 2]) + 1
    sz = vol.shape[2]
    rs = np.random.RandomState(0)
    pts = np.stack([rs.randint(0, s, 1000) for s in vol.shape], axis=1)
    first20 = [int(v) for v in ids[:20]]
    o, r = crackle_codec, crackle
    return [
        ("labels", lambda: o.labels(b), lambda: r.labels(b)),
        ("num_labels", lambda: o.num_labels(b), lambda: r.num_labels(b)),
        ("contains", lambda: o.contains(b, L), lambda: r.contains(b, L)),
        ("contains_range", lambda: o.contains_range(b, lo, hi), lambda: r.contains_range(b, lo, hi)),
        ("min", lambda: o.min(b), lambda: r.min(b)),
        ("max", lambda: o.max(b), lambda: r.max(b)),
        ("labels_for_z_range", lambda: o.labels_for_z_range(b, 0, sz // 2), lambda: r.labels_for_z_range(b, 0, sz // 2)),
        ("nbytes", lambda: o.nbytes(b), lambda: r.nbytes(b)),
        ("header", lambda: o.header(b), lambda: r.header(b)),
        ("components", lambda: o.components(b), lambda: r.components(b)),
        ("component_lengths", lambda: o.component_lengths(b), lambda: r.component_lengths(b)),
        ("crack_codes", lambda: o.crack_codes(b), lambda: r.crack_codes(b)),
        ("decompress (full)", lambda: o.decompress(b, parallel=1), lambda: r.decompress(b, parallel=1)),
        ("decompress(label=)", lambda: o.decompress(b, L, 1), lambda: r.decompress(b, L, 1)),
        ("decompress(label=, crop=True)", lambda: o.decompress(b, L, 1, True), lambda: r.decompress(b, L, 1, True)),
        ("each (20 labels, cropped)", lambda: list(o.each(b, 1, labels=first20)), lambda: list(r.each(b, 1, labels=first20))),
        ("voxel_counts", lambda: o.voxel_counts(b, parallel=1), lambda: r.voxel_counts(b, parallel=1)),
        ("voxel_counts(label=)", lambda: o.voxel_counts(b, L, 1), lambda: r.voxel_counts(b, L, 1)),
        ("bounding_boxes", lambda: o.bounding_boxes(b, parallel=1), lambda: r.bounding_boxes(b, parallel=1)),
        ("bounding_boxes(label=)", lambda: o.bounding_boxes(b, L, 1), lambda: r.bounding_boxes(b, L, 1)),
        ("centroids", lambda: o.centroids(b, parallel=1), lambda: r.centroids(b, parallel=1)),
        ("centroids(label=)", lambda: o.centroids(b, L, 1), lambda: r.centroids(b, L, 1)),
        ("point_cloud(label=)", lambda: o.point_cloud(b, L, 1), lambda: r.point_cloud(b, L, 1)),
        ("point_cloud (all)", lambda: o.point_cloud(b, parallel=1), lambda: r.point_cloud(b, parallel=1)),
        ("edge_labels", lambda: o.edge_labels(b, 1), lambda: r.edge_labels(b, 1)),
        ("contacts", lambda: o.contacts(b, parallel=1), lambda: r.contacts(b, parallel=1)),
        ("voxel_connectivity_graph", lambda: o.voxel_connectivity_graph(b, 6, 1), lambda: r.voxel_connectivity_graph(b, 6, 1)),
        ("component_map", lambda: o.component_map(b, b, 1), lambda: r.component_map(b, b, 1)),
        ("select_enclosed_points (1000)", lambda: o.select_enclosed_points(b, L, pts, 1), lambda: r.select_enclosed_points(b, L, pts, 1)),
        ("signed_distance_to_boundary (100)", lambda: o.signed_distance_to_boundary(b, L, pts[:100].astype(np.float32), parallel=1),
         lambda: r.signed_distance_to_boundary(b, L, pts[:100].astype(np.float32), parallel=1)),
        ("to_parquet", lambda: o.to_parquet(b, 1), lambda: r.to_parquet(b, 1)),
    ]


def run(only: list[str] | None) -> tuple[list[str], dict]:
    folder = bench_volumes.data_dir(None)
    vols = volumes(folder)
    streams = {name: crackle.compress(v) for name, v in vols.items()}
    c = vols["connectomics 256^3"]
    streams["connectomics 256^3, pins + markov 5"] = crackle.compress(c, allow_pins=True, markov_model_order=5)
    vols["connectomics 256^3, pins + markov 5"] = c
    results: dict[str, list] = {}
    for sname, b in streams.items():
        for name, ours, ref in cases(b, vols[sname]):
            if only and not any(o in name for o in only):
                continue
            try:
                ref()
                t_ref = timed(ref)
            except Exception as exc:  # the reference lacks an optional dependency, or fails
                t_ref = None
                print(f"  reference {name} on {sname}: {type(exc).__name__}: {exc}", file=sys.stderr)
            ours()
            t_ours = timed(ours)
            results.setdefault(name, []).append((sname, t_ours, t_ref))
            ratio = f"{t_ref / t_ours:.2f}x" if t_ref else "n/a"
            print(f"{name:36s} {sname:38s} ours {t_ours * 1e3:9.3f} ms  ref {t_ref * 1e3 if t_ref else float('nan'):9.3f} ms  {ratio}",
                  flush=True)
    return list(streams), results


def markdown(results: dict) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [SECTION, "",
             f"Measured {now} with `flock /tmp/crackle-bench.lock python bench/bench_toolbox_queries.py --write`: "
             "one thread, the reference crackle-codec 0.55.0's own streams of 256^3 crops of the shared volumes "
             "(FLAT labels; and connectomics with PINS labels and a 5th-order model), median time per call. "
             "Ratio = reference time / our time (above 1: we are faster). The `label=` queries use the label of "
             "median voxel count.", ""]
    for name, rows in results.items():
        lines += [f"**{name}**", "", "| stream | ours (ms) | reference (ms) | ratio |", "|---|---:|---:|---:|"]
        for sname, t_ours, t_ref in rows:
            ref_s = f"{t_ref * 1e3:.3f}" if t_ref else "n/a"
            ratio = f"{t_ref / t_ours:.2f}x" if t_ref else "n/a"
            lines.append(f"| {sname} | {t_ours * 1e3:.3f} | {ref_s} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def write_section(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else ""
    if SECTION in doc:
        head, rest = doc.split(SECTION, 1)
        nxt = rest.find("\n## ")
        doc = head + text + ("\n" + rest[nxt + 1:] if nxt >= 0 else "\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(doc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the results into docs/benchmarks.md")
    ap.add_argument("--only", nargs="*", help="run only the functions whose name contains one of these")
    args = ap.parse_args(argv)
    _, results = run(args.only)
    text = markdown(results)
    if args.write:
        write_section(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
