#!/usr/bin/env bash
# ACME beyond the basics, against a pebble that requires External Account
# Binding, offers an alternate chain to a second root (chains of three) and
# reuses every valid authorization:
#   EAB refused without a binding and accepted with one; preferred_chain;
#   tls-alpn-01 through the built-in responder; a wildcard with its base
#   name through dns-01 hooks; 150 names validated in orders of 100;
#   account show / update / key-rollover (then a new order) / deactivate;
#   revocation by the account key and by the certificate's own key.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${EAB_KID:-}" ] || fail "this test needs a rig started with --eab"
test_setup protocol

curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0" > "$WORK/root0.pem"
curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/1" > "$WORK/root1.pem" ||
    fail "pebble offers no alternate root (rig without --alternate-roots)"
ALT_ROOT_CN=$(openssl x509 -in "$WORK/root1.pem" -noout -subject -nameopt multiline |
    sed -n 's/^ *commonName *= *//p')
[ -n "$ALT_ROOT_CN" ] || fail "cannot read the alternate root's common name"

# The dns-01 hooks: certbot's variables in, pebble-challtestsrv's TXT
# records out.  Names arrive in the environment, never on a command line.
cat > "$WORK/dns-hook.sh" <<EOF
#!/bin/sh
set -eu
echo "\$1 \$KEYSVC_IDENTIFIER \$KEYSVC_RECORD \$CERTBOT_REMAINING_CHALLENGES" >> "$WORK/dns-hook.log"
case "\$1" in
  auth)    curl -sf -d "{\"host\": \"\$KEYSVC_RECORD.\", \"value\": \"\$CERTBOT_VALIDATION\"}" "$CHALLTESTSRV_MGMT_URL/set-txt"
           echo "record-for-\$CERTBOT_DOMAIN" ;;
  cleanup) curl -sf -d "{\"host\": \"\$KEYSVC_RECORD.\"}" "$CHALLTESTSRV_MGMT_URL/clear-txt"
           echo "cleanup \$KEYSVC_IDENTIFIER saw \$CERTBOT_AUTH_OUTPUT" >> "$WORK/dns-hook.log" ;;
esac
EOF
chmod 755 "$WORK/dns-hook.sh"

# split.test and n1..n150.split.test; every name with the webroot.
split_names=$(/usr/bin/python3 -c 'import json; print(json.dumps(["@"] + ["n%d" % i for i in range(1, 151)]))')
split_challenges=$(/usr/bin/python3 -c "import json; d = {'n%d.split.test' % i: '$WEBROOT' for i in range(1, 151)}; d['split.test'] = d['eab.test'] = '$WEBROOT'; print(json.dumps(d))")

certs=$(cat <<EOF
{
  "eab.test": {"alt_names": {"eab.test": ["@"]}, "key_types": ["ecdsa"]},
  "alpn.test": {"alt_names": {"alpn.test": ["@"]}, "key_types": ["ecdsa"]},
  "wild.test": {"alt_names": {"wild.test": ["@", "*"]}, "key_types": ["ecdsa"]},
  "split.test": {"alt_names": {"split.test": $split_names}, "key_types": ["ecdsa"]}
}
EOF
)
write_config keysvc.json "$certs" "$split_challenges" "\"preferred_chain\": \"$ALT_ROOT_CN\""
config_merge keysvc.json "{\"tls_alpn_challenges\": {\"alpn.test\": \"127.0.0.1:$TLS_PORT\"},
    \"dns_hooks\": {\"auth\": \"$WORK/dns-hook.sh auth\", \"cleanup\": \"$WORK/dns-hook.sh cleanup\",
                    \"timeout\": 30}}"
cd "$WORK"

# ---------------------------------------------------------------- EAB
run_keysvc run --config keysvc.json eab.test > /dev/null
assert_eq 2 "$RUN_RC" "without a binding, a CA that requires EAB is refused"
assert_contains run.out "requires external account binding" "the reason is named"
assert_eq 0 "$(token_key_count)" "no key was generated for the refused account"
config_merge keysvc.json '{"account": {"email": "admin@example.test", "eab_kid": "k"}}'
run_keysvc run --config keysvc.json eab.test > /dev/null
assert_eq 2 "$RUN_RC" "eab_kid without eab_hmac_key is a configuration error"
assert_contains run.out "eab_hmac_key" "naming the missing setting"

wrong_key=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
config_merge keysvc.json "{\"account\": {\"email\": \"admin@example.test\", \"eab_kid\": \"$EAB_KID\",
    \"eab_hmac_key\": \"$wrong_key\"}}"
run_keysvc run --config keysvc.json eab.test > /dev/null
assert_eq 2 "$RUN_RC" "a binding with the wrong MAC key is refused by the CA"
assert_contains run.out "registering the ACME account" "the failing step is named"
assert_eq 0 "$(sql "SELECT count(*) FROM accounts WHERE account_url IS NOT NULL")" "no account recorded"

config_merge keysvc.json "{\"account\": {\"email\": \"admin@example.test\", \"eab_kid\": \"$EAB_KID\",
    \"eab_hmac_key\": \"$EAB_HMAC_KEY\", \"eab_alg\": \"HS512\"}}"
run_keysvc run --config keysvc.json eab.test > /dev/null
assert_eq 0 "$RUN_RC" "with account.eab_kid and eab_hmac_key (HS512) the account is registered"
assert_contains run.out "registered ACME account" "a new account was registered"

# ----------------------------------------------------- preferred_chain
openssl verify -CAfile root1.pem -untrusted out/certs/eab.test_chain.ecdsa.pem \
    out/certs/eab.test.ecdsa.pem > /dev/null || fail "the kept chain does not lead to $ALT_ROOT_CN"
if openssl verify -CAfile root0.pem -untrusted out/certs/eab.test_chain.ecdsa.pem \
    out/certs/eab.test.ecdsa.pem > /dev/null 2>&1; then
    fail "the kept chain still leads to the default root"
fi
pass "preferred_chain \"$ALT_ROOT_CN\" picked the alternate chain"
assert_eq 3 "$(grep -c 'BEGIN CERTIFICATE' out/certs/eab.test_chain.ecdsa.pem)" \
    "the alternate chain has three intermediates (PEBBLE_CHAIN_LENGTH=3)"

# ------------------------------------------------------------ tls-alpn-01
run_keysvc run --config keysvc.json --verbose alpn.test > /dev/null
assert_eq 0 "$RUN_RC" "alpn.test is validated by tls-alpn-01"
assert_contains run.out "tls-alpn-01: answering for 1 name(s) on 127.0.0.1 port $TLS_PORT" \
    "the built-in responder answered on pebble's tlsPort"
if (exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null; then
    fail "the tls-alpn-01 responder still listens after the run"
fi
pass "the responder is gone after the run"

# ------------------------------------------- wildcard + base name, dns-01
run_keysvc run --config keysvc.json wild.test > /dev/null
assert_eq 0 "$RUN_RC" "wild.test and *.wild.test are validated through the dns hooks"
assert_eq 2 "$(grep -c '^auth ' dns-hook.log)" "the auth hook ran once per name"
assert_contains dns-hook.log "auth *.wild.test _acme-challenge.wild.test" "the wildcard's record name"
assert_contains dns-hook.log "auth wild.test _acme-challenge.wild.test" "the base name's record name"
assert_contains dns-hook.log "cleanup wild.test saw record-for-wild.test" \
    "the cleanup hook got the auth hook's output (CERTBOT_AUTH_OUTPUT)"
assert_eq 2 "$(grep -c '^cleanup .* _acme-challenge' dns-hook.log)" "the cleanup hook ran once per name"
sans=$(openssl x509 -in out/certs/wild.test.ecdsa.pem -noout -ext subjectAltName | tail -1 | tr -d ' ')
assert_eq "DNS:wild.test,DNS:*.wild.test" "$sans" "one certificate holds the base name and the wildcard"
[ -f "out/certs/_.wild.test.ecdsa.pem" ] || [ -f out/certs/wild.test.ecdsa.pem ] || fail "no file"

# ----------------------------------------------- 150 names, two orders
run_keysvc run --config keysvc.json --verbose split.test > /dev/null
assert_eq 0 "$RUN_RC" "a certificate for 151 names is issued"
assert_contains run.out "validating names 1-100 of 151" "the first 100 names were validated in an order of their own"
assert_contains run.out "validating names 101-151 of 151" "the other 51 in a second one"
assert_contains run.out "all 151 authorizations were already valid" \
    "the certificate's own order reused every authorization"
n_sans=$(openssl x509 -in out/certs/split.test.ecdsa.pem -noout -ext subjectAltName | tail -1 | tr ',' '\n' | grep -c DNS:)
assert_eq 151 "$n_sans" "the certificate names all 151"

# -------------------------------------------------------------- account
run_keysvc account show --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "account show"
assert_contains run.out "status:  valid" "the CA reports the account valid"
assert_contains run.out "contact: mailto:admin@example.test" "with its contact"

config_merge keysvc.json '{"account": {"email": "ops@example.test"}}'
run_keysvc account update --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "account update"
assert_contains run.out "contact: mailto:ops@example.test" "the CA now has the new contact"
assert_eq "ops@example.test" "$(sql "SELECT contact FROM accounts WHERE status = 'valid'")" \
    "the database has the new contact"

old_key=$(sql "SELECT k.spki_sha256 FROM accounts a JOIN keys k ON k.id = a.key_id WHERE a.status = 'valid'")
account_url=$(sql "SELECT account_url FROM accounts WHERE status = 'valid'")
run_keysvc account key-rollover --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "account key-rollover"
new_key=$(sql "SELECT k.spki_sha256 FROM accounts a JOIN keys k ON k.id = a.key_id WHERE a.status = 'valid'")
[ "$new_key" != "$old_key" ] || fail "the account still points at the old key"
pass "the account points at a new key"
assert_eq "$account_url" "$(sql "SELECT account_url FROM accounts WHERE status = 'valid'")" \
    "the account URL is unchanged"
assert_eq "destroyed" "$(sql "SELECT state FROM keys WHERE spki_sha256 = '$old_key'")" \
    "the old account key is destroyed"
assert_eq "1" "$(sql "SELECT count(*) FROM keys WHERE purpose = 'account' AND state = 'live'")" \
    "one live account key"

# A new order signed by the new key (the revocation below re-issues).
run_keysvc revoke --config keysvc.json --reason superseded eab.test > /dev/null
assert_eq 0 "$RUN_RC" "revoke by the account key (the new one)"
serial=$(sql "SELECT serial FROM certificates WHERE name = 'eab.test' AND revoked_at IS NOT NULL")
assert_eq "Revoked" "$(pebble_cert_status "$serial")" "pebble reports eab.test revoked"
assert_eq "4" "$(sql "SELECT revocation_reason FROM certificates WHERE serial = '$serial'")" \
    "the reason (superseded = 4) is recorded"
run_keysvc run --config keysvc.json eab.test > /dev/null
assert_eq 0 "$RUN_RC" "the next run orders a replacement with the new account key"
assert_contains run.out "issued eab.test (ecdsa)" "a replacement was issued"

serial=$(sql "SELECT serial FROM certificates WHERE name = 'alpn.test' AND is_current")
run_keysvc revoke --config keysvc.json --with-certificate-key --reason keyCompromise alpn.test > /dev/null
assert_eq 0 "$RUN_RC" "revoke signed by the certificate's own key"
assert_eq "Revoked" "$(pebble_cert_status "$serial")" "pebble reports alpn.test revoked"
assert_contains run.out "rolled over alpn.test (ecdsa)" "keyCompromise rolls the key over"
revoked_key=$(sql "SELECT key_id FROM certificates WHERE serial = '$serial'")
primary=$(sql "SELECT id FROM keys WHERE name = 'alpn.test' AND role = 'primary'")
[ "$primary" != "$revoked_key" ] || fail "the compromised key is still the primary"
assert_eq "previous" "$(sql "SELECT role FROM keys WHERE id = $revoked_key")" \
    "the compromised key is only the previous key now (destroyed by the next run)"
run_keysvc run --config keysvc.json alpn.test > /dev/null
assert_eq 0 "$RUN_RC" "the next run issues alpn.test again"
assert_eq "$primary" "$(sql "SELECT key_id FROM certificates WHERE name = 'alpn.test' AND is_current")" \
    "on the new primary key"
assert_eq "destroyed" "$(sql "SELECT state FROM keys WHERE id = $revoked_key")" \
    "and the compromised key is destroyed"
run_keysvc revoke --config keysvc.json eab.test alpn.test > /dev/null
assert_eq 0 "$RUN_RC" "two certificates revoked in one command"
run_keysvc revoke --config keysvc.json alpn.test > /dev/null
assert_eq 2 "$RUN_RC" "revoking again: nothing current to revoke"
assert_contains run.out "no current certificate to revoke" "said so"

run_keysvc account deactivate --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "deactivate without --yes is refused"
run_keysvc account deactivate --yes --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "account deactivate"
assert_eq "deactivated" "$(sql "SELECT status FROM accounts WHERE account_url = '$account_url'")" \
    "the database records the deactivation"
assert_eq "0" "$(sql "SELECT count(*) FROM keys WHERE purpose = 'account' AND state = 'live'")" \
    "the deactivated account's key is destroyed"
config_merge keysvc.json '{"account": {"eab_alg": "HS384"}}'
run_keysvc account show --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "account show after the deactivation: no account (show registers none)"
assert_contains run.out "no ACME account is recorded" "said so"
run_keysvc account update --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "account update registers a new account"
assert_contains run.out "registered ACME account" "a new account was registered (a new key, EAB with HS384)"
new_url=$(sql "SELECT account_url FROM accounts WHERE status = 'valid'")
[ -n "$new_url" ] && [ "$new_url" != "$account_url" ] || fail "no new account URL recorded"
pass "the database holds the new account beside the deactivated one"
