"""Drill: the probes while the service drains after SIGTERM.

Stated outcome (docs/api.md#health-probes, docs/reliability.md): from the
moment the master takes SIGTERM until the stack is started again, /readyz,
/healthz and /livez answer 503 (nobody accepts new requests any more, so
nginx answers upstream-unreachable; a probe a draining worker has already
taken answers service-busy, error_code draining), quickly and never
200, while a request in flight (a PATCH made to sleep 3 s in PostgreSQL)
still completes with 200. After `stack.sh start` every probe is 200 again.
Before the signal, the same probes answer 200 while the slow request runs:
a busy request does not make the service look unready.
"""

import threading
import time

import requests

import drill
from drill import mailapi, now

SLEEP_S = 3.0
MARKER = "drill probes in flight"
PROBES = ("/readyz", "/healthz", "/livez")


def probe(session, path):
    t0 = now()
    try:
        r = session.get(drill.BASE_URL + path, timeout=5)
        return (path, r.status_code, drill.slug_of(r), now() - t0)
    except requests.RequestException as e:
        return (path, 0, e.__class__.__name__, now() - t0)


def test_probes_while_draining(api):
    row = api.create(mailapi.basic_body(name=drill.unique("drill probes")))
    master = drill.master_pid()
    drill.warm_pool()
    session = requests.Session()
    answer = {}

    def patch():
        c = mailapi.Client(session=requests.Session())
        try:
            answer["r"] = c.patch("/mail-servers/%d" % row["id"],
                                  {"port": 2588, "sender_name": MARKER}, timeout=30)
        except requests.RequestException as e:
            answer["r"] = e

    with drill.slow_updates(MARKER, SLEEP_S):
        t = threading.Thread(target=patch)
        t.start()
        b = drill.wait_backends(lambda b: any(x.wait_event == "PgSleep" for x in b.values()),
                                timeout=SLEEP_S - 1, poll=0.01)
        assert any(x.wait_event == "PgSleep" for x in b.values()), "the PATCH is not in flight"
        before = [probe(session, p) for p in PROBES]
        assert all(status == 200 for _, status, _, _ in before), before

        drill.kill(master, drill.SIGNALS["SIGTERM"])
        time.sleep(0.05)
        during = []
        while t.is_alive() and len(during) < 500:
            during += [probe(session, p) for p in PROBES]
            time.sleep(0.02)
        t.join(30)
        deadline = now() + drill.SHUTDOWN_DEADLINE_S + 5
        while drill.alive(master) and now() < deadline:
            time.sleep(0.05)
        after_exit = [probe(session, p) for p in PROBES]

    r = answer.get("r")
    assert not isinstance(r, Exception), "PATCH: %r" % r
    assert r.status_code == 200 and r.json()["port"] == 2588, mailapi.describe(r)
    assert during, "no probe ran while the PATCH drained"
    for path, status, slug, took in during + after_exit:
        assert status == 503, "%s answered %s (%s) while draining" % (path, status, slug)
        assert slug in ("upstream-unreachable", "service-busy"), (path, slug)
        assert took < 2.0, "%s took %.2f s" % (path, took)
    assert not drill.alive(master)

    drill.stack("start")
    assert drill.wait_pool()
    assert [probe(session, p)[1] for p in PROBES] == [200, 200, 200]
    drill.report("sigterm_probes", probes_while_draining=len(during),
                 slowest_probe_s="%.3f" % max(x[3] for x in during))
