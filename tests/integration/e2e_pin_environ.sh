#!/usr/bin/env bash
# A PIN handed to keysvc in its environment does not stay there: while a run
# is under way (held here by an ACME server that accepts and never answers),
# neither the worker's nor the signer's /proc/PID/environ holds it, in a run
# with its own signer for one tenant (the other tenant's PIN variable is
# wiped too) and in a worker of a standalone signer.
. "$(dirname "$0")/lib.sh"
rig_load
test_setup pinenv
cd "$WORK"
PY=/usr/bin/python3 # never the python3 on PATH (may be a pyenv shim)
pin=$(cat "$KS_PIN_FILE")
[ ${#pin} -ge 8 ] || fail "the rig's PIN is too short to search for"

# An "ACME server" that accepts connections and never answers; it notes
# each connection in accepted.log.
cat > silent.py <<'PY'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    with open(sys.argv[1], "a") as log:
        log.write("accepted\n")
PY
"$PY" silent.py "$WORK/accepted.log" > silent.port &
silent_pid=$!
pids_to_stop=("$silent_pid")
stop_all() {
    local p
    for p in "${pids_to_stop[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids_to_stop[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop_all; test_cleanup' EXIT
for _ in $(seq 100); do [ -s silent.port ] && break; sleep 0.05; done
port=$(cat silent.port)
[ -n "$port" ] || fail "the silent server did not start"

write_config keysvc.json '{"p.test": {"key_types": ["ecdsa"], "tenant": "a"}}' "{\"p.test\": \"$WEBROOT\"}"
sed -i "s|\"acme_directory_url\": \"[^\"]*\"|\"acme_directory_url\": \"https://127.0.0.1:$port/dir\"|" keysvc.json
tenant_a="\"a\": {\"token\": \"$TOKEN\", \"pin_env\": \"KS_TEST_PIN_A\"}"
tenant_b="\"b\": {\"token\": \"never-opened\", \"pin_env\": \"KS_TEST_PIN_B\"}"
sed -i "s|\"hsm\": {[^}]*}|\"hsm\": {\"module\": \"$KS_PKCS11_MODULE\"}, \"tenants\": {$tenant_a, $tenant_b}|" keysvc.json

# Waits until the worker has reached the silent server (n connections).
wait_for_connection() { # n what
    for _ in $(seq 1200); do
        [ "$(wc -l < accepted.log 2>/dev/null || echo 0)" -ge "$1" ] && return 0
        sleep 0.05
    done
    cat worker.log
    fail "$2: the worker never reached the ACME server"
}

# Fails when the process's environment block holds the PIN.
assert_no_pin() { # pid what
    [ -r "/proc/$1/environ" ] || fail "$2: no process $1"
    if tr '\0' '\n' < "/proc/$1/environ" | grep -qF "$pin"; then
        fail "$2 (pid $1) holds the PIN in its environment"
    fi
    pass "$2 (pid $1): no PIN in its environment"
}

# The check finds a PIN where there is one.
KS_TEST_PIN_A=$pin sleep 30 &
probe=$!
pids_to_stop+=("$probe")
for _ in $(seq 100); do # until bash has exec'd sleep, with its own environment
    tr '\0' '\n' < "/proc/$probe/environ" | grep -qF "$pin" && break
    sleep 0.02
done
tr '\0' '\n' < "/proc/$probe/environ" | grep -qF "$pin" || fail "the environment check cannot see a PIN"
pass "the environment check sees a PIN where there is one"
kill "$probe"

# 1. keysvc run --tenant a: its own signer, for tenant a only.
KS_TEST_PIN_A=$pin KS_TEST_PIN_B=$pin "$KEYSVC" run --config keysvc.json \
    --tenant a -v > worker.log 2>&1 < /dev/null &
worker=$!
pids_to_stop+=("$worker")
wait_for_connection 1 "run --tenant a"
signer=$(pgrep -P "$worker" | head -n1)
[ -n "$signer" ] || fail "the run's signer process is not there"
assert_no_pin "$worker" "the worker"
assert_no_pin "$signer" "the run's signer"
kill "$worker"
wait "$worker" 2>/dev/null || true

# 2. A standalone signer, and a worker that was given the PIN needlessly.
sock=$WORK/signer.sock
sed "s|\"hsm\": {|\"signer\": {\"socket\": \"$sock\"}, \"hsm\": {|" keysvc.json > standalone.json
KS_TEST_PIN_A=$pin KS_TEST_PIN_B=$pin "$KEYSVC" signer --config standalone.json \
    -v > signer.log 2>&1 < /dev/null &
standalone=$!
pids_to_stop+=("$standalone")
for _ in $(seq 600); do grep -q "listening on" signer.log && break; sleep 0.05; done
grep -q "listening on" signer.log || { cat signer.log; fail "the standalone signer did not start"; }
KS_TEST_PIN_A=$pin "$KEYSVC" run --config standalone.json -v > worker.log 2>&1 < /dev/null &
worker=$!
pids_to_stop+=("$worker")
wait_for_connection 2 "worker of a standalone signer"
assert_eq "" "$(pgrep -P "$worker" || true)" "the worker started no signer of its own"
assert_no_pin "$worker" "the worker of a standalone signer"
assert_no_pin "$standalone" "the standalone signer"
assert_contains signer.log "for tenant \"a\"" "the standalone signer logged in for the worker"
