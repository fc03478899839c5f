#!/usr/bin/env bash
# keysvc through tests/rig/fault-proxy.py, a TLS proxy in front of the rig's
# pebble that injects one fault per case (see the proxy's section in
# tests/rig/README.md).  Every case has a certificate of its own and runs
# keysvc for that certificate only:
#   a  503 + Retry-After: 1 on newOrder, once        -> waits ~1 s, issues
#   b  429 rateLimited, Retry-After as an HTTP-date  -> waits, issues
#   c  503 + Retry-After beyond the retry budget     -> exit 2 at once, URL named,
#                                                       order row failed, no files
#   d1 authorization body cut short (Content-Length says more; a POST-as-GET)
#                                                    -> retried, issues
#   d2 authorization body cut short, complete as HTTP -> exit 2, "malformed JSON"
#   e0 newOrder answer of exactly 1 MiB               -> accepted, issues
#   e  newOrder answer of 1 MiB + 1 byte              -> exit 2, "larger than", no retry
#   f  newOrder answer with Content-Type text/html    -> exit 2, URL named
#   g  connection reset, no answer, on the directory and on newNonce
#                                                    -> retried with backoff, issues
#   g2 reset before newOrder reached pebble (on a reused connection: libcurl
#      sends it again by itself)                      -> pebble sees it once, issues
#   h  reset after pebble created the order           -> exit 2, newOrder not repeated
#                                                       (one order at the CA), order
#                                                       row failed, no files
#   h2 reset after pebble answered an authorization fetch (safe to repeat)
#                                                    -> retried with a fresh nonce, issues
# After every run: exit code 0, 1 or 2 only, no sanitizer report, no core, no
# temporary file in out/, every output file complete; after every failed case
# a run without faults issues the certificate; at the end a run over all
# certificates has nothing to do.
. "$(dirname "$0")/lib.sh"
rig_load
test_setup faults

# Under valgrind keysvc runs many times slower: upper time bounds and the
# retry budget grow with SCALE (lower bounds, the waits keysvc must make,
# do not).
SCALE=1
[ -z "${KEYSVC_VALGRIND:-}" ] || SCALE=6
BUDGET=$((10 * SCALE))
SLACK=$((2 * SCALE))

# ------------------------------------------------------------------ proxy

PROXY_PID=""
stop_proxy() {
    [ -n "$PROXY_PID" ] || return 0
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=""
}

faults_cleanup() {
    local rc=$?
    stop_proxy
    if [ "$rc" -ne 0 ] && [ -s "${WORK:-/nonexistent}/proxy.err" ]; then
        echo "--- tail of $WORK/proxy.err:" >&2
        tail -n 20 "$WORK/proxy.err" >&2
    fi
    # test_cleanup reads the exit status from $?; set -e must not end the trap.
    if [ "$rc" -eq 0 ]; then
        true
        test_cleanup
    else
        (exit "$rc") || test_cleanup
    fi
}
trap faults_cleanup EXIT
# Killed (a CTest timeout, ^C): still stop the proxy on the way out.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

CASE=start
# Replaces the proxy's rules (a JSON list) atomically.  The proxy re-reads the
# file on every request and restarts its per-rule counts when the content
# changes; the case name in "comment" makes every case's content new.
set_rules() { # rules-json-list
    printf '{"comment": "case %s", "rules": %s}\n' "$CASE" "$1" > "$WORK/rules.json.tmp"
    mv "$WORK/rules.json.tmp" "$WORK/rules.json"
}
set_rules '[]'

# The proxy reuses pebble's TLS certificate (127.0.0.1 and localhost), so
# keysvc keeps the rig's CA file.
/usr/bin/python3 "$SRC_DIR/tests/rig/fault-proxy.py" \
    --upstream "${ACME_DIR_URL%/dir}" --upstream-ca "$ACME_CA_FILE" \
    --cert "$RIG/pebble/tls.pem" --key "$RIG/pebble/tls.key" \
    --rules "$WORK/rules.json" --port-file "$WORK/proxy.port" --log "$WORK/proxy.log" \
    --exit-with-parent < /dev/null > "$WORK/proxy.err" 2>&1 &
PROXY_PID=$!
for _ in $(seq 100); do
    [ -s "$WORK/proxy.port" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || { cat "$WORK/proxy.err"; fail "the fault proxy exited"; }
    sleep 0.1
done
[ -s "$WORK/proxy.port" ] || fail "the fault proxy wrote no port file within 10 s"
PROXY=https://127.0.0.1:$(cat "$WORK/proxy.port")
curl -sSf --noproxy '*' --max-time 10 --cacert "$ACME_CA_FILE" "$PROXY/dir" > "$WORK/dir.json" ||
    fail "the directory cannot be fetched through the proxy"
assert_contains "$WORK/dir.json" "\"newOrder\": \"$PROXY/order-plz\"" "pebble's URLs point back to the proxy"
: > "$WORK/proxy.log"

# ------------------------------------------------------------------ keysvc

CERTS="fa fb fc fd1 fd2 fe0 fe ff fg fg2 fh fh2"
certs='{' challenges='{'
for c in $CERTS; do
    certs+="\"$c.test\": {\"alt_names\": {\"$c.test\": [\"@\"]}, \"key_types\": [\"ecdsa\"]},"
    challenges+="\"$c.test\": \"$WEBROOT\","
done
ACME_DIR_URL=$PROXY/dir
write_config keysvc.json "${certs%,}}" "${challenges%,}}" "\"acme_max_retry_wait\": $BUDGET"
cd "$WORK"

now() { date +%s.%N; }
# One line per request the proxy logged since the case's run began:
# T METHOD PATH STATUS RULE-NAME UPSTREAM-STATUS JWS-NONCE IDENTIFIERS RETRY-AFTER
log_since() { # line-count
    tail -n "+$(($1 + 1))" proxy.log | /usr/bin/python3 -c '
import json, sys
def f(v):
    return "-" if v is None or v == "" else str(v).replace(" ", "_")
for line in sys.stdin:
    e = json.loads(line)
    p = e.get("payload")
    ids = "-"
    if isinstance(p, dict) and isinstance(p.get("identifiers"), list):
        ids = ",".join(str(i.get("value")) for i in p["identifiers"] if isinstance(i, dict))
    print(f(e.get("t")), e.get("method"), f(e.get("path")).split("?")[0], f(e.get("status")),
          f(e.get("name")), f(e.get("upstream_status")), f(e.get("jws_nonce")), f(ids),
          f(e.get("retry_after")))'
}

# Every output file is complete: certificates parse, key files hold a URI.
check_outputs() {
    local f
    if find out -name '*.tmp*' | grep .; then fail "$CASE: temporary files left in out/"; fi
    while IFS= read -r f; do
        case "$f" in
        *_param.pem) openssl dhparam -in "$f" -noout -check >/dev/null 2>&1 || fail "$CASE: $f holds no DH parameters" ;;
        *.pem) openssl x509 -in "$f" -noout 2>/dev/null || fail "$CASE: $f is not a whole certificate" ;;
        */hpkp/*) grep -q 'pin-sha256=' "$f" || fail "$CASE: $f holds no HPKP pin" ;;
        *.key) grep -q '^pkcs11:token=' "$f" || fail "$CASE: $f holds no key URI" ;;
        *.conf) [ -s "$f" ] || fail "$CASE: $f is empty" ;;
        *) fail "$CASE: unexpected file $f" ;;
        esac
    done < <(find out -type f)
}

# Runs keysvc for one certificate ("": all of them; -v: retries are
# reported); the proxy's log of the run goes to case.log, the run's length
# to RUN_SECS.
run_case() { # certificate [keysvc options...]
    local name=$1 mark t0
    shift
    mark=$(wc -l < proxy.log)
    t0=$(now)
    run_keysvc run --config keysvc.json -v "$@" ${name:+"$name"} > /dev/null
    RUN_SECS=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    log_since "$mark" > case.log
    echo "[$CASE] keysvc run $name: exit $RUN_RC in $RUN_SECS s"
    grep -E 'error|warn|retrying|giving up|^issued|not repeated|sent the request again' run.out |
        grep -Ev ': debug: (GET|HEAD|POST) https://[^ ]*( -> .*)?$' || true
    case "$RUN_RC" in
    0 | 1 | 2) ;;
    *) cat run.out; fail "$CASE: keysvc exit code $RUN_RC (a crash, or a valgrind error)" ;;
    esac
    if grep -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' run.out; then
        fail "$CASE: sanitizer report"
    fi
    if find "$WORK" -maxdepth 2 \( -name core -o -name 'core.[0-9]*' -o -name 'vgcore.*' \) | grep .; then
        fail "$CASE: core dump"
    fi
    check_outputs
}

# All five files of a certificate, the chain verifying against pebble's root.
assert_issued() { # name
    local n=$1 f
    for f in "certs/$n.ecdsa.pem" "certs/${n}_chain.ecdsa.pem" "private/$n.ecdsa.key" \
        "certs/$n.ecdsa.nginx.conf" "certs/$n.ecdsa.apache.conf"; do
        [ -s "out/$f" ] || fail "$CASE: out/$f missing"
    done
    openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "out/certs/${n}_chain.ecdsa.pem" \
        "out/certs/$n.ecdsa.pem" > /dev/null || fail "$CASE: $n does not verify"
    assert_contains run.out "issued $n (ecdsa)" "$CASE: $n issued, its files complete and verifying"
}

assert_no_files() { # name
    if find out -name "$1*" | grep .; then fail "$CASE: files written for $1"; fi
    pass "$CASE: no file written for $1"
}

# The statuses of a certificate's order rows, oldest first, joined by commas.
order_statuses() { sql "SELECT string_agg(status, ',' ORDER BY id) FROM orders WHERE certificate_name = '$1'"; }

assert_between() { # value low high what
    awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v + 0 >= lo + 0 && v + 0 <= hi + 0) }' ||
        fail "$4: $1 is not within [$2, $3]"
    pass "$4: $1 (within [$2, $3])"
}

# The case's requests of one method and path (regex on the path).
requests() { awk -v m="$1" -v p="$2" '$2 == m && $3 ~ p' case.log; }

# A failed case leaves nothing half done, and the next run without faults issues.
FAILED=()
rerun_clean() { # name
    FAILED+=("$1")
    set_rules '[]'
    run_case "$1"
    assert_eq 0 "$RUN_RC" "$CASE: a run without faults then succeeds"
    assert_issued "$1"
    assert_eq "failed,valid" "$(order_statuses "$1")" "$CASE: the failed order is recorded, then the good one"
}

# ------------------------------------------------------------------ cases

# a: 503 with Retry-After: 1 on newOrder, once.
CASE=a
set_rules '[{"name": "a-503", "method": "POST", "path": "^/order-plz$", "times": 1,
             "action": "status", "status": 503, "retry_after": 1}]'
run_case fa.test
assert_eq 0 "$RUN_RC" "a: issued despite a 503 on newOrder"
assert_issued fa.test
assert_contains run.out "POST $PROXY/order-plz: HTTP 503; retrying in 1000 ms" "a: keysvc waits the server's Retry-After"
requests POST '^/order-plz$' > orders.txt
assert_eq "503 201" "$(awk '{ printf "%s%s", sep, $4; sep = " " }' orders.txt)" "a: newOrder twice at the proxy: 503, then 201"
assert_between "$(awk 'NR == 1 { a = $1 } NR == 2 { printf "%.3f", $1 - a }' orders.txt)" 0.95 $((1 + SLACK)) \
    "a: seconds between the 503 and the retry"

# b: 429 rateLimited with an HTTP-date Retry-After, 3 s ahead (more than the
# 2 s budget lib.sh's default allows).  An HTTP-date has whole seconds and
# keysvc subtracts time(), itself whole seconds from a clock that may lag a
# tick behind: the wait is 2, 3 or (rarely, just after a second began) 4 s;
# 1 s if keysvc is slow (valgrind) to read the answer.
CASE=b
set_rules '[{"name": "b-429", "method": "POST", "path": "^/order-plz$", "times": 1,
             "action": "status", "status": 429, "retry_after": "date:+3"}]'
run_case fb.test
assert_eq 0 "$RUN_RC" "b: issued despite a 429 on newOrder"
assert_issued fb.test
requests POST '^/order-plz$' > orders.txt
grep -Eq '^[^ ]+ POST /order-plz 429 b-429 .* [A-Z][a-z][a-z],_[0-9]{2}_[A-Z][a-z][a-z]_[0-9]{4}_[0-9:]{8}_GMT$' orders.txt ||
    { cat orders.txt; fail "b: the 429 did not carry an HTTP-date Retry-After"; }
pass "b: the proxy sent Retry-After as an HTTP-date"
wait_ms=$(sed -n "s|.*POST $PROXY/order-plz: HTTP 429; retrying in \([0-9]*\) ms.*|\1|p" run.out)
[ -n "$wait_ms" ] || fail "b: keysvc did not report a retry after the 429"
assert_between "$wait_ms" 1000 4000 "b: milliseconds keysvc waited for the HTTP-date"
assert_between "$(awk 'NR == 1 { a = $1 } NR == 2 { printf "%.3f", $1 - a }' orders.txt)" 0.95 $((4 + SLACK)) \
    "b: seconds between the 429 and the retry"

# c: 503 with a Retry-After far beyond the budget, every time.
CASE=c
set_rules '[{"name": "c-503", "method": "POST", "path": "^/order-plz$", "action": "status",
             "status": 503, "retry_after": 3600, "detail": "down for maintenance"}]'
run_case fc.test
assert_eq 2 "$RUN_RC" "c: exit 2 when the server asks for a wait beyond the budget"
assert_contains run.out "fc.test (ecdsa): creating an order: POST $PROXY/order-plz: HTTP 503; giving up" \
    "c: the error names the certificate, the step and the URL"
assert_eq 1 "$(requests POST '^/order-plz$' | wc -l)" "c: no retry was attempted"
assert_between "$RUN_SECS" 0 $((BUDGET - 1)) "c: seconds the run took (it did not wait)"
assert_no_files fc.test
assert_eq failed "$(order_statuses fc.test)" "c: the order row is marked failed"
assert_eq 1 "$(sql "SELECT count(*) FROM orders WHERE certificate_name = 'fc.test'
                    AND error LIKE '%$PROXY/order-plz: HTTP 503; giving up%'")" "c: the row keeps the error"
rerun_clean fc.test

# d1: the first authorization fetch (POST-as-GET, safe to repeat) gets 40
# bytes of its body, then a clean TLS close: curl sees a short transfer.
CASE=d1
set_rules '[{"name": "d1-cut", "method": "POST", "path": "^/authZ/", "payload": "^$", "times": 1,
             "action": "truncate", "bytes": 40}]'
run_case fd1.test
cut=$(requests POST '^/authZ/' | awk '$5 == "d1-cut"')
[ -n "$cut" ] || fail "d1: no authorization fetch was cut"
authz=$(awk '{ print $3; exit }' <<< "$cut")
if [ "$RUN_RC" -eq 0 ]; then
    assert_contains run.out "POST $PROXY$authz: transfer closed with" "d1: the short body is noticed"
    assert_contains run.out "; retrying in" "d1: the fetch is retried"
    [ "$(requests POST "^$authz\$" | awk '$4 == 200 && $5 == "-"' | wc -l)" -ge 1 ] ||
        fail "d1: no whole answer for $authz after the cut one"
    assert_issued fd1.test
else
    assert_eq 2 "$RUN_RC" "d1: exit 2 when the cut body is not retried"
    assert_contains run.out "$PROXY$authz" "d1: the error names the authorization URL"
    assert_no_files fd1.test
    rerun_clean fd1.test
fi

# d2: the same cut, but with a matching Content-Length: a complete HTTP
# answer holding half a JSON document.
CASE=d2
set_rules '[{"name": "d2-cut", "method": "POST", "path": "^/authZ/", "payload": "^$", "times": 1,
             "action": "truncate", "bytes": 100, "fix_length": true}]'
run_case fd2.test
authz=$(requests POST '^/authZ/' | awk '$5 == "d2-cut" { print $3; exit }')
[ -n "$authz" ] || fail "d2: no authorization fetch was cut"
assert_eq 2 "$RUN_RC" "d2: exit 2 for a cut JSON document"
assert_contains run.out "fetching authorization: $PROXY$authz: malformed JSON response" "d2: the error names the URL and the fault"
assert_no_files fd2.test
rerun_clean fd2.test

# e0, e: the newOrder answer padded to exactly 1 MiB (the limit), then to one
# byte more.
CASE=e0
set_rules '[{"name": "e0-big", "method": "POST", "path": "^/order-plz$", "times": 1,
             "action": "oversize", "bytes": 1048576}]'
run_case fe0.test
assert_eq 0 "$RUN_RC" "e0: an answer of exactly 1 MiB is accepted"
assert_issued fe0.test

CASE=e
set_rules '[{"name": "e-big", "method": "POST", "path": "^/order-plz$", "times": 1,
             "action": "oversize", "bytes": 1048577}]'
run_case fe.test
assert_eq 2 "$RUN_RC" "e: exit 2 for an answer over 1 MiB"
assert_contains run.out "POST $PROXY/order-plz: response body larger than 1048576 bytes, refused" "e: the error says too large and names the URL"
assert_eq 1 "$(requests POST '^/order-plz$' | wc -l)" "e: not retried"
assert_no_files fe.test
rerun_clean fe.test

# f: the newOrder answer labelled text/html.
CASE=f
set_rules '[{"name": "f-html", "method": "POST", "path": "^/order-plz$", "times": 1,
             "action": "content_type", "content_type": "text/html; charset=utf-8"}]'
run_case ff.test
assert_eq 2 "$RUN_RC" "f: exit 2 for a wrong Content-Type"
assert_contains run.out "creating an order: $PROXY/order-plz: expected a JSON response, got Content-Type text/html" \
    "f: the error names the URL and the Content-Type"
assert_no_files ff.test
rerun_clean ff.test

# g: the connection reset, before any answer, on the directory (the run's
# first request, on a new connection) and twice on newNonce.
CASE=g
set_rules '[{"name": "g-dir", "method": "GET", "path": "^/dir$", "times": 1, "action": "reset"},
            {"name": "g-nonce", "method": "HEAD", "path": "^/nonce-plz$", "times": 2, "action": "reset"}]'
run_case fg.test
assert_eq 0 "$RUN_RC" "g: issued despite resets on the directory and newNonce"
assert_issued fg.test
dir_wait=$(sed -n "s|.*GET $PROXY/dir: .*; retrying in \([0-9]*\) ms.*|\1|p" run.out | head -n 1)
[ -n "$dir_wait" ] || fail "g: keysvc did not report retrying the directory"
assert_between "$dir_wait" 250 312 "g: milliseconds of the first backoff (250 + up to 25 % jitter)"
requests GET '^/dir$' > dirs.txt
assert_eq "- 200" "$(awk 'NR <= 2 { printf "%s%s", sep, $4; sep = " " }' dirs.txt)" "g: the directory was reset, then fetched"
assert_between "$(awk 'NR == 1 { a = $1 } NR == 2 { printf "%.3f", $1 - a }' dirs.txt)" 0.25 $((1 + SLACK)) \
    "g: seconds between the reset directory fetch and the retry"
assert_contains run.out "HEAD $PROXY/nonce-plz: " "g: the newNonce reset is reported"
assert_eq 2 "$(requests HEAD '^/nonce-plz$' | awk '$5 == "g-nonce"' | wc -l)" "g: newNonce was reset twice"
[ "$(requests HEAD '^/nonce-plz$' | awk '$4 == 200' | wc -l)" -ge 1 ] || fail "g: no nonce after the resets"
pass "g: then a nonce was fetched"

# g2: reset before newOrder reaches pebble, on a connection already used for
# the directory and newNonce.  libcurl sends the request again by itself on a
# new connection (its answer to a keep-alive connection the server closed);
# pebble sees it once and accepts its nonce, so this is no repeat.
CASE=g2
set_rules '[{"name": "g2-reset", "method": "POST", "path": "^/order-plz$", "times": 1, "action": "reset"}]'
run_case fg2.test --debug
assert_eq 0 "$RUN_RC" "g2: issued after a reset the CA never saw"
assert_issued fg2.test
requests POST '^/order-plz$' > orders.txt
# name/upstream-status/status of each newOrder
assert_eq "g2-reset/-/- -/-/201" "$(awk '{ printf "%s%s", sep, $5 "/" $6 "/" $4; sep = " " }' orders.txt)" \
    "g2: the newOrder reset before pebble saw it, then one pebble accepted"
assert_eq 1 "$(awk '{ print $7 }' orders.txt | sort -u | wc -l)" "g2: both carry the same JWS (libcurl's own resend)"
assert_contains run.out "POST $PROXY/order-plz: the connection failed; libcurl sent the request again" "g2: the resend is logged"

# h: reset after pebble created the order.  libcurl resends the same JWS,
# which pebble refuses (its nonce is spent); keysvc must not take that
# badNonce for "not done" and sign newOrder again.
CASE=h
set_rules '[{"name": "h-reset", "method": "POST", "path": "^/order-plz$", "times": 1,
             "action": "reset", "when": "after"}]'
run_case fh.test
assert_eq 2 "$RUN_RC" "h: exit 2 when newOrder may have been carried out"
assert_contains run.out "fh.test (ecdsa): creating an order: the request may have reached the server; not repeated" \
    "h: the error says why it was not repeated"
assert_contains run.out "POST $PROXY/order-plz" "h: the error names the URL"
requests POST '^/order-plz$' > orders.txt
assert_eq "h-reset/201" "$(awk 'NR == 1 { print $5 "/" $6 }' orders.txt)" "h: pebble carried out the newOrder that was reset"
assert_eq 1 "$(awk '{ print $7 }' orders.txt | sort -u | wc -l)" "h: no newOrder with a new nonce: the order was not placed twice"
assert_no_files fh.test
rerun_clean fh.test

# h2: reset after pebble answered an authorization fetch (POST-as-GET): the
# same resend and refusal, but this request is safe to repeat.
CASE=h2
set_rules '[{"name": "h2-reset", "method": "POST", "path": "^/authZ/", "payload": "^$", "times": 1,
             "action": "reset", "when": "after"}]'
run_case fh2.test
assert_eq 0 "$RUN_RC" "h2: issued after a reset on an authorization fetch"
assert_issued fh2.test
authz=$(requests POST '^/authZ/' | awk '$5 == "h2-reset" { print $3; exit }')
[ -n "$authz" ] || fail "h2: no authorization fetch was reset"
assert_contains run.out "POST $PROXY$authz: the connection failed after the request was sent" "h2: the failure is reported"
assert_contains run.out "; retrying in" "h2: and retried"
[ "$(requests POST "^$authz\$" | awk '{ print $7 }' | sort -u | wc -l)" -ge 2 ] ||
    fail "h2: the retry did not carry a new nonce"
pass "h2: the retry carried a new nonce"

# ------------------------------------------------------------------ the end

CASE=end
set_rules '[]'
before=$(state_snapshot)
run_case ""
assert_eq 1 "$RUN_RC" "a run over every certificate has nothing to do"
assert_contains run.out "nothing to do: 12 certificate(s) current" "every certificate is current"
assert_eq "$before" "$(state_snapshot)" "that run changed no file, key or row"
assert_eq 12 "$(sql "SELECT count(*) FROM certificates WHERE is_current")" "12 current certificates"
assert_eq 0 "$(sql "SELECT count(*) FROM orders WHERE status NOT IN ('valid', 'failed')")" "no order left half done"
assert_eq "$(printf '%s\n' "${FAILED[@]}" | sort | paste -sd ' ')" \
    "$(sql "SELECT string_agg(certificate_name, ' ' ORDER BY certificate_name) FROM orders WHERE status = 'failed'")" \
    "the failed orders are those of the failing cases"
if grep -i 'traceback\|internal error' proxy.err; then fail "the fault proxy hit an internal error"; fi
pass "the fault proxy ran without an internal error"
