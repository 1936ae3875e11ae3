"""PostgreSQL outage drill: the database stops, requests answer 503 problem
database-unavailable with Retry-After at once (no hang), the database comes
back, and the service recovers by itself within 10 s with its data intact.

Uses scripts/stack.sh pg-stop / pg-start with the test stack's STACK_* settings.
"""

import os
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import requests

from mailapi import (BASE_URL, REPO, STACK_VAR, Client, basic_body, describe, oauth_body,
                     problem)

STACK = REPO / "scripts" / "stack.sh"
ANSWER_WITHIN_S = 5       # each request during the outage (libpq connect timeout is 2 s)
RECOVER_WITHIN_S = 10


def stack_env():
    env = dict(os.environ)
    env.setdefault("STACK_VAR", str(STACK_VAR))
    env.setdefault("STACK_HTTP_PORT", str(urlsplit(BASE_URL).port or 80))
    env.setdefault("STACK_PG_PORT", "55433")
    return env


def stack(*args):
    if not STACK.exists():
        pytest.fail("%s is missing" % STACK)
    res = subprocess.run([str(STACK)] + list(args), env=stack_env(), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, "stack.sh %s failed (%d): %s" % (
        " ".join(args), res.returncode, res.stderr.strip()[-500:])


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0


def test_database_outage(api):
    a = api.create(basic_body(name="Survivor", is_default=True))
    b = api.create(oauth_body(name="Survivor two"))
    before = api.snapshot()
    client = Client(session=requests.Session())
    anon = Client(token=None)

    stack("pg-stop", "fast")
    try:
        calls = [
            ("list", lambda: client.get("/mail-servers", timeout=30)),
            ("get", lambda: client.get("/mail-servers/%d" % a["id"], timeout=30)),
            ("default", lambda: client.get("/mail-servers/default", timeout=30)),
            ("create", lambda: client.post("/mail-servers", basic_body(name="Lost"),
                                           timeout=30)),
            ("put", lambda: client.put("/mail-servers/%d" % a["id"],
                                       basic_body(name="Survivor", port=25), timeout=30)),
            ("patch", lambda: client.patch("/mail-servers/%d" % b["id"], {"port": 25},
                                           timeout=30)),
            ("delete", lambda: client.delete("/mail-servers/%d" % b["id"], timeout=30)),
            ("batch", lambda: client.batch_delete([a["id"], b["id"]], timeout=30)),
            ("list-again", lambda: client.get("/mail-servers", timeout=30)),
        ]
        for what, call in calls:
            r, took = timed(call)
            body = problem(r, 503, "database-unavailable")
            assert "Retry-After" in r.headers, what
            assert int(r.headers["Retry-After"]) >= 0, what
            assert took < ANSWER_WITHIN_S, "%s took %.1f s" % (what, took)
            assert "password" not in (body.get("detail") or "").lower(), what

        # Checks that need no database still answer as usual.
        r, took = timed(anon.get, "/mail-servers", timeout=30)
        problem(r, 401, "unauthorized")
        assert took < ANSWER_WITHIN_S
        r, took = timed(client.request, "POST", "/mail-servers", data=b"{",
                        content_type="application/json", timeout=30)
        assert r.status_code in (400, 503), describe(r)
        assert took < ANSWER_WITHIN_S

        for probe in ("/healthz", "/readyz"):
            r, took = timed(anon.get, probe, timeout=30)
            problem(r, 503, "database-unavailable")
            assert "Retry-After" in r.headers, probe
            assert took < ANSWER_WITHIN_S, "%s took %.1f s" % (probe, took)
        # Liveness needs no database.
        r, took = timed(anon.get, "/livez", timeout=30)
        assert r.status_code == 200 and r.json() == {"status": "ok"}, describe(r)
        assert took < 1.0
    finally:
        stack("pg-start")

    # The service reconnects by itself: ten answers in a row within 10 s.
    deadline = time.monotonic() + RECOVER_WITHIN_S
    streak, last = 0, None
    while streak < 10:
        assert time.monotonic() < deadline, "not recovered within %d s (last: %s)" % (
            RECOVER_WITHIN_S, last)
        try:
            r = client.get("/mail-servers", timeout=5)
            last = r.status_code
            streak = streak + 1 if r.status_code == 200 else 0
        except requests.RequestException as e:
            last, streak = e.__class__.__name__, 0
        if streak == 0:
            time.sleep(0.2)

    assert api.snapshot() == before
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 200
    r = api.get("/mail-servers/default")
    assert r.status_code == 200 and r.json()["id"] == a["id"], describe(r)
    # and it writes again
    c = api.create(basic_body(name="After the outage"))
    assert api.fetch(c["id"])["name"] == "After the outage"
