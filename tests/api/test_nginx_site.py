"""The production host's nginx site (deploy/nginx/mailsrv-site.conf.in,
rendered by deploy/render-nginx.sh host) run for real in front of the
stack's worker pool: HTTPS with a self-signed certificate made here, TLS 1.2
and newer only, HSTS on every answer (nginx's own problems included), plain
HTTP only redirecting, and CORS for a console on another origin: its
preflights answered by nginx, that origin alone allowed, with credentials.
The API's documentation is served there too, with HSTS and the page's own
policy.
The same shared files as the stack's nginx carry the limits: the body limit
is shown here too."""

import os
import signal
import subprocess
import time

import pytest
import requests

import mailapi
from mailapi import STACK_VAR, describe
from oauth_provider import free_port
from mailapi import REPO

RENDER = REPO / "deploy" / "render-nginx.sh"
CONSOLE = "https://console.test"
HSTS = "max-age=63072000"


@pytest.fixture(scope="module")
def site():
    d = STACK_VAR / "nginx-site"
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=api.test",
                    "-addext", "subjectAltName=DNS:api.test,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    https_port, http_port = free_port(), free_port()
    subprocess.run([str(RENDER), "host", str(d / "conf"), "SERVER_NAME=api.test",
                    "TLS_CERT=%s" % cert, "TLS_KEY=%s" % key,
                    "HTTPS_LISTEN=127.0.0.1:%d" % https_port,
                    "HTTP_LISTEN=127.0.0.1:%d" % http_port,
                    "SOCKET=%s" % os.environ["MAILSRV_SOCKET"],
                    "ACCESS_LOG=%s" % (d / "access.log"), "CONSOLE_ORIGIN=" + CONSOLE,
                    "API_RATE=1000r/s", "API_BURST=1000", "SENSITIVE_RATE=100r/s",
                    "SENSITIVE_BURST=100", "CONN_LIMIT=100",
                    # The stack's copy of the documentation (scripts/stack.sh).
                    "DOCS_DIR=%s" % (STACK_VAR / "api-docs")],
                   check=True, timeout=30)
    user = os.environ.get("STACK_NGINX_USER", "www-data")
    conf = d / "nginx.conf"
    conf.write_text("""user %(user)s;
worker_processes 1;
pid "%(d)s/nginx.pid";
events {}
http {
    server_tokens off;
    client_body_temp_path "%(d)s/tmp/client_body";
    fastcgi_temp_path "%(d)s/tmp/fastcgi";
    proxy_temp_path "%(d)s/tmp/proxy";
    scgi_temp_path "%(d)s/tmp/scgi";
    uwsgi_temp_path "%(d)s/tmp/uwsgi";
    include "%(d)s/conf/mailsrv-site.conf";
}
""" % {"user": user, "d": d})
    subprocess.run(["nginx", "-q", "-c", str(conf), "-p", str(d) + "/",
                    "-e", str(d / "error.log")], check=True, timeout=30)
    pid = int((d / "nginx.pid").read_text().split()[0])
    base = "https://127.0.0.1:%d" % https_port
    deadline = time.monotonic() + 10
    while True:
        try:
            requests.get(base + "/livez", verify=str(cert), timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield {"base": base, "cert": str(cert), "http": "http://127.0.0.1:%d" % http_port,
           "https_port": https_port}
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


def get(site, path, method="GET", **kw):
    kw.setdefault("timeout", 10)
    return requests.request(method, site["base"] + path, verify=site["cert"],
                            allow_redirects=False, **kw)


def auth():
    return {"Authorization": "Bearer " + mailapi.mint_token()}


def test_https_answers_with_hsts(site):
    r = get(site, "/livez")
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Strict-Transport-Security") == HSTS, describe(r)
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("X-Request-Id")
    r = get(site, "/api/v1/mail-servers", headers=auth())
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Strict-Transport-Security") == HSTS, describe(r)


def test_nginx_own_problems_carry_hsts(site):
    missing = get(site, "/nothing-here")
    assert missing.status_code == 404
    assert missing.headers.get("Content-Type") == "application/problem+json"
    assert missing.headers.get("Strict-Transport-Security") == HSTS, describe(missing)
    # The body limit of the shared files, the stack's own: 64 KiB.
    big = get(site, "/api/v1/mail-servers", "POST", data=b"x" * (65536 + 1),
              headers=dict(auth(), **{"Content-Type": "application/json"}))
    assert big.status_code == 413, describe(big)
    assert big.headers.get("Strict-Transport-Security") == HSTS, describe(big)
    # A location with add_header lines of its own (TRACE: 405 by nginx).
    trace = get(site, "/livez", "TRACE")
    assert trace.status_code == 405, describe(trace)
    assert trace.headers.get("Strict-Transport-Security") == HSTS, describe(trace)


def tls_handshake(site, version):
    """openssl s_client limited to one protocol version (at security level
    0, so the client itself would offer an old one): exit status 0 when the
    handshake completed."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % site["https_port"],
                        "-servername", "api.test", version, "-cipher", "DEFAULT@SECLEVEL=0"],
                       input=b"", capture_output=True, timeout=20)
    return p.returncode == 0 and b"Cipher is (NONE)" not in p.stdout


def test_only_tls_1_2_and_newer(site):
    assert tls_handshake(site, "-tls1_2")
    assert tls_handshake(site, "-tls1_3")
    assert not tls_handshake(site, "-tls1_1")
    assert not tls_handshake(site, "-tls1")


def test_plain_http_only_redirects_to_the_configured_name(site):
    r = requests.get(site["http"] + "/api/v1/mail-servers?x=1", allow_redirects=False,
                     headers={"Host": "evil.example"}, timeout=10)
    assert r.status_code == 301, describe(r)
    assert r.headers["Location"] == "https://api.test/api/v1/mail-servers?x=1"


def test_a_preflight_from_the_console_is_answered_by_nginx(site):
    r = get(site, "/api/v1/mail-servers", "OPTIONS",
            headers={"Origin": CONSOLE, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204, describe(r)
    assert r.headers.get("Access-Control-Allow-Origin") == CONSOLE
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "POST" in r.headers.get("Access-Control-Allow-Methods", "")
    allowed = r.headers.get("Access-Control-Allow-Headers", "").lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert r.headers.get("Strict-Transport-Security") == HSTS


def test_another_origin_gets_no_cors(site):
    r = get(site, "/api/v1/mail-servers", "OPTIONS",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code != 204, describe(r)  # not nginx's preflight answer
    assert not any(h.lower().startswith("access-control-") for h in r.headers), describe(r)
    r = get(site, "/api/v1/mail-servers", headers=dict(auth(), Origin="https://evil.example"))
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_the_console_reads_answers_with_credentials(site):
    r = get(site, "/api/v1/mail-servers", headers=dict(auth(), Origin=CONSOLE))
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Access-Control-Allow-Origin") == CONSOLE
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "ETag" in r.headers.get("Access-Control-Expose-Headers", "")
    assert "Origin" in r.headers.get("Vary", "")
    # Not a preflight: no preflight headers.
    assert "Access-Control-Allow-Methods" not in r.headers
    # An error of nginx's own carries them too, so the console can read it.
    missing = get(site, "/nothing-here", headers={"Origin": CONSOLE})
    assert missing.headers.get("Access-Control-Allow-Origin") == CONSOLE


def test_the_documentation_is_served_over_https(site):
    spec = (REPO / "openapi" / "openapi.yaml").read_bytes()
    r = get(site, "/api/v1/openapi.yaml")
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type") == "application/yaml"
    assert r.content == spec
    assert r.headers.get("Strict-Transport-Security") == HSTS, describe(r)
    assert r.headers.get("Cache-Control") == "no-cache"
    assert r.headers.get("Content-Security-Policy") == "default-src 'none'; frame-ancestors 'none'"
    r = get(site, "/api/v1/openapi.json", headers={"Origin": CONSOLE})
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type") == "application/json"
    assert r.headers.get("Access-Control-Allow-Origin") == CONSOLE
    page = get(site, "/api/docs/")
    assert page.status_code == 200, describe(page)
    assert page.headers.get("Content-Type") == "text/html; charset=utf-8"
    assert page.headers.get("Strict-Transport-Security") == HSTS
    assert "script-src 'self'" in page.headers.get("Content-Security-Policy", "")
