#!/usr/bin/python3
"""fault-proxy.py: a TLS-terminating HTTP proxy between an ACME client and pebble that injects
faults, and answers ARI (RFC 9773 renewalInfo) requests itself.

    fault-proxy.py --upstream https://127.0.0.1:PEBBLE_PORT --upstream-ca CA.pem \
                   --cert TLS.pem --key TLS.key --rules RULES.json \
                   --port-file FILE --log FILE [--listen 127.0.0.1:0] [--exit-with-parent]

Python 3 standard library only; run it as /usr/bin/python3.  The client's Host header is
forwarded unchanged: pebble builds every URL it returns from Host and checks the JWS "url"
against it, so nothing needs rewriting.  RULES.json is re-read on every request.  The rules
format, the log format and the nonce behaviour are described in tests/rig/README.md.
Stops on SIGTERM (exit 0), and with --exit-with-parent when its parent process is gone.
"""
import argparse
import base64
import email.utils
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from datetime import datetime, timezone

ME = "fault-proxy"
ACME_ERR = "urn:ietf:params:acme:error:"
# request headers passed to the upstream (besides Host, which is always passed unchanged)
FORWARD_HEADERS = ("Content-Type", "Accept", "Accept-Language", "User-Agent")
# response headers relayed from the upstream (every occurrence, e.g. several Link headers)
RELAY_HEADERS = ("Replay-Nonce", "Location", "Link", "Retry-After", "Content-Type", "Cache-Control")
ACTIONS = ("pass", "status", "forward_then_status", "truncate", "oversize", "content_type",
           "headers", "reset", "delay", "body")
RULE_KEYS = {"name", "method", "path", "payload", "skip", "times", "action", "status", "problem_type",
             "detail", "retry_after", "nonce", "consume_nonce", "when", "seconds", "bytes",
             "content_type", "body", "headers", "fix_length"}
TOP_KEYS = {"rules", "ari", "directory_add_renewal_info", "directory_path", "directory_patch", "comment"}
CERTID_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
ARI_PREFIX = "/renewal-info/"
CONSUME_MARK = "fault-proxy-consume-nonce"
UPSTREAM_TIMEOUT = 120
IDLE_TIMEOUT = 300
HANDSHAKE_TIMEOUT = 30


def now_rfc3339(offset=0.0, ms=False):
    t = datetime.fromtimestamp(time.time() + offset, timezone.utc)
    return t.isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


def retry_after_value(v):
    """"2" or 2 -> "2"; "date:+N" / "date:-N" -> IMF-fixdate N seconds from now; else verbatim."""
    if isinstance(v, bool):
        raise ValueError("retry_after must be a string or a number")
    if isinstance(v, (int, float)):
        return str(int(v))
    m = re.fullmatch(r"date:([+-]?\d+(?:\.\d+)?)", v)
    if m:
        return email.utils.formatdate(time.time() + float(m.group(1)), usegmt=True)
    return v


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def decode_jws(body):
    """For a flattened JWS: {"jws_url": protected["url"], "jws_nonce": protected["nonce"],
    "payload": decoded payload}; else None."""
    try:
        j = json.loads(body)
    except ValueError:
        return None
    if not isinstance(j, dict) or "protected" not in j:
        return None
    out = {"jws_url": None, "jws_nonce": None, "payload": None, "_payload_text": None}
    try:
        prot = json.loads(b64url_decode(j["protected"]))
        if isinstance(prot, dict):
            out["jws_url"] = prot.get("url")
            out["jws_nonce"] = prot.get("nonce")
    except (ValueError, TypeError, AttributeError):
        pass
    p = j.get("payload")
    if isinstance(p, str):
        try:
            raw = b64url_decode(p)
            text = raw.decode("utf-8", "replace")
            out["_payload_text"] = text
            try:
                out["payload"] = json.loads(raw) if raw else ""
            except ValueError:
                out["payload"] = text
        except (ValueError, TypeError):
            pass
    return out


class RuleError(Exception):
    pass


def _check(cond, msg):
    if not cond:
        raise RuleError(msg)


def validate(cfg):
    """Checks RULES.json strictly (a typo must not silently turn a rule into 'always')."""
    _check(isinstance(cfg, dict), "top level must be an object")
    for k in cfg:
        _check(k in TOP_KEYS, "unknown top-level key %r" % k)
    rules = cfg.get("rules", [])
    _check(isinstance(rules, list), '"rules" must be a list')
    compiled = []
    for i, r in enumerate(rules):
        w = "rule %d: " % i
        _check(isinstance(r, dict), w + "must be an object")
        for k in r:
            _check(k in RULE_KEYS, w + "unknown key %r" % k)
        _check(r.get("action") in ACTIONS, w + '"action" must be one of ' + ", ".join(ACTIONS))
        c = {}
        for k in ("path", "payload"):
            if k in r:
                _check(isinstance(r[k], str), w + '"%s" must be a string' % k)
                try:
                    c[k] = re.compile(r[k])
                except re.error as e:
                    raise RuleError(w + '"%s": bad regex: %s' % (k, e))
        for k in ("method", "name", "problem_type", "detail", "body"):
            _check(k not in r or isinstance(r[k], str), w + '"%s" must be a string' % k)
        for k in ("skip", "times", "bytes"):
            _check(k not in r or (type(r[k]) is int and r[k] >= 0), w + '"%s" must be an integer >= 0' % k)
        _check("status" not in r or (type(r["status"]) is int and 100 <= r["status"] <= 599),
               w + '"status" must be an integer 100..599')
        _check("seconds" not in r or (type(r["seconds"]) in (int, float) and r["seconds"] >= 0),
               w + '"seconds" must be a number >= 0')
        _check(r.get("when", "before") in ("before", "after"), w + '"when" must be "before" or "after"')
        for k in ("nonce", "consume_nonce", "fix_length"):
            _check(k not in r or isinstance(r[k], bool), w + '"%s" must be true or false' % k)
        _check("content_type" not in r or r["content_type"] is None or isinstance(r["content_type"], str),
               w + '"content_type" must be a string or null')
        if "retry_after" in r:
            try:
                retry_after_value(r["retry_after"])
            except (ValueError, TypeError):
                raise RuleError(w + '"retry_after" must be a string or a number')
        if "headers" in r:
            h = r["headers"]
            _check(isinstance(h, dict) and all(isinstance(v, str) or v is None for v in h.values()),
                   w + '"headers" must be an object of strings (null removes a header)')
        compiled.append(c)
    ari = cfg.get("ari", {})
    _check(isinstance(ari, dict), '"ari" must be an object')
    _check(isinstance(ari.get("windows", {}), dict), '"ari.windows" must be an object')
    for cid, win in ari.get("windows", {}).items():
        _check(isinstance(win, dict), "ari.windows[%r] must be an object" % cid)
    _check(isinstance(ari.get("default", {}), dict), '"ari.default" must be an object')
    _check(isinstance(cfg.get("directory_add_renewal_info", False), bool),
           '"directory_add_renewal_info" must be true or false')
    _check(isinstance(cfg.get("directory_path", "/dir"), str), '"directory_path" must be a string')
    _check(isinstance(cfg.get("directory_patch", {}), dict), '"directory_patch" must be an object')
    return compiled


class Rules:
    """RULES.json, re-read on every request; per-rule counters reset when the content changes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.digest = None
        self.counts = []

    def pick(self, method, path, payload_text):
        with self.lock:
            try:
                with open(self.path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                raw = b"{}"
            except OSError as e:
                raise RuleError("cannot read %s: %s" % (self.path, e))
            try:
                cfg = json.loads(raw) if raw.strip() else {}
            except ValueError as e:
                raise RuleError("%s is not valid JSON: %s" % (self.path, e))
            compiled = validate(cfg)
            digest = hashlib.sha256(raw).digest()
            if digest != self.digest:
                self.digest = digest
                self.counts = [0] * len(compiled)
            for i, (r, c) in enumerate(zip(cfg.get("rules", []), compiled)):
                if "method" in r and r["method"].upper() != method:
                    continue
                if "path" in c and not c["path"].search(path):
                    continue
                if "payload" in c and (payload_text is None or not c["payload"].search(payload_text)):
                    continue
                self.counts[i] += 1
                n = self.counts[i]
                skip = r.get("skip", 0)
                if n <= skip:
                    continue
                if "times" in r and n > skip + r["times"]:
                    continue
                return cfg, i, r, n
            return cfg, None, None, None


class JsonLog:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="utf-8")

    def write(self, entry):
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self.lock:
            self.f.write(line)
            self.f.flush()


class Answer:
    def __init__(self, status, headers=None, body=b"", head_length=None):
        self.status = status
        self.headers = list(headers or [])
        self.body = body
        self.head_length = head_length    # Content-Length to announce for HEAD

    def get(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set(self, name, value):
        """Replaces every header called name; value None removes them."""
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


class UpstreamError(Exception):
    pass


def pad_json(body, n):
    """A JSON object of exactly n bytes: the upstream object (if any) plus a padding member."""
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    base = dict(obj) if isinstance(obj, dict) else {}
    key = "fault-proxy-padding"
    base[key] = ""
    cur = len(json.dumps(base, separators=(",", ":")).encode())
    if cur < n:
        base[key] = "x" * (n - cur)
    return json.dumps(base, separators=(",", ":")).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True

    # ------------------------------------------------------------------ connection
    def setup(self):
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        try:
            self.request.close()
        except OSError:
            pass

    def log_message(self, fmt, *args):       # no access log on stderr: the JSON log is the record
        pass

    def log_error(self, fmt, *args):
        sys.stderr.write("%s: %s: %s\n" % (ME, self.address_string(), fmt % args))

    def drop(self, reset):
        """Closes the client connection: with reset, abruptly (SO_LINGER 0 -> RST, no TLS close)."""
        self.close_connection = True
        s = self.connection
        try:
            if reset:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                s.settimeout(0.5)
                try:
                    s.unwrap()                # TLS close_notify, so the client sees a clean EOF
                except (OSError, ValueError):
                    pass
        except OSError:
            pass
        try:
            self.rfile.close()                # holds a reference that would delay the real close
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    # ------------------------------------------------------------------ request
    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def host(self):
        h = self.headers.get("Host")
        if h:
            return h
        a = self.server.server_address
        return "%s:%d" % (a[0], a[1])

    def handle_any(self):
        method = self.command
        self.answered = False             # set once the answer (or the reset) has begun
        entry = {"time": now_rfc3339(ms=True), "t": round(time.time(), 3), "method": method,
                 "path": self.path, "host": self.headers.get("Host"), "rule": None, "action": None,
                 "status": None}
        try:
            body = self.read_body()
        except (ValueError, OSError) as e:
            entry["error"] = "cannot read request body: %s" % e
            self.emit(Answer(400, body=b""), entry)
            self.close_connection = True
            return
        jws = decode_jws(body) if method == "POST" and body else None
        payload_text = jws["_payload_text"] if jws else None
        if jws:
            entry["jws_url"] = jws["jws_url"]
            entry["jws_nonce"] = jws["jws_nonce"]
            entry["payload"] = jws["payload"]
        try:
            cfg, idx, rule, n = self.server.rules.pick(method, self.path, payload_text)
        except RuleError as e:
            sys.stderr.write("%s: bad rules: %s\n" % (ME, e))
            entry["error"] = "bad rules: %s" % e
            self.emit(self.problem(500, "serverInternal", "fault-proxy: bad rules file: %s" % e), entry)
            return
        rule = rule or {}
        action = rule.get("action")
        if idx is not None:
            entry["rule"] = idx
            entry["action"] = action
            entry["match"] = n
            if "name" in rule:
                entry["name"] = rule["name"]
        try:
            self.act(cfg, rule, action, method, body, jws, entry)
        except UpstreamError as e:
            entry["error"] = "upstream: %s" % e
            self.emit(self.problem(502, "serverInternal", "fault-proxy: upstream failed: %s" % e), entry)
        except (OSError, ssl.SSLError, ValueError) as e:   # client went away mid-answer
            self.close_connection = True
            sys.stderr.write("%s: %s %s: connection error: %s\n" % (ME, method, self.path, e))
        except Exception as e:            # a bug in the proxy: on stderr, in the log, to the client
            self.close_connection = True
            sys.stderr.write("%s: %s %s: internal error:\n" % (ME, method, self.path))
            traceback.print_exc()
            err = "fault-proxy internal error: %s: %s" % (type(e).__name__, e)
            try:
                if not self.answered:
                    entry["error"] = err
                    self.emit(self.problem(500, "serverInternal", err), entry)
                else:
                    self.server.log.write({"time": now_rfc3339(ms=True), "t": round(time.time(), 3),
                                           "method": method, "path": self.path, "error": err})
            except (OSError, ValueError):
                pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any

    # ------------------------------------------------------------------ actions
    def act(self, cfg, rule, action, method, body, jws, entry):
        when = rule.get("when", "before")
        if action == "reset":
            if when == "after":
                up = self.produce(cfg, method, body, entry)
                entry["upstream_status"] = up.status
            entry["status"] = None
            self.answered = True
            self.server.log.write(entry)
            self.drop(reset=True)
            return
        if action == "delay" and when == "before":
            time.sleep(rule.get("seconds", 0))

        if action in ("status", "body"):
            if action == "status":
                st = rule.get("status", 503)
                ans = self.problem(st, rule.get("problem_type"), rule.get("detail"))
            else:
                ans = Answer(rule.get("status", 200), body=rule.get("body", "").encode())
                ctype = rule.get("content_type", "application/json")
                if ctype is not None:
                    ans.set("Content-Type", ctype)
            if rule.get("nonce", True):
                consume = rule.get("consume_nonce", True) and jws is not None
                ans.set("Replay-Nonce", self.fresh_nonce(cfg, body, consume, entry))
        elif action == "forward_then_status":
            up = self.produce(cfg, method, body, entry)
            entry["upstream_status"] = up.status
            ans = self.problem(rule.get("status", 503), rule.get("problem_type"), rule.get("detail"))
            if rule.get("nonce", True):
                # the CA's own answer carried a fresh, unused nonce: hand that one on
                ans.set("Replay-Nonce", up.get("Replay-Nonce") or self.fresh_nonce(cfg, body, False, entry))
        else:
            ans = self.produce(cfg, method, body, entry)
            if action is not None and action != "pass":
                entry["upstream_status"] = ans.status
            if action == "oversize":
                ans.body = pad_json(ans.body, rule.get("bytes", 2 * 1024 * 1024))
                if ans.get("Content-Type") is None:
                    ans.set("Content-Type", "application/json")
            elif action == "content_type":
                ans.set("Content-Type", rule.get("content_type"))
            elif action == "delay" and when == "after":
                time.sleep(rule.get("seconds", 0))

        if "retry_after" in rule:
            entry["retry_after"] = retry_after_value(rule["retry_after"])
            ans.set("Retry-After", entry["retry_after"])
        for k, v in rule.get("headers", {}).items():
            ans.set(k, v)
        if action == "truncate":
            keep = min(rule.get("bytes", len(ans.body) // 2), len(ans.body))
            if rule.get("fix_length", False):
                # a complete HTTP answer (Content-Length of what is sent) with a cut body
                ans.body = ans.body[:keep]
                entry["sent_bytes"] = keep
                self.emit(ans, entry)
            else:
                self.emit(ans, entry, keep=keep)
                self.drop(reset=False)
        else:
            self.emit(ans, entry)

    def produce(self, cfg, method, body, entry):
        """The normal answer: the ARI fixture for /renewal-info/, else the upstream's (with the
        directory additions applied)."""
        path = self.path.split("?", 1)[0]
        if path.startswith(ARI_PREFIX) or path == ARI_PREFIX.rstrip("/"):
            return self.ari(cfg, method, path, entry)
        ans = self.forward(method, self.path, body)
        if method == "GET" and path == cfg.get("directory_path", "/dir") and ans.status == 200:
            add = cfg.get("directory_add_renewal_info", False)
            patch = cfg.get("directory_patch", {})
            if add or patch:
                try:
                    d = json.loads(ans.body)
                except ValueError:
                    d = None
                if isinstance(d, dict):
                    if add:
                        d["renewalInfo"] = "https://%s%s" % (self.host(), ARI_PREFIX.rstrip("/"))
                    for k, v in patch.items():
                        if v is None:
                            d.pop(k, None)
                        else:
                            d[k] = v
                    ans.body = json.dumps(d, indent=3).encode()
        return ans

    def ari(self, cfg, method, path, entry):
        certid = path[len(ARI_PREFIX):] if path.startswith(ARI_PREFIX) else ""
        entry["ari_certid"] = certid
        if method not in ("GET", "HEAD"):
            a = self.problem(405, "malformed", "renewalInfo takes GET only")
            a.set("Allow", "GET")
            return a
        if not CERTID_RE.match(certid):
            return self.problem(404, "malformed", "not a valid ARI certificate identifier")
        ari = cfg.get("ari", {})
        win = ari.get("windows", {}).get(certid)
        if win is None:
            win = ari.get("default")
            if win is None:
                return self.problem(404, "malformed", "no renewal information for this certificate")
        sw = {}
        for k in ("start", "end"):
            if k in win:
                sw[k] = win[k]                                 # verbatim, even if malformed
            else:
                sw[k] = now_rfc3339(win.get(k + "_offset", -3600 if k == "start" else -60))
        doc = {"suggestedWindow": sw}
        if win.get("explanationURL") is not None:
            doc["explanationURL"] = win["explanationURL"]
        a = Answer(200, [("Content-Type", "application/json")], json.dumps(doc, indent=3).encode())
        ra = win.get("retry_after", ari.get("retry_after", 21600))
        if ra is not None:
            a.set("Retry-After", retry_after_value(ra))
        return a

    # ------------------------------------------------------------------ helpers
    def problem(self, status, ptype=None, detail=None):
        if ptype is None:
            ptype = "rateLimited" if status == 429 else "serverInternal"
        if ":" not in ptype:
            ptype = ACME_ERR + ptype
        doc = {"type": ptype, "detail": detail or "fault-proxy: injected %d" % status, "status": status}
        a = Answer(status, [("Content-Type", "application/problem+json")], json.dumps(doc, indent=3).encode())
        a.set("Cache-Control", "public, max-age=0, no-cache")
        a.set("Link", '<https://%s/dir>;rel="index"' % self.host())
        return a

    def forward(self, method, path, body, extra_entry=None):
        u = self.server.upstream
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, context=self.server.up_ctx,
                                           timeout=UPSTREAM_TIMEOUT)
        try:
            hdrs = {"Host": self.host()}
            for h in FORWARD_HEADERS:
                v = self.headers.get(h)
                if v is not None:
                    hdrs[h] = v
            if body or method in ("POST", "PUT", "PATCH"):
                hdrs["Content-Length"] = str(len(body))
            conn.request(method, self.server.up_prefix + path, body=body or None, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            headers = [(name, v) for name in RELAY_HEADERS for v in (r.msg.get_all(name) or [])]
            return Answer(r.status, headers, data, head_length=r.getheader("Content-Length"))
        except (OSError, http.client.HTTPException) as e:
            raise UpstreamError("%s %s: %s" % (method, path, e or type(e).__name__))
        finally:
            conn.close()

    def fresh_nonce(self, cfg, body, consume, entry):
        """A fresh nonce from the upstream for an answer the proxy makes up.  With consume, the
        client's JWS is first sent to the same endpoint with CONSUME_MARK added to the query:
        pebble checks the signature, consumes the nonce, then rejects the request because the
        JWS url no longer matches (400 malformed, nothing done), and its answer brings a fresh
        nonce.  That is what a CA does when it refuses a request after reading the JWS."""
        try:
            if consume:
                sep = "&" if "?" in self.path else "?"
                up = self.forward("POST", self.path + sep + CONSUME_MARK, body)
                ptype = None
                try:
                    ptype = json.loads(up.body).get("type")
                except (ValueError, AttributeError):
                    pass
                entry["nonce_consumed"] = {"status": up.status, "type": ptype}
                if up.status < 400:
                    sys.stderr.write("%s: WARNING: nonce-consuming request to %s was accepted (%d)\n"
                                     % (ME, self.path, up.status))
                if up.get("Replay-Nonce"):
                    return up.get("Replay-Nonce")
            up = self.forward("HEAD", self.nonce_path(cfg), b"")
            return up.get("Replay-Nonce")
        except UpstreamError as e:
            entry["nonce_error"] = str(e)
            return None

    def nonce_path(self, cfg):
        if self.server.nonce_path is None:
            try:
                d = json.loads(self.forward("GET", cfg.get("directory_path", "/dir"), b"").body)
                self.server.nonce_path = urllib.parse.urlsplit(d["newNonce"]).path
            except (UpstreamError, ValueError, KeyError, TypeError, AttributeError):
                return "/nonce-plz"
        return self.server.nonce_path

    def emit(self, ans, entry, keep=None):
        """Logs the request (before answering, so a client that has its answer finds the line),
        then sends the answer; keep: send only that many body bytes (Content-Length stays)."""
        entry["status"] = ans.status
        if keep is not None:
            entry["sent_bytes"] = keep
        self.answered = True
        self.server.log.write(entry)
        self.send_response(ans.status)
        for k, v in ans.headers:
            self.send_header(k, v)
        bodyless = ans.status in (204, 304) or ans.status < 200
        if self.command == "HEAD":
            if ans.head_length is not None and not bodyless:
                self.send_header("Content-Length", str(ans.head_length))
            elif not bodyless:
                self.send_header("Content-Length", str(len(ans.body)))
        elif not bodyless:
            self.send_header("Content-Length", str(len(ans.body)))
        self.end_headers()
        if self.command != "HEAD" and not bodyless:
            self.wfile.write(ans.body if keep is None else ans.body[:keep])
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        """TCPServer's bind only: HTTPServer's also calls getfqdn(), a DNS lookup that can stall
        start-up on a host whose resolver does not answer."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (OSError, ssl.SSLError, ValueError)):
            sys.stderr.write("%s: %s: %s: %s\n" % (ME, client_address[0], type(e).__name__, e))
        else:
            sys.stderr.write("%s: unexpected error with %s:\n" % (ME, client_address))
            traceback.print_exc()


def main():
    ap = argparse.ArgumentParser(description="fault-injecting TLS proxy in front of pebble, with an ARI fixture")
    ap.add_argument("--upstream", required=True, help="https://127.0.0.1:PORT (pebble)")
    ap.add_argument("--upstream-ca", required=True, help="CA file that verifies the upstream's TLS certificate")
    ap.add_argument("--cert", required=True, help="TLS certificate (PEM) the proxy serves")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--rules", required=True, help="rules JSON file, re-read on every request (missing = no rules)")
    ap.add_argument("--port-file", required=True, help="the listening port is written here once listening")
    ap.add_argument("--log", required=True, help="one JSON line per request is appended here")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default 127.0.0.1:0 = any free port)")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop (as on SIGTERM) once the parent process is gone, e.g. a test killed by a timeout")
    a = ap.parse_args()

    up = urllib.parse.urlsplit(a.upstream)
    if up.scheme != "https" or not up.hostname:
        ap.error("--upstream must be https://HOST:PORT")
    host, _, port = a.listen.rpartition(":")
    if not host or not port.isdigit():
        ap.error("--listen must be HOST:PORT")

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(a.cert, a.key)
    tls.set_alpn_protocols(["http/1.1"])
    up_ctx = ssl.create_default_context(cafile=a.upstream_ca)

    srv = Server((host, int(port)), Handler)
    srv.tls = tls
    srv.up_ctx = up_ctx
    srv.upstream = up
    srv.up_prefix = up.path.rstrip("/")
    srv.rules = Rules(a.rules)
    srv.log = JsonLog(a.log)
    srv.nonce_path = None

    def on_term(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if a.exit_with_parent:
        parent = os.getppid()

        def watch_parent():
            while os.getppid() == parent:
                time.sleep(0.5)
            sys.stderr.write("%s: parent %d is gone\n" % (ME, parent))
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=watch_parent, daemon=True).start()

    bound = srv.server_address[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % bound)
    os.replace(tmp, a.port_file)
    sys.stderr.write("%s: listening on https://%s:%d, upstream %s (pid %d)\n"
                     % (ME, host, bound, a.upstream, os.getpid()))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.5)
    finally:
        srv.server_close()
        sys.stderr.write("%s: stopped\n" % ME)


if __name__ == "__main__":
    main()
