"""The OAuth 2.0 authorization-code flow (docs/api.md#oauth-20, docs/oauth2.md):
authorize, the browser at the stand-in provider, the callback,
the state's rules and PKCE. See oauth2_support.py for the stand-in."""

import hashlib
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

import mailapi
from mailapi import BASE_URL, basic_body, describe, parse_ts, problem
from oauth2_support import (authorize, browser_authorize, call, callback, connect,
                            console_outcome, create_server, follow_to_callback, provider,
                            sql)

assert provider  # a fixture, used by name

CALLBACK = BASE_URL + "/api/v1/oauth2/callback"


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


# ---------------------------------------------------------------- authorize


def test_authorize_url_carries_every_parameter(api, provider):
    s = create_server(api, provider, scope="https://outlook.office.com/SMTP.Send offline_access")
    url = authorize(api, s["id"])
    u = urlsplit(url)
    assert "%s://%s%s" % (u.scheme, u.netloc, u.path) == provider.url("/authorize")
    q = query_of(url)
    assert q["response_type"] == "code"
    assert q["client_id"] == provider.client_id
    assert q["redirect_uri"] == CALLBACK
    assert q["scope"] == "https://outlook.office.com/SMTP.Send offline_access"
    assert q["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", q["code_challenge"])
    # at least 128 bits: 43 base64url characters are 256
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", q["state"])
    assert "access_type" not in q and "prompt" not in q
    # nothing secret in the URL
    assert mailapi.SECRET_PREFIX not in url


def test_authorize_states_and_challenges_are_fresh(api, provider):
    s = create_server(api, provider)
    q1, q2 = query_of(authorize(api, s["id"])), query_of(authorize(api, s["id"]))
    assert q1["state"] != q2["state"]
    assert q1["code_challenge"] != q2["code_challenge"]


def test_redirect_uri_ignores_request_headers(api, provider):
    s = create_server(api, provider)
    r = api.post("/mail-servers/%d/oauth2/authorize" % s["id"],
                 headers={"Host": "evil.example:4443", "X-Forwarded-Host": "evil.example",
                          "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example"})
    assert r.status_code == 200, describe(r)
    assert query_of(r.json()["authorization_url"])["redirect_uri"] == CALLBACK


def test_authorize_for_google_asks_for_a_refresh_token(api, provider):
    s = create_server(api, provider,
                      authorization_url="https://accounts.google.com/o/oauth2/v2/auth",
                      token_url="https://oauth2.googleapis.com/token",
                      scope="https://mail.google.com/")
    q = query_of(authorize(api, s["id"]))
    assert q["access_type"] == "offline" and q["prompt"] == "consent"
    assert q["scope"] == "https://mail.google.com/"


def test_authorize_keeps_the_configured_query(api, provider):
    s = create_server(api, provider, authorization_url=provider.url("/authorize?tenant=x"))
    url = authorize(api, s["id"])
    assert "#" not in url
    q = query_of(url)
    assert q["tenant"] == "x" and q["response_type"] == "code"


def test_authorize_needs_an_oauth2_server(api, provider):
    s = api.create(basic_body())
    r = api.post("/mail-servers/%d/oauth2/authorize" % s["id"])
    assert problem(r, 409, "conflict")["error_code"] == "not_oauth2"


def test_authorize_needs_a_client_secret(api, provider):
    s = create_server(api, provider)
    # a new token_url clears the stored secret_key (docs/api.md#secrets)
    api.update(s["id"], {"token_url": provider.url("/token?v=2")})
    r = api.post("/mail-servers/%d/oauth2/authorize" % s["id"])
    assert problem(r, 409, "conflict")["error_code"] == "no_client_secret"


def test_authorize_and_refresh_of_unknown_servers(api, provider):
    for path in ("/mail-servers/999999/oauth2/authorize", "/mail-servers/999999/oauth2/refresh",
                 "/mail-servers/0/oauth2/authorize", "/mail-servers/abc/oauth2/refresh",
                 "/mail-servers/default/oauth2/authorize"):
        problem(api.post(path), 404, "not-found")


def test_authorize_takes_no_body(api, provider):
    s = create_server(api, provider)
    r = call(api, "POST", "/mail-servers/%d/oauth2/authorize" % s["id"], data=b'{"x":1}',
             content_type="application/json")
    problem(r, 400, "bad-request")
    # an empty body, with or without a media type, is fine
    r = call(api, "POST", "/mail-servers/%d/oauth2/authorize" % s["id"], data=b"",
             content_type="application/json")
    assert r.status_code == 200, describe(r)


def test_authorize_needs_a_token(anon, client_for, provider, api):
    s = create_server(api, provider)
    problem(anon.post("/mail-servers/%d/oauth2/authorize" % s["id"]), 401, "unauthorized")
    reader = client_for(mailapi.mint_token(sub="reader", roles="auditor"))
    problem(reader.post("/mail-servers/%d/oauth2/refresh" % s["id"]), 403, "forbidden")


def test_methods(api, anon, provider):
    s = create_server(api, provider)
    r = api.get("/mail-servers/%d/oauth2/authorize" % s["id"])
    problem(r, 405, "method-not-allowed")
    assert r.headers["Allow"] == "POST"
    r = anon.post("/oauth2/callback")
    problem(r, 405, "method-not-allowed")
    assert r.headers["Allow"] == "GET, HEAD"


# ---------------------------------------------------------------- the flow


def test_full_flow_connects_the_server(api, provider):
    s = create_server(api, provider)
    before = time.time()
    url = authorize(api, s["id"])
    location = browser_authorize(provider, url)
    cb = follow_to_callback(location)
    out = console_outcome(cb)
    assert out == {"mail_server_id": str(s["id"]), "oauth2": "connected"}
    assert cb.headers["Location"].startswith(BASE_URL + "/?")  # MAILSRV_CONSOLE_URL
    assert not cb.content

    rep = api.fetch(s["id"])
    assert rep["oauth2_status"] == "connected"
    assert rep["access_token_set"] is True and rep["refresh_token_set"] is True
    assert rep["oauth2_last_error"] is None
    refreshed = parse_ts(rep["oauth2_last_refreshed_at"]).timestamp()
    expires = parse_ts(rep["access_token_expires_at"]).timestamp()
    assert before - 5 <= refreshed <= time.time() + 5
    assert abs(expires - refreshed - 3600) < 5
    assert rep["version"] == s["version"] + 1

    st = provider.stats()
    assert st["code_calls"] == 1 and st["pkce_verified"] == 1
    # form-encoded, confidential client, PKCE (RFC 6749 4.1.3, RFC 7636 4.5)
    assert st["last_token_fields"] == ["client_id", "client_secret", "code", "code_verifier",
                                       "grant_type", "redirect_uri"]


def test_the_logs_never_hold_code_or_state(api, provider):
    s = create_server(api, provider)
    url = authorize(api, s["id"])
    location = browser_authorize(provider, url)
    q = query_of(location)
    out = console_outcome(follow_to_callback(location))
    assert out["oauth2"] == "connected"
    time.sleep(0.5)  # let the log lines land
    logs = ""
    for f in mailapi.LOG_DIR.glob("*.log"):
        logs += f.read_text(errors="replace")
    assert q["state"] not in logs
    assert q["code"] not in logs


def test_a_missing_state_is_a_400_and_calls_nobody(api, provider):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    q = query_of(location)
    for params in ({"code": q["code"]}, {"code": q["code"], "state": ""}, {}):
        r = callback(params)
        problem(r, 400, "bad-request")
        assert r.headers.get("Referrer-Policy") == "no-referrer", describe(r)
        assert "no-store" in r.headers.get("Cache-Control", "")
    assert provider.stats()["token_calls"] == 0
    assert api.fetch(s["id"])["oauth2_status"] == "not_connected"


@pytest.mark.parametrize("state", ["A" * 43, "not-a-state", "A" * 42, "A" * 44, "a+b/c" * 9,
                                   "x" * 2000])
def test_an_unknown_state_is_a_400_and_calls_nobody(api, provider, state):
    s = create_server(api, provider)
    q = query_of(browser_authorize(provider, authorize(api, s["id"])))
    r = callback({"code": q["code"], "state": state})
    body = problem(r, 400, "bad-request")
    assert "state" in body["detail"]
    assert r.headers.get("Referrer-Policy") == "no-referrer", describe(r)
    assert provider.stats()["token_calls"] == 0


def test_a_reused_state_is_refused_without_a_call(api, provider):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    assert console_outcome(follow_to_callback(location))["oauth2"] == "connected"
    calls = provider.stats()["token_calls"]
    again = console_outcome(follow_to_callback(location))
    assert again == {"mail_server_id": str(s["id"]), "oauth2": "error", "error": "invalid_state"}
    assert provider.stats()["token_calls"] == calls
    assert api.fetch(s["id"])["oauth2_status"] == "connected"


def test_concurrent_callbacks_with_one_state_connect_once(api, provider):
    import threading
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    results, barrier = [], threading.Barrier(8)

    def go():
        barrier.wait()
        results.append(console_outcome(follow_to_callback(location)))

    threads = [threading.Thread(target=go) for _ in range(8)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    outcomes = sorted(r["oauth2"] + ":" + r.get("error", "") for r in results)
    assert outcomes == ["connected:"] + ["error:invalid_state"] * 7
    assert provider.stats()["code_calls"] == 1


def test_an_expired_state_is_refused_without_a_call(api, provider):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    # eleven minutes later (the state is valid ten)
    sql("UPDATE oauth2_state SET created_at = now() - interval '11 minutes',"
        " expires_at = now() - interval '1 minute' WHERE server_id = :id", id=s["id"])
    out = console_outcome(follow_to_callback(location))
    assert out == {"mail_server_id": str(s["id"]), "oauth2": "error", "error": "invalid_state"}
    assert provider.stats()["token_calls"] == 0
    assert api.fetch(s["id"])["oauth2_status"] == "not_connected"


def test_a_state_lives_ten_minutes_and_is_stored_hashed(api, provider):
    s = create_server(api, provider)
    state = query_of(authorize(api, s["id"]))["state"]
    rows = sql("SELECT encode(state_hash, 'hex'), actor,"
               " round(extract(epoch FROM expires_at - created_at)), used_at IS NULL,"
               " code_verifier_enc IS NOT NULL FROM oauth2_state WHERE server_id = :id",
               id=s["id"])
    assert rows == [[hashlib.sha256(state.encode()).hexdigest(), "api-tests", "600", "t", "t"]]
    dump = sql("SELECT row_to_json(s)::text FROM oauth2_state s")
    assert state not in str(dump)


def test_a_state_acts_on_its_own_server_only(api, provider):
    a = create_server(api, provider)
    b = create_server(api, provider)
    state_a = query_of(authorize(api, a["id"]))["state"]
    loc_b = browser_authorize(provider, authorize(api, b["id"]))
    code_b = query_of(loc_b)["code"]
    # B's code with A's state: the service acts on A, with A's PKCE verifier,
    # which the provider refuses for B's code.
    out = console_outcome(callback({"code": code_b, "state": state_a}))
    assert out == {"mail_server_id": str(a["id"]), "oauth2": "error", "error": "invalid_grant"}
    assert api.fetch(a["id"])["oauth2_status"] == "not_connected"
    assert api.fetch(a["id"])["oauth2_last_error"]["code"] == "invalid_grant"
    rep_b = api.fetch(b["id"])
    assert rep_b["oauth2_status"] == "not_connected" and rep_b["oauth2_last_error"] is None
    assert rep_b["version"] == b["version"]


def test_pkce_is_verified_by_the_provider(api, provider):
    s = create_server(api, provider)
    state1 = query_of(authorize(api, s["id"]))["state"]
    code2 = query_of(browser_authorize(provider, authorize(api, s["id"])))["code"]
    # a code obtained with another verifier (an intercepted code) fails
    out = console_outcome(callback({"code": code2, "state": state1}))
    assert out["oauth2"] == "error" and out["error"] == "invalid_grant"
    st = provider.stats()
    assert st["code_calls"] == 1 and st["pkce_verified"] == 0
    # the genuine pair works
    s2 = create_server(api, provider)
    assert console_outcome(connect(api, provider, s2["id"]))["oauth2"] == "connected"
    assert provider.stats()["pkce_verified"] == 1


def test_the_provider_says_access_denied(api, provider):
    s = create_server(api, provider)
    provider.mode("deny")
    out = console_outcome(connect(api, provider, s["id"]))
    assert out == {"mail_server_id": str(s["id"]), "oauth2": "error", "error": "access_denied"}
    assert provider.stats()["token_calls"] == 0
    rep = api.fetch(s["id"])
    assert rep["oauth2_status"] == "not_connected"
    assert rep["oauth2_last_error"]["code"] == "access_denied"
    assert "denied" in rep["oauth2_last_error"]["description"]


def test_a_callback_without_code(api, provider):
    s = create_server(api, provider)
    state = query_of(authorize(api, s["id"]))["state"]
    out = console_outcome(callback({"state": state}))
    assert out["oauth2"] == "error" and out["error"] == "invalid_request"
    assert provider.stats()["token_calls"] == 0


def test_a_deleted_server_takes_its_states_along(api, provider):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    assert api.delete("/mail-servers/%d" % s["id"]).status_code == 204
    problem(follow_to_callback(location), 400, "bad-request")
    assert provider.stats()["token_calls"] == 0


def test_extra_provider_parameters_are_ignored(api, provider):
    s = create_server(api, provider)
    q = query_of(browser_authorize(provider, authorize(api, s["id"])))
    q.update(session_state="abc", iss="https://login.example.com", scope="x y", authuser="0")
    assert console_outcome(callback(q))["oauth2"] == "connected"


@pytest.mark.parametrize("mode,error", [
    ("wrong_type", "token_exchange_failed"),
    ("invalid_json", "token_exchange_failed"),
    ("huge", "token_exchange_failed"),
    ("redirect", "token_exchange_failed"),
    ("server_error", "token_exchange_failed"),
    ("invalid_client", "invalid_client"),
    ("invalid_grant", "invalid_grant"),
])
def test_a_failed_code_exchange(api, provider, mode, error):
    s = create_server(api, provider)
    url = authorize(api, s["id"])
    location = browser_authorize(provider, url)
    provider.mode(mode)
    out = console_outcome(follow_to_callback(location))
    assert out == {"mail_server_id": str(s["id"]), "oauth2": "error", "error": error}
    rep = api.fetch(s["id"])
    assert rep["oauth2_status"] == "not_connected"
    assert rep["access_token_set"] is False
    assert rep["oauth2_last_error"]["code"] == (
        "invalid_response" if error == "token_exchange_failed" else error)
