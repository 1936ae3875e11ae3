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
from oauth2_support import (BROWSER, CA_DIR, authorize, browser, browser_authorize, call,
                            callback, connect, console_outcome, create_server,
                            follow_to_callback, provider, sql)
from oauth_provider import StandIn

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


# ---------------------------------------------------------------- the browser binding

COOKIE_PREFIX = "mailsrv_oauth2_"
INVALID_STATE = "invalid_state"


def flow_cookie(resp):
    """The flow's cookie of an authorize answer: (name, value, attributes)."""
    headers = resp.raw.headers.getlist("Set-Cookie")
    assert len(headers) == 1, headers
    first, *attrs = [x.strip() for x in headers[0].split(";")]
    name, _, value = first.partition("=")
    return name, value, {a.partition("=")[0].lower(): a.partition("=")[2] for a in attrs}


def other_browser():
    """A browser that did not start the flow (no cookie at all)."""
    return mailapi.Client(token=None)


def assert_untouched(api, before, provider):
    rep = api.fetch(before["id"])
    assert rep == before, (rep, before)
    assert provider.stats()["token_calls"] == 0


def test_authorize_binds_the_flow_to_the_browser(api, provider):
    s = create_server(api, provider)
    r = api.post("/mail-servers/%d/oauth2/authorize" % s["id"])
    assert r.status_code == 200, describe(r)
    name, value, attrs = flow_cookie(r)
    assert name.startswith(COOKIE_PREFIX) and re.fullmatch(r"[A-Za-z0-9_-]+", name)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    assert attrs["path"] == "/api/v1/oauth2/callback"
    assert "httponly" in attrs and attrs["samesite"] == "Lax"
    assert attrs["max-age"] == "600"
    assert "secure" not in attrs  # MAILSRV_PUBLIC_URL of the test stack is http
    assert "domain" not in attrs
    # the database keeps only the value's SHA-256, with the state
    state = query_of(r.json()["authorization_url"])["state"]
    rows = sql("SELECT encode(browser_hash, 'hex') FROM oauth2_state"
               " WHERE state_hash = sha256(convert_to(:'st', 'UTF8'))", st=state)
    assert rows == [[hashlib.sha256(value.encode()).hexdigest()]]
    assert value not in str(sql("SELECT row_to_json(s)::text FROM oauth2_state s"))
    assert value not in r.text and "no-store" in r.headers["Cache-Control"]


def test_a_stolen_authorization_url_finished_elsewhere_stores_nothing(api, provider):
    """Somebody who sees the authorization URL signs in at the provider as
    themselves and finishes the flow in their own browser: refused before any
    call, nothing stored, and the administrator's own flow still completes."""
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    before = api.fetch(s["id"])
    out = console_outcome(follow_to_callback(location, other_browser()))
    assert out == {"mail_server_id": str(s["id"]), "oauth2": "error", "error": INVALID_STATE}
    assert_untouched(api, before, provider)
    # the state is not spent: the browser that started the flow finishes it
    assert console_outcome(follow_to_callback(location))["oauth2"] == "connected"


def test_a_wrong_cookie_is_refused(api, provider):
    s = create_server(api, provider)
    url_a = authorize(api, s["id"])
    (name_a,) = [c.name for c in BROWSER]
    url_b = authorize(api, s["id"])
    (name_b,) = [c.name for c in BROWSER if c.name != name_a]
    value_b = BROWSER.get(name_b)
    before = api.fetch(s["id"])
    location = browser_authorize(provider, url_a)
    for cookie in (
            "%s=%s" % (name_a, "A" * 43),                    # a guessed value
            "%s=%s" % (name_a, value_b),                     # another flow's value
            "%s=%s" % (name_b, value_b),                     # another flow's cookie
            "%s=%s%s" % (name_a, BROWSER.get(name_a), "x"),  # one character more
            "%s=" % name_a, name_a, "; ;=;", "x" * 9000):
        c = other_browser()
        out = console_outcome(follow_to_callback(location, _with_cookie(c, cookie)))
        assert out["error"] == INVALID_STATE, cookie
    assert_untouched(api, before, provider)
    assert console_outcome(follow_to_callback(location))["oauth2"] == "connected"
    assert url_b  # its flow is still open


def _with_cookie(client, cookie):
    client.session.headers["Cookie"] = cookie
    return client


def test_two_flows_in_one_browser_both_complete(api, provider):
    a = create_server(api, provider)
    b = create_server(api, provider)
    loc_a1 = browser_authorize(provider, authorize(api, a["id"]))
    loc_b = browser_authorize(provider, authorize(api, b["id"]))
    loc_a2 = browser_authorize(provider, authorize(api, a["id"]))
    assert len(BROWSER) == 3
    assert console_outcome(follow_to_callback(loc_a2))["oauth2"] == "connected"
    assert console_outcome(follow_to_callback(loc_b))["oauth2"] == "connected"
    # the first flow of A is still valid (its own code, its own verifier)
    assert console_outcome(follow_to_callback(loc_a1))["oauth2"] == "connected"
    assert provider.stats()["pkce_verified"] == 3


def test_the_callback_drops_its_cookie(api, provider):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    (name,) = [c.name for c in BROWSER]
    r = follow_to_callback(location)
    assert console_outcome(r)["oauth2"] == "connected"
    (header,) = r.raw.headers.getlist("Set-Cookie")
    assert header.startswith(name + "=;")
    assert "Max-Age=0" in header and "Path=/api/v1/oauth2/callback" in header


# ---------------------------------------------------------------- settings of the flow


def test_the_code_never_goes_to_a_token_url_set_after_authorize(api, provider):
    """An edit of token_url between authorize and the callback cannot send
    the code (or the secret entered for the new URL) to the new URL, nor the
    new secret to the old one: the flow ends without any call."""
    other = StandIn(CA_DIR, mailapi.SECRET_PREFIX)
    try:
        other.reset(provider.client_id, provider.client_secret)
        s = create_server(api, provider)
        location = browser_authorize(provider, authorize(api, s["id"]))
        api.update(s["id"], {"token_url": other.url("/token"),
                             "secret_key": provider.client_secret})
        before = api.fetch(s["id"])
        out = console_outcome(follow_to_callback(location))
        assert out == {"mail_server_id": str(s["id"]), "oauth2": "error",
                       "error": INVALID_STATE}
        assert other.stats()["token_calls"] == 0
        assert_untouched(api, before, provider)
    finally:
        other.stop()


@pytest.mark.parametrize("change", [
    {"client_id": "another-client"},
    {"client_id": "another-client", "secret_key": "sk-for-the-other-client"},
    {"token_url": "https://127.0.0.1:9/token"},
])
def test_a_flow_ends_when_its_destination_changed(api, provider, change):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    api.update(s["id"], change)
    before = api.fetch(s["id"])
    out = console_outcome(follow_to_callback(location))
    assert out["error"] == INVALID_STATE
    assert_untouched(api, before, provider)


def test_other_edits_leave_the_flow_alone(api, provider):
    s = create_server(api, provider)
    location = browser_authorize(provider, authorize(api, s["id"]))
    api.update(s["id"], {"name": mailapi.unique_name("renamed"), "port": 465})
    assert console_outcome(follow_to_callback(location))["oauth2"] == "connected"
