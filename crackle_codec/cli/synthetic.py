"""The demo's synthetic segmentation: realistic-looking dense 3D labels, numpy only."""

from __future__ import annotations

import numpy as np

DEMO_SHAPE = (256, 256, 128)


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
