#!/usr/bin/env bash
# tests/fuzz/run.sh: build lowbit's libFuzzer targets with clang (build/fuzz), run each for a
# few seconds from its committed seed corpus (tests/fuzz/corpus/<target>), then run the thread
# test under ThreadSanitizer. Exits non-zero on any finding (crash, sanitizer report, mismatch
# against the reference, leak, timeout, out-of-memory) or data race. Installs nothing: without
# clang++ it prints a message and exits 0.
#
#   bash tests/fuzz/run.sh                   # CI: FUZZ_SECONDS=6 per target
#   FUZZ_SECONDS=3600 FUZZ_JOBS=2 bash tests/fuzz/run.sh    # longer runs (tests/fuzz/README.md)
#
# Environment: FUZZ_SECONDS (per target, default 6), FUZZ_TARGETS (default: all built),
# FUZZ_BUILD (default build/fuzz), FUZZ_JOBS (targets run at once, default 2), FUZZ_TSAN=0 to
# skip the ThreadSanitizer run, FUZZ_ALL_ISAS=1 to fuzz the AVX2 and SSE4.1 kernels too.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cxx="${CXX_FUZZ:-clang++}"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "tests/fuzz/run.sh: $cxx not found: fuzzing and the ThreadSanitizer run skipped (apt-get install clang)"
  exit 0
fi
if ! command -v cmake >/dev/null 2>&1 || ! command -v ninja >/dev/null 2>&1; then
  echo "tests/fuzz/run.sh: cmake and ninja are needed: fuzzing skipped"
  exit 0
fi
seconds="${FUZZ_SECONDS:-6}"
build="${FUZZ_BUILD:-$root/build/fuzz}"
jobs="${FUZZ_JOBS:-2}"
start=$(date +%s)

all_isas=OFF
[ "${FUZZ_ALL_ISAS:-0}" = 1 ] && all_isas=ON
tsan=ON
[ "${FUZZ_TSAN:-1}" = 0 ] && tsan=OFF
cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
  -DLOWBIT_FUZZ_ALL_ISAS=$all_isas -DLOWBIT_FUZZ_TSAN=$tsan >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
ninja -C "$build" -j2
echo "tests/fuzz/run.sh: build done in $(( $(date +%s) - start )) s"

targets="${FUZZ_TARGETS:-}"
if [ -z "$targets" ]; then
  for t in fuzz_observer_state fuzz_kernels fuzz_int4 fuzz_gemm fuzz_npy; do
    [ -x "$build/$t" ] && targets="$targets $t"
  done
fi

# One target: a scratch corpus (new inputs go there, the committed seeds stay as they are),
# artifacts (crash-*, leak-*, timeout-*, oom-*) under $build/artifacts/<target>.
run_one() {
  local t="$1" seeds="$root/tests/fuzz/corpus/$1" work="$build/corpus/$1" art="$build/artifacts/$1"
  mkdir -p "$work" "$art" "$seeds"
  "$build/$t" "$work" "$seeds" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -max_len=4096 -print_final_stats=1 -artifact_prefix="$art/" >"$build/$t.log" 2>&1
}

status=0
pids=()
names=()
for t in $targets; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || { echo "FINDING in ${names[0]}:"; tail -40 "$build/${names[0]}.log"; status=1; }
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "FINDING in ${names[$i]}:"; tail -40 "$build/${names[$i]}.log"; status=1; }
done
for t in $targets; do
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$build/$t.log" | tail -1 || true)
  echo "tests/fuzz/run.sh: $t: $execs executions in ${seconds} s, $cov"
done

if [ "$tsan" = ON ] && [ -x "$build/threads_tsan" ]; then
  if TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$build/threads_tsan" >"$build/threads_tsan.log" 2>&1; then
    echo "tests/fuzz/run.sh: threads_tsan: $(grep -o 'All tests passed.*' "$build/threads_tsan.log" || echo passed) (ThreadSanitizer)"
  else
    echo "DATA RACE or failure in threads_tsan:"
    tail -60 "$build/threads_tsan.log"
    status=1
  fi
fi
echo "tests/fuzz/run.sh: $([ $status = 0 ] && echo 'no findings' || echo 'FINDINGS (see above)'), $(( $(date +%s) - start )) s in all"
exit $status
