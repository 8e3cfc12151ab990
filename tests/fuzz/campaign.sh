#!/usr/bin/env bash
# Long coverage-guided fuzz campaign (see tests/fuzz/README.md).
#
#   tests/fuzz/campaign.sh SECONDS [OUTDIR]
#
# Needs clang (apt-get install clang) and atheris (pip install atheris). Builds two copies of the
# extension OUTSIDE the work tree, from the current sources:
#   cov:  clang -fsanitize=fuzzer-no-link              (libFuzzer coverage, fast)
#   asan: clang -fsanitize=fuzzer-no-link,address,undefined (same, with ASan + UBSan)
# then runs the workers listed in CRACKLE_FUZZ_WORKERS (default cov,asan; a name may repeat, e.g.
# cov,cov,asan on more cores) for SECONDS each, on one
# shared corpus seeded from ../shared/streams and the corruption-test crops. A worker that stops on
# a finding is restarted (the input is kept under OUTDIR/artifacts). Totals go to OUTDIR/summary.txt.
set -uo pipefail
seconds=${1:?usage: campaign.sh SECONDS [OUTDIR]}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${2:-$(mktemp -d /tmp/crackle-campaign.XXXXXX)}
mkdir -p "$out/artifacts" "$out/corpus" "$out/logs"
workers=${CRACKLE_FUZZ_WORKERS:-cov,asan}
export CRACKLE_FUZZ_IGNORE=${CRACKLE_FUZZ_IGNORE:-}
command -v clang++ >/dev/null || { echo "clang++ not found (apt-get install clang)"; exit 2; }
python -c "import atheris" || { echo "atheris not installed (pip install atheris)"; exit 2; }

rt=$(clang -print-resource-dir)/lib/linux
copy_sources() {  # copy_sources DEST: the work tree without build outputs
  rm -rf "$1" && mkdir -p "$1"
  (cd "$repo" && tar --exclude=./build --exclude='*.so' --exclude=./.git --exclude=./ext/_crackle.cpp \
     --exclude='*.egg-info' --exclude=./.pytest_cache --exclude=./.hypothesis -cf - .) | tar -xf - -C "$1"
}
build() {  # build NAME [sanitize]
  local dir=$out/build-$1
  copy_sources "$dir"
  (cd "$dir" && env CC=clang CXX=clang++ LDSHARED="clang++ -shared" ${2:+CRACKLE_SANITIZE=1} \
     CFLAGS="-fsanitize=fuzzer-no-link" CXXFLAGS="-fsanitize=fuzzer-no-link" LDFLAGS="-fsanitize=fuzzer-no-link" \
     python setup.py build_ext --inplace >"$out/logs/build-$1.log" 2>&1) || { echo "build $1 failed"; exit 2; }
  # setuptools >= 77 passes CXXFLAGS, older ones CFLAGS, to C++ compiles: make sure one of them did.
  grep -q -- "-fsanitize=fuzzer-no-link.*-c ext/decoder.cpp\|-c ext/decoder.cpp.*-fsanitize=fuzzer-no-link" "$out/logs/build-$1.log" \
    || { echo "build $1: the C++ core was not instrumented (see $out/logs/build-$1.log)"; exit 2; }
}
# Preload libraries: libFuzzer alone, and ASan runtime + libFuzzer in one DSO (as atheris documents).
mkdir -p "$out/rt/objs"
clang++ -shared -o "$out/rt/libfuzzer.so" -Wl,--whole-archive "$rt/libclang_rt.fuzzer_no_main-x86_64.a" \
  -Wl,--no-whole-archive -lpthread
(cd "$out/rt/objs" && ar x "$rt/libclang_rt.asan-x86_64.a" && ar x "$rt/libclang_rt.asan_cxx-x86_64.a" \
  && ar x "$rt/libclang_rt.fuzzer_no_main-x86_64.a" && rm -f asan_preinit.cpp.o \
  && clang++ -shared -o ../asan_with_fuzzer.so ./*.o -lpthread -ldl -lrt -lm)

source_rev=$(cd "$repo" && git log -1 --format='%h %s' 2>/dev/null)$(cd "$repo" && git diff --quiet 2>/dev/null || echo " (+ uncommitted changes)")
IFS=, read -r -a names <<<"$workers"
for w in $(printf '%s\n' "${names[@]}" | sort -u); do
  case $w in cov) build cov ;; asan) build asan 1 ;; *) echo "unknown worker $w"; exit 2 ;; esac
done
if [ -z "$(ls -A "$out/corpus")" ]; then
  (cd "$repo/tests" && python -c "from pathlib import Path; from fuzz import seeds; print(seeds.write_corpus(Path('$out/corpus'), seeds.fuzz_seeds()), 'seed inputs')")
fi
echo "builds done; fuzzing for $seconds s with workers: $workers; output in $out"

worker() {  # worker NAME INDEX
  local name=$1 idx=$2 deadline=$(( $(date +%s) + seconds )) seg=0 preload env_opts id=$1-w$2
  if [ "$name" = asan ]; then
    preload=$out/rt/asan_with_fuzzer.so
    env_opts="ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:handle_abort=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
  else
    preload=$out/rt/libfuzzer.so
    env_opts=""
  fi
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local left=$(( deadline - $(date +%s) ))
    [ "$left" -lt 5 ] && break
    seg=$((seg + 1))
    env $env_opts LD_PRELOAD="$preload" PYTHONPATH="$out/build-$name" CRACKLE_FUZZ_SEED=$((idx * 1000 + seg)) \
      nice -n 5 python "$repo/tests/fuzz/fuzz_decoder.py" --corpus "$out/corpus" \
        -max_total_time="$left" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$id-" >"$out/logs/$id.$seg.log" 2>&1
    echo "$id segment $seg exit $?" >>"$out/logs/segments.txt"
  done
}
for i in "${!names[@]}"; do worker "${names[$i]}" "$i" & done
wait

# Totals: executed units per segment (final stats, or the last status line if the process died).
{
  echo "campaign: $(date -u +%FT%TZ), ${seconds}s per worker, workers: $workers"
  echo "source (at build time): $source_rev"
  total=0
  for log in "$out"/logs/*.*.log; do
    n=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    [ -z "$n" ] && n=$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -1)
    n=${n:-0}
    total=$((total + n))
    echo "$(basename "$log"): $n executions"
  done
  echo "segments ended by a finding: $(grep -vc 'exit 0' "$out/logs/segments.txt" 2>/dev/null || true)"
  echo "artifacts: $(find "$out/artifacts" -type f | wc -l)"
  echo "corpus: $(find "$out/corpus" -type f | wc -l) inputs"
  grep -h "ignored known findings" "$out"/logs/*.log | sort | uniq -c || true
  echo "TOTAL executions: $total"
} | tee "$out/summary.txt"
