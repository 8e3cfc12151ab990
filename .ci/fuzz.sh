#!/usr/bin/env bash
# Bounded fuzz run for CI (default 120 s) of tests/fuzz/fuzz_decoder.py on the installed build.
#
#   bash .ci/fuzz.sh [SECONDS]        (run inside the CI virtual environment)
#
# Uses atheris (installed from PyPI here if missing); if atheris cannot be installed on this Python,
# the harness's plain mutation loop runs instead, for the same time. Seeds: ../shared/streams and
# crops of ../shared/data (the harness falls back to synthetic seeds on a fresh clone). Any finding
# (an exception other than DecodeError, an oracle violation, a crash, a timeout or an OOM) fails the
# run; its input is kept under $CRACKLE_FUZZ_ARTIFACTS (default: a temp folder, printed below).
# The long coverage-guided campaigns: tests/fuzz/campaign.sh and tests/fuzz/native/run.sh (see tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-120}
work=$(mktemp -d /tmp/crackle-fuzz.XXXXXX)
export CRACKLE_FUZZ_ARTIFACTS=${CRACKLE_FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$CRACKLE_FUZZ_ARTIFACTS"
echo "== fuzz: ${seconds}s, artifacts in $CRACKLE_FUZZ_ARTIFACTS"

if python -c "import atheris" 2>/dev/null || python -m pip install -q atheris >/dev/null 2>&1; then
  echo "== fuzz: atheris $(python -c 'import importlib.metadata as m; print(m.version("atheris"))')"
  # -rss_limit_mb: a hostile size must be refused, not allocated; -timeout: no input may hang.
  python tests/fuzz/fuzz_decoder.py --corpus "$work/corpus" --seed "${CRACKLE_FUZZ_SEED:-$RANDOM}" \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 -print_final_stats=1 \
    -artifact_prefix="$CRACKLE_FUZZ_ARTIFACTS/" 2>&1 | { grep -v "^INFO: Instrumenting" || true; } | { grep -vE "^#[0-9]+\s+(NEW|REDUCE|pulse)" || true; } \
    | tail -n 40
  rc=${PIPESTATUS[0]}
else
  echo "== fuzz: atheris is not installable here; plain mutation loop instead"
  python tests/fuzz/fuzz_decoder.py --mutate --corpus "$work/corpus" --as-limit-mb=3072 \
    --seed "${CRACKLE_FUZZ_SEED:-$RANDOM}" -max_total_time="$seconds"
  rc=$?
fi
if [ "$rc" -ne 0 ]; then
  echo "== fuzz: FINDING (exit $rc); inputs:"; ls -la "$CRACKLE_FUZZ_ARTIFACTS"
  exit 1
fi

# The native decoder target (tests/fuzz/native) under ASan + UBSan, where clang is installed: a
# build of the C++ core with libFuzzer, ~2,500 inputs a second, 30 s, any finding fails the run.
if command -v clang++ >/dev/null; then
  echo "== fuzz: native decoder target, 30 s (clang $(clang++ -dumpversion))"
  bash tests/fuzz/native/run.sh 30 "$work/native" 1 | tail -n 1
  if [ -n "$(ls -A "$work/native/artifacts")" ]; then
    echo "== fuzz: native FINDING; inputs:"; ls -la "$work/native/artifacts"
    exit 1
  fi
else
  echo "== fuzz: clang++ not installed: the native decoder target is not run here"
fi
rm -rf "$work"
echo "== fuzz: no finding"
