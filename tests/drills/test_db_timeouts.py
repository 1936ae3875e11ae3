"""Drill: a row lock held by another session, and a slow statement.

Stated outcome (docs/reliability.md): the request fails after the configured
timeout (lock_timeout 2 s, statement_timeout 5 s: include/mailsrv_limits.h)
with 503 database-unavailable and Retry-After, the row is unchanged, and the
same connection (the same PostgreSQL backend, no reconnect) serves the next
request.

The slow statement is an UPDATE that a trigger makes sleep for one marked
value only (drill.slow_updates); the lock is held by a superuser session
(SELECT ... FOR UPDATE).
"""

import threading
import time

import requests

import drill
from drill import mailapi, now

MARGIN_S = 1.5   # scheduling, the ASan build, the request around the statement


def patch(sid, body, timeout=30):
    c = mailapi.Client(session=requests.Session())
    t0 = now()
    r = c.patch("/mail-servers/%d" % sid, body, timeout=timeout)
    return r, now() - t0


def waiting_backend(pred, timeout=10):
    """The service's backend for which pred(backend) holds, once it does."""
    b = drill.wait_backends(lambda bs: any(pred(x) for x in bs.values()), timeout=timeout)
    found = [x for x in b.values() if pred(x)]
    assert found, "no service connection in the expected state: %s" % list(b.values())
    return found[0]


def same_connection_serves_next(pid, since):
    """Send requests one at a time until backend pid has run a statement
    that started after `since` (connections are handed to threads in turn,
    so a few dozen requests reach every thread); each must succeed."""
    s = requests.Session()
    for i in range(20 * drill.POOL):
        r = s.get(drill.BASE_URL + "/healthz", timeout=10)
        assert r.status_code == 200, "request %d after the timeout: %d" % (i, r.status_code)
        b = drill.backends().get(pid)
        assert b is not None, "the connection of the failed request is gone (reconnected)"
        if b.query_start > since and b.state == "idle":
            return i + 1
    raise AssertionError("backend %d served no request after the timeout" % pid)


def failed_after_and_connection_kept(api, r, took, timeout_s, sid, before, pid, pids_before):
    """The outcome both drills state: answer r came after took seconds, as
    503 database-unavailable with Retry-After once timeout_s had passed; row
    sid is still `before`; backend pid serves the next requests with no
    reconnect anywhere. Returns how many requests reached that backend."""
    mailapi.problem(r, 503, "database-unavailable")
    assert r.headers.get("Retry-After"), mailapi.describe(r)
    assert timeout_s - 0.1 <= took <= timeout_s + MARGIN_S, took
    assert api.fetch(sid) == before

    t_fail = time.time()
    n = same_connection_serves_next(pid, t_fail)
    assert set(drill.backends()) == pids_before, "connections changed: a reconnect happened"
    return n


def test_row_lock_times_out_and_the_connection_stays(api):
    sid = api.create(mailapi.basic_body(name=drill.unique("drill locked row")))["id"]
    before = api.fetch(sid)
    drill.warm_pool()
    pids_before = set(drill.backends())
    holder = drill.Session()
    try:
        holder.run("BEGIN")
        holder.run("SELECT id FROM mail_server WHERE id = %d FOR UPDATE" % sid)
        out = {}
        t = threading.Thread(target=lambda: out.update(zip(("r", "took"),
                                                           patch(sid, {"port": 2525}))))
        t.start()
        waiter = waiting_backend(lambda b: b.wait_event_type == "Lock")
        t.join(30)
        holder.run("ROLLBACK")
    finally:
        holder.close()
    r, took = out["r"], out["took"]
    n = failed_after_and_connection_kept(api, r, took, drill.DB_LOCK_TIMEOUT_S, sid, before,
                                         waiter.pid, pids_before)
    # And the row takes the change now that nobody holds it.
    assert api.update(sid, {"port": 2525})["port"] == 2525
    drill.report("lock-timeout", answer=r.status_code, took_s="%.2f" % took,
                 backend=waiter.pid, same_backend_served_after_requests=n)


def test_slow_statement_times_out_and_the_connection_stays(api):
    sid = api.create(mailapi.basic_body(name=drill.unique("drill slow row")))["id"]
    before = api.fetch(sid)
    drill.warm_pool()
    pids_before = set(drill.backends())
    with drill.slow_updates("drill slow statement", 30):
        out = {}
        t = threading.Thread(target=lambda: out.update(zip(
            ("r", "took"), patch(sid, {"sender_name": "drill slow statement"}))))
        t.start()
        sleeper = waiting_backend(lambda b: b.wait_event == "PgSleep")
        t.join(30)
    r, took = out["r"], out["took"]
    n = failed_after_and_connection_kept(api, r, took, drill.DB_STATEMENT_TIMEOUT_S, sid, before,
                                         sleeper.pid, pids_before)
    drill.report("statement-timeout", answer=r.status_code, took_s="%.2f" % took,
                 backend=sleeper.pid, same_backend_served_after_requests=n)
