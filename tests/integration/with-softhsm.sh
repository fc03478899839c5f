#!/usr/bin/env bash
# Runs a command with a private SoftHSM: two fresh tokens ("ks-a", "ks-b")
# sharing one user PIN, whose file is exported as KS_PIN_FILE.  Everything is
# removed afterwards.
set -euo pipefail
dir=$(mktemp -d /tmp/keysvc-softhsm.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens/
objectstore.backend = file
log.level = ERROR
slots.removable = false
library.reset_on_fork = false
CONF
export SOFTHSM2_CONF=$dir/softhsm2.conf
pin=$(od -An -N6 -tu2 /dev/urandom | tr -d ' \n' | cut -c1-12)
printf '%s' "$pin" > "$dir/pin"
chmod 600 "$dir/pin"
for label in ks-a ks-b; do
    softhsm2-util --init-token --free --label "$label" --so-pin 12345678 --pin "$pin" >/dev/null
done
export KS_PIN_FILE=$dir/pin KS_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
# A key that is not keysvc's: its 70-byte CKA_ID is longer than keysvc reads.
long_id=$(printf 'ab%.0s' $(seq 70))
pkcs11-tool --module "$KS_PKCS11_MODULE" --token-label ks-b --login --pin "$pin" \
    --keypairgen --key-type EC:prime256v1 --id "$long_id" --label foreign >/dev/null 2>&1
"$@"
