#!/usr/bin/env bash
# run-tests.sh: the whole test suite, from a fresh Debian 12 machine.
#
# Installs the packages, then for each configuration builds keysvc and runs
# CTest (unit tests, and integration tests against SoftHSM2, PostgreSQL and
# pebble started by CTest fixtures on 127.0.0.1):
#   build/       RelWithDebInfo
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer
# then the tests labelled "valgrind" (unit tests, token tests and the
# end-to-end runs with keysvc under valgrind memcheck) in build/, and
# finally the libFuzzer targets (tests/fuzz/, clang) in build-fuzz/: their
# seeds and regressions replayed, then FUZZ_SECONDS (30) of fuzzing each.
#
# Usage: sudo tools/run-tests.sh [--quick]    (--quick: the first build only)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
JOBS=$(nproc)

step() { printf '\n==> %s\n' "$*"; }

build_and_test() { # dir cmake-args...
    local dir=$1
    shift
    step "Configuring and building $dir"
    cmake -S "$SRC" -B "$SRC/$dir" "$@" >/dev/null
    cmake --build "$SRC/$dir" -j"$JOBS"
    step "Testing $dir"
    (cd "$SRC/$dir" && ctest -j"$JOBS" --output-on-failure --timeout 600 -LE valgrind)
}

"$SRC/tools/install-deps.sh"

build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYSVC_SANITIZE=OFF
[ "$QUICK" -eq 1 ] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DKEYSVC_SANITIZE=ON
unset ASAN_OPTIONS UBSAN_OPTIONS

step "valgrind: unit tests, the token tests and the end-to-end runs (build/)"
(cd "$SRC/build" && ctest -j"$JOBS" --output-on-failure --timeout 900 -L valgrind)

# Only the acme library and keysvc/chain.c are fuzzed: no test suite here.
step "fuzz: replay, then ${FUZZ_SECONDS:-30} s per target (build-fuzz/, clang)"
cmake -S "$SRC" -B "$SRC/build-fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKEYSVC_FUZZ=ON -DKEYSVC_TESTS=OFF >/dev/null
cmake --build "$SRC/build-fuzz" -j"$JOBS" --target fuzz_targets
"$SRC/tests/fuzz/run-fuzz.sh" "$SRC/build-fuzz/tests/fuzz" "${FUZZ_SECONDS:-30}"
step "All tests passed"
