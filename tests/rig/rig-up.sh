#!/usr/bin/env bash
# rig-up.sh RIGDIR [options]
#
# Start the keysvc integration-test rig under RIGDIR, on 127.0.0.1 only, with ports
# chosen at run time: pebble (ACME CA), pebble-challtestsrv (pebble's DNS), a plain
# HTTP server for http-01 files (not with --no-www), a private SoftHSM2 token store,
# with --postgres a throwaway PostgreSQL cluster and, with --bind, a BIND9 primary
# (127.0.0.1) and secondary (127.0.0.2) with TSIG-signed updates, which pebble then
# uses as its DNS. Writes RIGDIR/env (source it from sh).
# On failure everything started is stopped again (rig-down.sh) and the exit code is 1.
# See README.md beside this script.
set -Eeuo pipefail
export PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin"   # runuser lives in /usr/sbin

usage() {
  cat <<'EOF'
usage: rig-up.sh RIGDIR [options]
  --token LABEL        label of the initial SoftHSM token (default keysvc-test)
  --postgres           also start a throwaway PostgreSQL cluster (socket only)
  --bind               also start a BIND9 primary on 127.0.0.1:DNS_PORT and a secondary
                       on 127.0.0.2:DNS_PORT (zones example.test, other.test,
                       delegated.test, lag.test, noupdate.test; TSIG keys in
                       RIG/dns/keys); pebble resolves through the primary
  --no-www             do not start the HTTP server for http-01 files (HTTP_PORT is
                       still picked, exported and given to pebble as httpPort)
  --nonce-reject N     PEBBLE_WFE_NONCEREJECT percentage (default 0)
  --authz-reuse N      PEBBLE_AUTHZREUSE percentage (default: pebble's own, 50)
  --validity SECONDS   pebble certificateValidityPeriod (default: pebble's own, 5 years)
  --eab                require External Account Binding; one key id and MAC key, exported
                       as EAB_KID and EAB_HMAC_KEY (base64url, as CAs hand them out)
  --alternate-roots N  PEBBLE_ALTERNATE_ROOTS: N more chains to other roots (default 0)
  --chain-length N     PEBBLE_CHAIN_LENGTH (3 gives three intermediates; default one)
  --timeout SECONDS    readiness timeout per server (default 15, or $RIG_TIMEOUT)
  -h, --help           this text
Environment: KEEP_RIG=1 keeps RIGDIR (logs) when rig-up fails.
EOF
}

PY=/usr/bin/python3                # never the `python3` on PATH (may be a pyenv shim)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ME=rig-up

RIG=""
TOKEN=keysvc-test
WITH_PG=0
WITH_BIND=0
WITH_WWW=1
NONCE_REJECT=0
AUTHZ_REUSE=""
VALIDITY=""
EAB=0
ALT_ROOTS=""
CHAIN_LENGTH=""
TIMEOUT=${RIG_TIMEOUT:-15}

die_usage() { echo "$ME: $*" >&2; usage >&2; exit 2; }
is_uint() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }

while [ $# -gt 0 ]; do
  case "$1" in
    --token)       [ $# -ge 2 ] || die_usage "--token needs a value"; TOKEN=$2; shift 2 ;;
    --token=*)     TOKEN=${1#*=}; shift ;;
    --postgres)    WITH_PG=1; shift ;;
    --bind)        WITH_BIND=1; shift ;;
    --no-www)      WITH_WWW=0; shift ;;
    --nonce-reject) [ $# -ge 2 ] || die_usage "--nonce-reject needs a value"; NONCE_REJECT=$2; shift 2 ;;
    --nonce-reject=*) NONCE_REJECT=${1#*=}; shift ;;
    --authz-reuse) [ $# -ge 2 ] || die_usage "--authz-reuse needs a value"; AUTHZ_REUSE=$2; shift 2 ;;
    --authz-reuse=*) AUTHZ_REUSE=${1#*=}; shift ;;
    --validity)    [ $# -ge 2 ] || die_usage "--validity needs a value"; VALIDITY=$2; shift 2 ;;
    --validity=*)  VALIDITY=${1#*=}; shift ;;
    --eab)         EAB=1; shift ;;
    --alternate-roots) [ $# -ge 2 ] || die_usage "--alternate-roots needs a value"; ALT_ROOTS=$2; shift 2 ;;
    --alternate-roots=*) ALT_ROOTS=${1#*=}; shift ;;
    --chain-length) [ $# -ge 2 ] || die_usage "--chain-length needs a value"; CHAIN_LENGTH=$2; shift 2 ;;
    --chain-length=*) CHAIN_LENGTH=${1#*=}; shift ;;
    --timeout)     [ $# -ge 2 ] || die_usage "--timeout needs a value"; TIMEOUT=$2; shift 2 ;;
    --timeout=*)   TIMEOUT=${1#*=}; shift ;;
    -h|--help)     usage; exit 0 ;;
    -*)            die_usage "unknown option: $1" ;;
    *)             [ -z "$RIG" ] || die_usage "only one RIGDIR allowed (got '$RIG' and '$1')"; RIG=$1; shift ;;
  esac
done
[ -n "$RIG" ] || die_usage "RIGDIR missing"
is_uint "$NONCE_REJECT" && [ "$NONCE_REJECT" -le 100 ] || die_usage "--nonce-reject must be 0..100"
[ -z "$AUTHZ_REUSE" ] || { is_uint "$AUTHZ_REUSE" && [ "$AUTHZ_REUSE" -le 100 ]; } || die_usage "--authz-reuse must be 0..100"
[ -z "$VALIDITY" ] || { is_uint "$VALIDITY" && [ "$VALIDITY" -gt 0 ]; } || die_usage "--validity must be a positive number of seconds"
[ -z "$ALT_ROOTS" ] || { is_uint "$ALT_ROOTS" && [ "$ALT_ROOTS" -le 10 ]; } || die_usage "--alternate-roots must be 0..10"
[ -z "$CHAIN_LENGTH" ] || { is_uint "$CHAIN_LENGTH" && [ "$CHAIN_LENGTH" -ge 2 ] && [ "$CHAIN_LENGTH" -le 10 ]; } || die_usage "--chain-length must be 2..10"
is_uint "$TIMEOUT" && [ "$TIMEOUT" -gt 0 ] || die_usage "--timeout must be a positive integer"
[ ${#TOKEN} -ge 1 ] && [ ${#TOKEN} -le 32 ] || die_usage "--token label must be 1..32 characters"

for tool in "$PY" pebble pebble-challtestsrv softhsm2-util openssl curl flock; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$ME: required tool not found: $tool (run tools/install-deps.sh)" >&2; exit 1; }
done
if [ "$WITH_BIND" -eq 1 ]; then
  for tool in named named-checkconf named-checkzone tsig-keygen dig; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$ME: --bind: required tool not found: $tool (packages bind9, bind9-utils, bind9-dnsutils)" >&2; exit 1; }
  done
fi

# ----------------------------------------------------------------------------- helpers
FAIL_REASON=""
SUCCESS=0
fail() { FAIL_REASON="$*"; exit 1; }

on_exit() {
  rc=$?
  if [ "$SUCCESS" -ne 1 ]; then
    [ "$rc" -ne 0 ] || rc=1
    echo "$ME: FAILED: ${FAIL_REASON:-unexpected error (exit $rc)}" >&2
    if [ -n "$RIG" ] && [ -f "$RIG/.keysvc-rig" ]; then
      echo "$ME: stopping what was started (logs are in $RIG/logs; KEEP_RIG=1 keeps them)" >&2
      "$HERE/rig-down.sh" "$RIG" >&2 || true
    fi
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'FAIL_REASON="interrupted"; exit 130' INT TERM HUP
trap '[ -n "$FAIL_REASON" ] || FAIL_REASON="command failed (line $LINENO): $BASH_COMMAND"' ERR

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Single-quote a value for a file sourced by sh.
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

log_tail() { # name logfile
  echo "----- last lines of $2 ($1) -----" >&2
  tail -n 20 "$2" >&2 2>/dev/null || true
  echo "-----" >&2
}

# pick_ports N: N distinct free 127.0.0.1 ports (free for TCP and UDP), all held at once.
# With PICK_EXTRA_ADDRS="127.0.0.2 ..." each port is also free (TCP and UDP) on those addresses.
pick_ports() {
  # shellcheck disable=SC2086
  "$PY" - "$1" ${PICK_EXTRA_ADDRS:-} <<'PYEOF'
import socket, sys
n = int(sys.argv[1]); extra = sys.argv[2:]; held = []; ports = []
while len(ports) < n:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    p = t.getsockname()[1]
    held.append(t); ok = True
    for addr, kind in [("127.0.0.1", socket.SOCK_DGRAM)] + \
            [(a, k) for a in extra for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM)]:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((addr, p))
        except OSError:
            s.close(); ok = False; break
        held.append(s)
    if ok:
        ports.append(p)
print(" ".join(map(str, ports)))
PYEOF
}

# wait_owned PID LOG TIMEOUT_S proto:port...
#  0: PID has all the listed sockets bound; 3: PID exited; 4: log says "address already in use"
#  (or one of the '|'-separated strings in $RIG_BIND_ERR, for daemons that word it differently); 1: timeout
wait_owned() {
  "$PY" - "$@" <<'PYEOF'
import os, sys, time
pid, log, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
want = [(w.split(":")[0], int(w.split(":")[1])) for w in sys.argv[4:]]
def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
def inodes():
    s = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                l = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if l.startswith("socket:["):
                s.add(l[8:-1])
    except OSError:
        pass
    return s
def bound(proto):
    r = set()
    for fn in (proto, proto + "6"):
        try:
            with open(f"/proc/{pid}/net/{fn}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            x = ln.split()
            if proto == "tcp" and x[3] != "0A":   # LISTEN
                continue
            r.add((int(x[1].rsplit(":", 1)[1], 16), x[9]))
    return r
pats = ["address already in use"] + [x.lower() for x in os.environ.get("RIG_BIND_ERR", "").split("|") if x]
def bind_error():
    try:
        with open(log, errors="replace") as f:
            text = f.read().lower()
    except OSError:
        return False
    return any(x in text for x in pats)
end = time.monotonic() + timeout
while True:
    ino = inodes()
    if ino:
        b = {p: bound(p) for p in set(pr for pr, _ in want)}
        if all(any(pt == port and i in ino for pt, i in b[pr]) for pr, port in want):
            sys.exit(0)
    if not alive():
        sys.exit(4 if bind_error() else 3)
    if bind_error():
        sys.exit(4)
    if time.monotonic() > end:
        sys.exit(1)
    time.sleep(0.02)
PYEOF
}

# start_daemon NAME cmd args...: stdin /dev/null, stdout+stderr to logs/NAME.log,
# no other inherited fds (CTest waits on inherited pipes), PID in pids/NAME.pid
start_daemon() {
  local name=$1; shift
  local log="$RIG/logs/$name.log"
  (
    for fd in /proc/$BASHPID/fd/*; do
      n=${fd##*/}
      if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null || true; fi
    done
    exec "$@"
  ) </dev/null >"$log" 2>&1 &
  DAEMON_PID=$!
  printf '%s\n' "$DAEMON_PID" >"$RIG/pids/$name.pid"
  # start time (jiffies since boot) lets rig-down avoid killing a recycled PID
  local st f
  if st=$(cat "/proc/$DAEMON_PID/stat" 2>/dev/null); then
    st=${st##*) }                      # drop "pid (comm) ": f[0] is field 3 (state)
    read -r -a f <<<"$st"
    printf '%s\n' "${f[19]}" >"$RIG/pids/$name.start"   # field 22: starttime
  fi
}

stop_one() { # NAME: used when retrying after a port collision
  local pid
  pid=$(cat "$RIG/pids/$1.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$RIG/pids/$1.pid" "$RIG/pids/$1.start"
}

# wait_http NAME URL [curl args...]: poll until URL answers 200
wait_http() {
  local name=$1 url=$2; shift 2
  local end=$(( $(now_ms) + TIMEOUT * 1000 )) code
  while :; do
    code=$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    if [ "$(now_ms)" -gt "$end" ]; then
      log_tail "$name" "$RIG/logs/$name.log"
      fail "$name did not answer 200 on $url within ${TIMEOUT}s (last HTTP code: ${code:-none})"
    fi
    sleep 0.05
  done
}

# launch NAME NPORTS CMD_FUNC proto:idx...: picks ports, runs CMD_FUNC (which must call
# start_daemon with $PORTS), waits until the daemon owns its sockets; retries on collision.
launch() {
  local name=$1 nports=$2 fn=$3; shift 3
  local attempt rc specs s ports
  for attempt in 1 2 3 4 5; do
    ports=$(pick_ports "$nports") || fail "picking free ports failed"
    read -r -a PORTS <<<"$ports"
    [ ${#PORTS[@]} -eq "$nports" ] || fail "picking free ports failed (got '$ports')"
    "$fn"
    specs=()
    for s in "$@"; do specs+=("${s%%:*}:${PORTS[${s#*:}]}"); done
    rc=0
    wait_owned "$DAEMON_PID" "$RIG/logs/$name.log" "$TIMEOUT" "${specs[@]}" || rc=$?
    case $rc in
      0) return 0 ;;
      4) echo "$ME: $name: port collision on ${PORTS[*]}, retrying ($attempt)" >&2
         cp "$RIG/logs/$name.log" "$RIG/logs/$name.collision.$attempt.log" 2>/dev/null || true
         stop_one "$name" ;;
      3) log_tail "$name" "$RIG/logs/$name.log"; fail "$name exited during start-up" ;;
      *) log_tail "$name" "$RIG/logs/$name.log"; fail "$name did not bind ${specs[*]} within ${TIMEOUT}s" ;;
    esac
  done
  fail "$name: could not get free ports after 5 attempts"
}

T0=$(now_ms)

# ----------------------------------------------------------------------------- RIGDIR
if [ -e "$RIG" ] && [ ! -d "$RIG" ]; then fail "$RIG exists and is not a directory"; fi
if [ -d "$RIG" ]; then
  if [ -f "$RIG/.keysvc-rig" ]; then
    echo "$ME: $RIG holds an old rig: tearing it down first" >&2
    KEEP_RIG=0 "$HERE/rig-down.sh" "$RIG" >&2 || fail "could not tear down the old rig in $RIG"
  elif [ -n "$(ls -A "$RIG" 2>/dev/null)" ]; then
    fail "$RIG exists, is not empty and is not a rig directory; refusing to use it"
  fi
fi
mkdir -p "$RIG"
RIG=$(cd "$RIG" && pwd -P)
: >"$RIG/.keysvc-rig"          # marker: rig-down.sh only deletes directories that carry it
chmod 755 "$RIG"
mkdir -p "$RIG/logs" "$RIG/pids" "$RIG/pebble" "$RIG/hsm/tokens" "$RIG/www/.well-known/acme-challenge"
chmod 755 "$RIG/logs" "$RIG/pebble" "$RIG/www" "$RIG/www/.well-known" "$RIG/www/.well-known/acme-challenge"
chmod 700 "$RIG/hsm"
WEBROOT="$RIG/www/.well-known/acme-challenge"

# ----------------------------------------------------------------------------- TLS for pebble
P="$RIG/pebble"
cat >"$P/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = v3ca
prompt = no
[dn]
CN = keysvc rig pebble TLS CA
[v3ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
cat >"$P/server.ext" <<'EOF'
subjectAltName = DNS:localhost,IP:127.0.0.1
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
(
  umask 077
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/tlsca.key" &&
  openssl req -config "$P/ca.cnf" -new -x509 -key "$P/tlsca.key" -sha256 -days 30 -out "$P/tlsca.pem" &&
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/tls.key" &&
  openssl req -new -key "$P/tls.key" -subj /CN=localhost -out "$P/tls.csr" &&
  openssl x509 -req -in "$P/tls.csr" -CA "$P/tlsca.pem" -CAkey "$P/tlsca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 30 -sha256 -extfile "$P/server.ext" -out "$P/tls.pem"
) >"$RIG/logs/openssl.log" 2>&1 || { log_tail openssl "$RIG/logs/openssl.log"; fail "creating pebble's TLS certificate failed"; }
chmod 644 "$P/tlsca.pem" "$P/tls.pem"

# ----------------------------------------------------------------------------- SoftHSM2
H="$RIG/hsm"
cat >"$H/softhsm2.conf" <<EOF
directories.tokendir = $H/tokens/
objectstore.backend = file
log.level = ERROR
slots.removable = false
slots.mechanisms = ALL
library.reset_on_fork = false
EOF
gen_pin() { "$PY" -c 'import secrets,sys; sys.stdout.write("".join(secrets.choice("0123456789") for _ in range(int(sys.argv[1]))))' "$1"; }
( umask 077; gen_pin 12 >"$H/pin"; gen_pin 12 >"$H/so-pin" )
chmod 600 "$H/pin" "$H/so-pin"
[ -s "$H/pin" ] && [ -s "$H/so-pin" ] || fail "could not write the PIN files"
export SOFTHSM2_CONF="$H/softhsm2.conf"
KS_PKCS11_MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
  if [ -f "$m" ]; then KS_PKCS11_MODULE=$m; break; fi
done
[ -n "$KS_PKCS11_MODULE" ] || fail "libsofthsm2.so not found (package softhsm2)"
"$HERE/new-token.sh" "$RIG" "$TOKEN" || fail "initialising SoftHSM token '$TOKEN' failed"

# ----------------------------------------------------------------------------- pebble-challtestsrv
CTS_EXTRA=()
# (no "| grep -q" here: with pipefail an early-exiting grep makes the pipeline fail)
cts_help=$(pebble-challtestsrv -h 2>&1 || true)
case "$cts_help" in *"-doh"*) CTS_EXTRA=(-doh "") ;; esac
cmd_challtestsrv() {
  CTS_DNS_PORT=${PORTS[0]}; CTS_MGMT_PORT=${PORTS[1]}
  start_daemon challtestsrv pebble-challtestsrv \
    -dns01 "127.0.0.1:$CTS_DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" "${CTS_EXTRA[@]}" \
    -management "127.0.0.1:$CTS_MGMT_PORT" -defaultIPv4 127.0.0.1 -defaultIPv6 ""
}
launch challtestsrv 2 cmd_challtestsrv udp:0 tcp:0 tcp:1
CHALLTESTSRV_MGMT_URL="http://127.0.0.1:$CTS_MGMT_PORT"
PEBBLE_DNS="127.0.0.1:$CTS_DNS_PORT"      # replaced by the BIND primary with --bind
# the management API answers 400 to an empty POST; any HTTP answer means it is serving
end=$(( $(now_ms) + TIMEOUT * 1000 ))
until code=$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' -d '{}' "$CHALLTESTSRV_MGMT_URL/dns-request-history" 2>/dev/null) && [ "$code" != 000 ]; do
  if [ "$(now_ms)" -gt "$end" ]; then log_tail challtestsrv "$RIG/logs/challtestsrv.log"; fail "challtestsrv management did not answer on $CHALLTESTSRV_MGMT_URL"; fi
  sleep 0.05
done

# ----------------------------------------------------------------------------- http-01 web server
cmd_www() {
  HTTP_PORT=${PORTS[0]}
  start_daemon www "$PY" -u -m http.server --bind 127.0.0.1 --directory "$RIG/www" "$HTTP_PORT"
}
if [ "$WITH_WWW" -eq 1 ]; then
  launch www 1 cmd_www tcp:0
  wait_http www "http://127.0.0.1:$HTTP_PORT/"
else
  # --no-www: only pick the port; the test runs its own server (or keysvc's responder) on it
  HTTP_PORT=$(pick_ports 1) || fail "picking a free port for HTTP_PORT failed"
  is_uint "$HTTP_PORT" || fail "picking a free port for HTTP_PORT failed (got '$HTTP_PORT')"
fi

# ----------------------------------------------------------------------------- BIND9 (optional)
# Primary on 127.0.0.1:DNS_PORT (five zones, TSIG-signed updates), secondary on
# 127.0.0.2:DNS_PORT for lag.test only (no NOTIFY, refresh 3600: it catches up only
# when the test runs rndc retransfer/refresh against 127.0.0.1:RNDC_PORT).
if [ "$WITH_BIND" -eq 1 ]; then
  D="$RIG/dns"
  DNS_KEY_DIR="$D/keys"
  DNS_ZONE_DIR="$D/primary/zones"
  mkdir -p "$DNS_KEY_DIR" "$DNS_ZONE_DIR" "$D/secondary"
  chmod 755 "$D" "$D/primary" "$DNS_ZONE_DIR" "$D/secondary"
  chmod 700 "$DNS_KEY_DIR"
  SETUP_LOG="$RIG/logs/dns-setup.log"
  : >"$SETUP_LOG"

  # TSIG keys, fresh per rig: keys/NAME.key as written by tsig-keygen, mode 0600
  gen_tsig() { # ALG KEYNAME FILE
    ( umask 077; tsig-keygen -a "$1" "$2" >"$3" ) 2>>"$SETUP_LOG" \
      || { log_tail dns-setup "$SETUP_LOG"; fail "tsig-keygen -a $1 $2 failed"; }
    chmod 600 "$3"
    grep -q 'secret "' "$3" || fail "tsig-keygen wrote no secret to $3"
  }
  TSIG_SHA256_KEY="$DNS_KEY_DIR/acme-sha256.key"
  TSIG_MD5_KEY="$DNS_KEY_DIR/acme-md5.key"
  TSIG_SHA512_KEY="$DNS_KEY_DIR/acme-sha512.key"
  RNDC_KEY="$DNS_KEY_DIR/rndc.key"
  gen_tsig hmac-sha256 acme-sha256 "$TSIG_SHA256_KEY"
  gen_tsig hmac-md5    acme-md5    "$TSIG_MD5_KEY"
  gen_tsig hmac-sha512 acme-sha512 "$TSIG_SHA512_KEY"
  gen_tsig hmac-sha256 rndc-key    "$RNDC_KEY"          # the secondary's control channel

  # The acme-md5 secret once more as a dnssec-keygen style pair (modern dnssec-keygen
  # no longer makes HMAC keys): Kacme-md5.+157+12345.{key,private}
  MD5_SECRET=$(sed -n 's/^[[:space:]]*secret "\([^"]*\)";.*/\1/p' "$TSIG_MD5_KEY")
  [ -n "$MD5_SECRET" ] || fail "could not read the secret from $TSIG_MD5_KEY"
  TSIG_PAIR_KEY="$DNS_KEY_DIR/Kacme-md5.+157+12345.key"
  TSIG_PAIR_PRIVATE="$DNS_KEY_DIR/Kacme-md5.+157+12345.private"
  (
    umask 077
    printf 'acme-md5. IN KEY 512 3 157 %s\n' "$MD5_SECRET" >"$TSIG_PAIR_KEY"
    printf 'Private-key-format: v1.3\nAlgorithm: 157 (HMAC_MD5)\nKey: %s\nBits: AAA=\n' "$MD5_SECRET" >"$TSIG_PAIR_PRIVATE"
  )
  chmod 600 "$TSIG_PAIR_KEY" "$TSIG_PAIR_PRIVATE"

  # Zone files: $TTL 5, SOA refresh/retry 3600 (lag.test must not refresh by itself),
  # negative TTL 5, and an A at the apex plus a wildcard A so that pebble's http-01/tls-alpn-01
  # lookups of any name in the zone resolve to 127.0.0.1 (no AAAA: see the IPv6 trap).
  zone_file() { # ZONE extra-line...
    local z=$1; shift
    {
      echo "\$TTL 5"
      printf '@\tIN\tSOA\tns1.%s. hostmaster.%s. ( 1 3600 3600 86400 5 )\n' "$z" "$z"
      printf '@\tIN\tNS\tns1.%s.\n' "$z"
      printf '@\tIN\tA\t127.0.0.1\n'            # the wildcard does not cover the apex
      printf 'ns1\tIN\tA\t127.0.0.1\n'
      printf '*\tIN\tA\t127.0.0.1\n'
      [ $# -eq 0 ] || printf '%s\n' "$@"
    } >"$DNS_ZONE_DIR/$z.db"
  }
  zone_file example.test   $'_acme-challenge.cname\tIN\tCNAME\tcname.delegated.test.'
  zone_file other.test
  zone_file delegated.test
  zone_file lag.test       $'@\tIN\tNS\tns2.lag.test.' $'ns2\tIN\tA\t127.0.0.2'
  zone_file noupdate.test
  DNS_ZONES="example.test other.test delegated.test lag.test noupdate.test"
  for z in $DNS_ZONES; do
    named-checkzone -q "$z" "$DNS_ZONE_DIR/$z.db" >>"$SETUP_LOG" 2>&1 \
      || { named-checkzone "$z" "$DNS_ZONE_DIR/$z.db" >>"$SETUP_LOG" 2>&1 || true
           log_tail dns-setup "$SETUP_LOG"; fail "named-checkzone $z failed"; }
  done

  write_named_confs() { # uses DNS_PORT, RNDC_PORT
    local pd="$D/primary" sd="$D/secondary"
    cat >"$pd/named.conf" <<EOF
// BIND9 primary of the keysvc test rig (written by rig-up.sh)
include "$TSIG_SHA256_KEY";
include "$TSIG_MD5_KEY";
include "$TSIG_SHA512_KEY";
options {
    directory "$pd";
    pid-file "$pd/named.pid";
    lock-file "$pd/named.lock";
    session-keyfile "$pd/session.key";
    managed-keys-directory "$pd";
    listen-on port $DNS_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer { none; };
};
controls { };   // no rndc channel (the default would bind 127.0.0.1:953)
zone "example.test" {
    type primary; file "zones/example.test.db";
    update-policy { grant acme-sha256 zonesub TXT TLSA; };
};
zone "other.test" {
    type primary; file "zones/other.test.db";
    update-policy { grant acme-md5 zonesub TXT; grant acme-sha512 zonesub TXT; };
};
zone "delegated.test" {
    type primary; file "zones/delegated.test.db";
    update-policy { grant acme-sha256 zonesub TXT; };
};
zone "lag.test" {
    type primary; file "zones/lag.test.db";
    notify no;                          // the secondary catches up only via rndc
    allow-transfer { 127.0.0.0/8; };
    update-policy { grant acme-sha256 zonesub TXT; };
};
zone "noupdate.test" {
    type primary; file "zones/noupdate.test.db";
    allow-update { none; };
};
EOF
    cat >"$sd/named.conf" <<EOF
// BIND9 secondary (lag.test only) of the keysvc test rig (written by rig-up.sh)
include "$RNDC_KEY";
options {
    directory "$sd";
    pid-file "$sd/named.pid";
    lock-file "$sd/named.lock";
    session-keyfile "$sd/session.key";
    managed-keys-directory "$sd";
    listen-on port $DNS_PORT { 127.0.0.2; };
    listen-on-v6 { none; };
    // Also pebble's resolver: an authoritative-only server does not follow
    // a CNAME into another zone, a resolver does.  It forwards to the
    // primary only (never off the loopback) and caches for a second at most.
    recursion yes;
    allow-recursion { 127.0.0.0/8; };
    allow-query-cache { 127.0.0.0/8; };
    forward only;
    forwarders { 127.0.0.1 port $DNS_PORT; };
    max-cache-ttl 1;
    max-ncache-ttl 1;
    dnssec-validation no;
    notify no;
    allow-transfer { none; };
};
controls {
    inet 127.0.0.1 port $RNDC_PORT allow { 127.0.0.1; } keys { "rndc-key"; };
};
zone "lag.test" {
    type secondary;
    primaries { 127.0.0.1 port $DNS_PORT; };
    file "lag.test.db";
};
EOF
    local c
    for c in "$pd/named.conf" "$sd/named.conf"; do
      named-checkconf "$c" >>"$SETUP_LOG" 2>&1 || { log_tail dns-setup "$SETUP_LOG"; fail "named-checkconf $c failed"; }
    done
  }

  # named listens only on addresses configured on an interface, and lo normally has just
  # 127.0.0.1/8 (the kernel answers for all of 127/8, named does not). So 127.0.0.2/32 is
  # added to lo once and left there (harmless; other rigs may be using it).
  lo_has_127_0_0_2() { case "$(ip -4 -o addr show dev lo 2>/dev/null || true)" in *" 127.0.0.2/"*) return 0 ;; esac; return 1; }
  if ! lo_has_127_0_0_2; then
    command -v ip >/dev/null 2>&1 || fail "--bind: 127.0.0.2 is not on lo and 'ip' (iproute2) is missing to add it"
    ip addr add 127.0.0.2/32 dev lo >>"$SETUP_LOG" 2>&1 || true   # "File exists" if another rig won the race
    lo_has_127_0_0_2 || { log_tail dns-setup "$SETUP_LOG"; fail "--bind: could not add 127.0.0.2/32 to lo (needs root or CAP_NET_ADMIN): named listens only on interface addresses"; }
    echo "$ME: added 127.0.0.2/32 to lo for the BIND secondary (left in place)" >&2
  fi

  # named words a port collision as "creating IPv4 interface lo failed" / "unable to listen
  # on any configured interfaces" (then exits) or, for the control channel, "address in use"
  # (and keeps running); wait_owned treats these like "address already in use".
  NAMED_BIND_ERR="unable to listen on any configured interfaces|interface lo failed|address in use"
  dns_ok=0
  for attempt in 1 2 3 4 5; do
    ports=$(PICK_EXTRA_ADDRS=127.0.0.2 pick_ports 2) || fail "picking free ports for BIND failed"
    read -r DNS_PORT RNDC_PORT <<<"$ports"
    is_uint "${DNS_PORT:-}" && is_uint "${RNDC_PORT:-}" || fail "picking free ports for BIND failed (got '$ports')"
    write_named_confs
    rm -f "$D/secondary/lag.test.db"
    start_daemon named-primary named -g -c "$D/primary/named.conf"
    rc=0
    RIG_BIND_ERR=$NAMED_BIND_ERR wait_owned "$DAEMON_PID" "$RIG/logs/named-primary.log" "$TIMEOUT" \
      "udp:$DNS_PORT" "tcp:$DNS_PORT" || rc=$?
    if [ "$rc" -eq 0 ]; then
      start_daemon named-secondary named -g -c "$D/secondary/named.conf"
      RIG_BIND_ERR=$NAMED_BIND_ERR wait_owned "$DAEMON_PID" "$RIG/logs/named-secondary.log" "$TIMEOUT" \
        "udp:$DNS_PORT" "tcp:$DNS_PORT" "tcp:$RNDC_PORT" || rc=$?
      [ "$rc" -eq 0 ] || rc=$(( rc + 10 ))
    fi
    case $rc in
      0) dns_ok=1; break ;;
      4|14)
        n=named-primary; [ "$rc" -eq 4 ] || n=named-secondary
        echo "$ME: $n: port collision on $DNS_PORT/$RNDC_PORT, retrying ($attempt)" >&2
        cp "$RIG/logs/$n.log" "$RIG/logs/$n.collision.$attempt.log" 2>/dev/null || true
        stop_one named-secondary; stop_one named-primary ;;
      3)  log_tail named-primary "$RIG/logs/named-primary.log"; fail "named (primary) exited during start-up" ;;
      13) log_tail named-secondary "$RIG/logs/named-secondary.log"; fail "named (secondary) exited during start-up" ;;
      1[0-9]) log_tail named-secondary "$RIG/logs/named-secondary.log"; fail "named (secondary) did not bind 127.0.0.2:$DNS_PORT and 127.0.0.1:$RNDC_PORT within ${TIMEOUT}s" ;;
      *)  log_tail named-primary "$RIG/logs/named-primary.log"; fail "named (primary) did not bind 127.0.0.1:$DNS_PORT within ${TIMEOUT}s" ;;
    esac
  done
  [ "$dns_ok" -eq 1 ] || fail "BIND: could not get free ports after 5 attempts"

  # wait_soa NAME SERVER ZONE...: until SERVER answers an SOA for every ZONE (authoritatively)
  wait_soa() {
    local name=$1 server=$2; shift 2
    local end=$(( $(now_ms) + TIMEOUT * 1000 )) q=() z out n
    for z in "$@"; do q+=(SOA "$z"); done
    while :; do
      out=$(dig +norecurse +time=1 +tries=1 +short -p "$DNS_PORT" "@$server" "${q[@]}" 2>/dev/null || true)
      n=$(printf '%s\n' "$out" | grep -c ' 3600 3600 86400 5$' || true)
      [ "$n" -eq $# ] && return 0
      if [ "$(now_ms)" -gt "$end" ]; then
        log_tail "$name" "$RIG/logs/$name.log"
        fail "$name did not serve the SOA of $* on $server:$DNS_PORT within ${TIMEOUT}s"
      fi
      sleep 0.05
    done
  }
  # shellcheck disable=SC2086
  wait_soa named-primary 127.0.0.1 $DNS_ZONES
  wait_soa named-secondary 127.0.0.2 lag.test       # the secondary has done its first transfer
  PEBBLE_DNS="127.0.0.2:$DNS_PORT"         # the secondary, which also resolves (see its config)
fi

# ----------------------------------------------------------------------------- pebble
# External Account Binding: one key id and a random 256-bit MAC key,
# base64url without padding (pebble's format, and what CAs hand out).
EAB_KID="" EAB_HMAC_KEY=""
if [ "$EAB" -eq 1 ]; then
  EAB_KID="kid-rig-$$"
  EAB_HMAC_KEY=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
fi
cmd_pebble() {
  PEBBLE_PORT=${PORTS[0]}; PEBBLE_MGMT_PORT=${PORTS[1]}; TLS_PORT=${PORTS[2]}
  "$PY" - "$P/pebble-config.json" "$PEBBLE_PORT" "$PEBBLE_MGMT_PORT" "$P/tls.pem" "$P/tls.key" \
        "$HTTP_PORT" "$TLS_PORT" "$VALIDITY" "$EAB_KID" "$EAB_HMAC_KEY" <<'PYEOF'
import json, sys
out, port, mport, cert, key, http, tls, validity, eab_kid, eab_key = sys.argv[1:]
c = {"listenAddress": "127.0.0.1:" + port, "managementListenAddress": "127.0.0.1:" + mport,
     "certificate": cert, "privateKey": key, "httpPort": int(http), "tlsPort": int(tls),
     "ocspResponderURL": "", "externalAccountBindingRequired": bool(eab_kid)}
if eab_kid:
    c["externalAccountMACKeys"] = {eab_kid: eab_key}
if validity:
    c["certificateValidityPeriod"] = int(validity)
with open(out, "w") as f:
    json.dump({"pebble": c}, f, indent=2)
PYEOF
  local envs=(PEBBLE_VA_NOSLEEP=1 "PEBBLE_WFE_NONCEREJECT=$NONCE_REJECT")
  [ -z "$AUTHZ_REUSE" ] || envs+=("PEBBLE_AUTHZREUSE=$AUTHZ_REUSE")
  [ -z "$ALT_ROOTS" ] || envs+=("PEBBLE_ALTERNATE_ROOTS=$ALT_ROOTS")
  [ -z "$CHAIN_LENGTH" ] || envs+=("PEBBLE_CHAIN_LENGTH=$CHAIN_LENGTH")
  start_daemon pebble env "${envs[@]}" pebble -config "$P/pebble-config.json" -dnsserver "$PEBBLE_DNS"
}
launch pebble 3 cmd_pebble tcp:0 tcp:1
ACME_DIR_URL="https://127.0.0.1:$PEBBLE_PORT/dir"
PEBBLE_MGMT_URL="https://127.0.0.1:$PEBBLE_MGMT_PORT"
wait_http pebble "$ACME_DIR_URL" --cacert "$P/tlsca.pem"
wait_http pebble "$PEBBLE_MGMT_URL/roots/0" --cacert "$P/tlsca.pem"
curl -sS --noproxy '*' --fail --max-time 5 --cacert "$P/tlsca.pem" -o "$P/root.pem" "$PEBBLE_MGMT_URL/roots/0" \
  || fail "could not fetch pebble's root from $PEBBLE_MGMT_URL/roots/0"
curl -sS --noproxy '*' --fail --max-time 5 --cacert "$P/tlsca.pem" -o "$P/intermediate.pem" "$PEBBLE_MGMT_URL/intermediates/0" \
  || fail "could not fetch pebble's intermediate from $PEBBLE_MGMT_URL/intermediates/0"
grep -q 'BEGIN CERTIFICATE' "$P/root.pem" || fail "$P/root.pem is not a PEM certificate"

# ----------------------------------------------------------------------------- PostgreSQL (optional)
if [ "$WITH_PG" -eq 1 ]; then
  command -v pg_config >/dev/null 2>&1 || fail "pg_config not found (package libpq-dev)"
  PGBIN=$(pg_config --bindir)
  [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] || fail "initdb/pg_ctl not found in $PGBIN (package postgresql)"
  # /tmp, not RIGDIR: the postgres user must be able to traverse every path component
  PG_DIR=$(mktemp -d /tmp/ksrig-pg.XXXXXX) || fail "mktemp for the PostgreSQL dir failed"
  printf '%s\n' "$PG_DIR" >"$RIG/pg.dir"
  chmod 755 "$PG_DIR"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || fail "user 'postgres' does not exist (package postgresql)"
    chown postgres:postgres "$PG_DIR"
    AS_PG=(runuser -u postgres --)
  else
    AS_PG=()
  fi
  "${AS_PG[@]}" "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
      </dev/null >"$RIG/logs/initdb.log" 2>&1 \
    || { log_tail initdb "$RIG/logs/initdb.log"; fail "initdb failed"; }
  (
    for fd in /proc/$BASHPID/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null || true; fi; done
    exec "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t "$TIMEOUT" \
      -o "-k $PG_DIR -p 5432 -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start
  ) </dev/null >"$RIG/logs/pg_ctl.log" 2>&1 \
    || { log_tail postgres "$PG_DIR/postgres.log"; fail "PostgreSQL did not start (pg_ctl start failed)"; }
  ln -sf "$PG_DIR/postgres.log" "$RIG/logs/postgres.log"
  # postmaster PID for the record (rig-down stops the cluster with pg_ctl first; this is the fallback)
  pmpid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
  case "$pmpid" in
    ''|*[!0-9]*) ;;
    *) printf '%s\n' "$pmpid" >"$RIG/pids/postgres.pid"
       if st=$(cat "/proc/$pmpid/stat" 2>/dev/null); then
         st=${st##*) }; read -r -a f <<<"$st"; printf '%s\n' "${f[19]}" >"$RIG/pids/postgres.start"
       fi ;;
  esac
  PG_SOCKET_DIR=$PG_DIR
  PG_CONNINFO="host=$PG_DIR port=5432 user=postgres dbname=postgres"
  if command -v psql >/dev/null 2>&1; then
    psql "$PG_CONNINFO" -XAtqc 'select 1' </dev/null >/dev/null 2>"$RIG/logs/psql.log" \
      || { log_tail psql "$RIG/logs/psql.log"; fail "PostgreSQL started but psql cannot connect with '$PG_CONNINFO'"; }
  fi
fi

# ----------------------------------------------------------------------------- env
{
  echo "# keysvc test rig, written by rig-up.sh; source with: . $RIG/env"
  echo "export RIG=$(shq "$RIG")"
  echo "export SOFTHSM2_CONF=$(shq "$H/softhsm2.conf")"
  echo "export KS_PKCS11_MODULE=$(shq "$KS_PKCS11_MODULE")"
  echo "export KS_TOKEN=$(shq "$TOKEN")"
  echo "export KS_PIN_FILE=$(shq "$H/pin")"
  echo "export KS_SO_PIN_FILE=$(shq "$H/so-pin")"
  echo "export ACME_DIR_URL=$(shq "$ACME_DIR_URL")"
  echo "export ACME_CA_FILE=$(shq "$P/tlsca.pem")"
  echo "export PEBBLE_MGMT_URL=$(shq "$PEBBLE_MGMT_URL")"
  echo "export PEBBLE_ROOT=$(shq "$P/root.pem")"
  echo "export PEBBLE_INTERMEDIATE=$(shq "$P/intermediate.pem")"
  echo "export WEBROOT=$(shq "$WEBROOT")"
  echo "export HTTP_PORT=$HTTP_PORT"
  echo "export TLS_PORT=$TLS_PORT"
  if [ "$EAB" -eq 1 ]; then
    echo "export EAB_KID=$(shq "$EAB_KID")"
    echo "export EAB_HMAC_KEY=$(shq "$EAB_HMAC_KEY")"
  fi
  echo "export CHALLTESTSRV_MGMT_URL=$(shq "$CHALLTESTSRV_MGMT_URL")"
  echo "export CHALLTESTSRV_DNS=$(shq "127.0.0.1:$CTS_DNS_PORT")"
  echo "export PEBBLE_DNS=$(shq "$PEBBLE_DNS")"
  if [ "$WITH_BIND" -eq 1 ]; then
    echo "export DNS_PORT=$DNS_PORT"
    echo "export DNS_PRIMARY=$(shq "127.0.0.1:$DNS_PORT")"
    echo "export DNS_SECONDARY=$(shq "127.0.0.2:$DNS_PORT")"
    echo "export DNS_KEY_DIR=$(shq "$DNS_KEY_DIR")"
    echo "export DNS_ZONE_DIR=$(shq "$DNS_ZONE_DIR")"
    echo "export TSIG_SHA256_KEY=$(shq "$TSIG_SHA256_KEY")"
    echo "export TSIG_MD5_KEY=$(shq "$TSIG_MD5_KEY")"
    echo "export TSIG_SHA512_KEY=$(shq "$TSIG_SHA512_KEY")"
    echo "export TSIG_PAIR_KEY=$(shq "$TSIG_PAIR_KEY")"
    echo "export TSIG_PAIR_PRIVATE=$(shq "$TSIG_PAIR_PRIVATE")"
    echo "export RNDC_PORT=$RNDC_PORT"
    echo "export RNDC_KEY=$(shq "$RNDC_KEY")"
  fi
  echo "export NO_PROXY='127.0.0.1,localhost' no_proxy='127.0.0.1,localhost'"
  if [ "$WITH_PG" -eq 1 ]; then
    echo "export PG_CONNINFO=$(shq "$PG_CONNINFO")"
    echo "export PG_SOCKET_DIR=$(shq "$PG_SOCKET_DIR")"
    echo "export PGHOST=$(shq "$PG_SOCKET_DIR") PGPORT=5432 PGUSER=postgres PGDATABASE=postgres"
  fi
} >"$RIG/env.tmp"
chmod 644 "$RIG/env.tmp"
mv -f "$RIG/env.tmp" "$RIG/env"

SUCCESS=1
echo "$ME: rig ready in $(( $(now_ms) - T0 )) ms: . $RIG/env  (ACME $ACME_DIR_URL, http-01 port $HTTP_PORT$([ "$WITH_WWW" -eq 1 ] || echo " (no server)"), token '$TOKEN'$([ "$WITH_PG" -eq 1 ] && echo ", postgres $PG_SOCKET_DIR")$([ "$WITH_BIND" -eq 1 ] && echo ", BIND 127.0.0.1/127.0.0.2:$DNS_PORT"))"
