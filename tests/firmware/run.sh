#!/usr/bin/env bash
# tests/firmware/run.sh: lowbit on Cortex-M, end to end (.ci/run calls it after the presets).
#
#  1. host build (own dir, tests and benchmarks off): firmware_gen trains the demo MLP and
#     writes mlp_model_data.hpp; firmware_host runs the firmware inference on the host and
#     checks it against the host integer engine bit for bit; firmware_checks runs the
#     library checks of tests/firmware on the host;
#  2. for Cortex-M4 (hard float) and Cortex-M55: cross-builds examples/firmware/cortex_m
#     (arm-none-eabi-g++ -std=c++17 -fno-exceptions -fno-rtti -Os; the MLP images and the
#     library checks, each linked with the no-heap check); the two negative tests must fail
#     (an allocating TU must not link; an image with its own malloc must be rejected); a
#     soft-float build of fw::infer must call no floating-point arithmetic helper beyond
#     lowbit's argument checks; prints code size (arm-none-eabi-size) and stack use
#     (-fstack-usage, and the high-water mark measured on the emulator);
#  3. with qemu-system-arm: runs the images on mps2-an386 (M4) and mps3-an547 (M55) with
#     semihosting; their output must equal the host's line for line.
#
# Needs: cmake, ninja, g++, the examples' packages (zlib1g-dev libopenblas-dev libxtensor-dev
# libfmt-dev), dataset-fashion-mnist, gcc-arm-none-eabi, libstdc++-arm-none-eabi-newlib,
# qemu-system-arm (step 3 is skipped with a message without it).
# Environment: LOWBIT_FW_BUILD (default <repo>/build/firmware), LOWBIT_FW_JOBS (default 2),
# LOWBIT_FW_HOST (a host build dir to reuse instead of configuring one),
# LOWBIT_FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${LOWBIT_FW_BUILD:-$ROOT/build/firmware}
JOBS=${LOWBIT_FW_JOBS:-2}
DATA=${LOWBIT_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
LOG=$BUILD/logs
mkdir -p "$LOG"
START=$(date +%s)
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok: $*"; }
bad() { failed=$((failed + 1)); echo "  FAILED: $*"; }
elapsed() { echo "$(($(date +%s) - START)) s"; }

for tool in cmake ninja arm-none-eabi-g++ arm-none-eabi-size arm-none-eabi-nm; do
  command -v "$tool" > /dev/null || { echo "firmware: $tool not found (apt-get install gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib cmake ninja-build)"; exit 1; }
done
[ -f "$DATA/t10k-images-idx3-ubyte.gz" ] || { echo "firmware: Fashion-MNIST not found in '$DATA' (apt-get install dataset-fashion-mnist)"; exit 1; }

# ---- 1. host ----------------------------------------------------------------------------------
echo "== firmware: host build (generator, host test) [$(elapsed)]"
# LOWBIT_FW_HOST: an existing host build dir to reuse (.ci/run passes build/ci, which has
# already built the generator); default: configure one under $BUILD/host
HOST=${LOWBIT_FW_HOST:-$BUILD/host}
[ -z "${LOWBIT_FW_HOST:-}" ] || HOST=$(cd "$LOWBIT_FW_HOST" && pwd)
if [ -z "${LOWBIT_FW_HOST:-}" ]; then
  cmake -S "$ROOT" -B "$HOST" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_TESTS=OFF \
    -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_INSTALL=OFF -DLOWBIT_FASHION_MNIST_DIR="$DATA" > "$LOG/host-configure.log" 2>&1 \
    || { cat "$LOG/host-configure.log"; exit 1; }
fi
ninja -C "$HOST" -j "$JOBS" firmware_host firmware_checks > "$LOG/host-build.log" 2>&1 || { cat "$LOG/host-build.log"; exit 1; }
grep "firmware_gen: wrote" "$LOG/host-build.log" || true
MODEL=$HOST/examples/firmware/generated/mlp_model_data.hpp
if "$HOST/examples/firmware/firmware_host" > "$LOG/host.txt"; then
  ok "host: firmware inference equals the host integer engine on the embedded images ($(grep '^images ' "$LOG/host.txt"))"
else
  cat "$LOG/host.txt"; bad "host: firmware_host"
fi
if "$HOST/examples/firmware/firmware_checks" > "$LOG/host-checks.txt"; then
  ok "host: $(tail -1 "$LOG/host-checks.txt")"
else
  cat "$LOG/host-checks.txt"; bad "host: firmware_checks"
fi

# ---- 2. cross builds --------------------------------------------------------------------------
QEMU=$(command -v qemu-system-arm || true)
for cpu in cortex-m4 cortex-m55; do
  echo "== firmware: $cpu [$(elapsed)]"
  B=$BUILD/$cpu
  cmake -S "$ROOT/examples/firmware/cortex_m" -B "$B" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/arm-none-eabi.cmake" -DLOWBIT_ARM_CPU=$cpu \
    -DLOWBIT_FW_MODEL_HEADER="$MODEL" > "$LOG/$cpu.configure.log" 2>&1 || { cat "$LOG/$cpu.configure.log"; exit 1; }
  if ninja -C "$B" -j "$JOBS" > "$LOG/$cpu.build.log" 2>&1; then
    ok "$cpu: images built and linked with the no-heap check ($(grep -c 'has no allocator symbol' "$LOG/$cpu.build.log") images)"
  else
    cat "$LOG/$cpu.build.log"; bad "$cpu: build"; continue
  fi
  # negative tests: an allocating TU must not link; an own malloc must be rejected by the symbol check
  if ninja -C "$B" heap_negative > "$LOG/$cpu.negative.log" 2>&1; then
    bad "$cpu: heap_negative linked, the no-heap check missed operator new[] / malloc"
  elif grep -q "undefined reference to \`__wrap__Znaj'" "$LOG/$cpu.negative.log" && grep -q "undefined reference to \`__wrap_malloc'" "$LOG/$cpu.negative.log"; then
    ok "$cpu: heap_negative fails to link (undefined __wrap__Znaj, __wrap_malloc), as it must"
  else
    cat "$LOG/$cpu.negative.log"; bad "$cpu: heap_negative failed for another reason than the no-heap check"
  fi
  if ninja -C "$B" heap_negative_defined > "$LOG/$cpu.negative2.log" 2>&1; then
    bad "$cpu: heap_negative_defined passed, the symbol check missed its malloc"
  elif grep -q "no-heap check: heap_negative_defined.elf contains" "$LOG/$cpu.negative2.log"; then
    ok "$cpu: heap_negative_defined rejected by the symbol check (its own malloc), as it must"
  else
    cat "$LOG/$cpu.negative2.log"; bad "$cpu: heap_negative_defined failed for another reason"
  fi
  # float probe: fw::infer without an FPU; only lowbit's argument checks may use floating point
  arm-none-eabi-g++ -std=c++17 -Os -fno-exceptions -fno-rtti -mthumb -mcpu=$cpu -mfloat-abi=soft -DLOWBIT_NO_XSIMD \
    -I"$ROOT/include" -I"$ROOT/examples/firmware" -c "$ROOT/examples/firmware/cortex_m/infer_entry.cpp" -o "$B/infer_softfloat.o"
  helpers=$(arm-none-eabi-nm -u "$B/infer_softfloat.o" | awk '{print $2}' | grep -E '^__aeabi_[fd]|^__aeabi_(u?l|u?i)2[fd]|^__(add|sub|mul|div|cmp|fix|float|extend|trunc)[a-z]*[sd]f' || true)
  # scheme::validate: eps > 0 and finite (fcmpgt, fsub, fcmpeq); status.value is a double (f2d, i2d, ui2d)
  allowed='^__aeabi_(fcmpgt|fcmpeq|fsub|f2d|i2d|ui2d|l2d|ul2d)$'
  others=$(echo "$helpers" | grep -vE "$allowed" | grep . || true)
  if [ -z "$others" ]; then
    ok "$cpu: fw::infer has no floating-point arithmetic on data (soft-float helpers used only by argument checks / error values: $(echo $helpers))"
  else
    bad "$cpu: fw::infer calls floating-point helpers: $(echo $others)"
  fi
  arm-none-eabi-size "$B"/mlp_firmware.elf "$B"/mlp_firmware_semihosting.elf "$B"/lowbit_checks.elf
  echo "  stack (-fstack-usage, bytes) of the MLP image's largest frames:"
  { find "$B/CMakeFiles/mlp_firmware.dir" "$B/CMakeFiles/fw_model.dir" -name '*.su' -exec cat {} + | sort -t$'\t' -k2 -n -r | head -5 | sed 's/^/    /'; } || true
  echo "  stack (-fstack-usage, bytes) of the library checks' largest frames:"
  { find "$B/CMakeFiles/lowbit_checks.dir" -name '*.su' -exec cat {} + | sort -t$'\t' -k2 -n -r | head -4 | sed 's/^/    /'; } || true

  # ---- 3. emulation ---------------------------------------------------------------------------
  if [ -z "$QEMU" ]; then
    echo "  qemu-system-arm not installed (apt-get install qemu-system-arm): emulated runs skipped"
    continue
  fi
  machine=mps2-an386
  [ $cpu = cortex-m55 ] && machine=mps3-an547
  run() { timeout 60 "$QEMU" -M $machine -nographic -semihosting-config enable=on,target=native -kernel "$1"; }
  if run "$B/mlp_firmware_semihosting.elf" > "$LOG/$cpu.qemu.txt" 2>&1 &&
     diff <(grep -E '^images? ' "$LOG/host.txt") <(grep -E '^images? ' "$LOG/$cpu.qemu.txt") > "$LOG/$cpu.qemu.diff"; then
    ok "$cpu on QEMU $machine: output codes of the $(grep -c '^image ' "$LOG/$cpu.qemu.txt") images equal the host's line for line; $(grep '^stack-used' "$LOG/$cpu.qemu.txt")"
  else
    cat "$LOG/$cpu.qemu.txt" "$LOG/$cpu.qemu.diff"; bad "$cpu on QEMU $machine: firmware output differs from the host's"
  fi
  if run "$B/lowbit_checks.elf" > "$LOG/$cpu.qemu-checks.txt" 2>&1 &&
     grep -qx "$(tail -1 "$LOG/host-checks.txt")" "$LOG/$cpu.qemu-checks.txt"; then
    ok "$cpu on QEMU $machine: $(grep '^lowbit firmware checks' "$LOG/$cpu.qemu-checks.txt"); $(grep '^stack-used' "$LOG/$cpu.qemu-checks.txt")"
  else
    cat "$LOG/$cpu.qemu-checks.txt"; bad "$cpu on QEMU $machine: library checks"
  fi
done

echo "== firmware: done in $(elapsed)"
echo "firmware: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
