#!/usr/bin/env bash
# Tenants: two tokens, each with its own PIN source, ACME account, keys and
# certificates.  Rows carry their tenant, each token holds only its tenant's
# keys, and a run for one tenant never logs into the other's token.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${PG_CONNINFO:-}" ] || fail "this test needs the rig's PostgreSQL"
test_setup tenants
cd "$WORK"
token_a=$TOKEN
token_b="t-tenants-b-$$"
"$SRC_DIR/tests/rig/new-token.sh" "$RIG_DIR" "$token_b"

write_config keysvc.json \
    '{"a.test": {"key_types": ["ecdsa"], "tenant": "a"}, "b.test": {"key_types": ["ecdsa"], "tenant": "b"}}' \
    "{\"a.test\": \"$WEBROOT\", \"b.test\": \"$WEBROOT\"}"
# No default tenant: the hsm section names only the module.
tenant_a="\"a\": {\"token\": \"$token_a\", \"pin_file\": \"$KS_PIN_FILE\", \"email\": \"a@example.test\"}"
tenant_b="\"b\": {\"token\": \"$token_b\", \"pin_env\": \"KS_TEST_PIN_B\"}"
tenants="\"tenants\": {$tenant_a, $tenant_b}"
sed -i "s|\"hsm\": {[^}]*}|\"hsm\": {\"module\": \"$KS_PKCS11_MODULE\"}, $tenants|" keysvc.json

KS_TEST_PIN_B=$(cat "$KS_PIN_FILE") run_keysvc run --config keysvc.json -v
assert_eq 0 "$RUN_RC" "both tenants' certificates issued"
assert_contains run.out "issued a.test (ecdsa)" "tenant a's certificate"
assert_contains run.out "issued b.test (ecdsa)" "tenant b's certificate"

serial_a=$(sql "SELECT DISTINCT token_serial FROM keys WHERE tenant = 'a'")
serial_b=$(sql "SELECT DISTINCT token_serial FROM keys WHERE tenant = 'b'")
[ -n "$serial_a" ] && [ -n "$serial_b" ] && [ "$serial_a" != "$serial_b" ] || fail "tenants share a token"
pass "each tenant's keys are on its own token ($serial_a, $serial_b)"
assert_eq 2 "$(sql "SELECT count(DISTINCT account_url) FROM accounts WHERE tenant IN ('a', 'b')")" \
    "each tenant has its own ACME account"
assert_eq "a@example.test" "$(sql "SELECT contact FROM accounts WHERE tenant = 'a'")" \
    "tenant a's account has its own contact"
assert_eq "a|b" "$(sql "SELECT string_agg(DISTINCT tenant, '|') FROM certificates")" \
    "certificates carry their tenant"
assert_eq 0 "$(sql "SELECT count(*) FROM certificates c JOIN keys k ON k.id = c.key_id
                    WHERE k.tenant <> c.tenant")" "no certificate uses another tenant's key"
assert_eq 0 "$(sql "SELECT count(*) FROM orders o JOIN accounts a ON a.id = o.account_id
                    WHERE a.tenant <> o.tenant")" "no order went through another tenant's account"
count_on() { # token
    pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$1" --list-objects --type pubkey 2>/dev/null |
        grep -c '^Public Key Object' || true
}
assert_eq "$(sql "SELECT count(*) FROM keys WHERE tenant = 'a' AND state = 'live'")" "$(count_on "$token_a")" \
    "token a holds exactly tenant a's keys"
assert_eq "$(sql "SELECT count(*) FROM keys WHERE tenant = 'b' AND state = 'live'")" "$(count_on "$token_b")" \
    "token b holds exactly tenant b's keys"

# A run for tenant a alone never logs into b's token: b's PIN is wrong now,
# and the run neither notices nor fails.
before_b=$(count_on "$token_b")
KS_TEST_PIN_B=000000 run_keysvc run --config keysvc.json --tenant a -v
assert_eq 1 "$RUN_RC" "tenant a alone: nothing to do, and b's wrong PIN never tried"
assert_not_contains run.out "$token_b" "b's token is not mentioned"
assert_contains run.out "for tenant \"a\"" "a's token is opened"
assert_eq "$before_b" "$(count_on "$token_b")" "b's token untouched"

# With b's PIN wrong, a run for both fails for b only: a is still served.
sql "UPDATE certificates SET not_after = now() + interval '1 day' WHERE tenant = 'a'" >/dev/null
KS_TEST_PIN_B=000000 run_keysvc run --config keysvc.json
assert_eq 2 "$RUN_RC" "a wrong PIN for b fails the run"
assert_contains run.out "tenant \"b\"" "the failing tenant is named"
assert_contains run.out "wrong PIN" "the cause is named"
assert_contains run.out "issued a.test (ecdsa)" "tenant a is still renewed"

run_keysvc run --config keysvc.json --tenant nosuch
assert_eq 2 "$RUN_RC" "an unknown tenant is refused"
assert_contains run.out 'no tenant "nosuch"' "the unknown tenant is named"
