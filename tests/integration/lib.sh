# Shared helpers for keysvc's integration tests (sourced by bash scripts).
#
# The test runner passes: KEYSVC (the binary), TOKEN_PROBE, RIG_DIR (a rig
# started by the fixture, see tests/rig/), SRC_DIR.  Each test works in its own
# token, database and directories so tests can run in parallel on one rig.

set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

assert_eq() { # expected actual what
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
    pass "$3"
}

assert_contains() { # haystack-file needle what
    grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$3: '$2' not found"; }
    pass "$3"
}

assert_not_contains() { # haystack-file needle what
    if grep -qF -- "$2" "$1"; then echo "--- $1:"; cat "$1"; fail "$3: '$2' found"; fi
    pass "$3"
}

# Loads the rig's environment (SOFTHSM2_CONF, ACME_DIR_URL, ...).
rig_load() {
    [ -f "$RIG_DIR/env" ] || fail "no rig in $RIG_DIR (the fixture did not start)"
    # shellcheck disable=SC1091
    . "$RIG_DIR/env"
}

# Creates this test's own work directory, token and (with a rig PostgreSQL)
# database.  Sets WORK, TOKEN and DB_CONNINFO.
test_setup() { # name
    local name=$1
    WORK=$(mktemp -d "/tmp/keysvc-test-$name.XXXXXX")
    chmod 755 "$WORK"
    TOKEN="t-$name-$$"
    "$SRC_DIR/tests/rig/new-token.sh" "$RIG_DIR" "$TOKEN"
    DB_CONNINFO=""
    if [ -n "${PG_CONNINFO:-}" ]; then
        local db="ks_${name//-/_}_$$"
        psql "$PG_CONNINFO" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
        DB_CONNINFO="host=$PG_SOCKET_DIR port=5432 user=postgres dbname=$db"
    fi
    mkdir -p "$WORK/out"
    trap test_cleanup EXIT
}

test_cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "${WORK:-}" ]; then
        echo "(work directory kept for inspection: $WORK)" >&2
        return
    fi
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
    return 0
}

# Writes a keysvc configuration to $WORK/$1 for the certificates given as
# JSON (the "certificates" object) and their http_challenges object.
write_config() { # file certificates-json http-challenges-json [extra-settings-json]
    local file=$WORK/$1 db_section=""
    if [ -n "$DB_CONNINFO" ]; then
        db_section="\"database\": {\"url\": \"$DB_CONNINFO\"},"
    fi
    cat > "$file" <<JSON
{
  "account": {"email": "admin@example.test"},
  "settings": {"acme_directory_url": "$ACME_DIR_URL", "acme_ca_file": "$ACME_CA_FILE",
               "key_size": 2048, "key_curve": "secp256r1", "acme_max_retry_wait": 2
               ${4:+, $4}},
  "directories": {"certificate": "out/certs", "chain": "out/certs",
                  "full_certificate": "out/certs", "private_key": "out/private",
                  "backup_key": "out/private", "param": "out/params", "hpkp": "out/hpkp",
                  "ocsp": "out/ocsp", "sct": "out/scts/{name}/{key_type}",
                  "archive": "out/archive", "log": "log", "pid": "state",
                  "resource": "state", "state": "state"},
  $db_section
  "hsm": {"module": "$KS_PKCS11_MODULE", "token": "$TOKEN", "pin_file": "$KS_PIN_FILE"},
  "certificates": $2,
  "http_challenges": $3
}
JSON
}

# Runs keysvc (under $KEYSVC_VALGRIND when set); stdout+stderr go to
# $WORK/run.out, the exit code to RUN_RC.
run_keysvc() { # args...
    set +e
    # shellcheck disable=SC2086
    ${KEYSVC_VALGRIND:-} "$KEYSVC" "$@" > "$WORK/run.out" 2>&1
    RUN_RC=$?
    set -e
    cat "$WORK/run.out"
}

# SQL against this test's database (rig PostgreSQL only).
sql() { psql "$DB_CONNINFO" -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# DER SHA-256 of a certificate's public key, and of a token public key.
cert_pubkey_hash() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
token_pubkey_hash() { # hex-id
    pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$TOKEN" --read-object \
        --type pubkey --id "$1" -o "$WORK/pub.der" >/dev/null 2>&1 || fail "reading public key $1"
    openssl pkey -pubin -inform DER -in "$WORK/pub.der" -outform DER | sha256sum | cut -d' ' -f1
}

# Number of public key objects on this test's token (no login needed).  A
# failing pkcs11-tool fails the test rather than counting as zero.
token_key_count() {
    local listing
    listing=$(pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$TOKEN" --list-objects \
        --type pubkey 2>&1) || fail "pkcs11-tool cannot list token $TOKEN: $listing"
    grep -c '^Public Key Object' <<< "$listing" || true
}

# A fingerprint of everything a run may change: output files (content, inode,
# mtime), token objects and, with a database, the rows of every table except
# orders (every attempt is recorded there; tests check it separately).
state_snapshot() {
    local keys
    # An assignment, not an argument: a failing count must end the test.
    keys=$(token_key_count)
    find "$WORK/out" -type f -printf '%p %i %T@ ' -exec sha256sum {} \; | sort
    echo "token keys: $keys"
    if [ -n "$DB_CONNINFO" ]; then
        sql "SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM accounts),
                    (SELECT count(*) FROM certificates),
                    (SELECT count(*) FROM orders WHERE status <> 'failed')"
    fi
}

# The http-01 answers keysvc published (from its --debug log) must all be
# gone from the webroot after the run.
assert_challenges_removed() { # log
    local published=0 token dir
    while read -r token dir; do
        published=$((published + 1))
        [ ! -e "$dir/$token" ] || fail "http-01 answer $dir/$token left behind"
    done < <(sed -n 's/.*http-01 answer \([A-Za-z0-9_-]*\) published in \(.*\)$/\1 \2/p' "$1")
    [ "$published" -gt 0 ] || fail "the log shows no published http-01 answer"
    pass "all $published published http-01 answers were removed"
}

# Runs SQL against keysvc's private PostgreSQL under $WORK/state, starting it
# for the query and stopping it again (keysvc stops it after each run).
private_sql() { # sql
    local pgdir=$WORK/state/postgres bin user as=()
    # The binaries of the cluster's own version, as keysvc picks them.
    bin=/usr/lib/postgresql/$(cat "$pgdir/data/PG_VERSION")/bin
    # As root the cluster runs as postgres; otherwise as the caller, whose
    # name is also the database superuser.
    if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); user=postgres; else user=$(id -un); fi
    "${as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/test-query.log" -w \
        -o "-k $pgdir -c listen_addresses=''" start >/dev/null || fail "cannot start the private cluster"
    local out rc=0
    out=$(psql "host=$pgdir port=5432 user=$user dbname=keysvc" -qAt -v ON_ERROR_STOP=1 -c "$1") || rc=$?
    "${as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null || fail "cannot stop the private cluster"
    [ "$rc" -eq 0 ] || fail "query on the private cluster failed"
    echo "$out"
}

# Merges a JSON object into a configuration written by write_config (one
# level deep: objects are merged key by key, anything else replaced).
config_merge() { # file json
    /usr/bin/python3 - "$WORK/$1" "$2" <<'PY'
import json, sys
path, extra = sys.argv[1], json.loads(sys.argv[2])
with open(path) as f:
    cfg = json.load(f)
for k, v in extra.items():
    if isinstance(v, dict) and isinstance(cfg.get(k), dict):
        cfg[k].update(v)
    else:
        cfg[k] = v
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
PY
}

# Replaces a whole top-level section of a configuration written by
# write_config (config_merge merges objects instead).
config_replace() { # file section json
    /usr/bin/python3 - "$WORK/$1" "$2" "$3" <<'PY'
import json, sys
path, section, value = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(path) as f:
    cfg = json.load(f)
cfg[section] = value
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
PY
}

# pebble's status for a certificate serial (hex), from its management port:
# "Valid" or "Revoked".
pebble_cert_status() { # serial-hex
    curl -sf --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/cert-status-by-serial/$1" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["Status"])'
}
