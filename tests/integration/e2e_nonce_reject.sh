#!/usr/bin/env bash
# pebble rejects half of all nonces (PEBBLE_WFE_NONCEREJECT=50): 100
# issuances in a row (50 names, ECDSA and RSA) must all succeed, by retrying
# with the nonce from the badNonce error.  Under valgrind, 10 (5 names).
# No "database" section: keysvc runs its own private PostgreSQL.
. "$(dirname "$0")/lib.sh"
rig_load
[ -z "${PG_CONNINFO:-}" ] || fail "this test expects a rig without PostgreSQL"
test_setup nonce

certs='{'
challenges='{'
N=50
[ -z "${KEYSVC_VALGRIND:-}" ] || N=5
ISSUED=$((N * 2))
for i in $(seq "$N"); do
    certs+="\"n$i.test\": {\"alt_names\": {\"n$i.test\": [\"@\", \"www\"]}, \"key_types\": [\"ecdsa\", \"rsa\"]},"
    challenges+="\"n$i.test\": \"$WEBROOT\", \"www.n$i.test\": \"$WEBROOT\","
done
write_config keysvc.json "${certs%,}}" "${challenges%,}}"

cd "$WORK"
run_keysvc run --config keysvc.json --debug > /dev/null
assert_eq 0 "$RUN_RC" "run with half the nonces rejected exits 0"
issued=$(grep -c '^issued ' run.out || true)
assert_eq "$ISSUED" "$issued" "all $ISSUED certificates issued"
rejected=$(grep -c 'badNonce, retrying' run.out || true)
[ "$rejected" -gt 0 ] || fail "pebble rejected no nonce: the test proved nothing"
pass "$rejected badNonce errors were retried"
assert_challenges_removed run.out

curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0" > root.pem
for i in $(seq "$N"); do
    for t in ecdsa rsa; do
        openssl verify -CAfile root.pem -untrusted "out/certs/n$i.test_chain.$t.pem" \
            "out/certs/n$i.test.$t.pem" >/dev/null || fail "n$i.test $t does not verify"
    done
done
pass "all $ISSUED chains verify against pebble's root"
[ -f state/postgres/data/PG_VERSION ] || fail "no private cluster under the state directory"
pass "private PostgreSQL cluster created under directories.state"

counts="SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM orders),
               (SELECT count(*) FROM certificates WHERE is_current)"
rows=$(private_sql "$counts")
KEYS=$((1 + ISSUED * 2))
assert_eq "$KEYS|$ISSUED|$ISSUED" "$rows" "private database holds $KEYS keys (account, primaries, backups), $ISSUED orders, $ISSUED current certificates"
assert_eq "$KEYS" "$(token_key_count)" "$KEYS key pairs on the token"

before=$(state_snapshot)
run_keysvc run --config keysvc.json > /dev/null
assert_eq 1 "$RUN_RC" "second run has nothing to do"
assert_eq "$before" "$(state_snapshot)" "second run changed no file or token object"
assert_eq "$rows" "$(private_sql "$counts")" "second run added no row"
