#!/usr/bin/env bash
# run-fuzz.sh: replay the seeds and saved crashes, then fuzz for a while.
#
#   run-fuzz.sh --replay BUILD_DIR TARGET
#       runs corpus/TARGET/* and regressions/TARGET-* once each (no fuzzing)
#   run-fuzz.sh BUILD_DIR SECONDS [TARGET...]
#       for each target (default: all): the replay, then SECONDS of fuzzing
#       from a temporary copy of corpus/TARGET/ (the checked-in seeds are not
#       grown).  A crash, leak or timeout is kept in BUILD_DIR/artifacts/ and
#       fails the run.
#
# BUILD_DIR is the directory holding the fuzz_* binaries
# (<build>/tests/fuzz).  Exit status: 0 when nothing was found.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL=(fuzz_json_response fuzz_link fuzz_retry_after fuzz_pem_chain)

die() { echo "run-fuzz: $*" >&2; exit 2; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

replay() { # build_dir target
    local bin=$1/$2
    [ -x "$bin" ] || die "$bin: not built"
    local inputs=()
    shopt -s nullglob
    inputs=("$HERE/corpus/$2"/* "$HERE/regressions/$2"-*)
    shopt -u nullglob
    if [ ${#inputs[@]} -eq 0 ]; then
        echo "run-fuzz: $2: no seeds or regressions to replay"
        return 0
    fi
    local log
    log=$(mktemp)
    if ! "$bin" "${inputs[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "run-fuzz: $2: replay FAILED" >&2
        return 1
    fi
    rm -f "$log"
    echo "run-fuzz: $2: replayed ${#inputs[@]} inputs"
}

fuzz() { # build_dir seconds target
    local bin=$1/$3 secs=$2 t=$3
    local work artifacts=$1/artifacts log=$1/logs/$3.log
    mkdir -p "$artifacts" "$1/logs"
    work=$(mktemp -d)
    [ -d "$HERE/corpus/$t" ] && cp -- "$HERE/corpus/$t"/* "$work"/ 2>/dev/null || true
    local dict=()
    [ -f "$HERE/$t.dict" ] && dict=(-dict="$HERE/$t.dict")
    local rc=0
    "$bin" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$work" >"$log" 2>&1 || rc=$?
    local runs cov ft eps
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    rm -rf "$work"
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "run-fuzz: $t: FAILED after ${runs:-?} runs (log $log; input in $artifacts/)" >&2
        return 1
    fi
    echo "run-fuzz: $t: ${secs}s, ${runs:-?} runs, ${eps:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}"
}

if [ "${1:-}" = "--replay" ]; then
    [ $# -eq 3 ] || die "usage: $0 --replay BUILD_DIR TARGET"
    replay "$2" "$3"
    exit $?
fi

[ $# -ge 2 ] || die "usage: $0 BUILD_DIR SECONDS [TARGET...]  |  $0 --replay BUILD_DIR TARGET"
dir=$1
secs=$2
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

failed=0
for t in "${targets[@]}"; do
    replay "$dir" "$t" || { failed=1; continue; }
    fuzz "$dir" "$secs" "$t" || failed=1
done
exit "$failed"
