#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the decoder tests and a short fuzz run.
#
#   bash .ci/sanitize.sh [FUZZ_SECONDS]        (default 60; run inside the CI virtual environment)
#
# Builds the extension with CRACKLE_SANITIZE=1 (setup.py: -fsanitize=address,undefined) in a
# temporary copy of the sources -- never in the work tree, whose in-place .so stays as it is -- and
# runs with that copy first on PYTHONPATH, gcc's libasan preloaded, PYTHONMALLOC=malloc (so that a
# read past a small bytes object is caught, not hidden in a pymalloc arena), leak detection off
# (CPython keeps objects until exit) and halt_on_error for both sanitizers. Any report fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
fuzz_seconds=${1:-60}

tmp=$(mktemp -d /tmp/crackle-sanitize.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "== sanitize: copying sources to $tmp"
tar --exclude=./build --exclude='*.so' --exclude=./.git --exclude=./ext/_crackle.cpp --exclude='*.egg-info' \
    --exclude=./.pytest_cache --exclude=./.hypothesis --exclude=./bench -cf - . | tar -xf - -C "$tmp"

python -m pip install -q "Cython>=3.0" "setuptools>=77"  # setuptools>=77: pyproject's SPDX license
echo "== sanitize: building the extension with ASan + UBSan (gcc)"
(cd "$tmp" && CRACKLE_SANITIZE=1 python setup.py -q build_ext --inplace >"$tmp/build.log" 2>&1) \
  || { tail -n 40 "$tmp/build.log"; exit 1; }

libasan=$(gcc -print-file-name=libasan.so)
libstdcxx=$(gcc -print-file-name=libstdc++.so)
[ -f "$libasan" ] || { echo "libasan.so not found (gcc $(gcc -dumpversion))"; exit 1; }
# libstdc++ too: python itself does not link it, and ASan's __cxa_throw interceptor must find the
# real one at start-up ("CHECK failed: real___cxa_throw != 0" on the first C++ exception otherwise).
export LD_PRELOAD="$libasan $libstdcxx"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export PYTHONMALLOC=malloc
export PYTHONPATH=$tmp${PYTHONPATH:+:$PYTHONPATH}
export CRACKLE_SANITIZED=1   # tests skip what ASan cannot do (RLIMIT_AS address-space caps)

# Make sure the sanitized build is the one imported (not the editable install of the work tree).
(cd "$tmp" && python - <<EOF
import crackle_codec, crackle_codec._crackle as ext
assert ext.__file__.startswith("$tmp"), f"wrong extension imported: {ext.__file__}"
print("sanitized extension:", ext.__file__)
EOF
)

# The decoder-facing tests. Other engineers' files are run when present.
tests=(tests/test_corruption.py tests/test_hostile.py tests/test_encoder_inputs.py tests/test_concurrency.py)
for t in tests/test_malformed.py tests/test_shared_streams.py tests/test_roundtrip.py tests/test_golden.py \
         tests/test_bombs.py tests/test_hardening.py; do
  [ -f "$t" ] && tests+=("$t")
done
echo "== sanitize: pytest ${tests[*]}"
# `pytest` (not `python -m pytest`, which would put the work tree's package first on sys.path).
# -s: a sanitizer report goes to the real stderr (pytest's fd capture would lose it on abort).
CRACKLE_MUTATION_SECONDS=10 pytest -q -s -p no:cacheprovider "${tests[@]}"

echo "== sanitize: ${fuzz_seconds}s fuzz run (plain mutation loop) under ASan + UBSan"
python tests/fuzz/fuzz_decoder.py --mutate --seed "${CRACKLE_FUZZ_SEED:-$RANDOM}" -max_total_time="$fuzz_seconds"
echo "== sanitize: done, no sanitizer report"
