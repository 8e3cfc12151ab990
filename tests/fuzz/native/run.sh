#!/usr/bin/env bash
# Native coverage-guided campaign on the C++ decoder (libFuzzer + ASan + UBSan, no Python):
#
#   tests/fuzz/native/run.sh SECONDS [OUTDIR] [WORKERS]
#
# Builds fuzz_decode.cpp with the decoder's sources (clang, -fsanitize=fuzzer,address,undefined),
# seeds a corpus from the Python harness's seeds (tests/fuzz/seeds.py) unless OUTDIR/corpus has
# inputs, and runs WORKERS (default 2) libFuzzer jobs for SECONDS. Findings are kept in
# OUTDIR/artifacts; libFuzzer's logs in OUTDIR/logs; total executions in OUTDIR/summary.txt.
set -euo pipefail
seconds=${1:?usage: run.sh SECONDS [OUTDIR] [WORKERS]}
out=${2:-$(mktemp -d /tmp/crackle-native-fuzz.XXXXXX)}
workers=${3:-2}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
command -v clang++ >/dev/null || { echo "clang++ not found (apt-get install clang)"; exit 2; }
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"
srcs=(ccl.cpp crc.cpp decoder.cpp encoder.cpp slice_writer.cpp label_slices.cpp)
clang++ -std=c++17 -O1 -g -fno-omit-frame-pointer -pthread -Wall -Wextra \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$repo/ext" \
  "$repo/tests/fuzz/native/fuzz_decode.cpp" "${srcs[@]/#/$repo/ext/}" -o "$out/fuzz_decode"
if [ -z "$(ls -A "$out/corpus")" ]; then
  (cd "$repo/tests" && python -c "from pathlib import Path; from fuzz import seeds; print(seeds.write_corpus(Path('$out/corpus'), seeds.fuzz_seeds()), 'seed inputs')")
fi
rev=$(cd "$repo" && git log -1 --format='%h %s')$(cd "$repo" && git diff --quiet -- ext tests/fuzz/native || echo " (+ uncommitted changes)")
echo "source: $rev" | tee "$out/summary.txt"
(cd "$out" && ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ./fuzz_decode corpus -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -jobs="$workers" -workers="$workers" -artifact_prefix=artifacts/ -print_final_stats=1 >logs/main.log 2>&1) || true
total=0
for log in "$out"/fuzz-*.log; do
  [ -f "$log" ] || continue
  mv "$log" "$out/logs/"
done
for log in "$out"/logs/fuzz-*.log; do
  n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  total=$((total + ${n:-0}))
done
echo "executions: $total; artifacts: $(ls "$out/artifacts" | wc -l)" | tee -a "$out/summary.txt"
