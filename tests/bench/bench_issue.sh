#!/usr/bin/env bash
# bench_issue.sh: wall time of keysvc's main job against a local pebble.
#
# Starts a rig (pebble with no validation sleep, SoftHSM, PostgreSQL), then
# measures N times each:
#   issue   a new certificate for two names, ECDSA P-256 + RSA-2048 (two
#           orders, two key generations in the token), database.url
#   noop    a run with nothing to do, database.url
#   noop-private  the same with keysvc's private PostgreSQL (start + stop)
# and prints min / median / max in milliseconds.
#
# Usage: tests/bench/bench_issue.sh [BUILD_DIR] [N]     (defaults: build, 10)
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$SRC/build}
N=${2:-10}
KEYSVC=$BUILD/keysvc/keysvc
[ -x "$KEYSVC" ] || { echo "build keysvc first ($KEYSVC)"; exit 1; }
RIG=$(mktemp -d /tmp/keysvc-bench.XXXXXX)
rmdir "$RIG"
"$SRC/tests/rig/rig-up.sh" "$RIG" --postgres >/dev/null
trap '"$SRC/tests/rig/rig-down.sh" "$RIG" >/dev/null 2>&1' EXIT
# shellcheck disable=SC1091
. "$RIG/env"
WORK=$RIG/bench
mkdir -p "$WORK"
chmod 755 "$WORK"
psql "$PG_CONNINFO" -qAt -c 'CREATE DATABASE bench' >/dev/null

config() { # file certificates-json db-section
    cat > "$1" <<JSON
{ "account": {"email": "bench@example.test"},
  "settings": {"acme_directory_url": "$ACME_DIR_URL", "acme_ca_file": "$ACME_CA_FILE",
               "key_size": 2048, "key_curve": "secp256r1"},
  "directories": {"certificate": "$WORK/out", "chain": "$WORK/out", "private_key": "$WORK/out",
                  "state": "$WORK/state"},
  $3
  "hsm": {"module": "$KS_PKCS11_MODULE", "token": "$KS_TOKEN", "pin_file": "$KS_PIN_FILE"},
  "certificates": $2,
  "http_challenges": {${4#, }} }
JSON
}

ms() { date +%s%N; }
stats() { # label values...
    local label=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v l="$label" '{a[NR]=$1} END {
        printf "%-14s n=%-3d min %6.0f ms   median %6.0f ms   max %6.0f ms\n", l, NR, a[1], a[int((NR+1)/2)], a[NR]}'
}

db='"database": {"url": "host='"$PG_SOCKET_DIR"' port=5432 user=postgres dbname=bench"},'
certs=""
challenges=""
issue_times=()
# Warm up: the account registration happens once.
config "$WORK/c.json" '{}' "$db" ""
"$KEYSVC" run -q -c "$WORK/c.json" || true
for i in $(seq 1 "$N"); do
    certs+="${certs:+,}\"b$i.test\": {\"alt_names\": {\"b$i.test\": [\"@\", \"www\"]}, \"key_types\": [\"ecdsa\", \"rsa\"]}"
    challenges+=", \"b$i.test\": \"$WEBROOT\", \"www.b$i.test\": \"$WEBROOT\""
    config "$WORK/c.json" "{$certs}" "$db" "$challenges"
    t0=$(ms); "$KEYSVC" run -q -c "$WORK/c.json"; t1=$(ms)
    issue_times+=($(( (t1 - t0) / 1000000 )))
done
noop_times=()
for _ in $(seq 1 "$N"); do
    t0=$(ms); "$KEYSVC" run -q -c "$WORK/c.json" || [ $? -eq 1 ]; t1=$(ms)
    noop_times+=($(( (t1 - t0) / 1000000 )))
done
config "$WORK/p.json" '{"p.test": {"key_types": ["ecdsa", "rsa"]}}' "" ", \"p.test\": \"$WEBROOT\""
"$KEYSVC" run -q -c "$WORK/p.json"
private_times=()
for _ in $(seq 1 "$N"); do
    t0=$(ms); "$KEYSVC" run -q -c "$WORK/p.json" || [ $? -eq 1 ]; t1=$(ms)
    private_times+=($(( (t1 - t0) / 1000000 )))
done
echo "keysvc $("$KEYSVC" --version | cut -d' ' -f2), $(nproc) cores, pebble with PEBBLE_VA_NOSLEEP=1"
stats "issue (2 types)" "${issue_times[@]}"
stats "noop (url)" "${noop_times[@]}"
stats "noop (private)" "${private_times[@]}"
echo "(noop with N certificates configured: the last issue run had $N certificates)"
