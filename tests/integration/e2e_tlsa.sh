#!/usr/bin/env bash
# TLSA records (acmebot's tlsa_records) against BIND9 and pebble:
#   spki/pkix-ee (primary and backup keys of both key types), cert/dane-ee
#   (each certificate) and spki/dane-ta (chain and root) records, compared
#   with digests openssl computes from the installed files and the token;
#   a silent second run; a record changed behind keysvc's back is put right
#   by --tlsa alone; a rollover republishes; two private keys sharing an
#   owner both keep their records (--tlsa for one, --revoke of the other);
#   a TTL change; a zone without an update key warns; an update the server
#   refuses fails naming the zone; --revoke removes every RRset.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${DNS_PORT:-}" ] || fail "this test needs a rig started with --bind"
test_setup tlsa
cd "$WORK"

# The TLSA records BIND serves at an owner, one "usage selector matching hex"
# per line (dig splits long digests into words), sorted; a line saying so
# when BIND did not answer NOERROR or NXDOMAIN (never an empty answer).
dig_tlsa() { # owner
    dig +norecurse +time=2 +tries=1 +noall +comments +answer -p "$DNS_PORT" @127.0.0.1 TLSA "$1" 2>&1
}
served() { # owner
    local out
    out=$(dig_tlsa "$1")
    if ! grep -Eq 'status: (NOERROR|NXDOMAIN)' <<< "$out"; then
        echo "DIG FAILED for $1: $(grep -o 'status: [A-Z]*' <<< "$out" || echo no answer)"
        return
    fi
    awk '!/^;/ && $4 == "TLSA" {d = ""; for (i = 8; i <= NF; i++) d = d $i; print $5, $6, $7, tolower(d)}' <<< "$out" | sort
}
ttl_of() { # owner
    dig_tlsa "$1" | awk '!/^;/ && $4 == "TLSA" {print $2}' | sort -u
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
token_spki_der() { # certificate-name role key-type out
    local id
    id=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE purpose = 'certificate'
              AND name = '$1' AND key_type = '$3' AND role = '$2' AND state = 'live'")
    [ -n "$id" ] || fail "no live $2 $3 key for $1"
    pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$TOKEN" --read-object \
        --type pubkey --id "$id" -o "$WORK/pub.der" >/dev/null 2>&1 || fail "reading public key $id"
    openssl pkey -pubin -inform DER -in "$WORK/pub.der" -outform DER > "$4"
}
# Each certificate of PEM files into c<N>.pem in directory $1.
split_pems() { # dir pem...
    local dir=$1
    shift
    mkdir -p "$dir"
    cat "$@" | awk -v d="$dir" '/BEGIN CERTIFICATE/{n++} n{print > (d "/c" n ".pem")}'
}

# What each owner must hold, from the files keysvc installed and the token,
# written to files (a failure inside $(...) would not end the test).
expect_keys() { # certificate-name out: its primary and backup keys, both types
    local name=$1 t d=exp/keys.$1
    mkdir -p "$d"
    for t in rsa ecdsa; do
        cert_spki_der out/certs/$name.$t.pem "$d/cert.$t.der"
        token_spki_der "$name" primary $t "$d/primary.$t.der"
        cmp -s "$d/cert.$t.der" "$d/primary.$t.der" || fail "the $t certificate of $name is not on its primary key"
        token_spki_der "$name" backup $t "$d/backup.$t.der"
    done
    records_of 1 1 "$d"/primary.*.der "$d"/backup.*.der > "$2"
}
expect_all() {
    rm -rf exp && mkdir exp
    expect_keys tlsa.example.test exp/443
    for t in rsa ecdsa; do openssl x509 -in out/certs/tlsa.example.test.$t.pem -outform DER > exp/leaf.$t.der; done
    records_of 3 0 exp/leaf.*.der > exp/25
    split_pems exp/anchors out/certs/tlsa.example.test_chain.*.pem root_cert.*.pem
    for c in exp/anchors/c*.pem; do cert_spki_der "$c" "$c.der"; done
    records_of 2 1 exp/anchors/c*.pem.der > exp/993
}
check_all_records() { # what
    expect_all
    assert_eq "$(cat exp/443)" "$(served _443._tcp.tlsa.example.test)" "$1: _443 holds the primary and backup keys of both types"
    assert_eq "$(cat exp/25)" "$(served _25._tcp.tlsa.example.test)" "$1: _25 holds both certificates"
    assert_eq "$(cat exp/993)" "$(served _993._tcp.tlsa.example.test)" "$1: _993 holds the chain and root keys"
}
assert_no_records() { # owner what
    local got
    got=$(served "$1")
    [ -z "$got" ] || fail "$2: $1 holds: $got"
    pass "$2"
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
cat out/certs/tlsa.example.test.*.pem > before.pem
printf 'server 127.0.0.1 %s\nzone example.test\nupdate add _443._tcp.tlsa.example.test 300 TLSA 1 1 1 %s\nsend\n' \
    "$DNS_PORT" "$(printf '0%.0s' $(seq 64))" | nsupdate -k "$TSIG_SHA256_KEY" || fail "nsupdate"
[ "$(served _443._tcp.tlsa.example.test | wc -l)" = 9 ] || fail "the stray record was not added"
: > hooks.log
run_keysvc run --tlsa --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "--tlsa put the RRset right"
# One update of the zone, however many RRsets it held.
assert_eq "dns_zone_update example.test" "$(cat hooks.log)" "dns_zone_update ran once, for the zone"
assert_contains run.out "set TLSA _443._tcp.tlsa.example.test" "the changed RRset was rewritten"
assert_not_contains run.out "_25._tcp" "_25, right already, was left alone"
assert_not_contains run.out "_993._tcp" "_993, right already, was left alone"
check_all_records "after --tlsa"
cat out/certs/tlsa.example.test.*.pem | cmp -s before.pem - || fail "--tlsa alone touched a certificate"
pass "--tlsa alone issued nothing"

# ------------------------------------------------ rollover: the new keys
old_primaries="$(cert_pubkey_hash out/certs/tlsa.example.test.rsa.pem) $(cert_pubkey_hash out/certs/tlsa.example.test.ecdsa.pem)"
run_keysvc run --rollover --force tlsa.example.test --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "rolled over"
check_all_records "after the rollover"
for h in $old_primaries; do
    [ "$(cert_pubkey_hash out/certs/tlsa.example.test.rsa.pem)" != "$h" ] || fail "same rsa key after the rollover"
    [ "$(cert_pubkey_hash out/certs/tlsa.example.test.ecdsa.pem)" != "$h" ] || fail "same ecdsa key after the rollover"
    served _443._tcp.tlsa.example.test | grep -q "^1 1 1 $h$" && fail "the old primary key $h is still published"
done
pass "neither old primary key is published"

# ------------------------------------------------ a second private key at the same owner
one_cert=$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["certificates"]))' keysvc.json)
config_merge keysvc.json '{"certificates": {"tlsa2.example.test": {"alt_names": {"example.test": ["tlsa2"]},
    "tlsa_records": {"example.test": [{"host": "tlsa", "port": 443}]}}}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "issued tlsa2.example.test on its own key"
expect_all
expect_keys tlsa2.example.test exp/443.tlsa2
assert_eq 16 "$(sort -u exp/443 exp/443.tlsa2 | wc -l)" "two private keys give 16 distinct records"
assert_eq "$(sort -u exp/443 exp/443.tlsa2)" "$(served _443._tcp.tlsa.example.test)" "_443 holds the keys of both certificates"
run_keysvc run --tlsa tlsa.example.test --config keysvc.json > run.stdout
assert_eq 1 "$RUN_RC" "--tlsa for one of them leaves the other's records in place"
[ ! -s run.stdout ] || fail "--tlsa for one certificate changed something: $(cat run.stdout)"
run_keysvc run --revoke tlsa2.example.test --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "--revoke tlsa2.example.test"
assert_contains run.out "set TLSA _443._tcp.tlsa.example.test: 8 record(s)" "its records left the shared RRset"
assert_eq "$(cat exp/443)" "$(served _443._tcp.tlsa.example.test)" "the other certificate's records stayed"
config_replace keysvc.json certificates "$one_cert"

# ------------------------------------------------ a zone without a key, a refused update
config_merge keysvc.json '{"certificates": {"tlsa.example.test": {"alt_names": {"example.test": ["tlsa"]},
    "tlsa_records": {"example.test": ["tlsa",
        {"host": "tlsa", "port": 25, "usage": "dane-ee", "selector": "cert"},
        {"host": "tlsa", "port": 993, "usage": "dane-ta", "selector": "spki", "ttl": 600}],
        "noupdate.test": ["tlsa"], "other.test": ["tlsa"]}}}}'
config_merge keysvc.json '{"certificates": {"tlsa.example.test": {"alt_names": {"example.test": ["tlsa"]},
    "tlsa_records": {"example.test": ["tlsa",
        {"host": "tlsa", "port": 25, "usage": "dane-ee", "selector": "cert"},
        {"host": "tlsa", "port": 993, "usage": "dane-ta", "selector": "spki", "ttl": 900}],
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
assert_no_records _443._tcp.tlsa.other.test "nothing appeared in other.test"
assert_contains run.out "set TLSA _993._tcp.tlsa.example.test" "a TTL change rewrites the RRset"
assert_eq 900 "$(ttl_of _993._tcp.tlsa.example.test)" "the new TTL"
check_all_records "beside a refused zone"

# ------------------------------------------------ --revoke removes them
config_replace keysvc.json zone_update_keys '{"example.test": "acme-sha256.key"}'
run_keysvc run --revoke tlsa.example.test --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "--revoke"
for o in _443._tcp.tlsa.example.test _25._tcp.tlsa.example.test _993._tcp.tlsa.example.test; do
    assert_contains run.out "removed TLSA $o" "--revoke said it removed $o"
    assert_no_records "$o" "$o is empty after --revoke"
done
assert_contains run.out "zone other.test has no key in zone_update_keys: its TLSA records cannot be removed" \
    "the zone without a key is warned about on removal"
pass "--revoke removed every RRset"
# The next run rolls over, issues and publishes again.
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "the next run (two zones without a key only warn)"
check_all_records "after the rollover that follows --revoke"

echo "e2e_tlsa: all passed"
