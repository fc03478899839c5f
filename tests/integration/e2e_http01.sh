#!/usr/bin/env bash
# http-01 in every mode, with pebble resolving through BIND and nothing of
# the rig listening on pebble's http-01 port:
#   a webroot from http_challenges, served by a small server of the test;
#   acmebot's directories.http_challenge with {zone}/{host} (a virtual-host
#   server that maps the Host header to <zone>/<host>); the set/clear
#   http hooks; the built-in responder (settings.http_responder); dns-01 and
#   http-01 mixed in one certificate; a webroot that cannot be written.
. "$(dirname "$0")/lib.sh"
rig_load
[ -n "${DNS_PORT:-}" ] || fail "this test needs a rig started with --bind --no-www"
test_setup http01
cd "$WORK"

SERVER_PID=""
stop_server() {
    [ -z "$SERVER_PID" ] && return 0
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap 'rc=$?; stop_server; (exit $rc); test_cleanup' EXIT

# Serves ROOT/<zone>/<host>/.well-known/acme-challenge/<token> for Host
# <host>.<zone> (host "." for a zone apex), as a shared web server with one
# document root per virtual host would.
cat > vhosts.py <<'PY'
import http.server, os, sys
root, port = sys.argv[1], int(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        labels = host.split(".")
        for i in range(len(labels)):
            vhost = ".".join(labels[:i]) or "."
            zone = ".".join(labels[i:])
            path = os.path.join(root, zone, vhost, self.path.lstrip("/"))
            if os.path.isfile(path):
                body = open(path, "rb").read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_error(404)
    def log_message(self, fmt, *args):
        sys.stderr.write("vhosts: " + (fmt % args) + "\n")
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
PY
# Starts a web server command on HTTP_PORT in the background and waits
# until it answers.
start_server() { # log command...
    local log=$1
    shift
    "$@" 2> "$log" &
    SERVER_PID=$!
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && return 0
        sleep 0.1
    done
    fail "the test's web server did not start"
}
start_vhosts() { start_server vhosts.log /usr/bin/python3 vhosts.py "$WORK/vhosts" "$HTTP_PORT"; }
start_plain() { # dir
    start_server plain.log /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$1" "$HTTP_PORT"
}

write_config keysvc.json '{}' '{}' "\"dns_resolvers\": [\"$DNS_PRIMARY\"], \"dns_port\": $DNS_PORT,
    \"max_dns_lookup_attempts\": 30, \"dns_lookup_delay\": 1"
config_merge keysvc.json "{\"directories\": {\"certificate\": \"out/certs\", \"chain\": \"out/certs\",
        \"private_key\": \"out/private\", \"state\": \"state\", \"update_key\": \"$DNS_KEY_DIR\"},
    \"zone_update_keys\": {\"example.test\": \"acme-sha256.key\", \"other.test\": \"acme-sha512.key\"}}"

# ------------------------------------------------ webroot (http_challenges)
mkdir -p www/.well-known/acme-challenge
start_plain "$WORK/www"
config_replace keysvc.json certificates '{"web.example.test": {"key_types": ["ecdsa"]}}'
config_replace keysvc.json http_challenges "{\"web.example.test\": \"$WORK/www/.well-known/acme-challenge\"}"
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "http-01 through a webroot served by the test's server"
assert_contains run.out "web.example.test: asking the CA to validate (http-01)" "by http-01"
assert_challenges_removed run.out
stop_server

# ------------------------------------------------ directories.http_challenge
cat > http-hook.sh <<EOF
#!/bin/sh
echo "\$# \$1 \$2 \$3 \$(test -f "\$3" && echo present || echo absent)" >> $WORK/http-hook.log
EOF
chmod 755 http-hook.sh
start_vhosts
config_replace keysvc.json http_challenges '{}'
config_merge keysvc.json "{\"directories\": {\"http_challenge\": \"vhosts/{zone}/{host}/.well-known/acme-challenge\"},
    \"hooks\": {\"set_http_challenge\": \"$WORK/http-hook.sh set {domain} {challenge_file}\",
                \"clear_http_challenge\": \"$WORK/http-hook.sh clear {domain} {challenge_file}\"}}"
config_replace keysvc.json certificates '{"site": {"common_name": "other.test",
    "alt_names": {"other.test": ["@", "www", "a.b"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "http-01 in directories.http_challenge, expanded per name"
for pair in "other.test/." "other.test/www" "other.test/a.b"; do
    assert_contains run.out "published in $WORK/vhosts/$pair/.well-known/acme-challenge" "{zone}/{host} = $pair"
done
assert_challenges_removed run.out
assert_eq 3 "$(grep -c '^3 set [a-z.]*other.test .* present$' http-hook.log || true)" \
    "set_http_challenge ran per name with the file already in place"
assert_eq 3 "$(grep -c '^3 clear [a-z.]*other.test .* absent$' http-hook.log || true)" \
    "clear_http_challenge ran per name after the file was removed"
grep -q "^3 set www.other.test $WORK/vhosts/other.test/www/.well-known/acme-challenge/[A-Za-z0-9_-]* present$" http-hook.log ||
    fail "hook fields: $(cat http-hook.log)"
pass "the hooks got {domain} and {challenge_file} as separate arguments"
stop_server

# ------------------------------------------------ the built-in responder
config_replace keysvc.json hooks '{}'
config_merge keysvc.json "{\"directories\": {\"http_challenge\": null},
    \"settings\": {\"http_responder\": \"127.0.0.1:$HTTP_PORT\"}}"
config_replace keysvc.json certificates '{"resp.example.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "http-01 through the built-in responder"
assert_contains run.out "http-01: answering for 1 name(s) on 127.0.0.1 port $HTTP_PORT" "the responder ran"
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$HTTP_PORT/"; then
    fail "the responder still listens after the run"
fi
pass "nothing listens on the port after the run"

# ------------------------------------------------ mixed in one certificate
# m1 by the responder, m2 forced to dns-01 by a null http_challenges entry,
# the wildcard by dns-01.
config_replace keysvc.json http_challenges '{"m2.example.test": null}'
config_replace keysvc.json certificates '{"mix": {"common_name": "m1.example.test",
    "alt_names": {"example.test": ["m1", "m2"], "other.test": ["*"]}, "key_types": ["ecdsa"]}}'
run_keysvc run --debug --config keysvc.json > /dev/null
assert_eq 0 "$RUN_RC" "dns-01 and http-01 in one certificate"
assert_contains run.out "m1.example.test: asking the CA to validate (http-01)" "m1 by http-01"
assert_contains run.out "m2.example.test: asking the CA to validate (dns-01)" "m2 by dns-01"
assert_contains run.out "*.other.test: asking the CA to validate (dns-01)" "the wildcard by dns-01"
assert_eq "" "$(dig +short +norecurse -p "$DNS_PORT" @127.0.0.1 TXT _acme-challenge.m2.example.test)" \
    "the dns-01 record is gone"

# ------------------------------------------------ a webroot that cannot be written
printf 'not a directory' > plainfile
config_replace keysvc.json http_challenges "{\"bad.example.test\": \"$WORK/plainfile/acme\"}"
config_replace keysvc.json certificates '{"bad.example.test": {"key_types": ["ecdsa"]}}'
run_keysvc run --config keysvc.json > /dev/null
assert_eq 2 "$RUN_RC" "a webroot that cannot be written"
assert_contains run.out "http_challenges[\"bad.example.test\"]: http-01 webroot $WORK/plainfile/acme" \
    "the error names the name and the directory"
assert_not_contains run.out "asking the CA" "nothing was asked of the CA"

echo "e2e_http01: all passed"
