#!/usr/bin/env bash
# valgrind memcheck over lowbit's test suite, scalar build (issue 11).
#
#   bash tests/valgrind/run.sh          # configure + build build/valgrind, then ctest -T memcheck
#
# The scalar build: no xsimd (LOWBIT_NO_XSIMD, so every elementwise kernel is the lowbit::ref
# loop) and no -march=native test targets (valgrind 3.19 does not decode AVX-512). The GEMM's
# run-time dispatch still runs, and picks what valgrind's emulated CPU reports (AVX2 at most).
# -O1 -g: fast enough under valgrind, precise enough for its uninitialised-value checks
# (warnings are not errors here: GCC 12 at -O1 -g warns falsely about loops in ptq/linalg.hpp;
# the ci preset builds with -Werror).
# Every test program runs under memcheck; a leak, an invalid access or a use of an
# uninitialised value fails it (--error-exitcode). Left out: tests that only run cmake or
# mpirun (test-name checks, consumer projects, flag-comparison scripts, MPI launches), where
# valgrind would check cmake or mpirun rather than lowbit.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${LOWBIT_VALGRIND_BUILD:-build/valgrind}
command -v valgrind > /dev/null || { echo "tests/valgrind/run.sh: valgrind not found (apt-get install valgrind)"; exit 1; }

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-DLOWBIT_NO_XSIMD -O1" \
  -DCMAKE_DISABLE_FIND_PACKAGE_xsimd=ON -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_BUILD_HEAVY_EXAMPLES=OFF -DLOWBIT_WERROR=OFF \
  -DLOWBIT_GEMM_TESTS_HAS_MARCH_NATIVE=OFF -DLOWBIT_TESTS_HAS_MARCH_NATIVE=OFF \
  -DLOWBIT_THREAD_TESTS_HAS_MARCH_NATIVE=OFF -DLOWBIT_HAS_MFMA=OFF > "$build.configure.log"
cmake --build "$build" -j2

# ctest's memcheck mode reads its settings from DartConfiguration.tcl (normally written by
# include(CTest), which lowbit does not use).
cat > "$build/DartConfiguration.tcl" <<CONF
SourceDirectory: $PWD
BuildDirectory: $PWD/$build
MemoryCheckType: Valgrind
MemoryCheckCommand: $(command -v valgrind)
MemoryCheckCommandOptions: --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --track-origins=yes --trace-children=no
CONF
ctest --test-dir "$build" -T memcheck -j2 --output-on-failure \
  -E "test-names|^consumer\\.|fp_contract|mpi|distributed|determinism|check_calibrate_npy"
