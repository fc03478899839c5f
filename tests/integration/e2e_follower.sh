#!/usr/bin/env bash
# follower_mode: a master obtains authorizations (acmebot's
# "authorizations", keysvc run --auth) and a follower sharing its database
# and token issues certificates for those names without validating
# anything; a name the master never authorized fails on the follower with
# nothing published.  Needs pebble reusing every valid authorization.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${DNS_PORT:-}" ] || fail "this test needs a rig started with --bind"
test_setup follower
cd "$WORK"
[ -n "$DB_CONNINFO" ] || fail "this test needs the rig's PostgreSQL (shared by master and follower)"

write_config master.json '{}' '{}' "\"dns_resolvers\": [\"$DNS_PRIMARY\"], \"dns_port\": $DNS_PORT,
    \"max_dns_lookup_attempts\": 30, \"dns_lookup_delay\": 1"
config_merge master.json "{\"directories\": {\"update_key\": \"$DNS_KEY_DIR\", \"state\": \"master-state\"},
    \"zone_update_keys\": {\"example.test\": \"acme-sha256.key\"},
    \"authorizations\": {\"example.test\": [\"f1\", \"f2\"]}}"
run_keysvc run --auth --config master.json > /dev/null
assert_eq 0 "$RUN_RC" "the master obtained the authorizations"
assert_contains run.out "authorized example.test: 2 name(s)" "for both names"
[ -z "$(find out -type f)" ] || fail "--auth wrote files: $(find out -type f)"
pass "--auth issued no certificate"

# The follower: same database and token (so the same ACME account), its
# own state directory, and no way to validate anything.
write_config follower.json '{"f1.example.test": {"alt_names": {"example.test": ["f1", "f2"]}, "key_types": ["ecdsa"]}}' '{}' \
    "\"follower_mode\": true, \"dns_resolvers\": [\"$DNS_PRIMARY\"], \"dns_port\": $DNS_PORT"
config_merge follower.json '{"directories": {"state": "follower-state"}}'
run_keysvc run --verbose --config follower.json > /dev/null
assert_eq 0 "$RUN_RC" "the follower issued a certificate for the master's names"
assert_not_contains run.out "asking the CA to validate" "without validating anything"
[ -f out/certs/f1.example.test.ecdsa.pem ] || fail "no certificate file"
pass "the certificate is installed"

config_replace follower.json certificates '{"f3.example.test": {"alt_names": {"example.test": ["f3"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --config follower.json > /dev/null
assert_eq 2 "$RUN_RC" "a name the master did not authorize fails on the follower"
assert_contains run.out "follower mode: the authorization for f3.example.test is pending, not valid" \
    "and says the master must validate it"
assert_eq "" "$(dig +short +norecurse -p "$DNS_PORT" @127.0.0.1 TXT _acme-challenge.f3.example.test)" \
    "nothing was published"
[ ! -e out/certs/f3.example.test.ecdsa.pem ] || fail "a certificate was written"
pass "no certificate was written"
