#!/usr/bin/env bash
# End to end: nginx serves keysvc's certificates with the keys left in the
# token.  keysvc issues an ECDSA and an RSA certificate (pebble, http-01) and
# writes an nginx snippet for each; a private nginx (libp11's pkcs11 engine,
# master_process off) includes the snippet unchanged, and a TLS client checks
# the chain, the served leaf, the signature type and the content.
. "$(dirname "$0")/lib.sh"
rig_load
test_setup nginx

PY=/usr/bin/python3 # never the python3 on PATH (may be a pyenv shim)
NAME=www.nginx.example.test
now_ms() { echo $(($(date +%s%N) / 1000000)); }
T0=$(now_ms)

# nginx is stopped by PID, also when the test fails half way.
NGINX_PID=""
stop_nginx() {
    [ -n "$NGINX_PID" ] || return 0
    local pid=$NGINX_PID
    NGINX_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do # up to 5 s, then SIGKILL
        kill -0 "$pid" 2>/dev/null || break
        [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
on_exit() {
    local rc=$?
    stop_nginx
    (exit "$rc")
    test_cleanup
}
trap on_exit EXIT

write_config keysvc.json "{\"$NAME\": {\"key_types\": [\"ecdsa\", \"rsa\"]}}" \
    "{\"$NAME\": \"$WEBROOT\"}"
# The servers read the PIN from the rig's PIN file (mode 0600).
"$PY" - "$WORK/keysvc.json" "file:$KS_PIN_FILE" <<'PYEOF'
import json, sys
with open(sys.argv[1]) as f:
    cfg = json.load(f)
cfg["hsm"]["server_pin_source"] = sys.argv[2]
with open(sys.argv[1], "w") as f:
    json.dump(cfg, f, indent=2)
PYEOF
assert_eq 600 "$(stat -c %a "$KS_PIN_FILE")" "the PIN file nginx reads is mode 0600"

cd "$WORK"
run_keysvc run --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "keysvc issued the certificates"
assert_contains run.out "issued $NAME (ecdsa)" "ECDSA certificate issued"
assert_contains run.out "issued $NAME (rsa)" "RSA certificate issued"
curl -sf --noproxy '*' --cacert "$ACME_CA_FILE" "$PEBBLE_MGMT_URL/roots/0" > root.pem
grep -q 'BEGIN CERTIFICATE' root.pem || fail "no root from $PEBBLE_MGMT_URL/roots/0"

# The engine configuration nginx gets: docs/openssl-pkcs11.cnf with the
# rig's module.
sed "s|^MODULE_PATH = .*|MODULE_PATH = $KS_PKCS11_MODULE|" \
    "$SRC_DIR/docs/openssl-pkcs11.cnf" > openssl-pkcs11.cnf
assert_contains openssl-pkcs11.cnf "MODULE_PATH = $KS_PKCS11_MODULE" "engine config names the rig's module"
assert_contains openssl-pkcs11.cnf "init = 1" "engine config initialises the engine"
if grep -E '^[[:space:]]*default_algorithms' openssl-pkcs11.cnf; then fail "the engine is made a default"; fi
pass "engine config does not make the engine a default"

# 0: PID listens on 127.0.0.1:PORT; 3: PID exited; 1: timeout.
wait_listening() { # pid port timeout-seconds
    "$PY" - "$@" <<'PYEOF'
import os, sys, time
pid, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
def listening():
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        with open(f"/proc/{pid}/net/tcp") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return False
    for row in rows:
        x = row.split()
        if x[3] == "0A" and x[1] == "0100007F:%04X" % port and x[9] in inodes:
            return True
    return False
end = time.monotonic() + timeout
while True:
    if listening():
        sys.exit(0)
    if not alive():
        sys.exit(3)
    if time.monotonic() > end:
        sys.exit(1)
    time.sleep(0.01)
PYEOF
}

# Starts nginx for one key type in its own prefix; sets NGINX_PID and PORT.
start_nginx() { # key-type
    local t=$1 ngx=$WORK/nginx-$1 attempt rc t_start
    mkdir -p "$ngx/tmp"
    for attempt in 1 2 3 4 5; do
        PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        # Every path nginx-light would take from its compiled-in defaults
        # (/var/lib/nginx, /var/log/nginx, /run) is set here.
        cat > "$ngx/nginx.conf" <<NGINX
daemon off;
master_process off;
pid $ngx/nginx.pid;
lock_file $ngx/nginx.lock;
error_log $ngx/error.log info;
env OPENSSL_CONF;
env SOFTHSM2_CONF;
events { worker_connections 64; }
http {
    access_log $ngx/access.log;
    client_body_temp_path $ngx/tmp/body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name $NAME;
        include $WORK/out/certs/$NAME.$t.nginx.conf;
        location / {
            default_type text/plain;
            return 200 "hsm ok";
        }
    }
}
NGINX
        : > "$ngx/error.log"
        t_start=$(now_ms)
        # stdin /dev/null, output to a log, no inherited descriptors beyond
        # 0-2 (CTest waits on inherited pipes).
        (
            for fd in "/proc/$BASHPID/fd/"*; do
                n=${fd##*/}
                if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null || true; fi
            done
            OPENSSL_CONF=$WORK/openssl-pkcs11.cnf exec nginx -p "$ngx" -e "$ngx/error.log" \
                -c "$ngx/nginx.conf"
        ) < /dev/null > "$ngx/stdout.log" 2>&1 &
        NGINX_PID=$!
        rc=0
        wait_listening "$NGINX_PID" "$PORT" 20 || rc=$?
        if [ "$rc" -eq 0 ]; then
            NGINX_START_MS=$(($(now_ms) - t_start))
            return 0
        fi
        stop_nginx
        if [ "$rc" -eq 3 ] && grep -q "Address already in use" "$ngx/error.log" "$ngx/stdout.log"; then
            echo "port $PORT taken before nginx bound it; retrying ($attempt)"
            continue
        fi
        echo "--- $ngx/error.log:"; cat "$ngx/error.log"
        echo "--- $ngx/stdout.log:"; cat "$ngx/stdout.log"
        fail "nginx ($t) did not listen on 127.0.0.1:$PORT (rc $rc)"
    done
    fail "nginx ($t): no free port after 5 attempts"
}

# DER SHA-256 of the first certificate in a PEM file.
der_hash() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

for t in ecdsa rsa; do
    snippet=out/certs/$NAME.$t.nginx.conf
    [ -f "$snippet" ] || fail "no nginx snippet $snippet"
    pass "$t nginx snippet written"
    [ -f "out/certs/$NAME.$t.apache.conf" ] || fail "no Apache snippet for $t"
    pass "$t Apache snippet written"
    assert_eq 644 "$(stat -c %a "$snippet")" "$t nginx snippet mode"
    # The snippet names the certificate with its chain, and the key URI file's
    # URI with the pin source; no PIN value and no key material.
    uri=$(cat "out/private/$NAME.$t.key")
    assert_contains "$snippet" "ssl_certificate \"$WORK/out/certs/$NAME.$t.pem\";" \
        "$t snippet names the certificate file"
    assert_contains "$snippet" "ssl_certificate_key \"engine:pkcs11:$uri?pin-source=file:$KS_PIN_FILE\";" \
        "$t snippet names the token key by its URI with the pin source"
    assert_contains "$snippet" "pkcs11:token=$TOKEN;" "$t snippet names this test's token"
    assert_contains "out/certs/$NAME.$t.apache.conf" \
        "SSLCertificateKeyFile \"$uri?pin-source=file:$KS_PIN_FILE\"" "$t Apache snippet names the key"
    assert_not_contains "$snippet" "pin-value" "$t snippet holds no PIN"
    assert_not_contains "$snippet" "$(cat "$KS_PIN_FILE")" "$t snippet does not contain the PIN"

    start_nginx "$t"
    pass "$t nginx listening on 127.0.0.1:$PORT ${NGINX_START_MS} ms after start (key loaded from the token)"

    set +e
    openssl s_client -connect "127.0.0.1:$PORT" -servername "$NAME" -verify_hostname "$NAME" \
        -CAfile root.pem -verify_return_error -showcerts < /dev/null > "s_client.$t.txt" 2>&1
    rc=$?
    set -e
    [ "$rc" -eq 0 ] || { cat "s_client.$t.txt"; cat "nginx-$t/error.log"; fail "$t: s_client failed ($rc)"; }
    assert_contains "s_client.$t.txt" "Verify return code: 0 (ok)" "$t chain verifies against pebble's root"

    # The served chain is keysvc's certificate file: leaf, then intermediate.
    awk -v pre="served.$t." '/-BEGIN CERTIFICATE-/ { n++; f = pre n ".pem"; in_cert = 1 }
        in_cert { print > f }
        /-END CERTIFICATE-/ && in_cert { close(f); in_cert = 0 }' "s_client.$t.txt"
    [ -f "served.$t.1.pem" ] || fail "$t: no certificate in the s_client output"
    assert_eq "$(der_hash "out/certs/$NAME.$t.pem")" "$(der_hash "served.$t.1.pem")" \
        "$t served leaf is byte-identical to keysvc's certificate"
    [ -f "served.$t.2.pem" ] || fail "$t: no intermediate served"
    assert_eq "$(der_hash "out/certs/${NAME}_chain.$t.pem")" "$(der_hash "served.$t.2.pem")" \
        "$t served intermediate is keysvc's chain file"

    sigtype=$(sed -n 's/^Peer signature type: //p' "s_client.$t.txt")
    case "$t:$sigtype" in
        ecdsa:ECDSA | rsa:RSA-PSS | rsa:RSA) pass "$t handshake signed with $sigtype (by the token)" ;;
        *) fail "$t: peer signature type '$sigtype'" ;;
    esac

    body=$(curl -sS --fail --noproxy '*' --max-time 10 --cacert root.pem \
        --resolve "$NAME:$PORT:127.0.0.1" "https://$NAME:$PORT/") || {
        cat "nginx-$t/error.log"
        fail "$t: curl failed"
    }
    assert_eq "hsm ok" "$body" "$t curl over TLS gets the page"

    stop_nginx
    # Nothing went wrong inside nginx (engine, PIN, handshakes).
    if grep -E '\[(emerg|alert|crit|error)\]' "nginx-$t/error.log"; then
        fail "$t: nginx logged errors"
    fi
    pass "$t nginx error log has no errors"
done

# A second run rewrites no snippet (same content, same inode and mtime).
before=$(stat -c '%n %i %.9Y' out/certs/*.conf)
run_keysvc run --config keysvc.json > /dev/null
assert_eq 1 "$RUN_RC" "second run has nothing to do"
assert_eq "$before" "$(stat -c '%n %i %.9Y' out/certs/*.conf)" "snippets are not rewritten"

echo "e2e_nginx took $(($(now_ms) - T0)) ms"
