"""Connection tests of `oauth2` servers: XOAUTH2 as sender_email with the
stored access token, checked by the SMTP test server against the stand-in
provider's tokens (oauth2_support.py, smtp_server.py); refresh before login
when the token expires soon; a hand-entered token refused, refreshed once
and tried once more; a refresh that fails."""

import time

import requests

import mailapi
from mailapi import parse_ts, secret
from oauth2_support import connect, console_outcome, provider
from smtp_support import (admin, failed, log_holds, oauth_for, ok, result, run_saved,
                          run_unsaved, smtp, unsaved, xoauth2_forms)
from smtp_server import provider_check

assert provider and smtp  # fixtures, used by name

RECIPIENT = "alice@example.org"

# A refresh within this long after another attempt may take that attempt's
# outcome (see test_oauth2_refresh.py): tests of a refresh right after the
# authorization flow wait this long first.
COALESCE_S = 2.2


def xoauth2_server(smtp, p, **kw):
    kw.setdefault("tls", "starttls")
    return smtp(oauth=provider_check(p), **kw)


def connected(api, p, srv, **over):
    """An oauth2 server pointing at srv, connected through the stand-in's
    authorization flow (its access token: serial 1)."""
    s = api.create(oauth_for(srv, p, **over))
    assert console_outcome(connect(api, p, s["id"]))["oauth2"] == "connected"
    rep = api.fetch(s["id"])
    assert rep["access_token_set"] and rep["access_token_expires_at"] is not None
    return rep


def token_from_provider(p, refresh_token):
    """An access token fetched from the stand-in directly (as if entered by
    hand after getting it elsewhere), and the rotated refresh token."""
    r = requests.post(p.url("/token"), verify=p.ca, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": p.client_id, "client_secret": p.client_secret})
    assert r.status_code == 200, "the stand-in answered %d" % r.status_code
    body = r.json()
    return mailapi.register_token(body["access_token"]), body["refresh_token"]


def test_xoauth2_with_the_stored_token(api, provider, smtp):
    srv = xoauth2_server(smtp, provider)
    s = connected(api, provider, srv)
    calls = provider.stats()["token_calls"]
    res = result(run_saved(api, s["id"], RECIPIENT))
    ok(res, "data")
    auths = srv.auths()
    assert [(a["mechanism"], a["user"], a["ok"], a["token_serial"]) for a in auths] == \
        [("XOAUTH2", s["sender_email"], True, 1)]
    assert auths[0]["tls"] is True
    # a fresh token: no refresh
    assert provider.stats()["token_calls"] == calls
    [m] = srv.messages()
    assert m["mail_from"] == s["sender_email"] and m["rcpt_tos"] == [RECIPIENT]


def test_xoauth2_login_only_in_each_tls_mode(api, provider, smtp):
    for tls in ("starttls", "starttls_required", "implicit"):
        srv = xoauth2_server(smtp, provider, tls=tls, port=465 if tls == "implicit" else 0)
        s = connected(api, provider, srv, name=mailapi.unique_name("oauth " + tls))
        ok(result(run_saved(api, s["id"])), "auth")
        srv.wait_closed()
        assert [a["ok"] for a in srv.auths()] == [True], tls
        assert not {"MAIL", "RCPT", "DATA"} & set(srv.verbs()) and srv.verbs()[-1] == "QUIT"
        srv.stop()


def test_xoauth2_even_when_oauthbearer_is_offered(api, provider, smtp):
    """libcurl prefers OAUTHBEARER when a server offers both: the service
    asks for XOAUTH2 (what Microsoft 365 documents)."""
    srv = xoauth2_server(smtp, provider, mechanisms=["XOAUTH2", "OAUTHBEARER"])
    s = connected(api, provider, srv)
    ok(result(run_saved(api, s["id"])), "auth")
    assert [(a["mechanism"], a["ok"]) for a in srv.auths()] == [("XOAUTH2", True)]


def test_a_token_expiring_soon_is_refreshed_before_login(api, provider, smtp):
    """Expiring within five minutes: one refresh, then XOAUTH2 with the new
    token (the old one is revoked at the provider, so using it would fail)."""
    provider.mode("normal", expires_in=120)
    srv = xoauth2_server(smtp, provider)
    s = connected(api, provider, srv)
    assert parse_ts(s["access_token_expires_at"]).timestamp() < time.time() + 300
    time.sleep(COALESCE_S)
    provider.revoke_access()
    before = provider.stats()
    provider.mode("normal", expires_in=3600)
    res = result(run_saved(api, s["id"]))
    ok(res, "auth")
    after = provider.stats()
    assert after["refresh_calls"] == before["refresh_calls"] + 1
    assert after["access_issued"] == before["access_issued"] + 1
    assert [(a["ok"], a["token_serial"]) for a in srv.auths()] == \
        [(True, after["access_issued"])]
    rep = api.fetch(s["id"])
    assert parse_ts(rep["access_token_expires_at"]).timestamp() > time.time() + 3000
    assert rep["oauth2_status"] == "connected"


def test_an_expired_token_is_refreshed_before_login(api, provider, smtp):
    provider.mode("normal", expires_in=1)
    srv = xoauth2_server(smtp, provider)
    s = connected(api, provider, srv)
    time.sleep(COALESCE_S)
    provider.mode("normal", expires_in=3600)
    before = provider.stats()
    ok(result(run_saved(api, s["id"], RECIPIENT)), "data")
    after = provider.stats()
    assert after["refresh_calls"] == before["refresh_calls"] + 1
    assert [(a["ok"], a["token_serial"]) for a in srv.auths()] == \
        [(True, after["access_issued"])]


def test_a_hand_entered_token_is_used_as_it_is(api, provider, smtp):
    """No known expiry: no refresh before login; accepted, so none after."""
    at, rt = token_from_provider(provider, provider.seed())
    srv = xoauth2_server(smtp, provider)
    s = api.create(oauth_for(srv, provider, access_token=at, refresh_token=rt))
    assert s["access_token_expires_at"] is None
    before = provider.stats()["token_calls"]
    ok(result(run_saved(api, s["id"])), "auth")
    assert provider.stats()["token_calls"] == before
    assert [(a["ok"], a["token_serial"]) for a in srv.auths()] == [(True, 1)]


def test_a_refused_hand_entered_token_is_refreshed_and_tried_once_more(api, provider, smtp):
    rt = provider.seed()
    srv = xoauth2_server(smtp, provider)
    s = api.create(oauth_for(srv, provider, access_token=secret("at"), refresh_token=rt))
    res = result(run_saved(api, s["id"], RECIPIENT))
    ok(res, "data")
    st = provider.stats()
    assert st["refresh_calls"] == 1 and st["access_issued"] == 1
    assert [(a["user"], a["ok"], a["token_serial"]) for a in srv.auths()] == \
        [(s["sender_email"], False, None), (s["sender_email"], True, 1)]
    assert len(srv.messages()) == 1
    rep = api.fetch(s["id"])
    assert rep["access_token_expires_at"] is not None and rep["oauth2_status"] == "connected"


def test_a_refused_token_is_retried_only_once(api, provider, smtp):
    """The refreshed token refused too (the SMTP server takes none): two
    logins in all, one refresh, auth_failed."""
    rt = provider.seed()
    srv = smtp(tls="starttls", oauth=lambda token: {"active": False, "serial": None})
    s = api.create(oauth_for(srv, provider, access_token=secret("at"), refresh_token=rt))
    res = result(run_saved(api, s["id"]))
    failed(res, "auth_failed", stage="auth", reply_code=535)
    assert provider.stats()["refresh_calls"] == 1
    assert [a["ok"] for a in srv.auths()] == [False, False]


def test_a_refused_token_without_refresh_token(api, provider, smtp):
    srv = xoauth2_server(smtp, provider)
    s = api.create(oauth_for(srv, provider, access_token=secret("at")))
    res = result(run_saved(api, s["id"]))
    failed(res, "auth_failed", stage="auth", reply_code=535)
    assert provider.stats()["token_calls"] == 0
    assert [a["ok"] for a in srv.auths()] == [False]


def test_a_refresh_that_fails(api, provider, smtp):
    rt = provider.seed()
    srv = xoauth2_server(smtp, provider)
    s = api.create(oauth_for(srv, provider, access_token=secret("at"), refresh_token=rt))
    provider.mode("invalid_grant")
    res = result(run_saved(api, s["id"]))
    failed(res, "oauth2_refresh_failed")
    assert provider.stats()["refresh_calls"] == 1
    assert [a["ok"] for a in srv.auths()] == [False]
    assert api.fetch(s["id"])["oauth2_status"] == "reauthorization_required"


def test_a_refresh_before_login_that_fails(api, provider, smtp):
    """The token has expired and the provider fails: no login is tried."""
    provider.mode("normal", expires_in=1)
    srv = xoauth2_server(smtp, provider)
    s = connected(api, provider, srv)
    time.sleep(COALESCE_S)
    provider.mode("server_error")
    res = result(run_saved(api, s["id"]))
    failed(res, "oauth2_refresh_failed")
    assert srv.auths() == []


def test_unsaved_settings_use_the_token_of_the_body(provider, smtp):
    at, _ = token_from_provider(provider, provider.seed())
    srv = xoauth2_server(smtp, provider)
    client = admin()
    body = unsaved(oauth_for(srv, provider, access_token=at), recipient=RECIPIENT)
    res = result(run_unsaved(client, body))
    ok(res, "data")
    assert [(a["user"], a["ok"], a["token_serial"]) for a in srv.auths()] == \
        [(body["sender_email"], True, 1)]
    st = provider.stats()
    assert st["refresh_calls"] == 1 and st["token_calls"] == 1  # only ours


def test_no_token_in_results_or_logs(api, provider, smtp):
    """The login happened (the server says so), and neither the result nor
    any log line holds the token or the XOAUTH2 exchange."""
    at, rt = token_from_provider(provider, provider.seed())
    srv = xoauth2_server(smtp, provider)
    s = api.create(oauth_for(srv, provider, access_token=at, refresh_token=rt))
    r = run_saved(api, s["id"])
    ok(result(r), "auth")
    assert [a["ok"] for a in srv.auths()] == [True]
    forms = xoauth2_forms(s["sender_email"], at)
    assert not any(f.encode() in r.content for f in forms)
    time.sleep(0.5)  # log lines are written as the request ends
    assert not log_holds(forms), "a log file holds a token or the XOAUTH2 exchange"
