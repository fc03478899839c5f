#!/usr/bin/env bash
# A long-running signer (keysvc signer) that workers reach over its socket:
# the socket's mode, a worker issuing through it without starting a signer
# of its own, a worker that cannot reach it, and a clean stop on SIGTERM.
. "$(dirname "$0")/lib.sh"
rig_load
test_setup standalone
cd "$WORK"

write_config keysvc.json '{"s.test": {"key_types": ["ecdsa"]}}' "{\"s.test\": \"$WEBROOT\"}"
sock=$WORK/signer.sock
sed -i "s|\"hsm\": {|\"signer\": {\"socket\": \"$sock\"}, \"hsm\": {|" keysvc.json

stop_signer() {
    [ -n "${signer_pid:-}" ] && kill "$signer_pid" 2>/dev/null && wait "$signer_pid" 2>/dev/null
    signer_pid=""
}
trap 'stop_signer; test_cleanup' EXIT

start_signer() { # config [option]
    : > signer.log
    "$KEYSVC" signer --config "$1" -v ${2:-} > signer.log 2>&1 < /dev/null &
    signer_pid=$!
    # Ready once it says so: the socket file exists a moment before it listens.
    for _ in $(seq 200); do grep -q "listening on" signer.log && return 0; sleep 0.05; done
    cat signer.log
    fail "the signer did not start listening"
}

start_signer keysvc.json
assert_eq 600 "$(stat -c %a "$sock")" "the signer's socket is mode 0600"

run_keysvc run --config keysvc.json -v
assert_eq 0 "$RUN_RC" "a worker issues through the standalone signer"
assert_contains run.out "issued s.test (ecdsa)" "the certificate is issued"
assert_not_contains run.out "logged in to token" "the worker started no signer of its own"
assert_contains signer.log "logged in to token \"$TOKEN\" for tenant \"default\"" "the standalone signer logged in"
openssl verify -CAfile <(curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0") \
    -untrusted out/certs/s.test_chain.ecdsa.pem out/certs/s.test.ecdsa.pem >/dev/null ||
    fail "the certificate does not verify"
pass "the certificate verifies against pebble's root"

run_keysvc run --config keysvc.json
assert_eq 1 "$RUN_RC" "a second worker run has nothing to do"

stop_signer
[ ! -e "$sock" ] || fail "the socket is left behind after SIGTERM"
pass "SIGTERM stops the signer and removes its socket"

run_keysvc run --config keysvc.json
assert_eq 2 "$RUN_RC" "a worker without its signer fails"
assert_contains run.out "cannot reach the signer at $sock" "the unreachable signer is named"

# With signer.socket_group the socket is 0660 and belongs to that group.
# A group other than the one the socket would get anyway, so that the test
# sees the chown: root may use any (nogroup); others one of their own.
group=$(id -Gn | tr ' ' '\n' | grep -vx "$(id -gn)" | head -n1 || true)
if [ -z "$group" ] && [ "$(id -u)" = 0 ] && getent group nogroup >/dev/null; then group=nogroup; fi
[ -n "$group" ] || { group=$(id -gn); echo "note: no second group: the socket_group check cannot see the chown"; }
sed "s|\"socket\": \"$sock\"|\"socket\": \"$sock\", \"socket_group\": \"$group\"|" keysvc.json > group.json
start_signer group.json
assert_eq "660 $group" "$(stat -c '%a %G' "$sock")" "with socket_group the socket is 0660 for $group"
stop_signer

# A signer serving two tenants logs into a token only when a worker opens
# its tenant: a worker for tenant a alone costs token b no login.
token_b="t-standalone-b-$$"
"$SRC_DIR/tests/rig/new-token.sh" "$RIG_DIR" "$token_b"
tenants="\"tenants\": {\"a\": {\"token\": \"$TOKEN\", \"pin_file\": \"$KS_PIN_FILE\"},
                        \"b\": {\"token\": \"$token_b\", \"pin_file\": \"$KS_PIN_FILE\"}}"
sed -e "s|\"hsm\": {[^}]*}|\"hsm\": {\"module\": \"$KS_PKCS11_MODULE\"}, $(tr -d '\n' <<< "$tenants")|" \
    -e 's|"s.test": {"key_types": \["ecdsa"\]}|"s.test": {"key_types": ["ecdsa"], "tenant": "a"}|' \
    keysvc.json > tenants.json
start_signer tenants.json --debug
run_keysvc run --config tenants.json --tenant a
assert_eq 0 "$RUN_RC" "a worker for tenant a issues through a two-tenant signer"
assert_eq 1 "$(grep -c 'pkcs11: C_Login ' signer.log)" "the signer logged in exactly once"
assert_contains signer.log "for tenant \"a\"" "it logged in for tenant a"
assert_not_contains signer.log "for tenant \"b\"" "it never logged in for tenant b"
stop_signer
