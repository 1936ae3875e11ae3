"""nginx in front (deploy/nginx/mailsrv-server.conf.in): requests per client address
are limited, tighter on the OAuth callback and the SMTP tests, and so are
requests in progress; over a limit nginx answers 429 as problem details, not
its HTML page. Every answer, nginx's own included, carries
X-Content-Type-Options and a Content-Security-Policy.

The stack's nginx has limits far above what the suites send (scripts/stack.sh),
so the limits are tested on a second nginx rendered here from the same
templates (deploy/render-nginx.sh) with small ones, in front of the same worker pool; it lives only for
one test."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

import mailapi
from mailapi import BASE_URL, REPO, STACK_VAR, describe
from oauth_provider import free_port

RENDER = REPO / "deploy" / "render-nginx.sh"
CSP = "default-src 'none'; frame-ancestors 'none'"


def render(port, d, **limits):
    """The local stack's nginx.conf and its included files, rendered into d
    by deploy/render-nginx.sh with this port, paths under d and these
    limits."""
    values = {"HTTP_PORT": str(port), "SOCKET": os.environ["MAILSRV_SOCKET"],
              "USER": os.environ.get("STACK_NGINX_USER", "www-data"),
              "PID_FILE": str(d / "nginx.pid"), "LOG_DIR": str(d), "TEMP_DIR": str(d / "tmp"),
              "API_RATE": "1r/m", "API_BURST": "100", "SENSITIVE_RATE": "1r/m",
              "SENSITIVE_BURST": "100", "CONN_LIMIT": "100", "METRICS_ALLOW": "127.0.0.1",
              "DOCS_DIR": str(STACK_VAR / "api-docs")}
    values.update(limits)
    subprocess.run([str(RENDER), "local", str(d)] + ["%s=%s" % kv for kv in values.items()],
                   check=True, timeout=30)
    return d / "nginx.conf"


@pytest.fixture
def limited():
    """start(**limits) -> the base URL of a fresh nginx with those limits."""
    started = []

    def start(**limits):
        d = STACK_VAR / "nginx-limits"
        (d / "tmp").mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        port = free_port()
        conf = render(port, d, **limits)
        subprocess.run(["nginx", "-q", "-c", str(conf), "-p", str(d) + "/",
                        "-e", str(d / "nginx-error.log")], check=True, timeout=30)
        pid = int((d / "nginx.pid").read_text().split()[0])
        started.append(pid)
        base = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return base
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    yield start
    for pid in started:
        try:
            os.kill(pid, signal.SIGTERM)  # fast: a test instance
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def secure_headers(r):
    assert r.headers.get("X-Content-Type-Options") == "nosniff", describe(r)
    assert r.headers.get("Content-Security-Policy") == CSP, describe(r)
    assert r.headers.get("X-Request-Id"), describe(r)


def is_rate_limited(r):
    """A 429 from nginx: problem details with Retry-After, never HTML."""
    if r.status_code != 429:
        return False
    assert r.headers.get("Content-Type") == "application/problem+json", describe(r)
    body = json.loads(r.content)
    assert body["type"] == "/problems/rate-limited" and body["status"] == 429, describe(r)
    assert body["title"] and body["detail"], describe(r)
    assert r.headers.get("Retry-After") == "1", describe(r)
    secure_headers(r)
    return True


def burst(base, method, path, n, **kw):
    return [requests.request(method, base + path, timeout=10, allow_redirects=False, **kw)
            for _ in range(n)]


def auth():
    return {"Authorization": "Bearer " + mailapi.mint_token()}


def test_a_burst_past_the_api_limit_is_a_429_problem(limited):
    base = limited(API_BURST="5")
    got = burst(base, "GET", "/api/v1/mail-servers", 12, headers=auth())
    codes = [r.status_code for r in got]
    # The burst passes, then every request is refused until the rate allows.
    assert codes[:6] == [200] * 6, codes
    assert all(is_rate_limited(r) for r in got[6:]), codes
    # Per path prefix, not only this one path; /healthz is not limited.
    assert is_rate_limited(requests.get(base + "/api/v1/mail-servers/1", headers=auth()))
    assert requests.get(base + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/v1/mail-servers/test"),
    ("POST", "/api/v1/mail-servers/7/test"),
    ("GET", "/api/v1/oauth2/callback?state=x&code=y"),
])
def test_the_callback_and_the_tests_have_a_tighter_limit(limited, method, path):
    base = limited(API_BURST="50", SENSITIVE_BURST="2")
    # No token: the service answers fast (401, or the callback's own answer),
    # and nothing leaves the machine.
    got = burst(base, method, path, 6, data=b"{}",
                headers={"Content-Type": "application/json"})
    codes = [r.status_code for r in got]
    assert all(c != 429 for c in codes[:3]), codes
    assert all(is_rate_limited(r) for r in got[3:]), codes
    # The rest of the API is still within its own limit.
    assert requests.get(base + "/api/v1/mail-servers", headers=auth(),
                        timeout=10).status_code == 200


def test_requests_in_progress_are_limited(limited):
    base = limited(CONN_LIMIT="1")
    port = int(base.rsplit(":", 1)[1])
    # A request whose body is still on its way is in progress.
    held = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        held.sendall(b"POST /api/v1/mail-servers HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.3)
        r = requests.get(base + "/api/v1/mail-servers", headers=auth(), timeout=10)
        assert is_rate_limited(r), describe(r)
    finally:
        held.close()
    deadline = time.monotonic() + 5
    while True:
        r = requests.get(base + "/api/v1/mail-servers", headers=auth(), timeout=10)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, describe(r)


def raw(data):
    host, port = BASE_URL.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_every_answer_has_the_security_headers(api, anon):
    """On the stack's own nginx: the service's answers and nginx's own."""
    answers = [
        api.get("/mail-servers"),                    # the service, 200
        anon.get("/mail-servers"),                   # the service, 401
        api.request("HEAD", "/mail-servers"),        # HEAD
        requests.get(BASE_URL + "/healthz", timeout=10),
        requests.get(BASE_URL + "/nothing", timeout=10),             # nginx 404
        requests.get(BASE_URL + "/api", timeout=10),                 # nginx 404
        requests.request("TRACE", BASE_URL + "/api/v1/mail-servers", timeout=10),  # 405
        requests.post(BASE_URL + "/api/v1/mail-servers", data=b"x" * 70000,
                      headers={"Content-Type": "application/json"}, timeout=10),  # 413
    ]
    assert [r.status_code for r in answers] == [200, 401, 200, 200, 404, 404, 405, 413]
    for r in answers:
        secure_headers(r)
    # A request nginx cannot read (400) gets them too.
    head = raw(b"GET /x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n").split(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"\r\nX-Content-Type-Options: nosniff" in head, head
    assert ("\r\nContent-Security-Policy: %s" % CSP).encode() in head, head
