"""The outbound policy on token and authorization URLs (docs/api.md#outbound-calls):
refused at save time where the URL's
host is an IP literal, and again at call time on the address actually
connected to, whatever its spelling. The test stack admits exactly
127.0.0.1/32 (the stand-in provider): every other loopback address, link-local
and unspecified addresses stay refused.

The call-time cases store the URL with SQL, past the API's own save-time
check, as a URL stored before a policy change would be."""

import pytest

from mailapi import describe, problem, secret, validation
from oauth2_support import (authorize, call, browser_authorize, console_outcome, create_server,
                            follow_to_callback, provider, refresh, server_body, sql)

assert provider  # a fixture, used by name

# Hosts the policy refuses that pass the URL rules: refused at save time.
SAVE_REFUSED = [
    "127.0.0.2", "127.255.255.254", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.2]",
    "[::ffff:7f00:2]", "[::127.0.0.2]", "169.254.169.254", "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]", "169.254.0.1", "[fe80::1]", "[febf::1]", "0.0.0.0", "[::]",
    "0.1.2.3", "[::ffff:0.0.0.0]",
]

# Every spelling of a refused address, at call time (curl normalizes the
# numeric forms, which the URL rules refuse at save time).
CALL_REFUSED = SAVE_REFUSED + [
    "2130706434", "0x7f.0.0.2", "0177.0.0.2", "127.2", "0x7f000002", "0", "2852039166",
    "0xa9.0xfe.0xa9.0xfe",
]


@pytest.mark.parametrize("host", SAVE_REFUSED)
@pytest.mark.parametrize("field", ["token_url", "authorization_url"])
def test_save_refuses_a_refused_literal(api, provider, host, field):
    body = server_body(provider, **{field: "https://%s:8443/oauth2/token" % host})
    before = api.snapshot()
    r = api.post("/mail-servers", body)
    validation(r, field)
    msg = r.json()["errors"][0]["message"]
    assert "outbound policy" in msg, describe(r)
    assert api.snapshot() == before
    # and on update
    s = create_server(api, provider)
    r = api.patch("/mail-servers/%d" % s["id"], {field: "https://%s/x" % host})
    validation(r, field)


@pytest.mark.parametrize("url", ["http://127.0.0.1/token", "http://login.example.com/token",
                                 "file:///etc/passwd", "gopher://127.0.0.1/",
                                 "https://2130706433/token", "https://0x7f.1/token"])
def test_save_refuses_what_is_not_plain_https(api, provider, url):
    validation(api.post("/mail-servers", server_body(provider, token_url=url)), "token_url")


@pytest.mark.parametrize("url", ["https://127.0.0.1:9/token", "https://login.example.com/t",
                                 "https://localhost/token", "https://10.0.0.1/token",
                                 "https://[2001:db8::1]/token", "https://8.8.8.8/token"])
def test_save_admits_public_allowed_and_named_destinations(api, provider, url):
    # Host names are checked when they are resolved; private ranges are
    # refused only with MAILSRV_OUTBOUND_DENY_PRIVATE=1.
    api.create(server_body(provider, token_url=url))


@pytest.mark.parametrize("host", CALL_REFUSED)
def test_call_time_refuses_every_spelling(api, provider, host):
    rt = provider.seed()
    s = create_server(api, provider, refresh_token=rt, access_token=secret("at"))
    sql("UPDATE mail_server SET token_url = :'u' WHERE id = :id",
        u="https://%s:%d/token" % (host, provider.port), id=s["id"])
    r = refresh(api, s["id"])
    body = problem(r, 502, "destination-refused")
    assert body["error_code"] == "destination_refused"
    assert provider.stats()["token_calls"] == 0
    rep = api.fetch(s["id"])
    assert rep["oauth2_status"] == "error"
    assert rep["oauth2_last_error"]["code"] == "destination_refused"


@pytest.mark.parametrize("url", ["http://127.0.0.1:%d/token", "file:///etc/passwd#%d",
                                 "gopher://127.0.0.1:%d/", "ftp://127.0.0.1:%d/"])
def test_call_time_refuses_other_schemes(api, provider, url):
    s = create_server(api, provider, refresh_token=provider.seed())
    sql("UPDATE mail_server SET token_url = :'u' WHERE id = :id", u=url % provider.port,
        id=s["id"])
    body = problem(refresh(api, s["id"]), 502, "destination-refused")
    assert body["error_code"] == "destination_refused"
    assert provider.stats()["token_calls"] == 0


def test_a_name_is_checked_on_its_addresses(api, provider):
    # localhost resolves to ::1 (refused) and 127.0.0.1 (admitted): the
    # admitted one is used.
    s = create_server(api, provider, refresh_token=provider.seed(),
                      token_url="https://localhost:%d/token" % provider.port)
    r = refresh(api, s["id"])
    assert r.status_code == 200, describe(r)
    assert provider.stats()["token_calls"] == 1


def test_authorize_refuses_a_refused_literal(api, provider):
    s = create_server(api, provider)
    sql("UPDATE mail_server SET authorization_url = 'https://169.254.169.254/authorize'"
        " WHERE id = :id", id=s["id"])
    r = call(api, "POST", "/mail-servers/%d/oauth2/authorize" % s["id"])
    body = problem(r, 502, "destination-refused")
    assert body["error_code"] == "destination_refused"
    assert provider.stats()["authorize_calls"] == 0


def test_the_callback_reports_a_refused_token_url(api, provider):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    # as if the server had this token URL (refused when saved) since before
    # the flow started: the flow keeps the token URL it started with
    u = "https://[::ffff:127.0.0.2]:%d/token" % provider.port
    sql("UPDATE mail_server SET token_url = :'u' WHERE id = :id", u=u, id=s["id"])
    sql("UPDATE oauth2_state SET token_url = :'u' WHERE server_id = :id", u=u, id=s["id"])
    out = console_outcome(follow_to_callback(location))
    assert out == {"mail_server_id": str(s["id"]), "oauth2": "error",
                   "error": "destination_refused"}
    assert provider.stats()["token_calls"] == 0
    assert api.fetch(s["id"])["oauth2_last_error"]["code"] == "destination_refused"
