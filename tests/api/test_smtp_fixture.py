"""The SMTP test servers themselves (smtp_server.py), driven by the curl
command line tool (the same libcurl as the service): they record what the
connection tests rely on, and never a credential. If these fail, the
test_smtp_* results mean nothing."""

import subprocess

import pytest

from mailapi import secret
from smtp_server import ca_dir
from smtp_support import USER, closed_port, credential_forms, silent, smtp, xoauth2_forms

assert smtp and silent and closed_port  # fixtures, used by name

MSG = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: hi\r\n\r\nbody\r\n"


def curl(url, *args, timeout=5):
    cmd = ["curl", "-sS", "--max-time", str(timeout), "--url", url,
           "--cacert", str(ca_dir() / "ca.pem"), "--mail-from", "a@x.example",
           "--mail-rcpt", "b@y.example", "-T", "-", *args]
    return subprocess.run(cmd, input=MSG, capture_output=True, timeout=timeout + 10).returncode


def recorded_text(srv):
    return repr((srv.connections(), srv.auths(), [m["mail_from"] for m in srv.messages()]))


@pytest.mark.parametrize("tls", ["none", "starttls", "starttls_required", "implicit"])
def test_records_commands_logins_and_messages(smtp, tls):
    pw = secret("pw")
    srv = smtp(tls=tls, users={USER: pw}, mechanisms=["PLAIN"])
    scheme = "smtps" if tls == "implicit" else "smtp"
    extra = ["--ssl-reqd"] if tls.startswith("starttls") else []
    assert curl("%s://127.0.0.1:%d" % (scheme, srv.port), "-u", "%s:%s" % (USER, pw), *extra) == 0
    assert srv.wait_closed()
    verbs = srv.verbs()
    head = ["EHLO", "STARTTLS", "EHLO"] if tls.startswith("starttls") else ["EHLO"]
    assert verbs == head + ["AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    assert [(a["mechanism"], a["user"], a["ok"], a["tls"]) for a in srv.auths()] == \
        [("PLAIN", USER, True, tls != "none")]
    [m] = srv.messages()
    assert m["raw"] == MSG and m["rcpt_tos"] == ["b@y.example"]
    text = recorded_text(srv)
    assert not any(f in text for f in credential_forms(USER, pw)), "a credential was recorded"


def test_a_wrong_password_and_xoauth2(smtp):
    pw = secret("pw")
    tok = secret("at")
    srv = smtp(tls="starttls", users={USER: pw},
               oauth=lambda t: {"active": t == tok, "serial": 3 if t == tok else None})
    url = "smtp://127.0.0.1:%d" % srv.port
    assert curl(url, "--ssl-reqd", "-u", "%s:%s" % (USER, pw + "x")) == 67
    assert curl(url, "--ssl-reqd", "-u", "a@x.example:", "--login-options", "AUTH=XOAUTH2",
                "--oauth2-bearer", tok) == 0
    assert srv.wait_closed()
    assert [(a["mechanism"] in ("PLAIN", "LOGIN"), a["ok"]) for a in srv.auths()][:1] == \
        [(True, False)]
    assert [(a["mechanism"], a["ok"], a.get("token_serial")) for a in srv.auths()][1:] == \
        [("XOAUTH2", True, 3)]
    text = recorded_text(srv)
    forms = credential_forms(USER, pw + "x") + xoauth2_forms("a@x.example", tok)
    assert not any(f in text for f in forms), "a credential was recorded"


def test_refusals_and_missing_starttls(smtp):
    srv = smtp(tls="none", refuse_rcpt="550 5.1.1 no such user")
    assert curl("smtp://127.0.0.1:%d" % srv.port) == 55
    srv.refuse_rcpt, srv.refuse_mail = None, "550 5.7.1 no"
    assert curl("smtp://127.0.0.1:%d" % srv.port) == 55
    # --ssl-reqd against a server without STARTTLS: curl stops after EHLO
    assert curl("smtp://127.0.0.1:%d" % srv.port, "--ssl-reqd") == 64
    assert srv.wait_closed()
    assert [[c["verb"] for c in conn["commands"]] for conn in srv.connections()] == \
        [["EHLO", "MAIL", "RCPT", "QUIT"], ["EHLO", "MAIL", "QUIT"], ["EHLO"]]
    assert srv.messages() == []


@pytest.mark.parametrize("cert", ["wronghost", "expired", "untrusted"])
def test_bad_certificates_are_refused_by_curl(smtp, cert):
    srv = smtp(tls="starttls", cert=cert)
    assert curl("smtp://127.0.0.1:%d" % srv.port, "--ssl-reqd") == 60
    assert srv.wait_closed()
    assert srv.verbs() == ["EHLO", "STARTTLS"]


def test_silent_server_and_closed_port(silent, closed_port):
    srv = silent()
    assert curl("smtp://127.0.0.1:%d" % srv.port, timeout=1) == 28
    assert srv.connections() == 1
    assert curl("smtp://127.0.0.1:%d" % closed_port.port) == 7
