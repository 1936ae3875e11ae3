"""No secret ever leaves the service (docs/api.md#secrets).

Runs last (file name): every secret the suite sent starts with one run-unique
prefix (mailapi.secret); this file sends more through every path, success and
refusal, then scans every response of the whole session (bodies and headers)
and the service's and nginx's logs under $STACK_VAR/log. Only booleans and
counts are ever shown, never the text that holds a secret.
"""

import json
import os

from mailapi import (LOG_DIR, SECRET_PREFIX, basic_body, etag_of, known_tokens, oauth_body,
                     problem, recorded, secret)

PREFIX = SECRET_PREFIX.encode()
SERVICE_LOG = LOG_DIR / "mailsrv.log"
# Where this session's part of the service's log starts (test modules are
# imported when the session collects them, before any test runs).
try:
    SESSION_LOG_START = SERVICE_LOG.stat().st_size
except OSError:
    SESSION_LOG_START = 0


def leaks_in_responses():
    found = []
    for rec in recorded():
        head = "\n".join("%s: %s" % kv for kv in rec["headers"].items()).encode("utf-8",
                                                                                 "replace")
        if PREFIX in rec["body"] or PREFIX in head:
            found.append("%s %s -> %d" % (rec["method"], rec["path"], rec["status"]))
    return found


def log_files():
    return [p for p in LOG_DIR.rglob("*") if p.is_file()] if LOG_DIR.is_dir() else []


def test_every_secret_field_through_every_path(api):
    pw, sk, at, rt = secret("pw"), secret("sk"), secret("at"), secret("rt")
    basic = api.create(basic_body(name="Leak basic", password=pw, is_default=True))
    oauth = api.create(oauth_body(name="Leak oauth", secret_key=sk, access_token=at,
                                  refresh_token=rt))
    for rep in (basic, oauth):
        api.fetch(rep["id"])
        api.get("/mail-servers", params={"q": "leak"})
    api.get("/mail-servers/default")
    api.update(basic["id"], {"password": secret("pw"), "port": 2525})
    api.update(oauth["id"], {"secret_key": secret("sk"), "access_token": secret("at"),
                             "refresh_token": secret("rt"), "scope": "openid"})
    api.replace(oauth["id"], oauth_body(name="Leak oauth", secret_key=secret("sk")))

    # refusals that carry secrets
    iid = "/mail-servers/%d" % basic["id"]
    oid = "/mail-servers/%d" % oauth["id"]
    problem(api.post("/mail-servers", basic_body(name="leak BASIC", password=secret("pw"))),
            409, "conflict")
    problem(api.patch(iid, {"password": secret("pw") + "\u0000"}), 422, "validation")
    problem(api.patch(iid, {"password": secret("pw") + "x" * 9000}), 422, "validation")
    problem(api.patch(iid, {"secret_key": secret("sk")}), 422, "validation")
    problem(api.patch(oid, {"password": secret("pw")}), 422, "validation")
    problem(api.patch(oid, {"access_token": 5, "refresh_token": secret("rt") + "\n"}),
            422, "validation")
    problem(api.post("/mail-servers", oauth_body(name="", secret_key=secret("sk"),
                                                 token_url="http://x.example/token")),
            422, "validation")
    problem(api.patch(iid, {"password": secret("pw")},
                      headers={"If-Match": etag_of(999)}), 412, "precondition-failed")
    raw = json.dumps({"password": secret("pw")}).encode()
    problem(api.request("PATCH", iid, data=raw + b" trailing", content_type="application/json"),
            400, "bad-request")
    problem(api.request("PATCH", iid, data=raw[:-1] + b', "password": "%s"}'
                        % secret("pw").encode(), content_type="application/json"),
            400, "bad-request")
    problem(api.request("PATCH", iid, data=raw, content_type="text/plain"),
            415, "unsupported-media-type")
    problem(api.request("PATCH", iid, data=b'{"password": "' + secret("pw").encode() + b'\xff"}',
                        content_type="application/json"), 400, "bad-request")
    r = api.batch_delete([basic["id"], oauth["id"]])
    assert r.status_code == 200
    assert len(recorded()) > 20


def test_no_secret_in_any_response():
    records = recorded()
    assert len(records) > 20, "the session recorded only %d responses" % len(records)
    found = leaks_in_responses()
    assert not found, "a secret appeared in %d responses, e.g. %s" % (len(found), found[:5])


def test_no_secret_in_the_logs():
    files = log_files()
    assert files, "no log files under %s" % LOG_DIR
    leaked = [str(p.relative_to(LOG_DIR)) for p in files if PREFIX in p.read_bytes()]
    assert not leaked, "a secret appeared in %s" % leaked


def test_no_bearer_token_in_the_logs():
    tokens = [t.rsplit(".", 1)[-1].encode() for t in known_tokens()]
    tokens = [t for t in tokens if len(t) >= 20]
    assert tokens
    leaked = []
    for p in log_files():
        data = p.read_bytes()
        if any(t in data for t in tokens):
            leaked.append(str(p.relative_to(LOG_DIR)))
    assert not leaked, "a token signature appeared in %s" % leaked


def test_the_scan_covers_the_request_lines():
    """The service's log of this run (since the session started) holds its
    request lines (so the scans above read them), every line in the format
    the stack runs with; no log holds an Authorization header or a bearer
    token's text."""
    from test_request_log import parse
    json_format = os.environ.get("MAILSRV_LOG_FORMAT", "text") == "json"
    requests_seen = 0
    with open(SERVICE_LOG, "rb") as f:
        f.seek(SESSION_LOG_START)
        this_run = f.read().decode("utf-8", "replace")
    for line in this_run.splitlines():
        if not line.strip() or line.startswith("--- "):
            continue  # the stack script's start and stop markers
        assert line.startswith("{") == json_format, "a line not in the configured format"
        d = parse(line)
        assert d is not None, "a line in neither format (%d bytes)" % len(line)
        if d["message"] == "request":
            requests_seen += 1
            assert set(d) >= {"method", "route", "status", "duration_ms", "db_ms", "actor"}
    assert requests_seen > 20, "only %d request lines in the service's log" % requests_seen
    for p in log_files():
        data = p.read_bytes().lower()
        assert b"authorization:" not in data and b"bearer ey" not in data, p.name
