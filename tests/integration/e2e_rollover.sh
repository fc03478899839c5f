#!/usr/bin/env bash
# Key rollover: the backup becomes the primary, the primary becomes the
# previous key (kept) or is destroyed, a new backup is made, and the
# certificate is issued again with the new primary.  Killed at any step, the
# run leaves the database and the token in agreement, and the next run ends
# with the old or the new arrangement, nothing half-made.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${PG_CONNINFO:-}" ] || fail "this test needs the rig's PostgreSQL"
test_setup rollover
cd "$WORK"

write_config keysvc.json '{"r.test": {"key_types": ["ecdsa"]}}' "{\"r.test\": \"$WEBROOT\"}"
# No HPKP headers here: the HPKP guard (e2e_lifecycle) would refuse these
# back-to-back rollovers.
config_merge keysvc.json '{"directories": {"hpkp": null}}'
keep_config=keep.json
sed 's|"state": "state"|"state": "state", "previous_key": "out/previous"|' keysvc.json > "$keep_config"

role_id() { # role -> hex CKA_ID of the live key in that role ("" when none)
    sql "SELECT encode(ckaid, 'hex') FROM keys WHERE purpose = 'certificate' AND role = '$1'
         AND state = 'live'"
}
cert_key() { openssl x509 -in out/certs/r.test.ecdsa.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }

# The IDs of the key objects of one type on the token, sorted.
token_objects() { # pubkey|privkey
    local listing
    listing=$(pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$TOKEN" --login \
        --pin "$(cat "$KS_PIN_FILE")" --list-objects --type "$1" 2>&1) ||
        fail "pkcs11-tool cannot list the token: $listing"
    sed -n 's/^ *ID: *//p' <<< "$listing" | sort
}

# The IDs of every key pair on the token; a half without its other half
# fails the test.
token_ids() {
    local pub priv
    pub=$(token_objects pubkey)
    priv=$(token_objects privkey)
    [ "$pub" = "$priv" ] || fail "the token holds unpaired key halves: public [$pub] private [$priv]"
    printf '%s\n' "$pub" | sed '/^$/d'
}

# After any run, crashed or not: every key on the token is one the database
# knows, and every live row's key is on the token.
assert_agreement() { # what
    local known live id
    known=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE state <> 'destroyed'" | sort)
    live=$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE state = 'live'" | sort)
    for id in $(token_ids); do
        grep -qx "$id" <<< "$known" || fail "$1: key $id is on the token but not in the database"
    done
    for id in $live; do
        token_ids | grep -qx "$id" || fail "$1: live key $id is missing from the token"
    done
    pass "$1: token and database agree"
}

# After a completed run: nothing pending or half-removed, and the token
# holds exactly the live keys.
assert_settled() { # what
    assert_eq 0 "$(sql "SELECT count(*) FROM keys WHERE state IN ('pending', 'destroying')")" \
        "$1: no interrupted key operation left"
    assert_eq "$(sql "SELECT encode(ckaid, 'hex') FROM keys WHERE state = 'live'" | sort | tr '\n' ' ')" \
        "$(token_ids | tr '\n' ' ')" "$1: the token holds exactly the live keys"
}

run_keysvc run --config keysvc.json
assert_eq 0 "$RUN_RC" "first run issues r.test"
p0=$(role_id primary)
b0=$(role_id backup)
[ -n "$p0" ] && [ -n "$b0" ] && [ "$p0" != "$b0" ] || fail "no primary and backup after the first run"
assert_eq "$(token_pubkey_hash "$p0")" "$(cert_key)" "the certificate carries the primary key"
assert_settled "after the first run"

# A plain rollover, no previous key kept.
run_keysvc run --config keysvc.json --rollover r.test
assert_eq 0 "$RUN_RC" "rollover run exits 0"
assert_contains run.out "rolled over r.test (ecdsa)" "the rollover is reported"
assert_contains run.out "issued r.test (ecdsa)" "the certificate is issued again"
assert_eq "$b0" "$(role_id primary)" "the backup became the primary"
b1=$(role_id backup)
[ -n "$b1" ] && [ "$b1" != "$b0" ] && [ "$b1" != "$p0" ] || fail "no new backup"
pass "a new backup was made"
assert_eq "" "$(role_id previous)" "no previous key is kept without directories.previous_key"
assert_eq destroyed "$(sql "SELECT state FROM keys WHERE encode(ckaid, 'hex') = '$p0'")" \
    "the old primary is destroyed"
assert_eq "$(token_pubkey_hash "$b0")" "$(cert_key)" "the new certificate carries the new primary"
assert_settled "after the rollover"
assert_eq 1 "$(sql "SELECT count(*) FROM audit_events WHERE operation = 'destroy' AND outcome = 'ok'
                    AND encode(ckaid, 'hex') = '$p0'")" "the destruction of the old key is audited"
assert_eq 1 "$(sql "SELECT count(*) FROM audit_events WHERE operation = 'rollover' AND outcome = 'ok'
                    AND encode(ckaid, 'hex') = '$b0'")" "the rollover is audited, naming the new primary"

# A service that failed to reload may still hold the old key: the old
# primary stays (as the previous key) until a run with nothing left to
# reload; then it goes.
cp keysvc.json svc.json
config_merge svc.json '{"services": {"web": "/bin/false"},
    "certificates": {"r.test": {"key_types": ["ecdsa"], "services": ["web"]}}}'
old_primary=$(role_id primary)
run_keysvc run --config svc.json --rollover r.test
assert_eq 0 "$RUN_RC" "a rollover whose service fails to reload (a warning)"
assert_contains run.out "key r.test: service web did not reload, so its previous key is kept until a later run" \
    "the kept key is explained"
assert_eq "$old_primary" "$(role_id previous)" "the old primary is kept as the previous key"
assert_settled "after the rollover with a failed reload"
config_merge svc.json '{"services": {"web": "/bin/true"}}'
run_keysvc run --config svc.json
assert_eq 0 "$RUN_RC" "the next run retires it"
assert_eq "" "$(role_id previous)" "no previous key once nothing is left to reload"
assert_eq destroyed "$(sql "SELECT state FROM keys WHERE encode(ckaid, 'hex') = '$old_primary'")" \
    "the old primary is destroyed"
assert_settled "after the retirement"
b0=$(role_id primary)
b1=$(role_id backup)

# With directories.previous_key the old primary stays, live, as "previous".
run_keysvc run --config "$keep_config" --rollover r.test
assert_eq 0 "$RUN_RC" "rollover keeping the previous key"
assert_eq "$b1" "$(role_id primary)" "the backup became the primary again"
assert_eq "$b0" "$(role_id previous)" "the old primary is kept as the previous key"
assert_settled "after the rollover that keeps the previous key"

# A fault in the token while the new backup is made: the rollover fails, the
# arrangement stays as it was, nothing is left half-made.
before="$(role_id primary) $(role_id backup) $(role_id previous)"
KEYSVC_TEST_P11_FAULTS="C_GenerateKeyPair@1=CKR_DEVICE_ERROR" run_keysvc run --config "$keep_config" --rollover r.test
assert_eq 2 "$RUN_RC" "a token fault during the rollover fails the run"
assert_contains run.out "CKR_DEVICE_ERROR" "the token's error is reported"
assert_eq "$before" "$(role_id primary) $(role_id backup) $(role_id previous)" "the arrangement is unchanged"
assert_eq 1 "$(sql "SELECT count(*) FROM audit_events WHERE operation = 'rollover' AND outcome = 'failed'
                    AND detail LIKE '%CKR_DEVICE_ERROR%'")" "the failed rollover is audited with its reason"
assert_settled "after the failed rollover"

# Killed at each step: the next run ends with the arrangement that step
# promises: before the commit the old one, from the commit on the new one.
# destroy:claimed is the retirement of the previous key at the end of the
# run, after the certificate was issued again.
crash_rollover() { # config point expected(old|new)
    local config=$1 point=$2 expected=$3 old old_primary old_backup
    # Without directories.previous_key any run retires an unused previous
    # key, so the old arrangement is the primary and the backup.
    arrangement() {
        if [ "$config" = "$keep_config" ]; then
            echo "$(role_id primary) $(role_id backup) $(role_id previous)"
        else
            echo "$(role_id primary) $(role_id backup)"
        fi
    }
    old=$(arrangement)
    old_primary=$(role_id primary)
    old_backup=$(role_id backup)
    KEYSVC_TEST_CRASH_AT=$point run_keysvc run --config "$config" --rollover r.test
    [ "$RUN_RC" -eq 137 ] || fail "$point: the run was not killed there (exit $RUN_RC)"
    assert_agreement "killed at $point"
    run_keysvc run --config "$config"
    [ "$RUN_RC" -le 1 ] || fail "$point: the run after the crash failed (exit $RUN_RC)"
    assert_settled "recovered after $point"
    if [ "$expected" = old ]; then
        assert_eq "$old" "$(arrangement)" "$config, killed at $point: the old arrangement survived"
    else
        assert_eq "$old_backup" "$(role_id primary)" "$config, killed at $point: the backup is the primary"
        [ -n "$(role_id backup)" ] && [ "$(role_id backup)" != "$old_backup" ] ||
            fail "$point: no new backup"
        if [ "$config" = "$keep_config" ]; then
            assert_eq "$old_primary" "$(role_id previous)" "$point: the old primary is the previous key"
        else
            assert_eq "" "$(role_id previous)" "$point: the old primary is retired"
        fi
    fi
    assert_eq "$(token_pubkey_hash "$(role_id primary)")" "$(cert_key)" \
        "$point: the certificate carries the primary key"
}

for spec in key:recorded=old key:generated=old rollover:generated=old rollover:committed=new \
    rollover:destroyed=new destroy:claimed=new; do
    crash_rollover keysvc.json "${spec%%=*}" "${spec#*=}"
done
for spec in key:generated=old rollover:committed=new rollover:destroyed=new; do
    crash_rollover "$keep_config" "${spec%%=*}" "${spec#*=}"
done

# A previous key that still serves the current certificate (its renewal
# failed) is not destroyed by the next rollover.
run_keysvc run --config "$keep_config" --rollover r.test
assert_eq 0 "$RUN_RC" "a rollover keeping the previous key"
prev=$(role_id previous)
sql "UPDATE certificates SET key_id = (SELECT id FROM keys WHERE encode(ckaid, 'hex') = '$prev')
     WHERE is_current" >/dev/null
before="$(role_id primary) $(role_id backup) $(role_id previous)"
run_keysvc run --config "$keep_config" --rollover r.test
assert_eq 2 "$RUN_RC" "a rollover while the previous key is in use fails"
assert_contains run.out "still serves a current certificate" "the reason is given"
assert_eq "$before" "$(role_id primary) $(role_id backup) $(role_id previous)" \
    "the arrangement is unchanged"
assert_agreement "after the refused rollover"
