#!/usr/bin/env bash
# demo.sh: keysvc's main job from nothing, on one machine.
#
# Installs the packages, builds keysvc, starts a local pebble ACME CA (with
# pebble-challtestsrv as its DNS and a small web server for http-01) on
# 127.0.0.1, creates a SoftHSM token, and runs `keysvc run` to issue an
# ECDSA P-256 and an RSA-2048 certificate for two names.  The keys are
# generated in the token and never leave it; keysvc keeps its state in a
# private PostgreSQL cluster under the demo directory.  Then it shows where
# the files are and verifies each chain with `openssl verify` against
# pebble's root.  The local servers are stopped at the end; the files stay.
#
# Usage: sudo tools/demo.sh [DEMO_DIR]      (default /var/tmp/keysvc-demo)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=${1:-/var/tmp/keysvc-demo}
BUILD=${KEYSVC_BUILD_DIR:-$SRC/build}

step() { printf '\n==> %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

case "$DEMO" in
    /*) ;;
    *) die "DEMO_DIR must be an absolute path" ;;
esac
# The private PostgreSQL runs as an unprivileged user that must reach it.
case "$DEMO" in
    /root/*|/home/*) die "choose a DEMO_DIR outside home directories (the database user must reach it)" ;;
esac

step "Installing packages (Debian 12)"
"$SRC/tools/install-deps.sh"

step "Building keysvc in $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target keysvc >/dev/null
KEYSVC=$BUILD/keysvc/keysvc

step "Starting pebble, pebble-challtestsrv, a web server and SoftHSM under $DEMO/rig"
# A demo starts clean: a new pebble has a new root, so old state would not verify.
if [ -f "$DEMO/rig/env" ]; then "$SRC/tests/rig/rig-down.sh" "$DEMO/rig" >/dev/null 2>&1 || true; fi
if [ -d "$DEMO" ]; then
    [ -f "$DEMO/.keysvc-demo" ] || die "$DEMO exists and is not a keysvc demo directory; refusing to remove it"
    rm -rf "$DEMO"
fi
mkdir -p "$DEMO"
touch "$DEMO/.keysvc-demo"
chmod 755 "$DEMO"
"$SRC/tests/rig/rig-up.sh" "$DEMO/rig" --token keysvc-demo >/dev/null
trap '"$SRC/tests/rig/rig-down.sh" "$DEMO/rig" >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. "$DEMO/rig/env"

step "Writing the configuration $DEMO/keysvc.json"
cat > "$DEMO/keysvc.json" <<JSON
{
  "account": {"email": "admin@example.test"},
  "settings": {
    "acme_directory_url": "$ACME_DIR_URL",
    "acme_ca_file": "$ACME_CA_FILE",
    "key_size": 2048,
    "key_curve": "secp256r1"
  },
  "directories": {
    "certificate": "certs",
    "chain": "certs",
    "full_certificate": "certs",
    "private_key": "private",
    "backup_key": "private",
    "param": "params",
    "hpkp": "hpkp",
    "ocsp": "ocsp",
    "sct": "scts/{name}/{key_type}",
    "archive": "archive",
    "log": "log",
    "pid": "state",
    "resource": "state",
    "state": "state"
  },
  "hsm": {
    "module": "$KS_PKCS11_MODULE",
    "token": "keysvc-demo",
    "pin_file": "$KS_PIN_FILE"
  },
  "certificates": {
    "example.test": {
      "alt_names": {"example.test": ["@", "www"]},
      "key_types": ["ecdsa", "rsa"]
    }
  },
  "http_challenges": {
    "example.test": "$WEBROOT",
    "www.example.test": "$WEBROOT"
  }
}
JSON
cat "$DEMO/keysvc.json"

step "Running: keysvc run --config $DEMO/keysvc.json"
start=$(date +%s%N)
"$KEYSVC" run --config "$DEMO/keysvc.json"
end=$(date +%s%N)
echo "(took $(( (end - start) / 1000000 )) ms, including creating the private PostgreSQL cluster)"

step "Files written"
ls -l "$DEMO/certs" "$DEMO/private"
echo
echo "Each .key file holds the key's pkcs11: URI, not a key:"
cat "$DEMO/private/example.test.ecdsa.key"

step "Verifying each chain against pebble's root ($PEBBLE_MGMT_URL/roots/0)"
curl -sf --noproxy '*' --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0" > "$DEMO/pebble-root.pem"
for t in ecdsa rsa; do
    openssl verify -CAfile "$DEMO/pebble-root.pem" -untrusted "$DEMO/certs/example.test_chain.$t.pem" \
        "$DEMO/certs/example.test.$t.pem"
    openssl x509 -in "$DEMO/certs/example.test.$t.pem" -noout -subject -ext subjectAltName -dates | sed 's/^/    /'
done

step "A second run has nothing to do"
set +e
"$KEYSVC" run --config "$DEMO/keysvc.json"
rc=$?
set -e
echo "(exit code $rc: 0 = changed something, 1 = nothing to do, 2 = failure)"
[ "$rc" -eq 1 ] || die "the second run should have had nothing to do"

step "Done. Certificates in $DEMO/certs, key URIs in $DEMO/private, state in $DEMO/state."
