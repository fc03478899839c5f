#!/usr/bin/env bash
# new-token.sh RIGDIR LABEL
#
# Initialise one more token, labelled LABEL, in the rig's SoftHSM2 store, with the
# rig's user PIN (RIGDIR/hsm/pin) and SO PIN (RIGDIR/hsm/so-pin). Prints nothing on
# success; fails if a token with that label already exists. Safe to run in parallel.
set -Eeuo pipefail

ME=new-token
[ $# -eq 2 ] || { echo "usage: new-token.sh RIGDIR LABEL" >&2; exit 2; }
RIG=$1 LABEL=$2
H="$RIG/hsm"

[ ${#LABEL} -ge 1 ] && [ ${#LABEL} -le 32 ] || { echo "$ME: label must be 1..32 characters: '$LABEL'" >&2; exit 2; }
for f in "$H/softhsm2.conf" "$H/pin" "$H/so-pin"; do
  [ -r "$f" ] || { echo "$ME: $f missing: is $RIG a rig (rig-up.sh)?" >&2; exit 1; }
done
export SOFTHSM2_CONF="$H/softhsm2.conf"

# serialise token creation: two concurrent "--init-token --free" may race for the free slot
exec 9>"$H/.lock"
flock -w 30 9 || { echo "$ME: timed out waiting for $H/.lock" >&2; exit 1; }

slots=$(softhsm2-util --show-slots 2>&1 </dev/null) || { echo "$ME: softhsm2-util --show-slots failed:" >&2; echo "$slots" >&2; exit 1; }
while IFS= read -r line; do
  case "$line" in
    *"Label:"*)
      l=${line#*Label:}
      l=${l#"${l%%[! ]*}"}; l=${l%"${l##*[! ]}"}      # trim
      if [ "$l" = "$LABEL" ]; then echo "$ME: a token labelled '$LABEL' already exists" >&2; exit 1; fi ;;
  esac
done <<<"$slots"

# the only place the PINs appear on a command line (softhsm2-util cannot read them from a file)
if ! out=$(softhsm2-util --init-token --free --label "$LABEL" \
             --so-pin "$(cat "$H/so-pin")" --pin "$(cat "$H/pin")" 2>&1 </dev/null); then
  echo "$ME: softhsm2-util --init-token failed for '$LABEL':" >&2
  echo "$out" >&2
  exit 1
fi
