#!/usr/bin/env bash
# rig-down.sh RIGDIR
#
# Stop everything rig-up.sh started in RIGDIR: the daemons listed in RIGDIR/pids
# (SIGTERM, up to 5 s grace, then SIGKILL) and the PostgreSQL cluster if any
# (pg_ctl -m immediate stop). Then delete RIGDIR and the PostgreSQL temp dir,
# unless KEEP_RIG=1. Safe to run twice, and after a rig-up that failed halfway.
set -Euo pipefail
export PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin"   # runuser lives in /usr/sbin

ME=rig-down
[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: rig-down.sh RIGDIR" >&2; exit 2; }
RIG=$1
KEEP=${KEEP_RIG:-0}
GRACE_MS=${RIG_STOP_GRACE_MS:-5000}

if [ ! -d "$RIG" ]; then
  exit 0                                  # nothing left (already torn down)
fi
if [ ! -f "$RIG/.keysvc-rig" ]; then
  echo "$ME: $RIG is not a rig directory (no .keysvc-rig marker); not touching it" >&2
  exit 1
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# alive PID [STARTTIME]: running (not a zombie) and, if given, started at STARTTIME
alive() {
  local st f
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  read -r -a f <<<"$st"
  case "${f[0]}" in Z|X) return 1 ;; esac
  if [ -n "${2:-}" ] && [ "${f[19]}" != "$2" ]; then return 1; fi   # PID was recycled
  return 0
}

rc=0

# ---------------------------------------------------------------- PostgreSQL
if [ -f "$RIG/pg.dir" ]; then
  PG_DIR=$(head -n 1 "$RIG/pg.dir")
  case "$PG_DIR" in
    /tmp/ksrig-pg.?*) ;;
    *) echo "$ME: unexpected PostgreSQL dir '$PG_DIR' in $RIG/pg.dir; ignoring it" >&2; PG_DIR="" ;;
  esac
  if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
    PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
    if [ "$(id -u)" -eq 0 ]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi
    if ! out=$("${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 10 stop </dev/null 2>&1); then
      echo "$ME: pg_ctl stop: $out" >&2
      pmpid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
      case "$pmpid" in
        ''|*[!0-9]*) ;;
        *) if alive "$pmpid" && grep -q postgres "/proc/$pmpid/cmdline" 2>/dev/null; then
             echo "$ME: pg_ctl stop failed; killing postmaster $pmpid" >&2
             kill -KILL "$pmpid" 2>/dev/null || true
           fi ;;
      esac
    fi
  fi
  if [ -n "$PG_DIR" ] && [ "$KEEP" != 1 ] && [ -d "$PG_DIR" ]; then
    rm -rf -- "$PG_DIR" || { echo "$ME: could not remove $PG_DIR" >&2; rc=1; }
  fi
fi

# ---------------------------------------------------------------- daemons
pids=() starts=() names=()
if [ -d "$RIG/pids" ]; then
  for f in "$RIG"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(head -n 1 "$f" 2>/dev/null || true)
    name=$(basename "$f" .pid)
    case "$pid" in ''|*[!0-9]*) continue ;; esac
    start=$(cat "$RIG/pids/$name.start" 2>/dev/null || true)
    if alive "$pid" "$start"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); starts+=("$start"); names+=("$name")
    fi
  done
fi

if [ ${#pids[@]} -gt 0 ]; then
  end=$(( $(now_ms) + GRACE_MS ))
  while :; do
    left=0
    for i in "${!pids[@]}"; do
      if alive "${pids[$i]}" "${starts[$i]}"; then left=1; break; fi
    done
    [ "$left" -eq 1 ] || break
    if [ "$(now_ms)" -ge "$end" ]; then
      for i in "${!pids[@]}"; do
        if alive "${pids[$i]}" "${starts[$i]}"; then
          echo "$ME: ${names[$i]} (pid ${pids[$i]}) ignored SIGTERM; sending SIGKILL" >&2
          kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
      done
      kend=$(( $(now_ms) + 2000 ))
      for i in "${!pids[@]}"; do
        while alive "${pids[$i]}" "${starts[$i]}" && [ "$(now_ms)" -lt "$kend" ]; do sleep 0.02; done
      done
      break
    fi
    sleep 0.02
  done
fi
rm -f "$RIG"/pids/*.pid "$RIG"/pids/*.start 2>/dev/null || true

# ---------------------------------------------------------------- files
if [ "$KEEP" = 1 ]; then
  echo "$ME: KEEP_RIG=1: daemons stopped, $RIG kept" >&2
else
  rm -rf -- "$RIG" || { echo "$ME: could not remove $RIG" >&2; rc=1; }
fi
exit "$rc"
