"""oauth_provider.py - a stand-in OAuth 2.0 provider for the API tests (docs/oauth2.md).

Run as its own process over HTTPS on 127.0.0.1 (a free port) with the test
CA's server certificate (tests/oauth_ca.sh):

    python3 oauth_provider.py --cert server.pem --key server.key [--prefix P]

It prints its port on the first line of stdout. The service reaches it
through MAILSRV_CA_FILE (the test CA) and MAILSRV_OUTBOUND_ALLOW (loopback).

Endpoints, as a provider has them:
  GET  /authorize  the browser arrives here from the authorization URL; it is
                   sent back (302) to redirect_uri with code and state (and a
                   session_state extra, as Azure does), or with
                   error=access_denied in mode "deny". Checks response_type,
                   client_id, redirect_uri and that a S256 code_challenge came.
  POST /token      form-encoded; client authentication by HTTP Basic or by
                   client_id/client_secret in the form. authorization_code:
                   single-use code, same client and redirect_uri, and PKCE:
                   SHA-256(code_verifier) must equal the stored challenge.
                   refresh_token: rotation (every refresh issues a new refresh
                   token and retires the old); a retired token presented
                   again is reuse: invalid_grant, and the whole token family
                   is revoked (OAuth 2.0 Security BCP 4.14).
                   Scopes: a code grants the scope its authorization asked
                   for, less whatever grant_scope leaves out; the answer
                   says what it granted in `scope` (unless omit_scope). A
                   refresh that asks for a scope not granted is refused with
                   invalid_scope, as RFC 6749 section 6 allows a strict
                   server; one without scope gets the granted scope.

Control endpoints for the tests (same port):
  POST /control/reset   {"client_id", "client_secret", "expires_in"?,
                        "grant_scope"?, "omit_scope"?}: forget everything,
                        register this client; grant_scope (space-separated)
                        is all this provider grants, omit_scope leaves the
                        scope out of token answers
  POST /control/mode    {"mode": ..., "delay": seconds, "expires_in"?,
                        "grant_scope"?, "omit_scope"?}; modes:
                        normal, deny, slow (answer after delay), huge (a
                        chunked body over the service's cap), wrong_type
                        (text/html), invalid_json, redirect (302 elsewhere),
                        server_error (500 text/plain holding a secret-like
                        string), invalid_grant, invalid_client, no_refresh
                        (answers without a refresh token, Google's habit,
                        the old one stays valid), messy_error (an error with
                        control characters and a long description)
  POST /control/seed    {"refresh_token"?}: register (or make) a refresh
                        token of a new family; answers {"refresh_token"}
  GET  /control/stats   counters (token_calls, refresh_calls, code_calls,
                        authorize_calls, pkce_verified, reuse_detected,
                        last_authorize (its query, minus nothing secret),
                        last_token_fields (names only), token_scopes (the
                        scope of every token request, None when absent),
                        invalid_scope, current_refresh, access_issued)
  POST /control/introspect  {"token"}: is this an access token issued here,
                        unexpired and not revoked? Answers {"active", "serial"}
                        (serial: 1 for the first access token issued since
                        the reset, 2 for the next...; null for a token never
                        issued). The SMTP test servers (smtp_server.py) check
                        XOAUTH2 logins with it.
  POST /control/revoke_access  every access token issued so far stops being
                        active (refresh tokens stay valid)

Tokens and codes start with --prefix (the suite's secret prefix), so the
suite's leak scans find any that escapes into a response or a log line.
"""

import argparse
import base64
import hashlib
import json
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# ---------------------------------------------------------------- the server


class Provider:
    def __init__(self, prefix):
        self.prefix = prefix
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.reset({})

    def reset(self, cfg):
        with self.lock:
            self.client_id = cfg.get("client_id")
            self.client_secret = cfg.get("client_secret")
            self.expires_in = cfg.get("expires_in", 3600)
            self.grant_scope = cfg.get("grant_scope")
            self.omit_scope = bool(cfg.get("omit_scope", False))
            self.mode = "normal"
            self.delay = 0.0
            self.codes = {}          # code -> {client_id, redirect_uri, challenge, used}
            # family -> {"current": rt, "revoked": bool, "scope": [granted] or
            # None (a seeded family: unknown, anything goes)}
            self.families = {}
            self.refresh = {}        # rt -> family (current and retired ones)
            self.access = {}         # at -> {"serial", "expires", "revoked"}
            self.stats = {"token_calls": 0, "refresh_calls": 0, "code_calls": 0,
                          "authorize_calls": 0, "pkce_verified": 0, "reuse_detected": 0,
                          "last_authorize": None, "last_token_fields": None,
                          "access_issued": 0, "token_scopes": [], "invalid_scope": 0}
            # wake any request still sleeping in "slow" mode
            self.wake.set()
            self.wake = threading.Event()

    def new_token(self, kind):
        return "%s%s-%s" % (self.prefix, kind, secrets.token_urlsafe(24))

    def grant(self, asked):
        """What is granted of the scopes asked for (a list)."""
        if self.grant_scope is None:
            return list(asked)
        allowed = self.grant_scope.split()
        return [x for x in asked if x in allowed]

    def new_family(self, rt=None, scope=None):
        rt = rt or self.new_token("rt")
        fam = secrets.token_hex(8)
        self.families[fam] = {"current": rt, "revoked": False, "scope": scope}
        self.refresh[rt] = fam
        return rt


PROVIDER = None


def _seconds(expires_in):
    """How long an access token lives (an odd expires_in: an hour)."""
    return float(expires_in) if isinstance(expires_in, (int, float)) else 3600.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-oauth/1"

    def log_message(self, fmt, *args):  # quiet: the suite shows failures itself
        pass

    # ---- helpers

    def send(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def json_body(self):
        raw = self.body()
        return json.loads(raw.decode()) if raw else {}

    # ---- routes

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/authorize":
            return self.authorize(url.query)
        if url.path == "/control/stats":
            with PROVIDER.lock:
                st = dict(PROVIDER.stats)
                fam = [f for f in PROVIDER.families.values() if not f["revoked"]]
                st["current_refresh"] = [f["current"] for f in fam]
            return self.send(200, st)
        return self.send(404, {"error": "not_found"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/token":
            return self.token()
        if url.path == "/control/reset":
            PROVIDER.reset(self.json_body())
            return self.send(200, {"ok": True})
        if url.path == "/control/mode":
            cfg = self.json_body()
            with PROVIDER.lock:
                PROVIDER.mode = cfg.get("mode", "normal")
                PROVIDER.delay = float(cfg.get("delay", 0))
                if "expires_in" in cfg:
                    PROVIDER.expires_in = cfg["expires_in"]
                if "grant_scope" in cfg:
                    PROVIDER.grant_scope = cfg["grant_scope"]
                if "omit_scope" in cfg:
                    PROVIDER.omit_scope = bool(cfg["omit_scope"])
            return self.send(200, {"ok": True})
        if url.path == "/control/introspect":
            tok = self.json_body().get("token", "")
            with PROVIDER.lock:
                a = PROVIDER.access.get(tok)
                active = bool(a) and not a["revoked"] and time.time() < a["expires"]
                return self.send(200, {"active": active, "serial": a["serial"] if a else None})
        if url.path == "/control/revoke_access":
            with PROVIDER.lock:
                for a in PROVIDER.access.values():
                    a["revoked"] = True
            return self.send(200, {"ok": True})
        if url.path == "/control/seed":
            cfg = self.json_body()
            with PROVIDER.lock:
                rt = PROVIDER.new_family(cfg.get("refresh_token"))
            return self.send(200, {"refresh_token": rt})
        return self.send(404, {"error": "not_found"})

    def authorize(self, query):
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        with PROVIDER.lock:
            PROVIDER.stats["authorize_calls"] += 1
            PROVIDER.stats["last_authorize"] = q
            mode = PROVIDER.mode
            client_ok = q.get("client_id") == PROVIDER.client_id
        redirect = q.get("redirect_uri", "")
        if not client_ok or not redirect:
            # RFC 6749 4.1.2.1: never redirect to an unverified URI.
            return self.send(400, "unknown client or redirect_uri", "text/plain")
        out = {"state": q.get("state", "")}
        if mode == "deny":
            out.update(error="access_denied",
                       error_description="The user has denied access to the scope requested by the client application.")
        elif (q.get("response_type") != "code" or q.get("code_challenge_method") != "S256"
              or len(q.get("code_challenge", "")) != 43):
            out.update(error="invalid_request", error_description="PKCE S256 is required")
        else:
            code = PROVIDER.new_token("code")
            with PROVIDER.lock:
                PROVIDER.codes[code] = {"client_id": q["client_id"], "redirect_uri": redirect,
                                        "challenge": q["code_challenge"], "used": False,
                                        "at": time.time(),
                                        "scope": PROVIDER.grant(q.get("scope", "").split())}
            out = {"code": code, "state": q.get("state", ""), "session_state": "s-1"}
        sep = "&" if "?" in redirect else "?"
        return self.send(302, b"", None,
                         {"Location": redirect + sep + urllib.parse.urlencode(out)})

    def client_auth(self, form):
        cid, csecret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                cid, csecret = urllib.parse.unquote(user), urllib.parse.unquote(pw)
            except (ValueError, UnicodeDecodeError):
                return False
        return (cid is not None and cid == PROVIDER.client_id
                and csecret is not None and csecret == PROVIDER.client_secret)

    def token(self):
        raw = self.body()
        with PROVIDER.lock:
            PROVIDER.stats["token_calls"] += 1
            mode, delay, wake = PROVIDER.mode, PROVIDER.delay, PROVIDER.wake
        form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        with PROVIDER.lock:
            PROVIDER.stats["last_token_fields"] = sorted(form)
            PROVIDER.stats["token_scopes"].append(form.get("scope"))
        if mode == "slow":
            wake.wait(delay)
        # ---- misbehaviour that answers before looking at the request
        if mode == "huge":
            return self.huge()
        if mode == "redirect":
            return self.send(302, b"", None, {"Location": "https://169.254.169.254/token"})
        if mode == "server_error":
            return self.send(500, "internal error near %ssecret-in-body" % PROVIDER.prefix,
                             "text/plain")
        if mode == "invalid_client":
            return self.send(401, {"error": "invalid_client",
                                   "error_description": "AADSTS7000215: Invalid client secret provided."})
        if mode == "messy_error":
            return self.send(400, {"error": "temporarily_unavailable",
                                   "error_description": "line one\r\nline two\x00\x1b[31m" + "x" * 2000})
        if self.headers.get("Content-Type", "").split(";")[0].strip() != \
                "application/x-www-form-urlencoded":
            return self.send(400, {"error": "invalid_request",
                                   "error_description": "form encoding required"})
        if not self.client_auth(form):
            return self.send(401, {"error": "invalid_client"},
                             headers={"WWW-Authenticate": "Basic"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self.grant_code(form, mode)
        if grant == "refresh_token":
            return self.grant_refresh(form, mode)
        return self.send(400, {"error": "unsupported_grant_type"})

    def answer_tokens(self, mode, refresh_token, scope):
        """scope: the granted scopes (a list), None when unknown."""
        with PROVIDER.lock:
            at = PROVIDER.new_token("at")
            PROVIDER.stats["access_issued"] += 1
            PROVIDER.access[at] = {"serial": PROVIDER.stats["access_issued"],
                                   "expires": time.time() + _seconds(PROVIDER.expires_in),
                                   "revoked": False}
            body = {"token_type": "Bearer", "expires_in": PROVIDER.expires_in,
                    "access_token": at}
            if scope is not None and not PROVIDER.omit_scope:
                body["scope"] = " ".join(scope)
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        if mode == "wrong_type":
            return self.send(200, json.dumps(body), "text/html; charset=utf-8")
        if mode == "invalid_json":
            return self.send(200, json.dumps(body)[:-5], "application/json")
        return self.send(200, body, "application/json; charset=utf-8")

    def grant_code(self, form, mode):
        with PROVIDER.lock:
            PROVIDER.stats["code_calls"] += 1
            c = PROVIDER.codes.get(form.get("code", ""))
            if c is None or c["used"] or time.time() - c["at"] > 60:
                return self.send(400, {"error": "invalid_grant",
                                       "error_description": "the code is unknown, used or expired"})
            c["used"] = True
            if c["client_id"] != form.get("client_id", PROVIDER.client_id) or \
                    c["redirect_uri"] != form.get("redirect_uri"):
                return self.send(400, {"error": "invalid_grant",
                                       "error_description": "redirect_uri does not match"})
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if not verifier or digest.rstrip(b"=").decode() != c["challenge"]:
                return self.send(400, {"error": "invalid_grant",
                                       "error_description": "PKCE verification failed"})
            PROVIDER.stats["pkce_verified"] += 1
            if mode == "invalid_grant":
                return self.send(400, {"error": "invalid_grant",
                                       "error_description": "AADSTS54005: OAuth2 Authorization code was already redeemed."})
            rt = None if mode == "no_refresh" else PROVIDER.new_family(scope=c["scope"])
        return self.answer_tokens(mode, rt, c["scope"])

    def grant_refresh(self, form, mode):
        with PROVIDER.lock:
            PROVIDER.stats["refresh_calls"] += 1
            rt = form.get("refresh_token", "")
            fam_id = PROVIDER.refresh.get(rt)
            fam = PROVIDER.families.get(fam_id) if fam_id else None
            if mode == "invalid_grant" or fam is None or fam["revoked"]:
                return self.send(400, {"error": "invalid_grant",
                                       "error_description": "AADSTS700082: The refresh token has expired due to inactivity."})
            if fam["current"] != rt:
                # A retired token came back: somebody kept the old one.
                fam["revoked"] = True
                PROVIDER.stats["reuse_detected"] += 1
                return self.send(400, {"error": "invalid_grant",
                                       "error_description": "refresh token reuse detected; the grant is revoked"})
            base = fam["scope"]
            if "scope" in form:
                asked = form["scope"].split()
                if base is not None and any(x not in base for x in asked):
                    PROVIDER.stats["invalid_scope"] += 1
                    return self.send(400, {"error": "invalid_scope",
                                           "error_description": "the requested scope exceeds the scope granted by the resource owner"})
                base = asked
            # what this answer grants (grant_scope may have narrowed since)
            granted = PROVIDER.grant(base) if base is not None else None
            if mode == "no_refresh":
                new_rt = None
            else:
                new_rt = PROVIDER.new_token("rt")
                fam["current"] = new_rt
                PROVIDER.refresh[new_rt] = fam_id
        return self.answer_tokens(mode, new_rt, granted)

    def huge(self):
        """200 application/json, chunked, far over the service's cap."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b'{"pad":"' + b"x" * 16384
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            piece = b"y" * 16384
            for _ in range(64):  # 1 MiB
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the service hung up at its cap: that is the point
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # a client that hung up is not news


def serve(cert, key, prefix, host="127.0.0.1", port=0):
    global PROVIDER
    PROVIDER = Provider(prefix)
    httpd = Server((host, port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print(httpd.server_address[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    httpd.serve_forever()


# ---------------------------------------------------------------- the client


class StandIn:
    """The tests' handle on a running stand-in (its process and control API)."""

    def __init__(self, ca_dir, prefix, cert="server", ca="ca.pem"):
        import requests
        self.requests = requests
        self.ca_dir = Path(ca_dir)
        self.ca = str(self.ca_dir / ca)
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "oauth_provider.py"),
             "--cert", str(self.ca_dir / (cert + ".pem")),
             "--key", str(self.ca_dir / (cert + ".key")), "--prefix", prefix],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError("the stand-in OAuth provider did not start")
        self.port = int(line)
        self.base = "https://127.0.0.1:%d" % self.port
        self.session = requests.Session()
        self.session.verify = self.ca

    def url(self, path):
        return self.base + path

    def control(self, path, body=None):
        # verify per request: REQUESTS_CA_BUNDLE would override a session's
        if body is None:
            r = self.session.get(self.url(path), timeout=10, verify=self.ca)
        else:
            r = self.session.post(self.url(path), json=body, timeout=10, verify=self.ca)
        r.raise_for_status()
        return r.json()

    def reset(self, client_id, client_secret, **cfg):
        return self.control("/control/reset", dict(cfg, client_id=client_id,
                                                   client_secret=client_secret))

    def mode(self, mode, delay=0, **cfg):
        return self.control("/control/mode", dict(cfg, mode=mode, delay=delay))

    def seed(self, refresh_token=None):
        body = {"refresh_token": refresh_token} if refresh_token else {}
        return self.control("/control/seed", body)["refresh_token"]

    def stats(self):
        return self.control("/control/stats")

    def introspect(self, token):
        """{"active", "serial"} of an access token (see /control/introspect)."""
        return self.control("/control/introspect", {"token": token})

    def revoke_access(self):
        return self.control("/control/revoke_access", {})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--prefix", default="standin-")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    serve(args.cert, args.key, args.prefix, port=args.port)
