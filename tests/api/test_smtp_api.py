"""The connection-test endpoints as an API: `last_test` (a test is not an
edit), the rate limits (per saved server, per administrator for unsaved
settings, shared by every worker process), request validation, unknown
ids, methods, and the rule that unsaved settings never borrow a saved
server's secret. See smtp_support.py."""

import concurrent.futures
import datetime
import re

import pytest
import requests

import mailapi
from mailapi import describe, parse_ts, problem, secret, validation
from smtp_support import (TEST_RATE, admin, basic_for, failed, login_server, ok, result,
                          run_saved, run_unsaved, smtp, unsaved)

assert smtp  # a fixture, used by name


def now():
    return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------- last_test


def test_last_test_is_kept_without_a_new_version(api, smtp):
    srv, pw = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=pw))
    assert s["last_test"] is None
    r0 = api.get("/mail-servers/%d" % s["id"])
    assert r0.json()["last_test"] is None

    t0 = now()
    ok(result(run_saved(api, s["id"])), "auth")
    r1 = api.get("/mail-servers/%d" % s["id"])
    rep = r1.json()
    lt = rep["last_test"]
    assert lt["ok"] is True and lt["stage"] == "auth" and lt["error_code"] is None
    assert t0 - datetime.timedelta(seconds=2) <= parse_ts(lt["at"]) <= now() + \
        datetime.timedelta(seconds=2)
    # a test is not an edit
    assert rep["version"] == s["version"] and rep["updated_at"] == s["updated_at"]
    assert r1.headers["ETag"] == r0.headers["ETag"]
    assert mailapi.same_except(rep, s, "last_test")

    # a failure replaces it
    api.update(s["id"], {"password": secret("pw")})
    v = api.fetch(s["id"])["version"]
    failed(result(run_saved(api, s["id"])), "auth_failed")
    rep = api.fetch(s["id"])
    assert rep["last_test"]["ok"] is False
    assert rep["last_test"]["stage"] == "auth"
    assert rep["last_test"]["error_code"] == "auth_failed"
    assert parse_ts(rep["last_test"]["at"]) >= parse_ts(lt["at"])
    assert rep["version"] == v
    # and shows in the list
    [item] = [x for x in api.list_all() if x["id"] == s["id"]]
    assert item["last_test"] == rep["last_test"]


def test_last_test_after_a_test_with_a_message(api, smtp):
    srv, pw = login_server(smtp, "implicit")
    s = api.create(basic_for(srv, password=pw))
    ok(result(run_saved(api, s["id"], "bob@example.org")), "data")
    lt = api.fetch(s["id"])["last_test"]
    assert (lt["ok"], lt["stage"], lt["error_code"]) == (True, "data", None)


def test_last_test_is_read_only(api, smtp):
    srv, pw = login_server(smtp, "starttls")
    fake = {"at": "2020-01-01T00:00:00Z", "ok": True, "stage": "data", "error_code": None}
    s = api.create(dict(basic_for(srv, password=pw), last_test=fake))
    assert s["last_test"] is None
    rep = api.update(s["id"], {"last_test": fake})
    assert rep["last_test"] is None
    body = api.fetch(s["id"])
    body["last_test"] = fake
    body["password"] = pw
    rep = api.replace(s["id"], {k: v for k, v in body.items()})
    assert rep["last_test"] is None


def test_unsaved_settings_keep_no_last_test(api, smtp):
    srv, pw = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=pw))
    ok(result(run_unsaved(admin(), basic_for(srv, password=pw))), "auth")
    assert api.fetch(s["id"])["last_test"] is None


# ---------------------------------------------------------------- secrets


def test_unsaved_settings_never_borrow_a_saved_password(api, smtp):
    """Same host, port and user name as a saved server, no password (and the
    saved server's id and flags sent back too): the saved password is not
    sent, so no login succeeds."""
    srv, pw = login_server(smtp, "starttls", auth_required=True)
    s = api.create(basic_for(srv, password=pw))
    client = admin()
    body = basic_for(srv, password=None, name=s["name"])
    body.pop("password")
    body.update({"id": s["id"], "password_set": True, "version": s["version"]})
    r = run_unsaved(client, unsaved(body, recipient="carol@example.org"))
    res = result(r)
    assert res["ok"] is False, mailapi.redact(repr(res))
    assert not any(a["ok"] for a in srv.auths()), "the saved password was sent"
    assert srv.messages() == []
    # with the password in the body it works: the server takes it
    ok(result(run_unsaved(client, basic_for(srv, password=pw))), "auth")
    assert [a["ok"] for a in srv.auths()][-1] is True


def test_a_saved_password_goes_only_where_it_was_entered(api, smtp):
    """Moving a saved server to another port clears its password (nothing
    to send to the new destination)."""
    srv, pw = login_server(smtp, "starttls", auth_required=True)
    other, _ = login_server(smtp, "starttls")
    other.users = srv.users  # the same user and password would be accepted
    s = api.create(basic_for(srv, password=pw))
    rep = api.update(s["id"], {"port": other.port})
    assert rep["password_set"] is False
    run_saved(api, s["id"])
    assert not any(a["ok"] for a in other.auths())


# ---------------------------------------------------------------- rate limit


def rate_limited(resp):
    body = problem(resp, 429, "rate-limited")
    ra = resp.headers.get("Retry-After", "")
    assert ra.isdigit() and 1 <= int(ra) <= 60, describe(resp)
    return body


def plain_server(smtp):
    return smtp(tls="none")


def test_rate_limit_per_saved_server(api, smtp):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    other = api.create(basic_for(srv, username=None, password=None))
    for _ in range(TEST_RATE):
        ok(result(run_saved(api, s["id"])), "ehlo")
    lt = api.fetch(s["id"])["last_test"]
    conns = len(srv.connections())
    rate_limited(run_saved(api, s["id"]))
    # nothing was tried, nothing recorded
    assert len(srv.connections()) == conns
    assert api.fetch(s["id"])["last_test"] == lt
    # per server: another one is not limited, nor are other requests
    ok(result(run_saved(api, other["id"])), "ehlo")
    assert api.get("/mail-servers/%d" % s["id"]).status_code == 200
    # nor another administrator's unsaved settings
    ok(result(run_unsaved(admin(), basic_for(srv, username=None, password=None))), "ehlo")


def test_rate_limit_per_administrator_for_unsaved_settings(smtp):
    srv = plain_server(smtp)
    alice, bob = admin("alice"), admin("bob")
    body = basic_for(srv, username=None, password=None)
    for _ in range(TEST_RATE):
        ok(result(run_unsaved(alice, body)), "ehlo")
    conns = len(srv.connections())
    rate_limited(run_unsaved(alice, body))
    assert len(srv.connections()) == conns
    ok(result(run_unsaved(bob, body)), "ehlo")


def serving_pids(responses):
    """The worker process ids that served these responses, from the
    service's log (each line names its process and request id)."""
    ids = {r.headers.get("X-Request-Id") for r in responses}
    pids = set()
    log = mailapi.LOG_DIR / "mailsrv.log"
    for line in log.read_text("utf-8", "replace").splitlines()[-5000:]:
        m = re.match(r"\S+ \[(\d+)\] request ([0-9a-f]+) ", line)
        if m and m.group(2) in ids:
            pids.add(m.group(1))
    return pids


def in_waves(n, width, call):
    """n calls, `width` at a time, each on its own connection (so that
    nginx may hand them to any worker process), never more at once than a
    process runs tests (no 503 for being busy)."""
    answers = []
    with concurrent.futures.ThreadPoolExecutor(width) as pool:
        for start in range(0, n, width):
            answers += list(pool.map(lambda _: call(), range(min(width, n - start))))
    return answers


def fresh(client):
    return mailapi.Client(token=client.token, session=requests.Session())


def test_rate_limit_is_shared_by_every_worker_process(api, smtp):
    """Tests of one server from many connections, served by several worker
    processes: exactly the rate gets through in all."""
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    n = TEST_RATE * 3
    answers = in_waves(n, 2, lambda: run_saved(fresh(api), s["id"]))
    codes = [r.status_code for r in answers]
    assert len(serving_pids(answers)) >= 2, "one worker process served every request"
    assert codes.count(200) == TEST_RATE and codes.count(429) == n - TEST_RATE, codes
    for r in answers:
        if r.status_code == 429:
            rate_limited(r)
        else:
            ok(result(r), "ehlo")
    assert len(srv.connections()) == TEST_RATE


def test_unsaved_rate_limit_is_shared_by_every_worker_process(smtp):
    srv = plain_server(smtp)
    client = admin()
    body = basic_for(srv, username=None, password=None)
    n = TEST_RATE * 3
    answers = in_waves(n, 2, lambda: run_unsaved(fresh(client), body))
    codes = [r.status_code for r in answers]
    assert len(serving_pids(answers)) >= 2, "one worker process served every request"
    assert codes.count(200) == TEST_RATE and codes.count(429) == n - TEST_RATE, codes


def test_a_burst_is_counted_once_per_request(api, smtp):
    """Many at once: some may be refused as busy (503, the per-process cap
    on running tests), but never more than the rate get through, and every
    answer is one of 200, 429, 503 with Retry-After."""
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    n = TEST_RATE * 2 + 2
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda _: run_saved(fresh(api), s["id"]), range(n)))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 429, 503}, codes
    assert 1 <= codes.count(200) <= TEST_RATE, codes
    assert codes.count(429) >= n - TEST_RATE - codes.count(503), codes
    for r in answers:
        if r.status_code == 503:
            body = problem(r, 503, "service-busy")
            assert body["detail"]
            assert r.headers.get("Retry-After", "").isdigit()
    assert len(srv.connections()) == codes.count(200)


# ---------------------------------------------------------------- requests


BAD_RECIPIENTS = ["", "not-an-address", "two words@example.org", "a@b@c",
                  "x@example.org\r\nRCPT TO:<evil@example.org>", "x\u0000@example.org",
                  "x@example.org\n", "a" * 250 + "@example.org", 42, True, ["a@b.example"],
                  {"addr": "a@b.example"}]


@pytest.mark.parametrize("bad", BAD_RECIPIENTS, ids=range(len(BAD_RECIPIENTS)))
def test_a_bad_recipient(api, smtp, bad):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    validation(run_saved(api, s["id"], body={"recipient": bad}), "recipient")
    validation(run_unsaved(admin(), unsaved(basic_for(srv, username=None, password=None),
                                            recipient=bad)), "recipient")
    assert srv.connections() == []
    assert api.fetch(s["id"])["last_test"] is None


def test_null_recipient_means_none(api, smtp):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    r = run_saved(api, s["id"], body={"recipient": None})
    if r.status_code == 200:
        ok(result(r), "ehlo")
        assert srv.messages() == []
    else:
        validation(r, "recipient")


def test_unknown_fields_of_the_saved_test(api, smtp):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    validation(run_saved(api, s["id"], body={"recipient": "a@b.example", "port": 25}), "port")
    validation(run_saved(api, s["id"], body={"password": secret("pw")}), "password")
    assert srv.connections() == []


def test_unsaved_settings_are_validated_as_on_create(smtp):
    srv = plain_server(smtp)
    client = admin()
    body = basic_for(srv, username=None, password=None)
    validation(run_unsaved(client, dict(body, port=0)), "port")
    validation(run_unsaved(client, dict(body, server="bad host!")), "server")
    validation(run_unsaved(client, dict(body, sender_email="no at sign")), "sender_email")
    validation(run_unsaved(client, dict(body, unknown=1)), "unknown")
    b = dict(body)
    del b["server"]
    validation(run_unsaved(client, b), "server")
    validation(run_unsaved(client, dict(body, auth_type="oauth2")), "client_id",
               "authorization_url", "token_url", "secret_key", exact=False)
    assert srv.connections() == []


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b'{"recipient": "a@b.example", '
                                  b'"recipient": "c@d.example"}', b"null"],
                         ids=["empty", "array", "truncated", "duplicate", "null"])
def test_bodies_that_are_not_a_json_object(api, smtp, data):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    if data:  # no body at all is {} for a saved server's test (below)
        r = api.request("POST", "/mail-servers/%d/test" % s["id"], data=data,
                        content_type="application/json")
        problem(r, 400, "bad-request")
    r = api.request("POST", "/mail-servers/test", data=data or b"", content_type="application/json")
    problem(r, 400, "bad-request")


@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_saved_server_test_without_a_body(api, smtp, content_type):
    """`curl -X POST .../test` with no body tests the server as `{}` would."""
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    r = api.request("POST", "/mail-servers/%d/test" % s["id"], data=b"",
                    content_type=content_type)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    assert "MAIL" not in srv.verbs()


def test_another_media_type(api, smtp):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    r = api.request("POST", "/mail-servers/%d/test" % s["id"], data=b"recipient=a@b.example",
                    content_type="application/x-www-form-urlencoded")
    problem(r, 415, "unsupported-media-type")
    r = api.request("POST", "/mail-servers/test", data=b"<x/>", content_type="text/xml")
    problem(r, 415, "unsupported-media-type")
    assert srv.connections() == []


@pytest.mark.parametrize("sid", ["999999", "0", "-1", "abc", "1.5", "99999999999999999999"])
def test_an_unknown_id(api, sid):
    r = api.post("/mail-servers/%s/test" % sid, {})
    problem(r, 404, "not-found")


def test_a_deleted_server(api, smtp):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    assert api.delete("/mail-servers/%d" % s["id"]).status_code == 204
    problem(api.post("/mail-servers/%d/test" % s["id"], {}), 404, "not-found")
    assert srv.connections() == []


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods(api, smtp, method):
    srv = plain_server(smtp)
    s = api.create(basic_for(srv, username=None, password=None))
    for path in ("/mail-servers/%d/test" % s["id"], "/mail-servers/test"):
        kw = {} if method in ("GET", "DELETE") else {"json_body": {}}
        r = api.request(method, path, **kw)
        problem(r, 405, "method-not-allowed")
        allow = {m.strip().upper() for m in r.headers["Allow"].split(",")}
        assert "POST" in allow and method not in allow, r.headers["Allow"]
    assert srv.connections() == []


def test_needs_an_administrator(anon, client_for, smtp):
    srv = plain_server(smtp)
    body = basic_for(srv, username=None, password=None)
    r = anon.post("/mail-servers/test", body)
    problem(r, 401, "unauthorized")
    reader = client_for(mailapi.make_jwt(mailapi.claims(sub="reader", roles=["auditor"])))
    problem(reader.post("/mail-servers/test", body), 403, "forbidden")
    problem(reader.post("/mail-servers/1/test", {}), 403, "forbidden")
    assert srv.connections() == []


def test_a_test_changes_nothing_else(api, smtp):
    srv, pw = login_server(smtp, "starttls")
    s = api.create(basic_for(srv, password=pw, is_default=True))
    before = api.snapshot()
    ok(result(run_saved(api, s["id"], "dave@example.org")), "data")
    after = api.snapshot()
    assert set(after) == set(before)
    for sid in before:
        assert mailapi.same_except(after[sid], before[sid], "last_test")
