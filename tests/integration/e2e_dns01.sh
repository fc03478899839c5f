#!/usr/bin/env bash
# dns-01 against a real BIND9 primary and a lagging secondary, pebble
# validating through that BIND:
#   RFC 2136 with TSIG (tsig-keygen hmac-sha256 and hmac-sha512 files, and a
#   dnssec-keygen hmac-md5 pair), a base name and its wildcard (two values on
#   one name), names in two zones, a CNAME into a third zone, the SOA primary
#   found when no server is given; waiting for a secondary; local updates
#   (challenge file + reload_zone_command); acmebot's dns hooks; and every
#   error: a wrong key, a refused update, a name outside every zone, a zone
#   with no method, a record that never reaches a name server.  After each
#   run no record keysvc added is left in the zone.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${DNS_PORT:-}" ] || fail "this test needs a rig started with --bind"
test_setup dns01
cd "$WORK"

# TXT values at a name, asked of one server (sorted, one per line).
txt_at() { # server-ip name
    dig +short +norecurse -p "$DNS_PORT" "@$1" TXT "$2" | tr -d '"' | sort
}
assert_no_txt() { # name what
    local left
    left=$(txt_at 127.0.0.1 "$1")
    [ -z "$left" ] || fail "$2: TXT $1 still holds: $left"
    pass "$2: no TXT left at $1"
}
san_of() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr -d ' \n'; }

write_config keysvc.json '{}' '{}' "\"dns_resolvers\": [\"$DNS_PRIMARY\"], \"dns_port\": $DNS_PORT,
    \"max_dns_lookup_attempts\": 30, \"dns_lookup_delay\": 1"
config_merge keysvc.json "{\"directories\": {\"certificate\": \"out/certs\", \"chain\": \"out/certs\",
        \"private_key\": \"out/private\", \"state\": \"state\", \"update_key\": \"$DNS_KEY_DIR\",
        \"challenge\": \"challenges\"},
    \"zone_update_keys\": {
        \"example.test\": \"acme-sha256.key\",
        \"other.test\": {\"file\": \"$(basename "$TSIG_PAIR_KEY")\", \"server\": \"127.0.0.1\", \"port\": $DNS_PORT},
        \"delegated.test\": \"acme-sha256.key\",
        \"lag.test\": \"acme-sha256.key\",
        \"noupdate.test\": \"acme-sha256.key\"}}"
set_certs() { config_replace keysvc.json certificates "$1"; }
# ------------------------------------------------ base name and wildcard
set_certs '{"example.test": {"alt_names": {"example.test": ["@", "*"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "example.test and *.example.test issued by dns-01 (RFC 2136, hmac-sha256)"
assert_eq "DNS:example.test,DNS:*.example.test" "$(san_of out/certs/example.test.ecdsa.pem)" \
    "the certificate names both"
values_added=$(grep -c "added TXT _acme-challenge.example.test in zone example.test at 127.0.0.1:$DNS_PORT" run.out || true)
assert_eq 2 "$values_added" "two values were added to one name (the SOA primary, no server configured)"
assert_contains run.out "every record is on all 1 name server(s) of 1 zone(s)" "propagation was checked"
assert_no_txt _acme-challenge.example.test "after the run"

# ------------------------------------------------ two zones, md5 key pair
set_certs '{"multi": {"common_name": "a.example.test",
    "alt_names": {"example.test": ["a"], "other.test": ["b"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "names in two zones issued in one order"
assert_contains run.out "added TXT _acme-challenge.b.other.test in zone other.test" \
    "other.test was updated with the dnssec-keygen hmac-md5 pair"
assert_eq "DNS:a.example.test,DNS:b.other.test" "$(san_of out/certs/multi.ecdsa.pem)" "both names"
assert_no_txt _acme-challenge.a.example.test "zone example.test"
assert_no_txt _acme-challenge.b.other.test "zone other.test"

# other.test again with the hmac-sha512 key file
config_merge keysvc.json "{\"zone_update_keys\": {\"example.test\": \"acme-sha256.key\",
    \"other.test\": \"acme-sha512.key\", \"delegated.test\": \"acme-sha256.key\",
    \"lag.test\": \"acme-sha256.key\", \"noupdate.test\": \"acme-sha256.key\"}}"
set_certs '{"c.other.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "hmac-sha512 key file"
assert_no_txt _acme-challenge.c.other.test "hmac-sha512"

# ------------------------------------------------ CNAME into another zone
set_certs '{"cname.example.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "a name whose _acme-challenge is a CNAME"
assert_contains run.out "_acme-challenge.cname.example.test is a CNAME for cname.delegated.test" \
    "the CNAME was followed"
assert_contains run.out "added TXT cname.delegated.test in zone delegated.test" \
    "the record went into the target's zone"
assert_no_txt cname.delegated.test "zone delegated.test"

# ------------------------------------------------ a lagging secondary
# lag.test has two name servers: the primary and a secondary that only
# catches up when told to.  keysvc must keep asking until both answer.
set_certs '{"x.lag.test": {"key_types": ["ecdsa"]}}'
set +e
${KEYSVC_VALGRIND:-} "$KEYSVC" run --debug --config keysvc.json > lag.out 2>&1 &
lag_pid=$!
set -e
for _ in $(seq 1 300); do
    grep -q "not yet on name server 127.0.0.2:$DNS_PORT" lag.out && break
    kill -0 "$lag_pid" 2>/dev/null || break
    sleep 0.2
done
assert_contains lag.out "TXT _acme-challenge.x.lag.test (zone lag.test) is not yet on name server 127.0.0.2:$DNS_PORT" \
    "keysvc saw the secondary lag"
assert_not_contains lag.out "x.lag.test: asking the CA to validate" "and has not asked the CA yet"
rndc -s 127.0.0.1 -p "$RNDC_PORT" -k "$RNDC_KEY" refresh lag.test > /dev/null
set +e
wait "$lag_pid"
lag_rc=$?
set -e
assert_eq 0 "$lag_rc" "issued once the secondary caught up"
order=$(grep -n -e "not yet on name server 127.0.0.2" -e "every record is on all 2 name server(s)" \
    -e "x.lag.test: asking the CA to validate" lag.out | tail -2 | cut -d: -f2- | sed 's/.*\] //')
case "$order" in
    *"every record is on all 2"*"asking the CA to validate"*) pass "the CA was asked only after both servers had the record" ;;
    *) fail "wrong order of events: $order" ;;
esac
assert_no_txt _acme-challenge.x.lag.test "zone lag.test"

# ------------------------------------------------ errors
# Each leaves nothing behind: the test looks at the zone after the run.

# A record that never reaches a name server (the secondary is not told).
config_merge keysvc.json '{"settings": {"max_dns_lookup_attempts": 3, "dns_lookup_delay": 0}}'
set_certs '{"y.lag.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a record that never reaches a name server fails the certificate"
assert_contains run.out "y.lag.test: TXT _acme-challenge.y.lag.test (zone lag.test) is not yet on name server 127.0.0.2:$DNS_PORT; gave up after 3 lookups" \
    "naming the name, the zone and the server"
assert_no_txt _acme-challenge.y.lag.test "after giving up"
config_merge keysvc.json '{"settings": {"max_dns_lookup_attempts": 30, "dns_lookup_delay": 1}}'

# A wrong TSIG secret for the right key name.
sed 's/secret "[^"]*"/secret "'"$(head -c 32 /dev/urandom | base64 -w0 | tr "/+" "ab")"'"/' "$TSIG_SHA256_KEY" > wrong.key
config_merge keysvc.json "{\"zone_update_keys\": {\"example.test\": \"$WORK/wrong.key\"}}"
set_certs '{"w.example.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a wrong TSIG key fails"
assert_contains run.out "w.example.test: adding TXT _acme-challenge.w.example.test to zone example.test at 127.0.0.1:$DNS_PORT: server 127.0.0.1:$DNS_PORT did not accept the TSIG key" \
    "naming the name, the zone and the server"
assert_no_txt _acme-challenge.w.example.test "wrong key"

# A refused update, after another name's record was already placed.
config_merge keysvc.json "{\"zone_update_keys\": {\"example.test\": \"acme-sha256.key\",
    \"noupdate.test\": \"acme-sha256.key\"}}"
set_certs '{"mixed": {"common_name": "p.example.test",
    "alt_names": {"example.test": ["p"], "noupdate.test": ["q"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a refused update fails"
assert_contains run.out "q.noupdate.test: adding TXT _acme-challenge.q.noupdate.test to zone noupdate.test at 127.0.0.1:$DNS_PORT: server 127.0.0.1:$DNS_PORT refused the update: REFUSED" \
    "naming the name, the zone and the server"
assert_contains run.out "added TXT _acme-challenge.p.example.test" "the other name's record had been placed"
assert_contains run.out "removed TXT _acme-challenge.p.example.test" "and was removed again"
assert_no_txt _acme-challenge.p.example.test "after the refusal"

# A name outside every zone the DNS knows.
set_certs '{"n.nowhere.invalid": {"key_types": ["ecdsa"]}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a name outside every zone fails"
assert_contains run.out "n.nowhere.invalid: _acme-challenge.n.nowhere.invalid: no enclosing zone found" \
    "naming the name"

# A zone without a key, with no local updates and no hook.
config_replace keysvc.json zone_update_keys '{"example.test": "acme-sha256.key"}'
set_certs '{"u.other.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a zone with no update method fails"
assert_contains run.out "u.other.test: record _acme-challenge.u.other.test is in zone other.test, which has no key in zone_update_keys" \
    "naming the name and the zone"

# ------------------------------------------------ local updates
# acmebot's processor contract: read the zone's JSON file (if any), make
# the records; without a file, remove them.  This one uses nsupdate.
cat > reload-zone.sh <<EOF
#!/bin/sh
set -eu
zone=\$1
echo "reload \$zone \$(test -f $WORK/challenges/\$zone && cat $WORK/challenges/\$zone || echo none)" >> $WORK/reload.log
/usr/bin/python3 - "\$zone" "$WORK/challenges/\$zone" "$WORK/reload-state.\$zone" <<'PY' | nsupdate -k "$TSIG_SHA512_KEY"
import json, os, sys
zone, path, state = sys.argv[1:]
old = json.load(open(state)) if os.path.exists(state) else {}
new = json.load(open(path)) if os.path.exists(path) else {}
print("server 127.0.0.1 $DNS_PORT")
print("zone " + zone)
for name, value in old.items():
    print('update delete _acme-challenge.%s TXT "%s"' % (name.removeprefix("*."), value))
for name, value in new.items():
    print('update add _acme-challenge.%s 60 TXT "%s"' % (name.removeprefix("*."), value))
print("send")
json.dump(new, open(state, "w"))
PY
EOF
chmod 755 reload-zone.sh
config_merge keysvc.json "{\"settings\": {\"reload_zone_command\": \"$WORK/reload-zone.sh\"}}"
set_certs '{"l.other.test": {"alt_names": {"other.test": ["l", "*.l"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "local updates: challenge file and reload_zone_command"
assert_eq 2 "$(wc -l < reload.log)" "the command ran twice (records in, records out)"
head -1 reload.log | cut -d' ' -f3- | /usr/bin/python3 -c '
import json, re, sys
doc = json.load(sys.stdin)
assert sorted(doc) == ["*.l.other.test", "l.other.test"], doc
assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", v) for v in doc.values()), doc' ||
    fail "the challenge file is acmebot's JSON: $(head -1 reload.log)"
pass "the challenge file held both names, the wildcard with its \"*.\""
assert_eq "reload other.test none" "$(tail -1 reload.log)" "the file was gone for the second call"
[ ! -e challenges/other.test ] || fail "challenge file left behind"
assert_no_txt _acme-challenge.l.other.test "local updates"

# ------------------------------------------------ acmebot's dns hooks
# set_dns_challenge publishes (no key, no reload command); values arrive as
# separate arguments, never through a shell.
cat > dns-hook.sh <<EOF
#!/bin/sh
set -eu
echo "\$# \$*" >> $WORK/hook.log
printf 'server 127.0.0.1 $DNS_PORT\nzone %s\nupdate %s _acme-challenge.%s 60 TXT "%s"\nsend\n' \
    "\$3" "\$1" "\${2#\\*.}" "\$4" | nsupdate -k "$TSIG_SHA512_KEY"
EOF
chmod 755 dns-hook.sh
config_merge keysvc.json "{\"settings\": {\"reload_zone_command\": null},
    \"hooks\": {\"set_dns_challenge\": \"$WORK/dns-hook.sh add {domain} {zone} {challenge}\",
                \"clear_dns_challenge\": \"$WORK/dns-hook.sh delete {domain} {zone} {challenge}\"}}"
set_certs '{"h.other.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "acmebot's set_dns_challenge hook publishes the record"
grep -q '^4 add h.other.test other.test [A-Za-z0-9_-]\{43\}$' hook.log || fail "set hook arguments: $(cat hook.log)"
grep -q '^4 delete h.other.test other.test [A-Za-z0-9_-]\{43\}$' hook.log || fail "clear hook arguments: $(cat hook.log)"
pass "set and clear hooks got domain, zone and challenge as four arguments"
assert_no_txt _acme-challenge.h.other.test "hooks"

# A name with shell metacharacters never reaches a hook: it is not a name.
set_certs '{"evil": {"alt_names": {"other.test": ["$(touch pwned)"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a host name with shell metacharacters is a configuration error"
assert_contains run.out "is not a valid DNS name" "named as such"
[ ! -e pwned ] && [ ! -e "$WORK/pwned" ] || fail "a command ran"
pass "no command ran"

echo "e2e_dns01: all passed"
