#!/usr/bin/env bash
# Bad input gives a clear error, exit 2, and changes nothing: files, token
# objects and database rows stay exactly as a good run left them (a refused
# order is recorded as a failed attempt, and that is all).
. "$(dirname "$0")/lib.sh"
rig_load
test_setup bad

a_cert='"a.test": {"key_types": ["ecdsa"]}'
good_challenges="{\"a.test\": \"$WEBROOT\", \"b.test\": \"$WEBROOT\"}"
write_config good.json "{$a_cert}" "$good_challenges"
cd "$WORK"
run_keysvc run --config good.json > /dev/null
assert_eq 0 "$RUN_RC" "good run issues a.test"
snapshot=$(state_snapshot)

# Every bad configuration below also asks for b.test, so there is work to do.
b_cert='"b.test": {"key_types": ["ecdsa", "rsa"]}'

expect_failure() { # config what needle...
    local config=$1 what=$2
    shift 2
    run_keysvc run --config "$config" > /dev/null
    assert_eq 2 "$RUN_RC" "$what: exit code 2"
    for needle in "$@"; do
        assert_contains run.out "$needle" "$what: message names '$needle'"
    done
    assert_eq "$snapshot" "$(state_snapshot)" "$what: nothing changed"
}

# Malformed configuration: syntax error, with file, line and column.
write_config syntax.json "{$a_cert, $b_cert}" "$good_challenges"
sed -i 's/"b.test": {/"b.test": {,/' syntax.json
line=$(grep -n '"b.test": {,' syntax.json | cut -d: -f1)
expect_failure syntax.json "syntax error" "syntax.json:$line:" "JSON syntax error"

# Malformed configuration: a wrong value, named by its JSON path.
write_config type.json "{$a_cert, \"b.test\": {\"key_types\": [\"ecdsa\", \"dsa\"]}}" "$good_challenges"
expect_failure type.json "bad key type" "type.json" 'certificates["b.test"].key_types[1]' 'expected "rsa" or "ecdsa"'

write_config type2.json "{$a_cert, $b_cert}" "$good_challenges" '"renewal_days": "soon"'
expect_failure type2.json "wrong JSON type" "type2.json" "settings.renewal_days" "expected an integer, got string"

# Wrong PIN.
printf '000000' > wrong-pin
chmod 600 wrong-pin
write_config pin.json "{$a_cert, $b_cert}" "$good_challenges"
sed -i "s|\"pin_file\": \"[^\"]*\"|\"pin_file\": \"$WORK/wrong-pin\"|" pin.json
expect_failure pin.json "wrong PIN" "wrong PIN" "$TOKEN"

# Missing token.
write_config token.json "{$a_cert, $b_cert}" "$good_challenges"
sed -i 's|"token": "[^"]*"|"token": "no-such-token"|' token.json
expect_failure token.json "missing token" 'no token labelled "no-such-token"'

# Unreachable ACME directory (a port nobody listens on).
port=$(/usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
write_config unreachable.json "{$a_cert, $b_cert}" "$good_challenges"
sed -i "s|\"acme_directory_url\": \"[^\"]*\"|\"acme_directory_url\": \"https://127.0.0.1:$port/dir\"|" unreachable.json
expect_failure unreachable.json "unreachable directory" "https://127.0.0.1:$port/dir" "fetching the ACME directory"

# A webroot that does not exist.
write_config webroot.json "{$a_cert, $b_cert}" "{\"a.test\": \"$WEBROOT\", \"b.test\": \"$WORK/no/such/dir\"}"
expect_failure webroot.json "missing webroot" "$WORK/no/such/dir" 'http_challenges["b.test"]'

# The CA refuses: the webroot exists but is not the one the web server
# serves, so validation fails.  The key for b.test must not be generated.
mkdir -p unserved
write_config refused.json "{$a_cert, $b_cert}" "{\"a.test\": \"$WEBROOT\", \"b.test\": \"$WORK/unserved\"}"
failed_before=$(sql "SELECT count(*) FROM orders WHERE status = 'failed'")
expect_failure refused.json "validation refused by the CA" "b.test" "authorization invalid"
assert_eq $((failed_before + 2)) "$(sql "SELECT count(*) FROM orders WHERE status = 'failed'")" \
    "both refused orders recorded as failed"
assert_eq 2 "$(sql "SELECT count(*) FROM orders WHERE status = 'failed' AND key_id IS NULL
                    AND certificate_name = 'b.test' AND error LIKE '%b.test%'")" \
    "the failed orders name b.test and hold no key"
[ -z "$(ls -A unserved)" ] || fail "challenge files left in the webroot"
pass "no challenge file left behind"

# Another run holds the state directory's lock.
write_config locked.json "{$a_cert, $b_cert}" "$good_challenges"
flock -o state/keysvc.lock sleep 30 &
holder=$!
trap 'pkill -P "$holder" sleep 2>/dev/null; test_cleanup' EXIT
for _ in $(seq 50); do flock -n state/keysvc.lock true || break; sleep 0.1; done
expect_failure locked.json "state directory locked" "holds $WORK/state/keysvc.lock" "try again"
pkill -P "$holder" sleep || true
wait "$holder" 2>/dev/null || true

# Another run on another host (another state directory) works on the same
# tenant in the same database.
write_config dblocked.json "{$a_cert, $b_cert}" "$good_challenges"
sed -i 's|"state": "state"|"state": "state-elsewhere"|' dblocked.json
psql "$DB_CONNINFO application_name=ks-test-locker" -qAt \
    -c "SELECT pg_advisory_lock(1263752771, hashtext('keysvc:tenant:default'))" -c "SELECT pg_sleep(30)" \
    >/dev/null 2>&1 &
locker=$!
trap 'kill "$locker" 2>/dev/null; sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '"'"'ks-test-locker'"'"'" >/dev/null 2>&1; test_cleanup' EXIT
for _ in $(seq 50); do
    [ "$(sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" -gt 0 ] && break
    sleep 0.1
done
expect_failure dblocked.json "tenant locked in the database" "another keysvc run using this database" 'tenant "default"'
# Ending the client does not end its server session: end that too.
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE application_name = 'ks-test-locker'" >/dev/null
wait "$locker" 2>/dev/null || true
trap test_cleanup EXIT

# And the good configuration still has nothing to do afterwards.
run_keysvc run --config good.json > /dev/null
assert_eq 1 "$RUN_RC" "good configuration still current after the failures"
