#!/usr/bin/env bash
# TLSA records (acmebot's tlsa_records) against BIND9 and pebble:
#   spki/pkix-ee (primary and backup keys of both key types), cert/dane-ee
#   (each certificate) and spki/dane-ta (chain and root) records, compared
#   with digests openssl computes from the installed files and the token;
#   a silent second run; a record changed behind keysvc's back is put right
#   by --tlsa alone; a rollover republishes; a zone without an update key
#   warns; an update the server refuses fails naming the zone; --revoke
#   removes every RRset.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${DNS_PORT:-}" ] || fail "this test needs a rig started with --bind"
test_setup tlsa
cd "$WORK"

# The TLSA records BIND serves at an owner, one "usage selector matching hex"
# per line (dig splits long digests into words), sorted.
served() { # owner
    dig +norecurse +time=2 +tries=1 +short -p "$DNS_PORT" @127.0.0.1 TLSA "$1" |
        awk '{u=$1; s=$2; m=$3; $1=$2=$3=""; d=$0; gsub(/ /, "", d); print u, s, m, tolower(d)}' | sort
}
ttl_of() { # owner
    dig +norecurse +time=2 +tries=1 +noall +answer -p "$DNS_PORT" @127.0.0.1 TLSA "$1" | awk '{print $2}' | sort -u
}
# The two records (SHA-256, SHA-512) of each DER file given, deduplicated.
records_of() { # usage selector der-file...
    local u=$1 s=$2 f
    shift 2
    for f in "$@"; do
        echo "$u $s 1 $(sha256sum < "$f" | cut -d' ' -f1)"
        echo "$u $s 2 $(sha512sum < "$f" | cut -d' ' -f1)"
    done | sort -u
}
cert_spki_der() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER > "$2"; }
token_spki_der() { # role key-type out
    local id
    id=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE purpose = 'certificate'
              AND name = 'tlsa.example.test' AND key_type = '$2' AND role = '$1' AND state = 'live'")
    [ -n "$id" ] || fail "no live $1 $2 key"
    pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$TOKEN" --read-object \
        --type pubkey --id "$id" -o "$WORK/pub.der" >/dev/null 2>&1 || fail "reading public key $id"
    openssl pkey -pubin -inform DER -in "$WORK/pub.der" -outform DER > "$3"
}
# Each certificate of PEM files into c<N>.pem in directory $1.
split_pems() { # dir pem...
    local dir=$1
    shift
    mkdir -p "$dir"
    cat "$@" | awk -v d="$dir" '/BEGIN CERTIFICATE/{n++} n{print > (d "/c" n ".pem")}'
}

# What each owner must hold, from the files keysvc installed and the token.
expect_443() {
    rm -rf exp && mkdir exp
    for t in rsa ecdsa; do
        cert_spki_der out/certs/tlsa.example.test.$t.pem exp/primary.$t.der
        token_spki_der primary $t exp/token-primary.$t.der
        cmp -s exp/primary.$t.der exp/token-primary.$t.der || fail "the $t certificate is not on the primary key"
        token_spki_der backup $t exp/backup.$t.der
    done
    records_of 1 1 exp/primary.*.der exp/backup.*.der
}
expect_25() {
    for t in rsa ecdsa; do openssl x509 -in out/certs/tlsa.example.test.$t.pem -outform DER > exp/leaf.$t.der; done
    records_of 3 0 exp/leaf.*.der
}
expect_993() {
    split_pems exp/anchors out/certs/tlsa.example.test_chain.*.pem root_cert.*.pem
    for c in exp/anchors/c*.pem; do cert_spki_der "$c" "$c.der"; done
    records_of 2 1 exp/anchors/c*.pem.der
}
check_all_records() { # what
    assert_eq "$(expect_443)" "$(served _443._tcp.tlsa.example.test)" "$1: _443 holds the primary and backup keys of both types"
    assert_eq "$(expect_25)" "$(served _25._tcp.tlsa.example.test)" "$1: _25 holds both certificates"
    assert_eq "$(expect_993)" "$(served _993._tcp.tlsa.example.test)" "$1: _993 holds the chain and root keys"
}

cat > hook.sh <<EOF
#!/bin/sh
echo "\$*" >> $WORK/hooks.log
EOF
chmod 755 hook.sh
curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0" > root_cert.ecdsa.pem
cp root_cert.ecdsa.pem root_cert.rsa.pem

write_config keysvc.json '{"tlsa.example.test": {"alt_names": {"example.test": ["tlsa"]},
    "tlsa_records": {"example.test": ["tlsa",
        {"host": "tlsa", "port": 25, "usage": "dane-ee", "selector": "cert"},
        {"host": "tlsa", "port": 993, "usage": "dane-ta", "selector": "spki", "ttl": 600}]}}}' '{}' \
    "\"dns_resolvers\": [\"$DNS_PRIMARY\"], \"dns_port\": $DNS_PORT,
    \"max_dns_lookup_attempts\": 30, \"dns_lookup_delay\": 1, \"ari\": false,
    \"log_user\": \"nobody\", \"log_group\": \"nogroup\""
config_merge keysvc.json "{\"directories\": {\"update_key\": \"$DNS_KEY_DIR\"},
    \"zone_update_keys\": {\"example.test\": \"acme-sha256.key\", \"other.test\": \"acme-sha512.key\"},
    \"hooks\": {\"dns_zone_update\": \"$WORK/hook.sh dns_zone_update {zone}\"}}"

# ------------------------------------------------ first run: every record
: > hooks.log
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "issued and published"
assert_contains run.out "set TLSA _443._tcp.tlsa.example.test: 8 record(s)" "the spki/pkix-ee RRset was set"
check_all_records "first run"
assert_eq 600 "$(ttl_of _993._tcp.tlsa.example.test)" "the configured TTL"
assert_eq 300 "$(ttl_of _443._tcp.tlsa.example.test)" "the default TTL"
grep -q "ACTION set TLSA _443._tcp.tlsa.example.test: 8 record(s)" log/keysvc.log ||
    fail "the log file lacks the TLSA action"
if [ "$(id -u)" = 0 ]; then
    assert_eq nobody:nogroup "$(stat -c %U:%G log/keysvc.log)" "the log file belongs to log_user:log_group"
fi
# dns-01 ran it after placing and after removing its record, TLSA once more.
assert_eq 3 "$(grep -c '^dns_zone_update example.test$' hooks.log)" "dns_zone_update for dns-01 and TLSA"

# ------------------------------------------------ in place: a silent run
: > hooks.log
run_keysvc run --config keysvc.json > run.stdout
assert_eq 1 "$RUN_RC" "nothing to do when every record is in place"
[ ! -s run.stdout ] || fail "a run with nothing to do printed: $(cat run.stdout)"
[ ! -s hooks.log ] || fail "a run with nothing to do ran a hook: $(cat hooks.log)"
pass "second run silent"

# ------------------------------------------------ changed behind keysvc's back
cp out/certs/tlsa.example.test.ecdsa.pem before.pem
printf 'server 127.0.0.1 %s\nzone example.test\nupdate add _443._tcp.tlsa.example.test 300 TLSA 1 1 1 %s\nsend\n' \
    "$DNS_PORT" "$(printf '0%.0s' $(seq 64))" | nsupdate -k "$TSIG_SHA256_KEY" || fail "nsupdate"
[ "$(served _443._tcp.tlsa.example.test | wc -l)" = 9 ] || fail "the stray record was not added"
: > hooks.log
run_keysvc run --tlsa --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "--tlsa put the RRset right"
# One update of the zone, however many RRsets it held.
assert_eq "dns_zone_update example.test" "$(cat hooks.log)" "dns_zone_update ran once, for the zone"
assert_contains run.out "set TLSA _443._tcp.tlsa.example.test" "the changed RRset was rewritten"
assert_not_contains run.out "_25._tcp" "RRsets that were right were left alone"
check_all_records "after --tlsa"
cmp -s before.pem out/certs/tlsa.example.test.ecdsa.pem || fail "--tlsa alone touched a certificate"
pass "--tlsa alone issued nothing"

# ------------------------------------------------ rollover: the new keys
old_primary=$(cert_pubkey_hash out/certs/tlsa.example.test.ecdsa.pem)
run_keysvc run --rollover --force tlsa.example.test --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "rolled over"
[ "$(cert_pubkey_hash out/certs/tlsa.example.test.ecdsa.pem)" != "$old_primary" ] || fail "same key after the rollover"
check_all_records "after the rollover"
served _443._tcp.tlsa.example.test | grep -q "^1 1 1 $old_primary$" &&
    fail "the old primary key is still published"
pass "the old primary key is no longer published"

# ------------------------------------------------ a zone without a key, a refused update
config_merge keysvc.json '{"certificates": {"tlsa.example.test": {"alt_names": {"example.test": ["tlsa"]},
    "tlsa_records": {"example.test": ["tlsa",
        {"host": "tlsa", "port": 25, "usage": "dane-ee", "selector": "cert"},
        {"host": "tlsa", "port": 993, "usage": "dane-ta", "selector": "spki", "ttl": 600}],
        "noupdate.test": ["tlsa"], "other.test": ["tlsa"]}}}}'
run_keysvc check --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "check: a zone without an update key is no error"
assert_contains run.out 'certificates["tlsa.example.test"].tlsa_records: zone noupdate.test has no key in zone_update_keys' \
    "check warns about the zone without an update key"
assert_not_contains run.out "zone other.test has no key" "check: other.test has its key"
run_keysvc run --tlsa --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a refused update fails the run"
assert_contains run.out "zone noupdate.test has no key in zone_update_keys: its TLSA records cannot be set" \
    "a zone without an update key is warned about"
assert_contains run.out "TLSA records of zone other.test: server 127.0.0.1:$DNS_PORT refused the update: REFUSED" \
    "the refusal names the zone and the server"
[ -z "$(served _443._tcp.tlsa.other.test)" ] || fail "records appeared in other.test"
check_all_records "beside a refused zone"

# ------------------------------------------------ --revoke removes them
config_replace keysvc.json zone_update_keys '{"example.test": "acme-sha256.key"}'
run_keysvc run --revoke tlsa.example.test --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "--revoke"
for o in _443._tcp.tlsa.example.test _25._tcp.tlsa.example.test _993._tcp.tlsa.example.test; do
    assert_contains run.out "removed TLSA $o" "--revoke said it removed $o"
    [ -z "$(served $o)" ] || fail "$o still holds records after --revoke"
done
assert_contains run.out "zone other.test has no key in zone_update_keys: its TLSA records cannot be removed" \
    "the zone without a key is warned about on removal"
pass "--revoke removed every RRset"
# The next run rolls over, issues and publishes again.
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the next run (two zones without a key only warn)"
check_all_records "after the rollover that follows --revoke"

echo "e2e_tlsa: all passed"
