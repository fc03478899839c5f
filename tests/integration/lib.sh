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
    mkdir -p "$WORK/out" "$WORK/www"
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
                  "private_key": "out/private", "state": "state"},
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

# Number of public key objects on this test's token (no login needed).
token_key_count() {
    pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label "$TOKEN" --list-objects \
        --type pubkey 2>/dev/null | grep -c '^Public Key Object' || true
}

# A fingerprint of everything a run may change: output files (content, inode,
# mtime), token objects and, with a database, row counts.
state_snapshot() {
    {
        find "$WORK/out" "$WORK/www" -type f -printf '%p %i %T@ ' -exec sha256sum {} \; | sort
        echo "token keys: $(token_key_count)"
        if [ -n "$DB_CONNINFO" ]; then
            sql "SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM accounts),
                        (SELECT count(*) FROM orders), (SELECT count(*) FROM certificates)"
        fi
    }
}
