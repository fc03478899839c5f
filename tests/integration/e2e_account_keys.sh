#!/usr/bin/env bash
# The ACME account key in the token in each kind the CA accepts: RSA-2048
# (RS256) and P-384 (ES384); pebble verifies every JWS the token signs.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${PG_CONNINFO:-}" ] || fail "this test needs the rig's PostgreSQL"
test_setup acctkeys
cd "$WORK"

for variant in "rsa 2048" "ecdsa secp384r1"; do
    set -- $variant
    kind=$1
    if [ "$kind" = rsa ]; then account="{\"email\": \"a@example.test\", \"key_type\": \"rsa\", \"key_size\": $2}"
    else account="{\"email\": \"a@example.test\", \"key_type\": \"ecdsa\", \"key_curve\": \"$2\"}"; fi
    name="acct-$kind.test"
    write_config "$kind.json" "{\"$name\": {\"key_types\": [\"ecdsa\"]}}" "{\"$name\": \"$WEBROOT\"}"
    # Each variant gets its own database: one account per CA per database.
    db="ks_acct_${kind}_$$"
    psql "$PG_CONNINFO" -qAt -c "CREATE DATABASE \"$db\"" >/dev/null
    sed -i "s|dbname=[a-z0-9_]*|dbname=$db|" "$kind.json"
    sed -i "s|\"account\": {[^}]*}|\"account\": $account|" "$kind.json"
    run_keysvc run --config "$kind.json"
    assert_eq 0 "$RUN_RC" "$kind account key ($2): certificate issued"
    assert_contains run.out "registered ACME account" "$kind account registered"
    params=$(psql "host=$PG_SOCKET_DIR port=5432 user=postgres dbname=$db" -qAt \
        -c "SELECT key_type || ' ' || params FROM keys WHERE purpose = 'account'")
    expected=$([ "$kind" = rsa ] && echo "rsa rsa$2" || echo "ecdsa $2")
    assert_eq "$expected" "$params" "$kind account key recorded as $expected"
    psql "$PG_CONNINFO" -qAt -c "DROP DATABASE \"$db\"" >/dev/null
done

# Ed25519: the key is made in the token and signs EdDSA; pebble does not
# accept EdDSA accounts, and says so clearly.
write_config ed.json '{"acct-ed.test": {"key_types": ["ecdsa"]}}' "{\"acct-ed.test\": \"$WEBROOT\"}"
db="ks_acct_ed_$$"
psql "$PG_CONNINFO" -qAt -c "CREATE DATABASE \"$db\"" >/dev/null
sed -i "s|dbname=[a-z0-9_]*|dbname=$db|; s|\"account\": {[^}]*}|\"account\": {\"key_type\": \"ed25519\"}|" ed.json
run_keysvc run --config ed.json
assert_eq 2 "$RUN_RC" "pebble refuses an EdDSA account"
assert_contains run.out "registering the ACME account" "the failing step is named"
assert_contains run.out "badPublicKey" "the CA's reason is shown"
assert_eq "ed25519 ed25519" "$(psql "host=$PG_SOCKET_DIR port=5432 user=postgres dbname=$db" -qAt \
    -c "SELECT key_type || ' ' || params FROM keys WHERE purpose = 'account'")" \
    "the Ed25519 account key was made in the token"
assert_eq 0 "$(psql "host=$PG_SOCKET_DIR port=5432 user=postgres dbname=$db" -qAt \
    -c "SELECT count(*) FROM orders")" "no order without an account"
psql "$PG_CONNINFO" -qAt -c "DROP DATABASE \"$db\"" >/dev/null
