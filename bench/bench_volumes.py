"""Volumes the benchmark can run on, and how they are cut into chunks.

The data lives outside the repository, in ``../shared/data`` next to the clone (see its README);
nothing is ever copied into the project. To add a volume, add an entry to ``VOLUMES``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Volume:
    name: str
    filename: str
    description: str


VOLUMES = {
    v.name: v
    for v in [
        Volume("connectomics_512", "connectomics_512.npz",
               "EM neuron segmentation (mouse visual cortex, pinky40 cutout), 512^3 uint32"),
        Volume("flyem_medulla_ws", "flyem_medulla_ws.npz",
               "EM watershed supervoxels (fly medulla), 250^3 uint32"),
        Volume("atlas_glasser_mni1mm", "atlas_glasser_mni1mm.npz",
               "brain atlas HCP-MMP1.0, 182x218x182 uint16"),
        Volume("ovule_cells_100", "ovule_cells_100.npz",
               "confocal 3D cell instance segmentation, 100^3 uint8"),
        Volume("nuclei2d_stardist", "nuclei2d_stardist.npz",
               "2D nuclei instance segmentation, 512x512 uint16 (an image, not a volume)"),
    ]
}


def data_dir(explicit: str | None = None) -> Path:
    """The shared data folder: ``explicit``, else $CRACKLE_SHARED_DATA, else ../shared/data."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("CRACKLE_SHARED_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


def load(name: str, folder: Path) -> np.ndarray:
    """Load a registered volume as an (x, y, z) array; FileNotFoundError with a clear message."""
    volume = VOLUMES[name]
    path = folder / volume.filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the benchmark reads {volume.filename} from the shared "
                                f"data folder next to the repository (or --data DIR)")
    with np.load(path) as npz:
        return npz["labels"]


def as_3d(volume: np.ndarray) -> np.ndarray:
    """A 2D (x, y) image as an (x, y, 1) Fortran-ordered volume; 3D volumes as Fortran-ordered arrays."""
    if volume.ndim == 2:
        volume = volume[:, :, np.newaxis]
    if volume.ndim != 3:
        raise ValueError(f"expected a 2D or 3D array, got shape {volume.shape}")
    return np.asfortranarray(volume)


def chunks(volume: np.ndarray, size: int, limit: int | None = None) -> list[np.ndarray]:
    """Cut ``volume`` into ``size``^3 chunks (smaller at the far edges), each a Fortran-ordered copy.

    Chunks are taken in x-fastest order. ``limit`` keeps only that many, spread evenly over the
    volume (so that a quick run does not just see one corner). An (x, y, 1) image gives
    ``size`` x ``size`` tiles.
    """
    sx, sy, sz = volume.shape
    corners = [(x, y, z) for z in range(0, sz, size) for y in range(0, sy, size) for x in range(0, sx, size)]
    if limit is not None and limit < len(corners):
        picks = np.linspace(0, len(corners) - 1, limit).round().astype(int)
        corners = [corners[i] for i in picks]
    return [np.asfortranarray(volume[x:x + size, y:y + size, z:z + size]) for x, y, z in corners]


def best(fn, reps: int):
    """``(fastest wall time of reps calls, the last call's result)``: the timing rule of the
    array-level benchmarks (analytics, pyramids, rewrites)."""
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out

