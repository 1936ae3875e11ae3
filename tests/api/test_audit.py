"""test_audit.py - the audit trail (docs/api.md, "Audit events"): the event
of every kind of change, written in the change's own transaction (a change
that rolls back leaves none), the service role's grants (it may add and
read events, never change or delete them), GET /audit-events with its
filters and keyset paging, and retention (mailsrv-tool audit-prune).

Each test acts as an administrator of its own (a `sub` of its own), so the
events of other tests, and of the fixture that empties the table of mail
servers, never mix into what it reads."""

import concurrent.futures
import datetime
import itertools
import os
import subprocess
import time

import pytest

import mailapi
from mailapi import basic_body, claims, describe, make_jwt, parse_ts, problem, secret
from oauth2_support import _pg, connect, console_outcome, create_server, provider, refresh
from smtp_support import basic_for, login_server, ok, result, run_saved, smtp

assert provider and smtp  # fixtures, used by name

_n = itertools.count(1)
_run = "%d-%d" % (os.getpid(), int(time.time()))


def admin():
    """A client for a new administrator; returns (client, sub)."""
    sub = "audit-%s-%d" % (_run, next(_n))
    return mailapi.Client(token=make_jwt(claims(sub=sub, ttl=900))), sub


def events(client, **params):
    """Every event matching params, newest first, following the cursors."""
    out, cursor = [], None
    for _ in range(100):
        q = dict(params)
        if cursor:
            q["cursor"] = cursor
        r = client.get("/audit-events", params=q)
        assert r.status_code == 200, describe(r)
        body = r.json()
        out += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("too many pages")


def mine(client, sub, **params):
    return events(client, actor=sub, **params)


def one(evs, action, sid=None):
    hits = [e for e in evs if e["action"] == action and (sid is None or
                                                         e["mail_server_id"] == sid)]
    assert len(hits) == 1, [(e["action"], e["mail_server_id"]) for e in evs]
    return hits[0]


# ---------------------------------------------------------------- superuser SQL


def su_sql(statement):
    """Run SQL as the database superuser over the stack's socket (as the
    drills do), with SET ROLE mailsrv_owner, the schema's owner."""
    sock_dir, port = _pg()
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", sock_dir, "-p", port,
           "-U", "postgres", "-d", "mailsrv", "-c", "SET ROLE mailsrv_owner", "-c", statement]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr[-500:]
    return [line for line in res.stdout.splitlines() if line]


def app_sql(statement):
    """Run SQL as the service's role mailsrv_app; (returncode, stderr)."""
    sock_dir, port = _pg()
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", sock_dir, "-p", port,
           "-U", "mailsrv_app", "-d", "mailsrv", "-c", statement]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return res.returncode, res.stdout, res.stderr


# ---------------------------------------------------------------- the events


def test_create_update_delete_are_recorded(api):
    c, sub = admin()
    body = basic_body()
    r = c.post("/mail-servers", body)
    assert r.status_code == 201, describe(r)
    s = r.json()
    ev = one(mine(c, sub, mail_server_id=s["id"]), "mail_server.created", s["id"])
    assert ev["actor"] == sub
    assert ev["mail_server_name"] == body["name"]
    assert ev["request_id"] == r.headers["X-Request-Id"] and ev["request_id"]
    assert ev["client_address"] == "127.0.0.1"
    assert ev["details"] == {}
    assert abs(parse_ts(ev["at"]).timestamp() - time.time()) < 30

    # An update: the changed fields, and for a secret only that it was set.
    pw = secret("pw")
    r = c.patch("/mail-servers/%d" % s["id"], {"port": 2525, "password": pw})
    assert r.status_code == 200, describe(r)
    ev = one(mine(c, sub, action="mail_server.updated"), "mail_server.updated", s["id"])
    assert sorted(ev["details"]["fields"]) == ["password", "port"]
    assert ev["details"]["secrets"] == {"password": "set"}
    assert ev["request_id"] == r.headers["X-Request-Id"]
    assert pw not in str(ev)

    # Cleared, and a rename: the event carries the new name.
    r = c.patch("/mail-servers/%d" % s["id"], {"password": None, "name": body["name"] + " x"})
    assert r.status_code == 200, describe(r)
    evs = mine(c, sub, action="mail_server.updated")
    assert len(evs) == 2
    assert sorted(evs[0]["details"]["fields"]) == ["name", "password"]
    assert evs[0]["details"]["secrets"] == {"password": "cleared"}
    assert evs[0]["mail_server_name"] == body["name"] + " x"

    # Delete: the name it had, and the event outlives the server.
    r = c.delete("/mail-servers/%d" % s["id"])
    assert r.status_code == 204, describe(r)
    ev = one(mine(c, sub), "mail_server.deleted", s["id"])
    assert ev["mail_server_name"] == body["name"] + " x"
    assert ev["request_id"] == r.headers["X-Request-Id"]
    assert [e["action"] for e in mine(c, sub, mail_server_id=s["id"])] == [
        "mail_server.deleted", "mail_server.updated", "mail_server.updated",
        "mail_server.created"]


def test_batch_delete_records_one_event_per_server(api):
    c, sub = admin()
    ss = [api.create(basic_body()) for _ in range(3)]
    r = c.batch_delete([s["id"] for s in ss] + [999999999])
    assert r.status_code == 200, describe(r)
    evs = mine(c, sub, action="mail_server.deleted")
    assert sorted(e["mail_server_id"] for e in evs) == sorted(s["id"] for s in ss)
    assert {e["mail_server_id"]: e["mail_server_name"] for e in evs} == {
        s["id"]: s["name"] for s in ss}
    assert {e["request_id"] for e in evs} == {r.headers["X-Request-Id"]}


def test_default_moves_are_recorded(api):
    c, sub = admin()
    a = c.create(basic_body(is_default=True))
    ev = one(mine(c, sub, action="mail_server.default_moved"), "mail_server.default_moved")
    assert ev["mail_server_id"] == a["id"] and ev["details"] == {"from": None, "to": a["id"]}
    b = c.create(basic_body(is_default=True))
    r = c.patch("/mail-servers/%d" % a["id"], {"is_default": True})
    assert r.status_code == 200, describe(r)
    evs = mine(c, sub, action="mail_server.default_moved")
    assert [e["details"] for e in evs] == [{"from": b["id"], "to": a["id"]},
                                           {"from": a["id"], "to": b["id"]},
                                           {"from": None, "to": a["id"]}]
    assert [e["mail_server_id"] for e in evs] == [a["id"], b["id"], a["id"]]
    # Marking the default again is no move.
    r = c.patch("/mail-servers/%d" % a["id"], {"is_default": True})
    assert r.status_code == 200, describe(r)
    assert len(mine(c, sub, action="mail_server.default_moved")) == 3


def test_concurrent_default_moves_record_both(api):
    c, sub = admin()
    a = c.create(basic_body())
    b = c.create(basic_body())
    for _ in range(3):
        before = len(mine(c, sub, action="mail_server.default_moved"))
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            rs = list(ex.map(lambda sid: c.patch("/mail-servers/%d" % sid, {"is_default": True}),
                             [a["id"], b["id"]]))
        moved = [r.json()["id"] for r in rs if r.status_code == 200]
        assert all(r.status_code == 200 for r in rs), [describe(r) for r in rs]
        evs = mine(c, sub, action="mail_server.default_moved")
        new = evs[:len(evs) - before]
        # Both moves are there, chained: the later one moved it from the
        # earlier one's server.
        assert sorted(e["mail_server_id"] for e in new) == sorted(moved)
        later, earlier = new
        assert later["details"]["from"] == earlier["details"]["to"]
        default = api.get("/mail-servers/default").json()
        assert default["id"] == later["details"]["to"]
        # Next round: neither is the default.
        c.patch("/mail-servers/%d" % default["id"], {"is_default": False})


def test_a_rolled_back_change_leaves_no_event(api):
    c, sub = admin()
    t0 = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    s = c.create(basic_body())
    # 409: the name is taken; nothing is created, and no event either.
    r = c.post("/mail-servers", basic_body(name=s["name"]))
    assert r.status_code == 409, describe(r)
    r2 = c.patch("/mail-servers/%d" % s["id"], {"port": 26},
                 headers={"If-Match": '"%d"' % (s["version"] + 5)})
    assert r2.status_code == 412, describe(r2)
    other = c.create(basic_body())
    r3 = c.patch("/mail-servers/%d" % other["id"], {"name": s["name"]})
    assert r3.status_code == 409, describe(r3)
    # 422: the update's validation failed inside its transaction.
    r4 = c.patch("/mail-servers/%d" % s["id"], {"port": 0})
    assert r4.status_code == 422, describe(r4)
    evs = mine(c, sub)
    assert [e["action"] for e in evs] == ["mail_server.created", "mail_server.created"]
    ids = {r.headers["X-Request-Id"] for r in (r, r2, r3, r4)}
    assert not ids & {e["request_id"] for e in events(api, since=t0, limit=200)}


def test_oauth2_events(api, provider):
    c, sub = admin()
    s = create_server(c, provider)
    # The callback has no token: the event names who started the flow.
    out = console_outcome(connect(c, provider, s["id"]))
    assert out["oauth2"] == "connected"
    ev = one(mine(c, sub, mail_server_id=s["id"]), "oauth2.connected")
    assert ev["mail_server_name"] == s["name"] and ev["details"] == {}

    r = refresh(c, s["id"])
    assert r.status_code == 200, describe(r)
    ev = one(mine(c, sub), "oauth2.refreshed")
    assert ev["request_id"] == r.headers["X-Request-Id"]

    provider.mode("server_error")
    r = refresh(c, s["id"])
    assert r.status_code == 502, describe(r)
    ev = one(mine(c, sub), "oauth2.refresh_failed")
    assert ev["details"] == {"code": "invalid_response"}

    provider.mode("invalid_grant")
    r = refresh(c, s["id"])
    assert r.status_code == 502, describe(r)
    ev = one(mine(c, sub), "oauth2.reauthorization_required")
    assert ev["details"] == {"code": "invalid_grant"}
    # No token or secret in any event.
    text = str(mine(c, sub))
    assert provider.client_secret not in text
    assert mailapi.redact(text) == text


def test_a_saved_server_test_is_recorded(api, smtp):
    c, sub = admin()
    srv, pw = login_server(smtp, "starttls")
    s = c.create(basic_for(srv, password=pw))
    r = run_saved(c, s["id"])
    ok(result(r), "auth")
    ev = one(mine(c, sub), "mail_server.tested", s["id"])
    assert ev["details"] == {"ok": True, "stage": "auth", "error_code": None}
    assert ev["request_id"] == r.headers["X-Request-Id"]
    c.patch("/mail-servers/%d" % s["id"], {"password": secret("pw")})
    r = run_saved(c, s["id"])
    assert r.status_code == 200, describe(r)
    evs = mine(c, sub, action="mail_server.tested")
    assert evs[0]["details"] == {"ok": False, "stage": "auth", "error_code": "auth_failed"}


# ---------------------------------------------------------------- the role's grants


def test_the_service_role_can_neither_change_nor_delete_events(api):
    c, sub = admin()
    c.create(basic_body())
    rc, out, _ = app_sql("SELECT count(*) FROM audit_event WHERE actor = '%s'" % sub)
    assert rc == 0 and out.strip() == "1"
    rc, _, err = app_sql("UPDATE audit_event SET actor = 'x' WHERE actor = '%s'" % sub)
    assert rc != 0 and "permission denied" in err
    rc, _, err = app_sql("DELETE FROM audit_event WHERE actor = '%s'" % sub)
    assert rc != 0 and "permission denied" in err
    rc, _, err = app_sql("TRUNCATE audit_event")
    assert rc != 0 and "permission denied" in err
    assert len(mine(c, sub)) == 1


# ---------------------------------------------------------------- listing


def test_paging_stays_correct_while_events_are_added(api):
    c, sub = admin()
    ss = [c.create(basic_body()) for _ in range(5)]
    r = c.get("/audit-events", params={"actor": sub, "limit": 2})
    assert r.status_code == 200, describe(r)
    p1 = r.json()
    assert [e["mail_server_id"] for e in p1["items"]] == [ss[4]["id"], ss[3]["id"]]
    assert p1["next_cursor"]
    # Events added between pages come before the first page, never into
    # the next ones.
    late = [c.create(basic_body()) for _ in range(3)]
    r = c.get("/audit-events", params={"actor": sub, "limit": 2, "cursor": p1["next_cursor"]})
    p2 = r.json()
    assert [e["mail_server_id"] for e in p2["items"]] == [ss[2]["id"], ss[1]["id"]]
    r = c.get("/audit-events", params={"actor": sub, "limit": 2, "cursor": p2["next_cursor"]})
    p3 = r.json()
    assert [e["mail_server_id"] for e in p3["items"]] == [ss[0]["id"]]
    assert p3["next_cursor"] is None
    # Newest first, ids strictly falling, every event once.
    every = mine(c, sub, limit=3)
    assert [e["mail_server_id"] for e in every] == [s["id"] for s in reversed(ss + late)]
    ids = [e["id"] for e in every]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    # An exact page: no cursor after it.
    r = c.get("/audit-events", params={"actor": sub, "limit": 8})
    assert len(r.json()["items"]) == 8 and r.json()["next_cursor"] is None
    # Default limit is 50.
    r = c.get("/audit-events")
    assert len(r.json()["items"]) <= 50


def test_filters(api):
    c, sub = admin()
    a = c.create(basic_body())
    time.sleep(1.1)
    mid = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.1)
    b = c.create(basic_body())
    c.patch("/mail-servers/%d" % b["id"], {"port": 2626})
    assert [e["mail_server_id"] for e in mine(c, sub, mail_server_id=a["id"])] == [a["id"]]
    assert [e["action"] for e in mine(c, sub, mail_server_id=b["id"])] == [
        "mail_server.updated", "mail_server.created"]
    assert [e["mail_server_id"] for e in mine(c, sub, action="mail_server.created")] == [
        b["id"], a["id"]]
    since = mid.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert {e["mail_server_id"] for e in mine(c, sub, since=since)} == {b["id"]}
    assert [e["mail_server_id"] for e in mine(c, sub, until=since)] == [a["id"]]
    # An offset names the same instant.
    local = mid.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert [e["mail_server_id"] for e in mine(c, sub, until=local.isoformat())] == [a["id"]]
    assert mine(c, sub, since="2999-01-01T00:00:00Z") == []
    assert mine(c, "nobody-%s" % _run) == []
    # Every event of this actor, and only those.
    assert {e["actor"] for e in mine(c, sub)} == {sub}


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"limit": "-1"},
    {"mail_server_id": "0"}, {"mail_server_id": "abc"},
    {"action": "mail_server.exploded"}, {"action": ""},
    {"since": "yesterday"}, {"since": "2026-13-01T00:00:00Z"},
    {"since": "2026-02-30T00:00:00Z"}, {"until": "2026-01-01T25:00:00Z"},
    {"until": "2026-01-01T00:00:00"}, {"until": "2026-01-01 00:00:00Z"},
    {"since": "2026-01-01T00:00:00+24:00"}, {"since": "0000-01-01T00:00:00Z"},
    {"cursor": "not a cursor"}, {"cursor": "eyJpZCI6MX0"}, {"cursor": ""},
    {"actor": "a\x01b"}, {"actor": "x" * 257},
    {"sort": "id"},
])
def test_bad_filters_are_400(api, params):
    r = api.get("/audit-events", params=params)
    body = problem(r, 400, "bad-request")
    assert body["detail"]


def test_needs_an_administrator(api, anon, client_for):
    problem(anon.get("/audit-events"), 401, "unauthorized")
    tok = make_jwt(claims(sub="viewer", roles=("viewer",)))
    problem(client_for(tok).get("/audit-events"), 403, "forbidden")


# ---------------------------------------------------------------- retention


def prune(*args, days=None):
    sock_dir, port = _pg()
    env = dict(os.environ, MAILSRV_OWNER_DATABASE_URL="host=%s port=%s dbname=mailsrv user=postgres"
               % (sock_dir, port))
    env.pop("MAILSRV_AUDIT_RETENTION_DAYS", None)
    if days is not None:
        env["MAILSRV_AUDIT_RETENTION_DAYS"] = str(days)
    return subprocess.run([str(mailapi.TOOL), "audit-prune", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_retention_prunes_old_events_in_batches(api):
    c, sub = admin()
    old, recent = sub + "-old", sub + "-recent"
    # 2,500 events past a year (more than one batch), a few within it.
    su_sql("INSERT INTO audit_event (at, actor, action, mail_server_id, details)"
           " SELECT now() - interval '400 days' - g * interval '1 second', '%s',"
           " 'mail_server.created', g, '{}' FROM generate_series(1, 2500) g" % old)
    su_sql("INSERT INTO audit_event (at, actor, action, mail_server_id)"
           " SELECT now() - interval '300 days', '%s', 'mail_server.deleted', g"
           " FROM generate_series(1, 3) g" % recent)
    c.create(basic_body())
    assert len(mine(c, old, limit=200)) == 2500
    res = prune()
    assert res.returncode == 0, res.stderr
    assert "deleted" in res.stdout
    assert int(res.stdout.split("deleted ")[1].split()[0]) >= 2500
    assert mine(c, old) == []
    assert len(mine(c, recent)) == 3
    assert len(mine(c, sub)) == 1
    # A shorter retention, from the setting, then from --days.
    res = prune(days=400)
    assert res.returncode == 0 and len(mine(c, recent)) == 3
    res = prune("--days", "200")
    assert res.returncode == 0, res.stderr
    assert mine(c, recent) == [] and len(mine(c, sub)) == 1


def test_prune_refuses_bad_settings(api):
    assert prune("--days", "0").returncode == 2
    assert prune("--days", "x").returncode == 2
    assert prune(days="abc").returncode == 1
    res = subprocess.run([str(mailapi.TOOL), "audit-prune"],
                         env={k: v for k, v in os.environ.items()
                              if k != "MAILSRV_OWNER_DATABASE_URL"},
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "MAILSRV_OWNER_DATABASE_URL" in res.stderr
    # The service's own role may not prune: it cannot become the owner.
    sock_dir, port = _pg()
    env = dict(os.environ, MAILSRV_OWNER_DATABASE_URL="host=%s port=%s dbname=mailsrv"
               " user=mailsrv_app" % (sock_dir, port))
    res = subprocess.run([str(mailapi.TOOL), "audit-prune", "--days", "1"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "42501" in res.stderr
