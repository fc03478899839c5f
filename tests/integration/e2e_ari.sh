#!/usr/bin/env bash
# ACME Renewal Information (RFC 9773).  pebble 2.4 has no renewalInfo, so the
# fault proxy in front of it adds one to the directory and serves the windows
# this test sets.  Shown: the certificate identifier keysvc computes matches
# one computed here from the certificate; a future window keeps the
# certificate; Retry-After keeps keysvc off the network until it passes; a
# window in the past renews at once with "replaces" on the new order; a
# malformed window is reported and renewal_days decide.
. "$(dirname "$0")/lib.sh"
rig_load
test_setup ari

PROXY_PID=""
stop_proxy() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=""
    test_cleanup
}
trap stop_proxy EXIT

rules() { # JSON
    printf '%s\n' "$1" > "$WORK/rules.json.tmp" && mv "$WORK/rules.json.tmp" "$WORK/rules.json"
}
# A fixed window a month ahead (the same on every request).
win_start=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
win_end=$(date -u -d '+31 days' +%Y-%m-%dT%H:%M:%SZ)
rules "{\"directory_add_renewal_info\": true,
        \"ari\": {\"default\": {\"start\": \"$win_start\", \"end\": \"$win_end\", \"retry_after\": 3600}}}"
/usr/bin/python3 "$SRC_DIR/tests/rig/fault-proxy.py" --upstream "${ACME_DIR_URL%/dir}" \
    --upstream-ca "$ACME_CA_FILE" --cert "$RIG/pebble/tls.pem" --key "$RIG/pebble/tls.key" \
    --rules "$WORK/rules.json" --port-file "$WORK/proxy.port" --log "$WORK/proxy.log" \
    > "$WORK/proxy.out" 2>&1 &
PROXY_PID=$!
for _ in $(seq 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.1; done
[ -s "$WORK/proxy.port" ] || { cat "$WORK/proxy.out"; fail "the fault proxy did not start"; }
ACME_DIR_URL="https://127.0.0.1:$(cat "$WORK/proxy.port")/dir"

write_config keysvc.json '{"ari.test": {"alt_names": {"ari.test": ["@"]}, "key_types": ["ecdsa"]}}' \
    "{\"ari.test\": \"$WEBROOT\"}"
cd "$WORK"

ari_requests() { grep -c '"ari_certid"' proxy.log || true; }

run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "first run issues ari.test through the proxy"

# The identifier by hand: base64url(AKI keyIdentifier) "." base64url(serial DER bytes).
expected_id=$(/usr/bin/python3 - out/certs/ari.test.ecdsa.pem <<'PY'
import base64, re, subprocess, sys
text = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", "-text"],
                      capture_output=True, text=True, check=True).stdout
aki = re.search(r"Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)", text).group(1)
serial = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", "-serial"],
                        capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
n = int(serial, 16)
raw = n.to_bytes((n.bit_length() + 8) // 8, "big")  # DER INTEGER: a leading 0 when the top bit is set
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
print(b64(bytes.fromhex(aki.replace(":", ""))) + "." + b64(raw))
PY
)

before=$(ari_requests)
run_keysvc run --config keysvc.json --verbose > /dev/null
assert_eq 1 "$RUN_RC" "a window a month ahead: nothing to do"
assert_eq $((before + 1)) "$(ari_requests)" "keysvc asked for the renewal information"
got_id=$(grep '"ari_certid"' proxy.log | tail -1 | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["ari_certid"])')
assert_eq "$expected_id" "$got_id" "the certificate identifier is base64url(AKI).base64url(serial)"
in_window=$(sql "SELECT ari_renew_at >= ari_window_start AND ari_renew_at <= ari_window_end
                 AND ari_window_start > now() + interval '29 days' FROM certificates WHERE is_current")
assert_eq t "$in_window" "the window is stored, with the renewal moment picked inside it"
next=$(sql "SELECT round(extract(epoch from ari_next_check - now())) FROM certificates WHERE is_current")
[ "$next" -gt 3500 ] && [ "$next" -le 3960 ] || fail "next check in ${next}s, expected Retry-After 3600 (+ up to 10 % jitter)"
pass "the next check waits for the Retry-After (3600 s, plus jitter)"
picked=$(sql "SELECT ari_renew_at FROM certificates WHERE is_current")

run_keysvc run --config keysvc.json > /dev/null
assert_eq 1 "$RUN_RC" "still nothing to do"
assert_eq $((before + 1)) "$(ari_requests)" "no renewal information request before the Retry-After passed"

sql "UPDATE certificates SET ari_next_check = now() - interval '1 second' WHERE is_current" > /dev/null
run_keysvc run --config keysvc.json > /dev/null
assert_eq $((before + 2)) "$(ari_requests)" "asked again once the Retry-After passed"
assert_eq "$picked" "$(sql "SELECT ari_renew_at FROM certificates WHERE is_current")" \
    "the same window keeps the moment picked before"

# A malformed window: reported, the stored state is kept, renewal_days decide.
rules '{"directory_add_renewal_info": true,
        "ari": {"default": {"start": "not a date", "end": "2030-01-01T00:00:00Z"}}}'
sql "UPDATE certificates SET ari_next_check = now() - interval '1 second' WHERE is_current" > /dev/null
run_keysvc run --config keysvc.json > /dev/null
assert_eq 1 "$RUN_RC" "a malformed window changes nothing"
assert_contains run.out "renewal information unavailable" "the problem is reported"
assert_contains run.out "suggestedWindow" "naming the field"
assert_eq "$picked" "$(sql "SELECT ari_renew_at FROM certificates WHERE is_current")" \
    "the stored window is kept"
next=$(sql "SELECT round(extract(epoch from ari_next_check - now())) FROM certificates WHERE is_current")
[ "$next" -gt 3500 ] && [ "$next" -le 3600 ] || fail "after a failure the next check is in ${next}s, expected an hour"
pass "after a failure the CA is asked again in an hour, not on every run"

# A window in the past: renew now, replacing the old certificate.
rules '{"directory_add_renewal_info": true,
        "ari": {"default": {"start_offset": -7200, "end_offset": -3600}}}'
sql "UPDATE certificates SET ari_next_check = now() - interval '1 second' WHERE is_current" > /dev/null
old_serial=$(sql "SELECT serial FROM certificates WHERE is_current")
run_keysvc run --config keysvc.json --verbose > /dev/null
assert_eq 0 "$RUN_RC" "a window in the past renews at once"
assert_contains run.out "renewal window has come (ARI)" "the reason is the CA's window"
[ "$old_serial" != "$(sql "SELECT serial FROM certificates WHERE is_current")" ] || fail "not renewed"
replaces=$(/usr/bin/python3 - proxy.log <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    p = e.get("payload")
    if isinstance(p, dict) and "replaces" in p:
        print(p["replaces"])
PY
)
assert_eq "$expected_id" "$replaces" "the renewal order carried replaces: the old certificate's identifier"

# Without renewalInfo in the directory, renewal_days decide (no request).
rules '{"directory_add_renewal_info": false}'
before=$(ari_requests)
sql "UPDATE certificates SET ari_next_check = NULL, ari_window_start = NULL, ari_window_end = NULL,
     ari_renew_at = NULL WHERE is_current" > /dev/null
run_keysvc run --config keysvc.json > /dev/null
assert_eq 1 "$RUN_RC" "without renewalInfo the certificate is kept (renewal_days)"
assert_eq "$before" "$(ari_requests)" "no renewal information request"
next=$(sql "SELECT round(extract(epoch from ari_next_check - now())) FROM certificates WHERE is_current")
[ "$next" -gt 86000 ] || fail "the directory is asked again in ${next}s, expected a day"
pass "a CA without renewalInfo is asked again after a day"
