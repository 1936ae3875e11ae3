"""smtp_support.py - what the connection-test tests (test_smtp_*.py) share:
fixtures that start real SMTP servers (smtp_server.py) and stop them after
the test, bodies pointing a mail server at one, the two test calls, and the
checks every test result must pass.

The test stack's settings (tests/api/stack-env.sh, also in the tests'
environment): MAILSRV_TEST_TIMEOUT, MAILSRV_TEST_CONNECT_TIMEOUT,
MAILSRV_TEST_RATE. The service trusts the test CA (MAILSRV_CA_FILE) and
admits exactly 127.0.0.1 (MAILSRV_OUTBOUND_ALLOW), as for the OAuth 2.0
tests (oauth2_support.py).

Rate limits: a saved server may be tested MAILSRV_TEST_RATE times a minute,
and an administrator may test unsaved settings as often; every test uses
new servers, and `admin()` gives each test its own administrator (a token
with a new `sub`), so no test is throttled by another.
"""

import base64
import datetime
import email
import email.policy
import itertools
import os
import subprocess
import uuid

import pytest

import mailapi
from mailapi import basic_body, claims, describe, make_jwt, oauth_body, secret
from smtp_server import ClosedPort, SilentServer, SmtpServer, ca_dir

TEST_TIMEOUT = float(os.environ.get("MAILSRV_TEST_TIMEOUT", "30"))
CONNECT_TIMEOUT = float(os.environ.get("MAILSRV_TEST_CONNECT_TIMEOUT", "10"))
TEST_RATE = int(os.environ.get("MAILSRV_TEST_RATE", "6"))

STAGES = ("resolve", "connect", "tls", "ehlo", "auth", "mail_from", "rcpt_to", "data")
ERROR_CODES = ("resolve_failed", "connect_refused", "timeout", "tls_required", "tls_failed",
               "certificate_name_mismatch", "certificate_expired", "certificate_untrusted",
               "auth_failed", "sender_refused", "recipient_refused", "message_refused",
               "destination_refused", "oauth2_refresh_failed", "connection_closed",
               "unexpected_reply", "internal")

# the SMTP user of the basic-auth tests (not a secret; the password is)
USER = "console-user"

_run = uuid.uuid4().hex[:8]
_admins = itertools.count(1)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def smtp():
    """smtp(**options) starts an SmtpServer (see smtp_server.py); every
    server started is stopped after the test."""
    started = []

    def make(**kw):
        srv = SmtpServer(**kw).start()
        started.append(srv)
        return srv
    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def silent():
    """A server that accepts connections and never answers."""
    started = []

    def make(**kw):
        srv = SilentServer(**kw).start()
        started.append(srv)
        return srv
    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def closed_port():
    with ClosedPort() as p:
        yield p


def admin(label="smtp"):
    """A client for a new administrator (its own `sub`): its own rate limit
    for unsaved settings."""
    tok = make_jwt(claims(sub="%s-%s-%d" % (label, _run, next(_admins)), ttl=600))
    return mailapi.Client(token=tok)


# ---------------------------------------------------------------- bodies


class endpoint:
    """Where a mail server setting points when no test server is there."""

    def __init__(self, host, port, tls="none"):
        self.host, self.port, self.tls = host, port, tls


def uses_ssl(srv):
    return getattr(srv, "tls", "none") != "none"


def basic_for(srv, password=None, **over):
    """A create body for a basic-auth server pointing at srv, logging in as
    USER with `password` (default: a new secret)."""
    body = basic_body(server=srv.host, port=srv.port, enable_ssl=uses_ssl(srv),
                      username=USER, password=password if password is not None else secret("pw"))
    body.update(over)
    return body


def login_server(smtp, tls="starttls", **kw):
    """An SMTP server that takes USER with a new password; returns (server,
    password)."""
    pw = secret("pw")
    srv = smtp(tls=tls, users={USER: pw}, port=465 if tls == "implicit" else 0, **kw)
    return srv, pw


def oauth_for(srv, p, **over):
    """A create body for an oauth2 server pointing at srv, its provider the
    stand-in p (oauth2_support)."""
    body = oauth_body(server=srv.host, port=srv.port, enable_ssl=uses_ssl(srv),
                      client_id=p.client_id, secret_key=p.client_secret,
                      authorization_url=p.url("/authorize"), token_url=p.url("/token"))
    body.update(over)
    return body


def unsaved(body, **over):
    """The unsaved-settings body for a create body (plus e.g. recipient)."""
    b = dict(body)
    b.update(over)
    return b


# ---------------------------------------------------------------- calls


def run_saved(client, sid, recipient=None, body=mailapi._NOTSET, **kw):
    """POST /mail-servers/{id}/test; body {} or {"recipient": ...}."""
    if body is mailapi._NOTSET:
        body = {} if recipient is None else {"recipient": recipient}
    kw.setdefault("timeout", TEST_TIMEOUT + 30)
    return client.post("/mail-servers/%d/test" % sid, body, **kw)


def run_unsaved(client, body, **kw):
    kw.setdefault("timeout", TEST_TIMEOUT + 30)
    return client.post("/mail-servers/test", body, **kw)


def result(resp):
    """The test result of a 200 answer, checked against the rules every
    result follows (besides openapi.yaml, which mailapi already checked)."""
    assert resp.status_code == 200, describe(resp)
    res = resp.json()
    check_result(res)
    assert no_secret_in(resp.content), "a test result holds a secret or a token"
    return res


def check_result(res):
    names = [s["name"] for s in res["stages"]]
    text = mailapi.redact(repr(res))
    assert res["stages"], text
    assert res["stage"] == names[-1], "stage is not the last stage reached: " + text
    assert set(names) <= set(STAGES), text
    # every test starts by resolving, unless it was refused before that: the
    # outbound policy refusing the port, an OAuth 2.0 refresh before the
    # login failing (then a single failed stage)
    assert names[:1] == ["resolve"] or len(names) == 1 and res["error"] and \
        res["error"]["code"] in ("destination_refused", "oauth2_refresh_failed"), \
        "the first stage is not resolve: " + text
    if res["ok"]:
        assert res["error"] is None, text
        assert all(s["ok"] for s in res["stages"]), text
    else:
        assert res["error"] and res["error"]["code"] in ERROR_CODES, text
        assert res["error"]["message"].strip() and res["error"]["hint"].strip(), text
        assert res["stages"][-1]["ok"] is False, "the failed stage is not the last: " + text
    for s in res["stages"]:
        assert 0 <= s["duration_ms"] <= (TEST_TIMEOUT + 5) * 1000, text
    if "tls" in names:
        i = names.index("tls")
        if i == 2:  # right after connect: TLS from the first byte
            assert names[:3] == ["resolve", "connect", "tls"], text
        else:       # STARTTLS: after the first EHLO
            assert "ehlo" in names[:i], "STARTTLS before EHLO: " + text
    if res["tls"] is not None:
        assert "tls" in names, text


def ok(res, last):
    assert res["ok"] is True and res["error"] is None, mailapi.redact(repr(res))
    assert res["stage"] == last, mailapi.redact(repr(res))


def failed(res, code, stage=None, reply_code=None):
    text = mailapi.redact(repr(res))
    assert res["ok"] is False, text
    assert res["error"]["code"] == code, text
    if stage is not None:
        assert res["stage"] == stage, text
    if reply_code is not None:
        assert res["stages"][-1].get("reply_code") == reply_code, text


def stage_names(res):
    return [s["name"] for s in res["stages"]]


def no_secret_in(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    if mailapi.SECRET_PREFIX.encode() in data:
        return False
    return not any(t and t.encode() in data for t in mailapi.known_tokens())


# ---------------------------------------------------------------- what a server saw


def commands_after(conn, verb):
    """The verbs of one connection after the first `verb`."""
    verbs = [c["verb"] for c in conn["commands"]]
    return verbs[verbs.index(verb) + 1:] if verb in verbs else None


def parse_message(raw):
    """A received message, parsed (Python's email package, modern policy)."""
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_block(raw):
    return raw.split(b"\r\n\r\n", 1)[0]


def credential_forms(user, password):
    """The forms a password takes on the wire (PLAIN's and LOGIN's base64),
    to look for in logs."""
    u, p = user.encode(), password.encode()
    return [password, base64.b64encode(b"\0" + u + b"\0" + p).decode(),
            base64.b64encode(u + b"\0" + u + b"\0" + p).decode(),
            base64.b64encode(p).decode()]


def xoauth2_forms(user, token):
    blob = b"user=" + user.encode() + b"\x01auth=Bearer " + token.encode() + b"\x01\x01"
    return [token, base64.b64encode(blob).decode()]


def log_holds(strings):
    """Whether any of these strings is in the service's or nginx's logs
    (a boolean: the text is never shown)."""
    found = False
    for path in (mailapi.LOG_DIR.rglob("*") if mailapi.LOG_DIR.is_dir() else []):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if any(s and s.encode() in data for s in strings):
            found = True
    return found


def cert_not_after(name):
    """not_after of a test certificate (tests/oauth_ca.sh), as a datetime."""
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                          str(ca_dir() / (name + ".pem"))],
                         capture_output=True, text=True, check=True).stdout
    value = out.strip().split("=", 1)[1]
    return datetime.datetime.strptime(value, "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=datetime.timezone.utc)
