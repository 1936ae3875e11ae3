"""The service's log (docs/design.md, "Logs"): one line per request at info
level with the request id, method, route template (never the raw path or
its query), status, duration, database time and actor (the token's sub);
none for the probes. With MAILSRV_LOG_FORMAT=json every line is one JSON
object: shown on a second instance of the service (one process, one thread,
its own socket, the stack's database and keys), spoken to over FastCGI.
"""

import json
import os
import pwd
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from mailapi import LOG_DIR, REPO, describe, mint_token
from service_instance import ServiceInstance, fcgi_request

SERVICE_LOG = LOG_DIR / "mailsrv.log"
BINARY = REPO / "build" / "mailsrv"
TEXT_LINE = re.compile(r"^\S+ \[(\d+)\] (?:request (\S+) )?(LOG|WARNING|ERROR): (.*)$")


def parse(line):
    """A log line of either format as a dict (request lines with their
    fields), None when it is not one."""
    line = line.strip()
    if line.startswith("{"):
        return json.loads(line)
    m = TEXT_LINE.match(line)
    if not m:
        return None
    d = {"pid": int(m.group(1)), "request_id": m.group(2), "level": m.group(3),
         "message": m.group(4)}
    if d["level"] == "LOG" and d["message"].startswith("request "):
        fields = dict(kv.split("=", 1) for kv in d["message"].split()[1:])
        d.update(fields, message="request")
        d["status"] = int(d["status"])
        d["duration_ms"] = float(d["duration_ms"])
        d["db_ms"] = float(d["db_ms"])
    return d


def lines_of(request_id, wait=3.0):
    """The service's log lines of one request (it logs after answering)."""
    deadline = time.monotonic() + wait
    while True:
        found = [parse(l) for l in SERVICE_LOG.read_text(errors="replace").splitlines()
                 if request_id in l]
        found = [d for d in found if d is not None]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def request_line(resp):
    rid = resp.headers["X-Request-Id"]
    found = [d for d in lines_of(rid) if d.get("message") == "request"]
    assert len(found) == 1, "%d request lines for %s" % (len(found), describe(resp))
    d = found[0]
    assert d["request_id"] == rid
    return d


def test_a_request_line_has_the_route_template(api):
    missing = 987654321
    r = api.get("/mail-servers/%d" % missing)
    assert r.status_code == 404
    d = request_line(r)
    assert d["method"] == "GET"
    assert d["route"] == "/api/v1/mail-servers/{id}"
    assert d["status"] == 404
    assert d["actor"] == "api-tests"
    assert 0 <= d["db_ms"] <= d["duration_ms"] < 5000
    rid = r.headers["X-Request-Id"]
    raw = [l for l in SERVICE_LOG.read_text().splitlines() if rid in l]
    assert not any(str(missing) in l for l in raw)


def test_database_time_is_counted(api):
    r = api.get("/mail-servers", params={"q": "no such server %s" % uuid.uuid4().hex})
    assert r.status_code == 200
    d = request_line(r)
    assert d["route"] == "/api/v1/mail-servers" and d["status"] == 200
    assert d["db_ms"] > 0
    assert d["db_ms"] <= d["duration_ms"]
    # the query string is not in the log
    assert "no such server" not in "\n".join(
        l for l in SERVICE_LOG.read_text().splitlines() if r.headers["X-Request-Id"] in l)


def test_unauthenticated_and_unknown_paths(anon, api):
    d = request_line(anon.get("/mail-servers"))
    assert d["status"] == 401 and d["actor"] == "-" and d["route"] == "/api/v1/mail-servers"
    d = request_line(api.get("/no-such-thing/12345"))
    assert d["status"] == 404 and d["route"] == "-"
    d = request_line(api.request("DELETE", "/mail-servers/default"))
    assert d["status"] == 405 and d["method"] == "DELETE"
    assert d["route"] == "/api/v1/mail-servers/default"


def test_actor_is_the_tokens_sub_cleaned(client_for):
    r = client_for(mint_token(sub='eve "admin" x=1\\')).get("/mail-servers/default")
    assert r.status_code in (200, 404)
    d = request_line(r)
    assert d["actor"] == "eve??admin??x?1?"


def test_the_oauth_callback_query_is_not_logged(anon):
    code = "cb" + uuid.uuid4().hex
    r = anon.get("/oauth2/callback", params={"code": code, "state": "st" + code})
    d = request_line(r)
    assert d["route"] == "/api/v1/oauth2/callback"
    for p in LOG_DIR.rglob("*"):
        if p.is_file():
            assert code.encode() not in p.read_bytes(), p.name


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
def test_probes_are_not_logged(anon, path):
    r = anon.get(path)
    assert r.status_code == 200
    time.sleep(0.3)
    assert lines_of(r.headers["X-Request-Id"], wait=0) == []


# ---- MAILSRV_LOG_FORMAT=json on a second instance ----

def fcgi(sock, method, path, headers=(), query=b""):
    """One request to the second instance, with a request id of its own:
    (status, that request id)."""
    rid = uuid.uuid4().hex
    status, _ = fcgi_request(sock, method, path, list(headers) + [("REQUEST_ID", rid)], query)
    return status, rid


class JsonService(ServiceInstance):
    def __init__(self, tmp, log_format="json"):
        user = os.environ.get("MAILSRV_USER") or "mailsrv"
        pw = pwd.getpwnam(user)
        os.chmod(tmp, 0o711)
        run = tmp / "run"
        run.mkdir()
        os.chown(run, pw.pw_uid, pw.pw_gid)
        self.sock = run / "mailsrv.sock"
        env = dict(os.environ)
        for k in [k for k in env if k.endswith("SAN_OPTIONS")]:
            del env[k]
        env.update({"MAILSRV_SOCKET": str(self.sock), "MAILSRV_PROCESSES": "1",
                    "MAILSRV_THREADS": "1", "MAILSRV_LOG_FORMAT": log_format,
                    "MAILSRV_USER": user})
        super().__init__(tmp, env, [str(BINARY)])


@pytest.fixture
def tmp_dir():
    d = Path(tempfile.mkdtemp(prefix="mailsrv-jsonlog."))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_json_format_writes_one_object_per_line(tmp_dir):
    svc = JsonService(tmp_dir)
    token = mint_token(sub="json-log-tests")
    try:
        assert svc.wait_ready(), svc.output()[-2000:]
        auth = [("HTTP_AUTHORIZATION", "Bearer " + token)]
        calls = {
            "list": fcgi(svc.sock, "GET", "/api/v1/mail-servers", auth, b"q=zzz"),
            "missing": fcgi(svc.sock, "GET", "/api/v1/mail-servers/424242", auth),
            "no token": fcgi(svc.sock, "GET", "/api/v1/mail-servers"),
            "bad token": fcgi(svc.sock, "GET", "/api/v1/mail-servers",
                              [("HTTP_AUTHORIZATION", "Bearer x.y.z")]),
            "livez": fcgi(svc.sock, "GET", "/livez"),
            "readyz": fcgi(svc.sock, "GET", "/readyz"),
        }
        assert [calls[k][0] for k in calls] == [200, 404, 401, 401, 200, 200], calls
        time.sleep(0.3)
    finally:
        svc.stop()
    text = svc.output()
    lines = [l for l in text.splitlines() if l.strip()]
    objs = []
    for l in lines:
        if l.startswith("--- "):
            continue  # nothing of ours; the stack script's separators
        d = json.loads(l)  # every line is a JSON object
        assert isinstance(d, dict)
        assert {"time", "pid", "level", "message"} <= set(d), d
        assert d["level"] in ("info", "warning", "error")
        objs.append(d)
    assert any(d["message"].startswith("worker process ready") for d in objs)
    reqs = {d["request_id"]: d for d in objs if d["message"] == "request"}
    want = {"list": ("/api/v1/mail-servers", 200, "json-log-tests"),
            "missing": ("/api/v1/mail-servers/{id}", 404, "json-log-tests"),
            "no token": ("/api/v1/mail-servers", 401, "-"),
            "bad token": ("/api/v1/mail-servers", 401, "-")}
    for k, (route, status, actor) in want.items():
        d = reqs[calls[k][1]]
        assert (d["route"], d["status"], d["actor"], d["method"]) == (route, status, actor,
                                                                      "GET"), d
        assert isinstance(d["duration_ms"], float) and isinstance(d["db_ms"], float)
    assert reqs[calls["list"][1]]["db_ms"] > 0
    # the refused token's reason is an ordinary line of the same request
    assert any(d.get("request_id") == calls["bad token"][1] and d["message"] != "request"
               for d in objs)
    # probes: not logged; no token, no query string, no raw id anywhere
    assert calls["livez"][1] not in text and calls["readyz"][1] not in text
    assert token.rsplit(".", 1)[-1] not in text
    assert "zzz" not in text and "424242" not in text


def test_unknown_log_format_is_refused(tmp_dir):
    svc = JsonService(tmp_dir, log_format="yaml")
    try:
        svc.p.wait(timeout=20)
    finally:
        svc.stop()
    assert svc.p.returncode != 0
    assert "MAILSRV_LOG_FORMAT must be text or json" in svc.output()
