#!/usr/bin/env bash
# The certificate lifecycle the acmebot way, against pebble and BIND9:
#   acmebot's documented examples (the basic one, shared private_keys, mixed
#   http and dns) with every output file, its mode, the hooks in order and
#   the services reloaded once; a hook field holding shell metacharacters;
#   renewal by the clock (KEYSVC_TEST_CLOCK_OFFSET), re-issue on a SAN
#   change, the backup key expiry notice and auto_rollover, the HPKP guard
#   and --force, --revoke then the rollover of the next run; a write failure
#   on the third of four files; two runs at once.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${DNS_PORT:-}" ] || fail "this test needs a rig started with --bind"
test_setup lifecycle
cd "$WORK"

mode_of() { stat -c %a "$1"; }
san_of() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr -d ' \n'; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# Seconds until a certificate expires.
seconds_left() { echo $(( $(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s) )); }

# A hook that records its arguments, one line per run, fields separated by |.
cat > hook.sh <<EOF
#!/bin/sh
out=$WORK/hooks.log
first=1
for a in "\$@"; do
    if [ \$first -eq 1 ]; then printf '%s' "\$a" >> "\$out"; first=0; else printf '|%s' "\$a" >> "\$out"; fi
done
echo >> "\$out"
EOF
chmod 755 hook.sh
# The root pebble chains to, beside the configuration (acmebot's
# root_cert.<type>.pem), for the full certificate.
curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0" > root_cert.ecdsa.pem
cp root_cert.ecdsa.pem root_cert.rsa.pem

write_config keysvc.json '{}' '{}' "\"dns_resolvers\": [\"$DNS_PRIMARY\"], \"dns_port\": $DNS_PORT,
    \"max_dns_lookup_attempts\": 30, \"dns_lookup_delay\": 1, \"ari\": false"
config_merge keysvc.json "{\"directories\": {\"update_key\": \"$DNS_KEY_DIR\"},
    \"zone_update_keys\": {\"example.test\": \"acme-sha256.key\", \"other.test\": \"acme-sha512.key\"},
    \"services\": {\"web\": \"$WORK/hook.sh service web\", \"mail\": \"$WORK/hook.sh service mail\"},
    \"hooks\": {
        \"private_key_installed\": \"$WORK/hook.sh private_key_installed {key_name} {key_type} {private_key_file}\",
        \"backup_key_installed\": \"$WORK/hook.sh backup_key_installed {key_name} {key_type} {backup_key_file}\",
        \"hpkp_header_installed\": \"$WORK/hook.sh hpkp_header_installed {key_name} {server} {hpkp_file}\",
        \"certificate_installed\": \"$WORK/hook.sh certificate_installed {certificate_name} {key_type} {certificate_file}\",
        \"full_certificate_installed\": \"$WORK/hook.sh full_certificate_installed {certificate_name} {key_type} {full_certificate_file}\",
        \"chain_installed\": \"$WORK/hook.sh chain_installed {certificate_name} {key_type} {chain_file}\",
        \"params_installed\": \"$WORK/hook.sh params_installed {certificate_name} {params_file}\",
        \"private_key_rollover\": \"$WORK/hook.sh private_key_rollover {key_name} {key_type} {private_key_file} {backup_key_file}\"}}"

# ------------------------------------------------ acmebot's basic example
config_replace keysvc.json certificates '{"example.test": {"alt_names": {"example.test": ["@", "www"]},
    "services": ["web"]}}'
: > hooks.log
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the basic example (both key types) issued"
for t in rsa ecdsa; do
    c=out/certs/example.test.$t.pem
    assert_eq "DNS:example.test,DNS:www.example.test" "$(san_of "$c")" "$t certificate names"
    assert_eq 644 "$(mode_of "$c")" "$t certificate mode"
    assert_eq 644 "$(mode_of out/certs/example.test_chain.$t.pem)" "$t chain mode"
    cat "$c" root_cert.$t.pem | cmp -s - out/certs/example.test+root.$t.pem ||
        fail "$t full certificate is not certificate + chain + root"
    pass "$t full certificate = certificate, chain and root_cert.$t.pem"
    openssl verify -CAfile root_cert.$t.pem -untrusted out/certs/example.test_chain.$t.pem "$c" >/dev/null ||
        fail "$t certificate does not verify against the root"
    for f in out/private/example.test.$t.key out/private/example.test_backup.$t.key; do
        grep -q "^pkcs11:.*token=$TOKEN" "$f" || fail "$f does not hold the key's pkcs11: URI"
        assert_eq 640 "$(mode_of "$f")" "$f mode"
    done
done
[ "$(cat out/private/example.test.ecdsa.key)" != "$(cat out/private/example.test_backup.ecdsa.key)" ] ||
    fail "primary and backup key URIs are the same"
pass "primary and backup keys are different token objects"
openssl dhparam -in out/params/example.test_param.pem -noout -check >/dev/null 2>&1 ||
    fail "the parameter file has no usable DH parameters"
# openssl ecparam reads the first PEM block only: give it the EC block.
sed -n '/BEGIN EC PARAMETERS/,/END EC PARAMETERS/p' out/params/example.test_param.pem |
    openssl ecparam -noout -text | grep -q "secp384r1\|P-384" ||
    fail "the parameter file has no secp384r1 EC parameters"
pass "parameter file: DH (ffdhe2048) and EC (secp384r1) parameters"
# HPKP: four pins (primary and backup of two key types), for both servers.
for server in apache nginx; do
    h=out/hpkp/example.test.$server
    assert_eq 4 "$(grep -o 'pin-sha256=' "$h" | wc -l)" "HPKP header for $server pins four keys"
done
grep -q '^add_header Public-Key-Pins "pin-sha256=.*max-age=5184000; includeSubDomains" always;$' \
    out/hpkp/example.test.nginx || fail "nginx HPKP header: $(cat out/hpkp/example.test.nginx)"
pass "nginx HPKP header line with max-age of hpkp_days (60)"
pin=$(openssl x509 -in out/certs/example.test.ecdsa.pem -noout -pubkey | openssl pkey -pubin -outform DER |
      openssl dgst -sha256 -binary | base64)
assert_contains out/hpkp/example.test.nginx "pin-sha256=\\\"$pin\\\"" "the ecdsa certificate's key is pinned"
# Hooks in acmebot's order, services once.
expected_order="private_key_installed private_key_installed backup_key_installed backup_key_installed
hpkp_header_installed hpkp_header_installed certificate_installed certificate_installed
full_certificate_installed full_certificate_installed chain_installed chain_installed
params_installed service"
assert_eq "$(echo $expected_order)" "$(cut -d'|' -f1 hooks.log | tr '\n' ' ' | sed 's/ $//')" \
    "hooks ran in acmebot's order, the service after all of them"
assert_eq 1 "$(grep -c '^service|web$' hooks.log)" "service web reloaded once for two key types"
assert_not_contains hooks.log "service|mail" "service mail (not the certificate's) left alone"
grep -q "^certificate_installed|example.test|ecdsa|$WORK/out/certs/example.test.ecdsa.pem$" hooks.log ||
    fail "certificate_installed fields: $(cat hooks.log)"
pass "certificate_installed got {certificate_name} {key_type} {certificate_file}"

# Without root_cert.ecdsa.pem a renewal cannot write the ecdsa full
# certificate: the old one, stale now, is archived rather than left to be
# served; it is back once the root is.
mv root_cert.ecdsa.pem root.saved
run_keysvc run --renew --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "renewed without the ecdsa root"
[ ! -e out/certs/example.test+root.ecdsa.pem ] || fail "the stale ecdsa full certificate is still there"
assert_contains run.out "example.test+root.ecdsa.pem: cannot be written now" "the archiving is explained"
cat out/certs/example.test.rsa.pem root_cert.rsa.pem | cmp -s - out/certs/example.test+root.rsa.pem ||
    fail "the rsa full certificate was not renewed"
pass "the rsa full certificate, which has its root, was renewed"
mv root.saved root_cert.ecdsa.pem
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the root is back"
cat out/certs/example.test.ecdsa.pem root_cert.ecdsa.pem | cmp -s - out/certs/example.test+root.ecdsa.pem ||
    fail "the ecdsa full certificate did not come back"
pass "the ecdsa full certificate is written again"

# Nothing to do: silent, exit 1, no hook.
: > hooks.log
run_keysvc run --config keysvc.json > run.stdout
assert_eq 1 "$RUN_RC" "a second run has nothing to do"
assert_eq "" "$(cat run.out)" "and says nothing (cron)"
assert_eq "" "$(cat hooks.log)" "and runs no hook or service"

# ------------------------------------------------ shared private_keys
config_replace keysvc.json certificates '{}'
config_replace keysvc.json private_keys '{"shared": {"key_types": ["ecdsa"], "certificates": {
    "s1.example.test": {"alt_names": {"example.test": ["s1"]}, "services": ["web"]},
    "s2.other.test": {"alt_names": {"other.test": ["s2"]}, "services": ["web", "mail"]}}}}'
: > hooks.log
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the private_keys example issued"
assert_eq "$(cert_pubkey_hash out/certs/s1.example.test.ecdsa.pem)" \
    "$(cert_pubkey_hash out/certs/s2.other.test.ecdsa.pem)" "both certificates use the shared key"
[ -f out/private/shared.ecdsa.key ] || fail "no key file named after the private key"
pass "the key file is named after the private key (shared.ecdsa.key)"
assert_eq 1 "$(grep -c '^service|web$' hooks.log)" "web reloaded once for two certificates"
assert_eq 1 "$(grep -c '^service|mail$' hooks.log)" "mail reloaded once"
# A rollover asked for by one certificate's name re-issues every certificate
# of the key: none is left on the old key while the key file names the new.
shared_before=$(cert_pubkey_hash out/certs/s1.example.test.ecdsa.pem)
run_keysvc run --rollover --force s1.example.test --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "rollover of the shared key by one certificate's name"
[ "$(cert_pubkey_hash out/certs/s2.other.test.ecdsa.pem)" != "$shared_before" ] ||
    fail "s2.other.test was left on the old key"
assert_eq "$(cert_pubkey_hash out/certs/s1.example.test.ecdsa.pem)" \
    "$(cert_pubkey_hash out/certs/s2.other.test.ecdsa.pem)" "both certificates moved to the new key"
assert_contains run.out "issued s2.other.test (ecdsa)" "the unnamed certificate was issued again"
# keyCompromise on both certificates of the key: one rollover (onto the
# pinned backup), not one per certificate.
backup_before=$(sql "SELECT id FROM keys WHERE name = 'shared' AND role = 'backup' AND state = 'live'")
run_keysvc revoke --config keysvc.json --reason keyCompromise s1.example.test s2.other.test > /dev/null
assert_eq 0 "$RUN_RC" "both certificates of the shared key revoked for key compromise"
assert_eq 1 "$(grep -c 'rolled over shared (ecdsa)' run.out)" "one rollover for the two certificates"
assert_eq "$backup_before" "$(sql "SELECT id FROM keys WHERE name = 'shared' AND role = 'primary' AND state = 'live'")" \
    "the pinned backup became the primary"
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the next run issues both again"
assert_eq "$(cert_pubkey_hash out/certs/s1.example.test.ecdsa.pem)" \
    "$(cert_pubkey_hash out/certs/s2.other.test.ecdsa.pem)" "both on the new primary"

# ------------------------------------------------ mixed http and dns
mkdir -p webroot/.well-known/acme-challenge
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory webroot "$HTTP_PORT" > web.log 2>&1 &
web_pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && break; sleep 0.1; done
config_replace keysvc.json private_keys '{}'
config_replace keysvc.json http_challenges "{\"web.example.test\": \"$WORK/webroot/.well-known/acme-challenge\"}"
config_replace keysvc.json certificates '{"mixed": {"common_name": "web.example.test",
    "alt_names": {"example.test": ["web", "dns"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
kill "$web_pid"; wait "$web_pid" 2>/dev/null || true
assert_eq 0 "$RUN_RC" "http-01 and dns-01 in one certificate"
assert_contains run.out "web.example.test: asking the CA to validate (http-01)" "web by http-01"
assert_contains run.out "dns.example.test: asking the CA to validate (dns-01)" "dns by dns-01"
config_replace keysvc.json http_challenges '{}'

# ------------------------------------------------ shell metacharacters in a field
mkdir -p 'out/we;ird $(touch PWNED) `touch PWNED2`'
# (the chain: keysvc's own nginx snippets refuse such a certificate path)
config_merge keysvc.json "{\"directories\": {\"chain\": \"out/we;ird \$(touch PWNED) \`touch PWNED2\`\"}}"
: > hooks.log
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "files written into a directory with shell metacharacters"
[ ! -e PWNED ] && [ ! -e PWNED2 ] && [ ! -e "out/we;ird \$(touch PWNED) \`touch PWNED2\`/PWNED" ] ||
    fail "a hook field ran as shell code"
grep -qF "chain_installed|mixed|ecdsa|$WORK/out/we;ird \$(touch PWNED) \`touch PWNED2\`/mixed_chain.ecdsa.pem" hooks.log ||
    fail "the path did not reach the hook as one argument: $(cat hooks.log)"
pass "a field with ; \$( ) and backquotes reached the hook as one argument, unexecuted"
config_merge keysvc.json '{"directories": {"chain": "out/certs"}}'

# ------------------------------------------------ SAN change, renewal by clock
config_replace keysvc.json certificates '{"life.example.test": {"alt_names": {"example.test": ["life"]},
    "key_types": ["ecdsa"]}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "life.example.test issued"
first_serial=$(serial_of out/certs/life.example.test.ecdsa.pem)
config_replace keysvc.json certificates '{"life.example.test": {"alt_names": {"example.test": ["life", "life2"]},
    "key_types": ["ecdsa"]}}'
run_keysvc run --verbose --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "re-issued after an alternative name was added"
assert_contains run.out "life.example.test (ecdsa): issuing: names changed" "because the names changed"
assert_eq "DNS:life.example.test,DNS:life2.example.test" "$(san_of out/certs/life.example.test.ecdsa.pem)" \
    "the new certificate has both names"
ls out/archive/life.example.test/*/life.example.test.ecdsa.pem >/dev/null 2>&1 ||
    fail "the replaced certificate is not in the archive"
pass "the replaced certificate was archived under archive/<name>/<stamp>/"
second_serial=$(serial_of out/certs/life.example.test.ecdsa.pem)
left_days=$(( $(seconds_left out/certs/life.example.test.ecdsa.pem) / 86400 ))
KEYSVC_TEST_CLOCK_OFFSET="$(( left_days - 31 ))d" run_keysvc run --config keysvc.json > /dev/null
assert_eq 1 "$RUN_RC" "31 days before expiry (renewal_days 30): not yet"
KEYSVC_TEST_CLOCK_OFFSET="$(( left_days - 29 ))d" run_keysvc run --verbose --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "29 days before expiry: renewed"
assert_contains run.out "issuing: due for renewal" "because it was due"
[ "$(serial_of out/certs/life.example.test.ecdsa.pem)" != "$second_serial" ] || fail "same serial after renewal"
pass "a new certificate was installed"

# ------------------------------------------------ backup expiry, auto rollover, HPKP guard
key_before=$(cert_pubkey_hash out/certs/life.example.test.ecdsa.pem)
config_merge keysvc.json '{"settings": {"expiration_days": 100}}'
KEYSVC_TEST_CLOCK_OFFSET=101d run_keysvc run --config keysvc.json > /dev/null
assert_eq 1 "$RUN_RC" "an old backup key alone changes nothing without auto_rollover"
assert_contains run.out "past expiration_days" "but the notice recommends a rollover"
assert_contains run.out "keysvc run --rollover life.example.test" "and says how"
config_merge keysvc.json '{"settings": {"expiration_days": 100, "auto_rollover": true}}'
: > hooks.log
KEYSVC_TEST_CLOCK_OFFSET=101d run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "auto_rollover rolled the key over"
assert_contains run.out "rolled over life.example.test (ecdsa): the backup key is 101 days old" "because the backup expired"
[ "$(cert_pubkey_hash out/certs/life.example.test.ecdsa.pem)" != "$key_before" ] || fail "the certificate key did not change"
pass "the certificate was re-issued on the new key"
grep -q "^private_key_rollover|life.example.test|ecdsa|$WORK/out/private/life.example.test.ecdsa.key|$WORK/out/private/life.example.test_backup.ecdsa.key$" hooks.log ||
    fail "private_key_rollover fields: $(cat hooks.log)"
pass "private_key_rollover hook with the key files"
KEYSVC_TEST_CLOCK_OFFSET=110d run_keysvc run --rollover --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a rollover onto a 9-day-old backup key is refused"
assert_contains run.out "younger than hpkp_days (60)" "because of the HPKP guard"
KEYSVC_TEST_CLOCK_OFFSET=110d run_keysvc run --rollover --force --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "--force rolls over all the same"

# ------------------------------------------------ --revoke, then the next run rolls over
serial=$(serial_of out/certs/life.example.test.ecdsa.pem)
key_before=$(cert_pubkey_hash out/certs/life.example.test.ecdsa.pem)
run_keysvc run --revoke --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "--revoke without names is refused"
run_keysvc run --revoke life.example.test --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "--revoke life.example.test"
assert_eq Revoked "$(pebble_cert_status "$serial")" "pebble has the certificate revoked"
[ ! -e out/certs/life.example.test.ecdsa.pem ] || fail "the revoked certificate is still installed"
for f in life.example.test.ecdsa.pem life.example.test+root.ecdsa.pem; do
    [ "$(ls out/archive/life.example.test/*/"$f" 2>/dev/null | wc -l)" -ge 1 ] || fail "$f not archived"
done
pass "its certificate files were moved to the archive"
KEYSVC_TEST_CLOCK_OFFSET=110d run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the next run"
assert_contains run.out "rolled over life.example.test (ecdsa): its certificates were revoked" "rolled the key over"
[ "$(cert_pubkey_hash out/certs/life.example.test.ecdsa.pem)" != "$key_before" ] || fail "same key after --revoke"
pass "and issued a certificate on a new key"

# ------------------------------------------------ a failure on the third of four files
# Outputs: backup key URI, HPKP (nginx), certificate, full certificate.
config_replace keysvc.json hpkp_headers '{"apache": null}'
config_merge keysvc.json '{"directories": {"private_key": null, "chain": null, "param": null}}'
run_keysvc run --config keysvc.json > /dev/null
[ "$RUN_RC" -le 1 ] || fail "settling the reduced outputs failed (rc $RUN_RC)"
four="out/private/life.example.test_backup.ecdsa.key out/hpkp/life.example.test.nginx
      out/certs/life.example.test.ecdsa.pem out/certs/life.example.test+root.ecdsa.pem"
before=$(sha256sum $four)
archived_before=$(find out/archive -type f | wc -l)
KEYSVC_TEST_TXN_FAIL_AT=3 KEYSVC_TEST_CLOCK_OFFSET=200d run_keysvc run --rollover --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a write failure fails the run"
assert_contains run.out "nothing was replaced" "and says nothing was replaced"
assert_eq "$before" "$(sha256sum $four)" "all four files are untouched"
assert_eq "" "$(find out -name '.*keysvc-tmp*')" "no temporary file is left"
assert_eq "$archived_before" "$(find out/archive -type f | wc -l)" "nothing was archived"
KEYSVC_TEST_CLOCK_OFFSET=200d run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the next run writes them"
assert_eq 4 "$(grep -c '^wrote ' run.out)" "all four files at once"
# The newest by mtime (the runs above moved the clock back and forth).
newest=$(ls -td out/archive/life.example.test/*/ | head -1)
for f in $four; do
    [ -f "$newest/$(basename "$f")" ] || fail "$f not in the newest archive $newest"
done
assert_eq 4 "$(find "$newest" -type f | wc -l)" "the newest archive holds exactly the four replaced files"

# ------------------------------------------------ two runs at once
cat > slow-hook.sh <<EOF
#!/bin/sh
touch $WORK/slow.started
sleep 6
EOF
chmod 755 slow-hook.sh
config_merge keysvc.json "{\"hooks\": {\"certificate_installed\": \"$WORK/slow-hook.sh\"}}"
rm -f slow.started
KEYSVC_TEST_CLOCK_OFFSET=200d "$KEYSVC" run --renew --config keysvc.json > first.out 2>&1 &
first=$!
for _ in $(seq 300); do [ -e slow.started ] && break; sleep 0.1; done
[ -e slow.started ] || fail "the first run never reached its hook"
run_keysvc run --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a second run while the first holds the lock fails"
assert_contains run.out "another keysvc run (pid $first" "and names the holder"
wait "$first" || fail "the first run failed: $(cat first.out)"
pass "the first run finished normally"
