"""Draw docs/cracks.png: a segmentation slice and the cracks Crackle stores for it.

Run from anywhere, with matplotlib installed (a doc-build tool, not a test dependency):

    python docs/draw_cracks.py            # writes docs/cracks.png next to this script
    python docs/draw_cracks.py out.png    # or another path

The slice is synthetic, made here with numpy so the picture is reproducible from a clean clone
with no data: irregular cells (a weighted Voronoi diagram on smoothly warped coordinates) crossed
by small round profiles, like the cross-sections of neurites in an electron-microscopy
segmentation. Label values are large random ids, as in real segmentations.

A *crack* is the pixel edge between two 4-connected pixels with different labels. Crackle stores
a slice as these cracks (chain codes) plus, for each region they enclose, its label value. The
script also compresses the slice with crackle_codec and prints the sizes it puts in the title.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import crackle_codec  # noqa: E402

SHAPE = (160, 160)  # (sx, sy)
SEED = 7
ZOOM = (slice(72, 100), slice(100, 128))  # the region drawn pixel by pixel in the third panel


def synthetic_slice(shape=SHAPE, seed=SEED, cell=26.0, profiles=22) -> np.ndarray:
    """A realistic-looking 2D segmentation, uint32, indexed [x, y]."""
    rng = np.random.default_rng(seed)
    sx, sy = shape
    x, y = np.meshgrid(np.arange(sx, dtype=float), np.arange(sy, dtype=float), indexing="ij")

    # Smoothly warped coordinates, so that cell walls curve.
    wx, wy = x.copy(), y.copy()
    for _ in range(3):
        f = rng.normal(scale=2 * np.pi / 60, size=(2, 2))
        p = rng.random(2) * 2 * np.pi
        wx += 3.5 * np.sin(f[0, 0] * x + f[0, 1] * y + p[0])
        wy += 3.5 * np.sin(f[1, 0] * x + f[1, 1] * y + p[1])

    # Weighted Voronoi cells around jittered grid seeds.
    gx, gy = np.meshgrid(np.arange(-1, sx / cell + 1), np.arange(-1, sy / cell + 1), indexing="ij")
    seeds = (np.stack([gx.ravel(), gy.ravel()], axis=1) + rng.random((gx.size, 2))) * cell
    weights = (rng.random(len(seeds)) - 0.5) * (0.45 * cell) ** 2
    ids = rng.choice(2**31, size=len(seeds) + profiles, replace=False).astype(np.uint32) + 1
    dist = ((wx[..., None] - seeds[:, 0]) ** 2 + (wy[..., None] - seeds[:, 1]) ** 2 - weights)
    seg = ids[np.argmin(dist, axis=-1)]

    # Small round profiles (neurites cut across), slightly elliptical.
    for k in range(profiles):
        cx, cy = rng.uniform(0, sx), rng.uniform(0, sy)
        rx, ry = rng.uniform(2.0, 6.5), rng.uniform(2.0, 6.5)
        seg[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1] = ids[len(seeds) + k]
    return seg


def crack_segments(seg: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray:
    """Line segments, in image coordinates (pixel centres at integers), of every crack of ``seg``.

    Between (x, y) and (x+1, y): the vertical edge at X = x + 0.5. Between (x, y) and (x, y+1):
    the horizontal edge at Y = y + 0.5. ``x0, y0`` shift the coordinates (for a crop).
    """
    xs, ys = np.nonzero(seg[1:, :] != seg[:-1, :])
    vertical = np.stack([np.stack([xs + 0.5, ys - 0.5], 1), np.stack([xs + 0.5, ys + 0.5], 1)], 1)
    xs, ys = np.nonzero(seg[:, 1:] != seg[:, :-1])
    horizontal = np.stack([np.stack([xs - 0.5, ys + 0.5], 1), np.stack([xs + 0.5, ys + 0.5], 1)], 1)
    return np.concatenate([vertical, horizontal]) + np.array([x0, y0])


def colour_indices(seg: np.ndarray, ncolours: int) -> np.ndarray:
    """Per-pixel colour index such that 4-connected neighbouring labels never share a colour."""
    values, inverse = np.unique(seg, return_inverse=True)
    inverse = inverse.reshape(seg.shape)
    pairs = np.concatenate([
        np.stack([inverse[1:, :].ravel(), inverse[:-1, :].ravel()], 1),
        np.stack([inverse[:, 1:].ravel(), inverse[:, :-1].ravel()], 1),
    ])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    neighbours = [set() for _ in values]
    for a, b in pairs.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    order = np.random.default_rng(0).permutation(len(values))  # varied colours, deterministic
    colour = np.full(len(values), -1)
    for i in order:
        used = {colour[j] for j in neighbours[i]}
        start = int(order[i]) % ncolours
        colour[i] = next(c % ncolours for c in range(start, start + ncolours) if c % ncolours not in used)
    return colour[inverse]


def main(out: Path) -> None:
    seg = synthetic_slice()
    stream = crackle_codec.compress(seg)  # a (sx, sy) array is one slice: shape (sx, sy, 1)
    assert np.array_equal(crackle_codec.decompress(stream)[:, :, 0], seg)
    segments = crack_segments(seg)
    nlabels = crackle_codec.num_labels(stream)
    print(f"{seg.shape[0]}x{seg.shape[1]} uint32 slice: {nlabels} labels, {len(segments)} crack edges, "
          f"{seg.nbytes} bytes raw, Crackle stream {len(stream)} bytes")

    cmap = ListedColormap(np.concatenate([plt.get_cmap("tab20").colors, plt.get_cmap("tab20b").colors]))
    colours = colour_indices(seg, cmap.N)
    show = dict(cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, interpolation="nearest", origin="upper")

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.9), layout="constrained")
    # imshow draws rows as y: give it colours.T (indexed [y, x]).
    axes[0].imshow(colours.T, **show)
    axes[0].set_title(f"a segmentation slice: {nlabels} labels")

    axes[1].set_facecolor("white")
    axes[1].add_collection(LineCollection(segments, colors="black", linewidths=0.6))
    axes[1].set_title(f"its cracks: {len(segments)} pixel edges between labels")

    zx, zy = ZOOM
    crop = seg[zx, zy]
    axes[2].imshow(colours[zx, zy].T, extent=(zx.start - 0.5, zx.stop - 0.5, zy.stop - 0.5, zy.start - 0.5),
                   **show)
    grid = [[(x - 0.5, zy.start - 0.5), (x - 0.5, zy.stop - 0.5)] for x in range(zx.start, zx.stop + 1)]
    grid += [[(zx.start - 0.5, y - 0.5), (zx.stop - 0.5, y - 0.5)] for y in range(zy.start, zy.stop + 1)]
    axes[2].add_collection(LineCollection(grid, colors="white", linewidths=0.4, alpha=0.6))
    axes[2].add_collection(LineCollection(crack_segments(crop, zx.start, zy.start), colors="black",
                                          linewidths=2.0))
    axes[2].set_title("zoom: pixels, and cracks on their edges")

    for ax in axes[:2]:
        ax.set_xlim(-0.5, seg.shape[0] - 0.5)
        ax.set_ylim(seg.shape[1] - 0.5, -0.5)
        ax.add_patch(Rectangle((zx.start - 0.5, zy.start - 0.5), zx.stop - zx.start, zy.stop - zy.start,
                               fill=False, edgecolor="red", linewidth=1.2))
    axes[2].set_xlim(zx.start - 0.5, zx.stop - 0.5)
    axes[2].set_ylim(zy.stop - 0.5, zy.start - 0.5)
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Crackle stores the cracks and one label per region: this {seg.shape[0]}x{seg.shape[1]} "
                 f"uint32 slice ({seg.nbytes:,} bytes) is a {len(stream):,}-byte stream")
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "cracks.png")
