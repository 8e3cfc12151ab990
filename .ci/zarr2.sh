#!/usr/bin/env bash
# The zarr 2.18 tests (tests/zarr2/) in their own environment: a fresh virtual environment under a
# temporary directory with zarr>=2.18,<3, numcodecs, pytest, hypothesis and this package installed
# from the repository root (`pip install .`, a real install: entry points included).
# Called from .ci/run; also runnable by hand: bash .ci/zarr2.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off PYTHONUNBUFFERED=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 -m venv "$tmp/zarr2"
# shellcheck disable=SC1091
source "$tmp/zarr2/bin/activate"
echo "== environment zarr2: $(python --version 2>&1), $(pip --version | cut -d' ' -f1-2)"

pip install --quiet "zarr>=2.18,<3" numcodecs pytest hypothesis
pip install --quiet "$repo"
python -c 'import zarr, numcodecs, numpy, crackle_codec; print(f"zarr {zarr.__version__}, numcodecs {numcodecs.__version__}, numpy {numpy.__version__}, crackle_codec from {crackle_codec.__file__}")'

# Run from outside the repository so that the installed package (not the source tree) is imported;
# --confcutdir keeps the main suite's conftest.py (and its dependencies) out of this environment.
cd "$tmp"
python -m pytest -p no:cacheprovider --confcutdir="$repo/tests/zarr2" "$repo/tests/zarr2"
