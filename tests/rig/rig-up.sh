#!/usr/bin/env bash
# rig-up.sh RIGDIR [options]
#
# Start the keysvc integration-test rig under RIGDIR, on 127.0.0.1 only, with ports
# chosen at run time: pebble (ACME CA), pebble-challtestsrv (pebble's DNS), a plain
# HTTP server for http-01 files, a private SoftHSM2 token store and, with --postgres,
# a throwaway PostgreSQL cluster. Writes RIGDIR/env (source it from sh).
# On failure everything started is stopped again (rig-down.sh) and the exit code is 1.
# See README.md beside this script.
set -Eeuo pipefail
export PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin"   # runuser lives in /usr/sbin

usage() {
  cat <<'EOF'
usage: rig-up.sh RIGDIR [options]
  --token LABEL        label of the initial SoftHSM token (default keysvc-test)
  --postgres           also start a throwaway PostgreSQL cluster (socket only)
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

# pick_ports N: N distinct free 127.0.0.1 ports (free for TCP and UDP), all held at once
pick_ports() {
  "$PY" - "$1" <<'PYEOF'
import socket, sys
n = int(sys.argv[1]); held = []; ports = []
while len(ports) < n:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        held.append(t); continue
    held += [t, u]; ports.append(p)
print(" ".join(map(str, ports)))
PYEOF
}

# wait_owned PID LOG TIMEOUT_S proto:port...
#  0: PID has all the listed sockets bound; 3: PID exited; 4: log says "address already in use"; 1: timeout
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
def bind_error():
    try:
        with open(log, errors="replace") as f:
            return "address already in use" in f.read().lower()
    except OSError:
        return False
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
launch www 1 cmd_www tcp:0
wait_http www "http://127.0.0.1:$HTTP_PORT/"

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
  start_daemon pebble env "${envs[@]}" pebble -config "$P/pebble-config.json" -dnsserver "127.0.0.1:$CTS_DNS_PORT"
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
echo "$ME: rig ready in $(( $(now_ms) - T0 )) ms: . $RIG/env  (ACME $ACME_DIR_URL, http-01 port $HTTP_PORT, token '$TOKEN'$([ "$WITH_PG" -eq 1 ] && echo ", postgres $PG_SOCKET_DIR"))"
