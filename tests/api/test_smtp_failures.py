"""Connection tests that fail, each for its own reason, with the error code an
administrator sees: refused logins, a missing STARTTLS, bad certificates,
closed and silent ports, refused sender and recipient, the outbound policy,
and unresolvable names. Real servers on 127.0.0.1 (smtp_server.py); see
smtp_support.py."""

import time

import pytest

import mailapi
from mailapi import describe, secret
from smtp_support import (TEST_TIMEOUT, USER, basic_for, closed_port, commands_after,
                          credential_forms, endpoint, failed, log_holds, login_server, result, run_saved,
                          silent, smtp, stage_names)

assert smtp and silent and closed_port  # fixtures, used by name

RECIPIENT = "alice@example.org"


def test_a_wrong_password(api, smtp):
    srv, _ = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=secret("pw")))
    res = result(run_saved(api, s["id"]))
    failed(res, "auth_failed", stage="auth", reply_code=535)
    assert [(a["user"], a["ok"]) for a in srv.auths()] == [(USER, False)]
    srv.wait_closed()
    assert "MAIL" not in srv.verbs()


def test_a_wrong_password_with_a_recipient_sends_nothing(api, smtp):
    srv, _ = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=secret("pw")))
    failed(result(run_saved(api, s["id"], RECIPIENT)), "auth_failed", stage="auth")
    srv.wait_closed()
    assert not {"MAIL", "RCPT", "DATA"} & set(srv.verbs())
    assert srv.messages() == []


@pytest.mark.parametrize("port_kind", ["high", "587"])
def test_starttls_required_but_not_offered(api, smtp, port_kind):
    """SSL on a port other than 465 means STARTTLS, required: a server that
    does not offer it (and would take a login in clear text) gets neither
    the login nor anything else."""
    pw = secret("pw")
    srv = smtp(tls="none", users={USER: pw}, port=0 if port_kind == "high" else 587)
    s = api.create(basic_for(srv, password=pw, enable_ssl=True))
    res = result(run_saved(api, s["id"], RECIPIENT))
    failed(res, "tls_required")
    assert res["tls"] is None
    srv.wait_closed()
    verbs = srv.verbs()
    assert "AUTH" not in verbs and srv.auths() == [], verbs
    assert not {"MAIL", "RCPT", "DATA"} & set(verbs), verbs


def test_starttls_refused_by_the_server(api, smtp):
    """A server that offers STARTTLS and then refuses it: no login in clear."""
    pw = secret("pw")
    srv = smtp(tls="none", users={USER: pw})
    srv.offer_broken_starttls = True
    s = api.create(basic_for(srv, password=pw, enable_ssl=True))
    res = result(run_saved(api, s["id"]))
    assert res["ok"] is False and res["error"]["code"] in ("tls_required", "tls_failed"), \
        mailapi.redact(repr(res))
    srv.wait_closed()
    assert "AUTH" not in srv.verbs() and srv.auths() == []


CERT_CASES = [
    ("wronghost", "certificate_name_mismatch"),
    ("expired", "certificate_expired"),
    ("untrusted", "certificate_untrusted"),
]


@pytest.mark.parametrize("cert,code", CERT_CASES, ids=[c for c, _ in CERT_CASES])
def test_a_bad_certificate_with_starttls(api, smtp, cert, code):
    pw = secret("pw")
    srv = smtp(tls="starttls", cert=cert, users={USER: pw})
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"], RECIPIENT))
    failed(res, code, stage="tls")
    assert srv.wait_closed()
    [conn] = srv.connections()
    # no SMTP command after STARTTLS (libcurl may finish the handshake for a
    # wrong host name and then hang up)
    assert commands_after(conn, "STARTTLS") == [], [c["verb"] for c in conn["commands"]]
    assert srv.auths() == []


@pytest.mark.parametrize("cert,code", CERT_CASES, ids=[c for c, _ in CERT_CASES])
def test_a_bad_certificate_with_implicit_tls(api, smtp, cert, code):
    pw = secret("pw")
    srv = smtp(tls="implicit", cert=cert, users={USER: pw}, port=465)
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"]))
    failed(res, code, stage="tls")
    assert stage_names(res) == ["resolve", "connect", "tls"], stage_names(res)
    srv.wait_closed()
    assert srv.verbs() == [] and srv.auths() == []


def test_connection_refused(api, closed_port):
    s = api.create(basic_for(closed_port, enable_ssl=False))
    res = result(run_saved(api, s["id"]))
    failed(res, "connect_refused", stage="connect")
    assert res["tls"] is None


def test_a_server_that_never_answers(api, silent):
    """The test gives up within MAILSRV_TEST_TIMEOUT (the test stack sets it
    low), hangs up, and the worker is free again at once."""
    srv = silent()
    s = api.create(basic_for(srv, enable_ssl=True))
    t0 = time.monotonic()
    res = result(run_saved(api, s["id"]))
    took = time.monotonic() - t0
    failed(res, "timeout")
    assert took <= TEST_TIMEOUT + 3, "the test took %.1f s (limit %.0f s)" % (took, TEST_TIMEOUT)
    assert srv.connections() == 1
    # the service hung up
    deadline = time.monotonic() + 3
    while srv.closed_by_client() < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.closed_by_client() == 1
    # and its worker answers again right away
    t1 = time.monotonic()
    r = api.get("/mail-servers/%d" % s["id"])
    assert r.status_code == 200, describe(r)
    assert time.monotonic() - t1 < 2
    assert r.json()["last_test"]["error_code"] == "timeout"


def test_other_requests_are_served_while_a_test_waits(api, silent):
    import threading
    srv = silent()
    s = api.create(basic_for(srv, enable_ssl=False))
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", run_saved(
        mailapi.Client(token=api.token), s["id"])))
    th.start()
    try:
        deadline = time.monotonic() + 5
        while srv.connections() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        for _ in range(5):
            r = api.get("/mail-servers")
            assert r.status_code == 200, describe(r)
        assert time.monotonic() - t0 < 3
    finally:
        th.join(TEST_TIMEOUT + 30)
    failed(result(out["r"]), "timeout")


@pytest.mark.parametrize("reply", ["550 5.7.1 Sender address rejected",
                                   "553 5.1.8 Domain of sender address does not exist",
                                   "451 4.3.0 Try again later"])
def test_sender_refused(api, smtp, reply):
    srv, pw = login_server(smtp, "starttls")
    srv.refuse_mail = reply
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"], RECIPIENT))
    failed(res, "sender_refused", stage="mail_from", reply_code=int(reply[:3]))
    srv.wait_closed()
    assert "RCPT" not in srv.verbs() and srv.messages() == []


@pytest.mark.parametrize("reply", ["550 5.1.1 User unknown", "554 5.7.1 Relay access denied"])
def test_recipient_refused(api, smtp, reply):
    srv, pw = login_server(smtp, "starttls")
    srv.refuse_rcpt = reply
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"], RECIPIENT))
    failed(res, "recipient_refused", stage="rcpt_to", reply_code=int(reply[:3]))
    srv.wait_closed()
    assert "DATA" not in srv.verbs() and srv.messages() == []


@pytest.mark.parametrize("port", [110, 1023, 143])
def test_a_port_the_policy_refuses(api, silent, port):
    """Below 1024 only 25, 465 and 587 may be tested: a listener on the
    refused port sees no connection."""
    srv = silent(port=port, port_wait=30)
    s = api.create(basic_for(srv, enable_ssl=False))
    assert s["port"] == port  # storing it is allowed
    res = result(run_saved(api, s["id"]))
    failed(res, "destination_refused")
    # refused before (or as) it would connect
    assert res["stage"] in ("resolve", "connect"), stage_names(res)
    assert not any(x["ok"] for x in res["stages"] if x["name"] == "connect")
    time.sleep(0.3)
    assert srv.connections() == 0


@pytest.mark.parametrize("host", ["127.0.0.2", "127.1.2.3", "::1", "::ffff:127.0.0.2"])
def test_an_address_the_policy_refuses(api, silent, host):
    """Only 127.0.0.1 is admitted on the test stack: other loopback
    addresses are refused, and a listener there sees no connection."""
    listen = "127.0.0.2" if host == "::ffff:127.0.0.2" else host
    srv = silent(host=listen)
    s = api.create(basic_for(srv, server=host, enable_ssl=False))
    res = result(run_saved(api, s["id"]))
    failed(res, "destination_refused")
    assert res["stage"] in ("resolve", "connect"), stage_names(res)
    time.sleep(0.3)
    assert srv.connections() == 0


def test_a_name_that_does_not_resolve(api):
    s = api.create(basic_for(endpoint("no-such-host.invalid", 2525)))
    res = result(run_saved(api, s["id"]))
    failed(res, "resolve_failed", stage="resolve")


def test_no_credential_in_results_or_logs(api, smtp):
    """The login happened (the server says so), and neither the result nor
    any log line holds the password or the AUTH exchange."""
    for mech in ("PLAIN", "LOGIN"):
        srv, pw = login_server(smtp, "starttls", mechanisms=[mech])
        s = api.create(basic_for(srv, password=pw))
        r = run_saved(api, s["id"], RECIPIENT)
        res = result(r)
        assert res["ok"] is True, mailapi.redact(repr(res))
        assert [(a["mechanism"], a["ok"]) for a in srv.auths()] == [(mech, True)]
        forms = credential_forms(USER, pw)
        assert not any(f.encode() in r.content for f in forms)
        # a wrong one too
        bad = secret("pw")
        api.update(s["id"], {"password": bad})
        r = run_saved(api, s["id"])
        failed(result(r), "auth_failed")
        forms += credential_forms(USER, bad)
        assert not any(f.encode() in r.content for f in forms)
        time.sleep(0.5)  # log lines are written as the request ends
        assert not log_holds(forms), "a log file holds a password or the AUTH exchange"
