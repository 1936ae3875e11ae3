"""oauth2_support.py - what the OAuth 2.0 tests (test_oauth2_*.py) share: the
stand-in provider (one process for the whole session), a browser that follows
the authorization URL, a server pointing at the stand-in, and direct SQL for
the cases that must bypass the API's own checks.

The browser: `authorize` answers with a cookie that binds the flow to the
browser that started it, and the callback completes only with it. The tests
play one administrator's browser per test (BROWSER, emptied by the provider
fixture): authorize() keeps the cookies it is given there, and callback()
sends them unless it is given another client (a browser that did not start
the flow, e.g. mailapi.Client(token=None)).

The service under test must trust the test CA and admit the stand-in's
loopback address: the stack runs with MAILSRV_CA_FILE=$STACK_VAR/test-ca/ca.pem
and MAILSRV_OUTBOUND_ALLOW=127.0.0.1/32 (tests/run_all.sh sets both, and makes
the CA with tests/oauth_ca.sh before the stack starts). The allow-list is
exactly 127.0.0.1: every other loopback address stays refused, which the
refused-destination tests rely on.
"""

import atexit
import glob
import os
import subprocess
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import mailapi
from mailapi import BASE_URL, describe, oauth_body, secret
from oauth_provider import StandIn

CA_DIR = mailapi.STACK_VAR / "test-ca"

_standin = None
_standin_lock = threading.Lock()

# The administrator's browser: the cookies authorize() was answered with.
BROWSER = requests.cookies.RequestsCookieJar()


def standin():
    """The session's stand-in provider (started on first use)."""
    global _standin
    with _standin_lock:
        if _standin is None:
            if not (CA_DIR / "ca.pem").exists():
                subprocess.run([str(mailapi.REPO / "tests" / "oauth_ca.sh"), str(CA_DIR)],
                               check=True, capture_output=True, timeout=60)
            _standin = StandIn(CA_DIR, mailapi.SECRET_PREFIX)
            atexit.register(_standin.stop)
        return _standin


@pytest.fixture
def provider(api):
    """The stand-in, reset for this test with a fresh client registration
    (provider.client_id, provider.client_secret)."""
    p = standin()
    p.client_id = "client-%s" % secret("cid")[-6:]
    p.client_secret = secret("sk")
    p.reset(p.client_id, p.client_secret)
    BROWSER.clear()
    yield p
    p.mode("normal")


def server_body(p, **over):
    """A create body for a server whose provider is the stand-in."""
    body = oauth_body(client_id=p.client_id, secret_key=p.client_secret,
                      authorization_url=p.url("/authorize"), token_url=p.url("/token"))
    body.update(over)
    return body


def create_server(api, p, **over):
    return api.create(server_body(p, **over))


# ---------------------------------------------------------------- requests


def call(client, method, path, **kw):
    """client.request for the OAuth 2.0 endpoints: a POST without a body sends
    none, and a 502 (docs/api.md's answer for provider and network failures,
    which mailapi's checker accepts where openapi.yaml lists it) must be a
    complete problem document with an `error_code`. Every response is checked
    against openapi.yaml and recorded for the suite's leak scans."""
    if method == "POST" and "json_body" not in kw and "data" not in kw:
        kw["data"] = None
    hdrs = {"Accept": "application/json, application/problem+json"}
    if client.token is not None:
        hdrs["Authorization"] = "Bearer " + client.token
    if kw.get("content_type"):
        hdrs["Content-Type"] = kw["content_type"]
    resp = client.session.request(method, BASE_URL + client.url(path), data=kw.get("data"),
                                  headers=hdrs, params=kw.get("params"),
                                  timeout=kw.get("timeout", 60), allow_redirects=False)
    mailapi.record(method, client.url(path), resp)
    mailapi.check_response(method, urlsplit(resp.request.url).path, resp)
    if resp.status_code == 502:
        assert mailapi.media_type(resp) == "application/problem+json", describe(resp)
        body = resp.json()
        assert body["status"] == 502 and body["type"].startswith("/problems/"), describe(resp)
        assert body.get("title") and body.get("detail") and body.get("error_code"), describe(resp)
    return resp


def authorize(api, sid):
    """Start a flow; the browser keeps the cookie it is answered with."""
    r = api.post("/mail-servers/%d/oauth2/authorize" % sid)
    assert r.status_code == 200, describe(r)
    BROWSER.update(r.cookies)
    return r.json()["authorization_url"]


def browser():
    """A client that is the administrator's browser: no token, the cookies
    of the flows it started (a session of its own per call, so threads can
    share BROWSER)."""
    session = requests.Session()
    session.cookies.update(BROWSER)
    return mailapi.Client(token=None, session=session)


def refresh(api, sid, **kw):
    return call(api, "POST", "/mail-servers/%d/oauth2/refresh" % sid, **kw)


def callback(params, client=None):
    """GET the service's callback with these query parameters, as the
    administrator's browser unless client is another one (no token; recorded
    and checked like every response of the suite)."""
    c = client or browser()
    return c.get("/oauth2/callback", params=params)


def browser_authorize(p, authorization_url):
    """The browser at the provider: its 302 back to the redirect URI."""
    r = requests.get(authorization_url, verify=p.ca, allow_redirects=False, timeout=10)
    assert r.status_code == 302, "the stand-in answered %d" % r.status_code
    return r.headers["Location"]


def follow_to_callback(location, client=None):
    """The browser arriving at the callback from the provider's redirect."""
    u = urlsplit(location)
    assert u.scheme + "://" + u.netloc == BASE_URL, "redirect_uri is not the service's"
    assert u.path == "/api/v1/oauth2/callback", u.path
    params = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    return callback(params, client)


def connect(api, p, sid):
    """The whole flow as a browser drives it; returns the callback response."""
    return follow_to_callback(browser_authorize(p, authorize(api, sid)))


def console_outcome(resp):
    """The query of the 303's Location (the console URL), as a dict."""
    assert resp.status_code == 303, describe(resp)
    assert resp.headers.get("Referrer-Policy") == "no-referrer", describe(resp)
    assert "no-store" in resp.headers.get("Cache-Control", ""), describe(resp)
    loc = resp.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


# ---------------------------------------------------------------- SQL


def _pg():
    sock_dir = os.environ.get("STACK_PG_SOCKET_DIR") or str(mailapi.STACK_VAR / "pg" / "run")
    # The socket, not its ".s.PGSQL.<port>.lock" file beside it.
    socks = [s for s in glob.glob(os.path.join(sock_dir, ".s.PGSQL.*"))
             if not s.endswith(".lock")]
    assert socks, "no PostgreSQL socket in %s" % sock_dir
    return sock_dir, socks[0].rsplit(".", 1)[-1]


def sql(statement, **params):
    """Run one statement on the test stack's database as mailsrv_app (peer
    authentication over the unix socket; the tests run as root). Parameters
    are psql variables, quoted by psql (:'name'). Returns the rows as lists
    of strings."""
    sock_dir, port = _pg()
    cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
           "-h", sock_dir, "-p", port, "-U", "mailsrv_app", "-d", "mailsrv"]
    for k, v in params.items():
        cmd += ["-v", "%s=%s" % (k, v)]
    res = subprocess.run(cmd, input=statement, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, mailapi.redact(res.stderr[-500:])
    return [line.split("\t") for line in res.stdout.splitlines() if line]
