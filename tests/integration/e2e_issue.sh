#!/usr/bin/env bash
# End to end: pebble + SoftHSM + PostgreSQL.  Issues an ECDSA P-256 and an
# RSA-2048 certificate for two names, then proves the keys never left the
# token and that a second run does nothing.
. "$(dirname "$0")/lib.sh"
rig_load
test_setup issue

write_config keysvc.json \
    '{"example.test": {"alt_names": {"example.test": ["@", "www"]}, "key_types": ["ecdsa", "rsa"]}}' \
    "{\"example.test\": \"$WEBROOT\", \"www.example.test\": \"$WEBROOT\"}"

cd "$WORK"
run_keysvc run --config keysvc.json --debug > /dev/null
grep -v ': debug: ' run.out
assert_eq 0 "$RUN_RC" "first run exits 0 (issued)"
assert_challenges_removed run.out
assert_contains run.out "issued example.test (ecdsa)" "ECDSA certificate issued"
assert_contains run.out "issued example.test (rsa)" "RSA certificate issued"

# Both chains verify against pebble's root, fetched from its management port.
curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0" > root.pem
for t in ecdsa rsa; do
    openssl verify -CAfile root.pem -untrusted "out/certs/example.test_chain.$t.pem" \
        "out/certs/example.test.$t.pem" >/dev/null || fail "$t chain does not verify"
    pass "$t chain verifies against pebble's root"
    openssl x509 -in "out/certs/example.test.$t.pem" -noout -ext subjectAltName > san.txt
    assert_contains san.txt "DNS:www.example.test" "$t certificate names www.example.test"
done
openssl x509 -in out/certs/example.test.ecdsa.pem -noout -text > ec.txt
assert_contains ec.txt "NIST CURVE: P-256" "ECDSA key is P-256"
openssl x509 -in out/certs/example.test.rsa.pem -noout -text > rsa.txt
assert_contains rsa.txt "Public-Key: (2048 bit)" "RSA key is 2048 bits"

# Each certificate's key is the token's key with the CKA_ID the database and
# the pkcs11: URI file name; the private half is sealed in the token.
for t in ecdsa rsa; do
    id=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE purpose = 'certificate'
              AND name = 'example.test' AND key_type = '$t' AND role = 'primary'")
    [ -n "$id" ] || fail "no $t key row"
    assert_eq "$(token_pubkey_hash "$id")" "$(cert_pubkey_hash "out/certs/example.test.$t.pem")" \
        "$t certificate key equals token public key $id"
    uri_id=$(sed -n 's/.*;id=\([^;]*\);.*/\1/p' "out/private/example.test.$t.key" | tr -d '%' | tr 'A-F' 'a-f')
    assert_eq "$id" "$uri_id" "$t key URI names CKA_ID $id"
    grep -q "^pkcs11:token=$TOKEN;.*serial=" "out/private/example.test.$t.key" || fail "URI lacks token/serial"
    "$TOKEN_PROBE" "$KS_PKCS11_MODULE" "$TOKEN" "$KS_PIN_FILE" "$id" > probe.txt
    assert_contains probe.txt "secret_read=CKR_ATTRIBUTE_SENSITIVE" "$t private value unreadable"
    assert_contains probe.txt "token=1 private=1 sensitive=1 extractable=0 always_sensitive=1 never_extractable=1" \
        "$t private key is a sealed token object"
done
acct_id=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE purpose = 'account'")
"$TOKEN_PROBE" "$KS_PKCS11_MODULE" "$TOKEN" "$KS_PIN_FILE" "$acct_id" > probe.txt
assert_contains probe.txt "secret_read=CKR_ATTRIBUTE_SENSITIVE" "account private value unreadable"
assert_contains probe.txt "extractable=0" "account key not extractable"

# Modes: key URI files 0640, certificates 0644.
assert_eq 640 "$(stat -c %a out/private/example.test.ecdsa.key)" "key URI file mode"
assert_eq 644 "$(stat -c %a out/certs/example.test.ecdsa.pem)" "certificate file mode"

# No file anywhere holds private key material.
if grep -rl "PRIVATE KEY" out > leaks.txt; then cat leaks.txt; fail "a written file holds a private key"; fi
pass "no written file contains PRIVATE KEY"
assert_eq 5 "$(token_key_count)" "five key pairs on the token (account; ecdsa and rsa, each primary and backup)"

# The database holds the state.
assert_eq 5 "$(sql "SELECT count(*) FROM keys WHERE state = 'live'")" "five live keys recorded"
assert_eq "account primary|certificate backup|certificate backup|certificate primary|certificate primary" \
    "$(sql "SELECT string_agg(purpose || ' ' || role, '|' ORDER BY purpose, role) FROM keys")" \
    "an account key, and a primary and a backup per certificate key type"
for t in ecdsa rsa; do
    backup_id=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE key_type = '$t' AND role = 'backup'")
    [ "$(token_pubkey_hash "$backup_id")" != "$(cert_pubkey_hash "out/certs/example.test.$t.pem")" ] ||
        fail "$t backup key is the certificate's key"
    pass "$t backup key is a different key, ready on the token"
done
assert_eq 0 "$(sql "SELECT count(*) FROM audit_events s WHERE outcome = 'started' AND NOT EXISTS
    (SELECT 1 FROM audit_events o WHERE o.started_id = s.id AND o.outcome = 'ok')")" "every audit event finished ok"
assert_eq 0 "$(sql "SELECT count(*) FROM audit_events WHERE outcome = 'failed'")" "no audit event failed"
assert_eq 5 "$(sql "SELECT count(*) FROM audit_events WHERE operation = 'generate' AND outcome = 'ok'")" "an audit event for each key generated"
assert_eq 2 "$(sql "SELECT count(*) FROM audit_events WHERE operation = 'sign_csr' AND outcome = 'ok'")" "an audit event for each CSR signed"
if sql "UPDATE audit_events SET detail = 'rewritten'" >/dev/null 2>&1 ||
    sql "DELETE FROM audit_events" >/dev/null 2>&1 || sql "TRUNCATE audit_events" >/dev/null 2>&1; then
    fail "the audit trail can be rewritten"
fi
assert_eq 0 "$(sql "SELECT count(*) FROM audit_events WHERE detail = 'rewritten'")" "the audit trail is append-only"
[ "$(sql "SELECT count(*) FROM audit_events WHERE operation = 'sign_jws' AND purpose = 'account' AND outcome = 'ok'")" -gt 4 ] ||
    fail "no audit events for the account key's JWS signatures"
pass "audit events for the account key's JWS signatures"
assert_eq 1 "$(sql "SELECT count(*) FROM accounts WHERE account_url LIKE 'https://%'")" "account registered"
assert_eq 2 "$(sql "SELECT count(*) FROM orders WHERE status = 'valid'")" "two valid orders"
assert_eq 2 "$(sql "SELECT count(*) FROM certificates WHERE is_current")" "two current certificates"
serial=$(openssl x509 -in out/certs/example.test.rsa.pem -noout -serial | cut -d= -f2)
assert_eq 1 "$(sql "SELECT count(*) FROM certificates WHERE serial = '$serial' AND key_type = 'rsa'")" "RSA serial recorded"
assert_eq 1 "$(curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/cert-status-by-serial/$serial" | grep -c '"Status": *"Valid"')" "pebble knows the certificate as valid"

# keysvc keys: every live key with its pin and URI; the primary's pin is the
# certificate's SPKI pin, computed here with openssl.
run_keysvc keys --config keysvc.json
assert_eq 0 "$RUN_RC" "keysvc keys lists the keys"
assert_eq 5 "$(grep -c '^  pkcs11:token=' run.out)" "five keys listed with a URI"
for t in ecdsa rsa; do
    pin=$(openssl x509 -in "out/certs/example.test.$t.pem" -noout -pubkey |
          openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64)
    grep -A1 "^default certificate example.test $t primary: " run.out > pin.txt
    assert_contains pin.txt "pin-sha256=\"$pin\"" "$t primary key's pin is the certificate's SPKI pin"
done
assert_contains run.out "0 days old" "keys show their age"

# A second run with nothing to do: no order, no key, no file rewritten.
before=$(state_snapshot)
run_keysvc run --config keysvc.json
assert_eq 1 "$RUN_RC" "second run exits 1 (nothing to do)"
assert_eq "" "$(cat "$WORK/run.out")" "second run says nothing (cron)"
assert_eq "$before" "$(state_snapshot)" "second run changed no file, key or row"

# A deleted output file is written again from the database, without a new order.
cp out/certs/example.test_chain.rsa.pem chain.saved
rm out/certs/example.test_chain.rsa.pem
run_keysvc run --config keysvc.json
assert_eq 0 "$RUN_RC" "third run restores a missing file"
assert_eq 2 "$(sql "SELECT count(*) FROM orders")" "no new order for a missing file"
cmp -s chain.saved out/certs/example.test_chain.rsa.pem || fail "restored chain differs from the original"
pass "chain file restored byte for byte"
assert_eq 5 "$(token_key_count)" "still five key pairs on the token"

# A key deleted from the token behind keysvc's back is reported, never
# silently replaced, and nothing else is touched.
rsa_id=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE name = 'example.test' AND key_type = 'rsa' AND role = 'primary'")
pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$TOKEN" --login --pin "$(cat "$KS_PIN_FILE")" \
    --delete-object --type privkey --id "$rsa_id" >/dev/null 2>&1 || fail "could not delete the test key"
before=$(state_snapshot)
run_keysvc run --config keysvc.json
assert_eq 2 "$RUN_RC" "a run with a key missing from the token fails"
rsa_label=$(sql "SELECT label FROM keys WHERE name = 'example.test' AND key_type = 'rsa' AND role = 'primary'")
assert_contains run.out "example.test (rsa): key $rsa_label: signer: token" "the damaged key is named"
assert_contains run.out "has only the public half of a key" "what is wrong with it is said"
assert_eq "$before" "$(state_snapshot)" "no key generated and no file touched for the missing key"
