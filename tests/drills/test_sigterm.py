"""Drill: SIGTERM to the master under load.

Stated outcome (docs/reliability.md): the requests in flight complete, and the
process exits within its deadline (SHUTDOWN_DEADLINE_S, 10 s:
include/mailsrv_limits.h).

"In flight" is made observable: PATCH requests whose UPDATE a trigger makes
sleep 3 s in PostgreSQL (drill.slow_updates; below statement_timeout, 5 s)
are sent, and once pg_stat_activity shows every one of them sleeping inside
a worker, SIGTERM goes to the master. Every one of those PATCHes must answer
200 with the change stored. The background load meanwhile sees only
successes or, for requests that no worker accepted any more, nginx's 503
upstream-unreachable; never a hang or another error. Afterwards the service
is started again (scripts/stack.sh start) for the next drill.
"""

import threading
import time

import requests

import drill
from drill import mailapi, now

IN_FLIGHT = 6
SLEEP_S = 3.0
MARKER = "drill in flight"


def test_sigterm_drains_in_flight_requests(ids, api):
    rows = [api.create(mailapi.basic_body(name=drill.unique("drill in flight"))) for _ in range(IN_FLIGHT)]
    master = drill.master_pid()
    workers = drill.workers()
    log = drill.LogWatch()
    drill.warm_pool()

    answers = {}

    def patch(row):
        c = mailapi.Client(session=requests.Session())
        t0 = now()
        try:
            r = c.patch("/mail-servers/%d" % row["id"], {"port": 2587, "sender_name": MARKER},
                        timeout=30)
            answers[row["id"]] = (r, t0, now())
        except requests.RequestException as e:
            answers[row["id"]] = (e, t0, now())

    threads = []
    with drill.slow_updates(MARKER, SLEEP_S):
        with drill.Load(ids, workers=4, max_seconds=60, writes=False) as load:
            time.sleep(1.0)
            for row in rows:
                t = threading.Thread(target=patch, args=(row,))
                t.start()
                threads.append(t)
            b = drill.wait_backends(lambda b: sum(x.wait_event == "PgSleep" for x in b.values())
                                    >= IN_FLIGHT, timeout=SLEEP_S - 1, poll=0.01)
            sleeping = sum(x.wait_event == "PgSleep" for x in b.values())
            assert sleeping == IN_FLIGHT, "only %d PATCHes are in flight" % sleeping

            t_term = now()
            drill.kill(master, drill.SIGNALS["SIGTERM"])
            t_exit = None
            while now() < t_term + drill.SHUTDOWN_DEADLINE_S + 5:
                if not drill.alive(master):
                    t_exit = now()
                    break
                time.sleep(0.01)
            time.sleep(0.5)
        for t in threads:
            t.join(30)

    assert t_exit is not None, "the master did not exit within %d s" % (
        drill.SHUTDOWN_DEADLINE_S + 5)
    took = t_exit - t_term
    assert took <= drill.SHUTDOWN_DEADLINE_S, "exit %.2f s after SIGTERM" % took
    assert not any(drill.alive(w) for w in workers), "a worker outlived the master"

    # The in-flight PATCHes completed, and their changes are stored.
    assert len(answers) == IN_FLIGHT
    for sid, (r, t0, t1) in answers.items():
        assert not isinstance(r, Exception), "PATCH %d: %r" % (sid, r)
        assert r.status_code == 200, mailapi.describe(r)
        assert r.json()["port"] == 2587 and t1 > t_term, mailapi.describe(r)

    # Background load: successes, or 503 from nginx for what no worker took.
    odd = [r for r in load.results if not load.ok(r) and
           not (r.status == 503 and r.slug == "upstream-unreachable")]
    assert not odd, "unexpected answers: %s (%s)" % (odd[:5], load.summary())
    in_flight_ok = [r for r in load.results if r.t0 < t_term < r.t1 and load.ok(r)]
    slowest = max(r.t1 - r.t0 for r in load.results)
    assert slowest < drill.SHUTDOWN_DEADLINE_S + 2, "a request took %.1f s" % slowest

    # A clean drain: the master logged it, no worker was killed at the deadline.
    assert log.lines(r"\[%d\] LOG: received signal 15: draining" % master)
    assert log.lines(r"\[%d\] LOG: stopped" % master)
    assert not log.lines(r"still running after|was terminated by signal")

    # Back for the next drill (the conftest fixture checks the pool too).
    drill.stack("start")
    assert drill.wait_pool()
    for row in rows:
        assert api.fetch(row["id"])["port"] == 2587

    drill.report("sigterm", in_flight_patches=IN_FLIGHT,
                 in_flight_completed=sum(1 for r, _, _ in answers.values()
                                         if getattr(r, "status_code", 0) == 200),
                 background_in_flight_completed=len(in_flight_ok),
                 background_503=len(load.failures()),
                 background_503_longest_s="%.2f" % max((r.t1 - r.t0 for r in load.failures()),
                                                       default=0),
                 exit_after_term_s="%.2f" % took,
                 deadline_s=drill.SHUTDOWN_DEADLINE_S)
