"""Connection tests that pass: every TLS mode and way of logging in, with and
without a test message, and the message itself (its headers, its body, and
no header injection from a hostile sender name). Real SMTP servers on
127.0.0.1 (smtp_server.py); see smtp_support.py."""

import datetime
import email.header
import re

import pytest

import mailapi
from mailapi import describe, parse_ts, secret, validation
from smtp_support import (USER, admin, basic_for, cert_not_after, header_block, login_server,
                          ok, parse_message, result, run_saved, run_unsaved, smtp, stage_names,
                          unsaved)

assert smtp  # a fixture, used by name

MODES = ["none", "starttls", "starttls_required", "implicit"]
RECIPIENT = "alice@example.org"


def first_seen(names):
    out = []
    for n in names:
        if n not in out:
            out.append(n)
    return out


def expected_stages(tls, login, recipient):
    names = ["resolve", "connect"]
    if tls == "implicit":
        names += ["tls", "ehlo"]
    elif tls == "none":
        names += ["ehlo"]
    else:
        names += ["ehlo", "tls"]
    if login:
        names.append("auth")
    if recipient:
        names += ["mail_from", "rcpt_to", "data"]
    return names


def check_tls(res, tls, cert="server"):
    if tls == "none":
        assert res["tls"] is None, mailapi.redact(repr(res))
        return
    t = res["tls"]
    assert t is not None, mailapi.redact(repr(res))
    assert "127.0.0.1" in t["subject"], t
    assert "mailsrv test CA" in t["issuer"], t
    want = cert_not_after(cert)
    assert abs((parse_ts(t["not_after"]) - want).total_seconds()) < 1, t
    days = (want - datetime.datetime.now(datetime.timezone.utc)).days
    assert days - 1 <= t["days_left"] <= days + 1, t


def check_conversation(srv, recipient, login=True):
    verbs = srv.verbs()
    if login:
        assert "AUTH" in verbs, verbs
    else:
        assert "AUTH" not in verbs and srv.auths() == [], verbs
    if recipient:
        assert verbs[-4:] == ["MAIL", "RCPT", "DATA", "QUIT"], verbs
        assert len(srv.messages()) == 1
    else:
        # connect, TLS, EHLO, login, goodbye: nothing is sent
        assert not {"MAIL", "RCPT", "DATA"} & set(verbs), verbs
        assert verbs[-1] == "QUIT", verbs
        assert srv.messages() == []
    assert len(srv.connections()) == 1


@pytest.mark.parametrize("recipient", [None, RECIPIENT], ids=["login-only", "with-message"])
@pytest.mark.parametrize("tls", MODES)
def test_basic_login_in_each_tls_mode(api, smtp, tls, recipient):
    srv, pw = login_server(smtp, tls, auth_required=True)
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"], recipient))
    ok(res, "data" if recipient else "auth")
    assert first_seen(stage_names(res)) == expected_stages(tls, True, recipient), stage_names(res)
    check_tls(res, tls)
    srv.wait_closed()
    check_conversation(srv, recipient)
    auths = srv.auths()
    assert [(a["user"], a["ok"]) for a in auths] == [(USER, True)]
    assert auths[0]["mechanism"] in ("PLAIN", "LOGIN")
    # the password went only over TLS when TLS was asked for
    assert auths[0]["tls"] is (tls != "none")
    if recipient:
        m = srv.messages()[0]
        assert m["mail_from"] == s["sender_email"] and m["rcpt_tos"] == [RECIPIENT]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_each_login_mechanism(api, smtp, mechanism):
    srv, pw = login_server(smtp, "starttls", mechanisms=[mechanism], auth_required=True)
    s = api.create(basic_for(srv, password=pw))
    ok(result(run_saved(api, s["id"], RECIPIENT)), "data")
    assert [(a["mechanism"], a["ok"]) for a in srv.auths()] == [(mechanism, True)]


@pytest.mark.parametrize("recipient", [None, RECIPIENT], ids=["login-only", "with-message"])
@pytest.mark.parametrize("tls", MODES)
def test_basic_without_username_does_not_log_in(api, smtp, tls, recipient):
    srv = smtp(tls=tls, users={USER: secret("pw")}, port=465 if tls == "implicit" else 0)
    s = api.create(basic_for(srv, username=None, password=None))
    res = result(run_saved(api, s["id"], recipient))
    want = expected_stages(tls, False, recipient)
    ok(res, want[-1])
    assert first_seen(stage_names(res)) == want, stage_names(res)
    check_tls(res, tls)
    srv.wait_closed()
    check_conversation(srv, recipient, login=False)


def test_stage_order_with_starttls(api, smtp):
    """With STARTTLS the first EHLO comes before TLS (and the server saw
    STARTTLS right after it, and the login only under TLS)."""
    srv, pw = login_server(smtp, "starttls_required")
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"]))
    names = stage_names(res)
    assert names.index("ehlo") < names.index("tls") < names.index("auth"), names
    srv.wait_closed()
    cmds = srv.connections()[0]["commands"]
    assert [c["verb"] for c in cmds[:2]] == ["EHLO", "STARTTLS"]
    assert all(c["tls"] for c in cmds[2:]), [c["verb"] for c in cmds]


def test_implicit_tls_comes_first(api, smtp):
    srv, pw = login_server(smtp, "implicit")
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"]))
    assert stage_names(res)[:4] == ["resolve", "connect", "tls", "ehlo"], stage_names(res)
    srv.wait_closed()
    assert "STARTTLS" not in srv.verbs()


def test_unsaved_settings_with_a_message(smtp):
    client = admin()
    srv, pw = login_server(smtp, "starttls", auth_required=True)
    body = unsaved(basic_for(srv, password=pw), recipient=RECIPIENT)
    before = client.list_all()
    res = result(run_unsaved(client, body))
    ok(res, "data")
    check_tls(res, "starttls")
    assert [(a["user"], a["ok"]) for a in srv.auths()] == [(USER, True)]
    assert len(srv.messages()) == 1
    # nothing is stored
    assert client.list_all() == before


def test_unsaved_settings_login_only(smtp):
    client = admin()
    srv, pw = login_server(smtp, "implicit")
    res = result(run_unsaved(client, basic_for(srv, password=pw)))
    ok(res, "auth")
    srv.wait_closed()
    check_conversation(srv, None)


# ---------------------------------------------------------------- the message


def raw_header(raw, name):
    """One header's raw bytes, continuation lines included."""
    out, inside = [], False
    for line in header_block(raw).split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if inside:
                out.append(line)
            continue
        inside = line.lower().startswith(name.lower() + b":")
        if inside:
            out.append(line)
    return b"\r\n".join(out)


ENCODED_WORDS = re.compile(r"(=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=[ \t]*)+")


def from_header(raw):
    """(display name, address) of the From header: the address in the
    closing angle brackets, the display name a quoted string (unescaped) or
    RFC 2047 encoded words, decoded by RFC 2047's rules (section 6.2: white
    space between adjacent encoded words is dropped; Python 3.11's modern
    header parser keeps it, so the words are decoded here)."""
    value = raw_header(raw, b"From").split(b":", 1)[1].decode("ascii")
    value = re.sub(r"\r\n(?=[ \t])", "", value).strip()
    m = re.fullmatch(r"(.*?)[ \t]*<([^<>\s\"]+)>", value, re.S)
    assert m, "From is not a display name and an address in angle brackets"
    display, addr = m.group(1), m.group(2)
    if display.startswith('"'):
        assert re.fullmatch(r'"(?:[^"\\]|\\.)*"', display), "not one quoted string"
        name = re.sub(r"\\(.)", r"\1", display[1:-1])
    elif display:
        assert ENCODED_WORDS.fullmatch(display), "neither quoted nor encoded words"
        name = "".join(part.decode(cs or "ascii") if isinstance(part, bytes) else part
                       for part, cs in email.header.decode_header(display))
    else:
        name = ""
    return name, addr


def check_message(raw, s, recipient, saved=True):
    """The test message: headers an MTA and a person expect, exactly one
    From and To, nothing injected."""
    head = header_block(raw)
    # headers are 7-bit (RFC 5322; non-ASCII text as RFC 2047 encoded words,
    # each at most 75 characters) and within the line limit
    assert all(b < 0x80 for b in head), "8-bit bytes in the header block"
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(len(w) <= 75 for w in re.findall(rb"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=", head))
    msg = parse_message(raw)
    for name in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version"):
        assert len(msg.get_all(name) or []) == 1, "%s: %r" % (name, msg.get_all(name))
    for name in ("Bcc", "Cc", "Reply-To", "Sender"):
        assert msg.get_all(name) is None, name
    assert msg["Date"].datetime is not None
    age = datetime.datetime.now(datetime.timezone.utc) - msg["Date"].datetime
    assert abs(age.total_seconds()) < 300, msg["Date"]
    domain = s["sender_email"].rsplit("@", 1)[1]
    mid = str(msg["Message-ID"]).strip()
    assert mid.startswith("<") and mid.endswith("@" + domain + ">"), mid
    # one address, as a mail reader parses it
    assert [a.addr_spec for a in msg["From"].addresses] == [s["sender_email"]]
    name, addr = from_header(raw)
    assert addr == s["sender_email"]
    assert name == s["sender_name"], (name, s["sender_name"])
    to = msg["To"].addresses
    assert [a.addr_spec for a in to] == [recipient]
    assert str(msg["Subject"]).strip()
    assert str(msg["MIME-Version"]).strip() == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert (msg.get_content_charset() or "").lower() == "utf-8"
    text = msg.get_content()
    assert "%s" % s["server"] in text and str(s["port"]) in text, \
        "the body does not name the tested server"
    if saved:
        assert s["name"] in text, "the body does not name the tested server"
    return msg


def test_the_message_received(api, smtp):
    srv, pw = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=pw, name=mailapi.unique_name("Relais Zürich ✉"),
                             sender_name="Sécurité Console", sender_email="alerts@corp.example"))
    ok(result(run_saved(api, s["id"], RECIPIENT)), "data")
    [m] = srv.messages()
    assert m["mail_from"] == "alerts@corp.example" and m["rcpt_tos"] == [RECIPIENT]
    check_message(m["raw"], s, RECIPIENT)
    # the display name needed RFC 2047 encoded words
    assert b"=?" in raw_header(m["raw"], b"From")
    assert from_header(m["raw"]) == ("Sécurité Console", "alerts@corp.example")


def test_the_message_of_unsaved_settings(smtp):
    client = admin()
    srv, pw = login_server(smtp, "starttls")
    body = basic_for(srv, password=pw, name=mailapi.unique_name("Draft relay"),
                     sender_name="Plain ASCII Sender", sender_email="noreply@draft.example")
    res = result(run_unsaved(client, unsaved(body, recipient=RECIPIENT)))
    ok(res, "data")
    [m] = srv.messages()
    check_message(m["raw"], body, RECIPIENT, saved=False)


@pytest.mark.parametrize("sender_name", [
    "Ops\u2028Bcc: victim@evil.example",                 # LINE SEPARATOR
    "Ops\u2029To: victim@evil.example",                  # PARAGRAPH SEPARATOR
    'Mallory <admin@evil.example>, "victim@evil.example"',
    'Back\\slash "quoted" (comment) ; semi: colon',
    "=?utf-8?q?Bcc:_victim@evil.example?=",
    "Ünïcödé " + "ß" * 80,
], ids=["u2028", "u2029", "address-like", "specials", "encoded-word-like", "long"])
def test_a_hostile_sender_name_injects_nothing(api, smtp, sender_name):
    srv, pw = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=pw, sender_name=sender_name))
    assert s["sender_name"] == sender_name
    ok(result(run_saved(api, s["id"], RECIPIENT)), "data")
    [m] = srv.messages()
    assert m["rcpt_tos"] == [RECIPIENT]
    head = header_block(m["raw"]).lower()
    assert b"\r\nbcc:" not in head and not head.startswith(b"bcc:")
    msg = parse_message(m["raw"])
    assert len(msg["From"].addresses) == 1
    assert from_header(m["raw"])[1] == s["sender_email"]
    if "=?" not in sender_name:
        # shown as it was entered (an encoded-word look-alike may be taken
        # literally or decoded; either way it stays a display name)
        check_message(m["raw"], s, RECIPIENT)


@pytest.mark.parametrize("bad", ["Ops\r\nBcc: victim@evil.example", "Ops\nBcc: v@x.example",
                                 "Ops\rBcc: v@x.example", "Ops\u0085Bcc: v@x.example"],
                         ids=["crlf", "lf", "cr", "nel"])
def test_line_breaks_in_the_sender_name_are_refused(api, smtp, bad):
    """Line breaks never reach a header: the API refuses them (422) on save
    and in unsaved settings alike, and nothing is sent."""
    srv, pw = login_server(smtp, "starttls")
    validation(api.post("/mail-servers", basic_for(srv, password=pw, sender_name=bad)),
               "sender_name")
    client = admin()
    r = run_unsaved(client, unsaved(basic_for(srv, password=pw, sender_name=bad),
                                    recipient=RECIPIENT))
    validation(r, "sender_name")
    assert srv.connections() == []


def test_tls_details_of_the_certificate(api, smtp):
    srv, pw = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=pw))
    res = result(run_saved(api, s["id"]))
    check_tls(res, "starttls")
    assert res["tls"]["days_left"] > 3000


def test_a_saved_server_may_be_tested_again(api, smtp):
    srv, pw = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=pw))
    for _ in range(3):
        ok(result(run_saved(api, s["id"])), "auth")
    assert [a["ok"] for a in srv.auths()] == [True, True, True]
    assert len(srv.connections()) == 3
    r = api.get("/mail-servers/%d" % s["id"])
    assert r.status_code == 200, describe(r)


def test_the_create_form_body_as_the_console_sends_it(smtp):
    """The create form's body as the console sends it (is_default and read-only
    fields included) is taken by the unsaved-settings test."""
    client = admin()
    srv, pw = login_server(smtp, "starttls")
    body = basic_for(srv, password=pw, is_default=True)
    body.update({"id": 99, "version": 3, "password_set": True, "last_test": None})
    ok(result(run_unsaved(client, body)), "auth")
    assert client.list_all() == []
