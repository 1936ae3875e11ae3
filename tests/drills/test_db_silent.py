"""Drill: PostgreSQL unreachable without a reset (a silent network).

The service is started again with its database reached through a TCP relay
the drill controls (tcp_relay.py: 127.0.0.1, forwarding to PostgreSQL's TCP
port, password from the stack's passfile). Under load, the relay goes silent
for OUTAGE_S: nothing is forwarded, nothing is reset, new connections are
accepted by the kernel and then hear nothing. Neither TCP keepalives nor
tcp_user_timeout notice (the relay's kernel acknowledges everything), and the
server's statement_timeout cannot help (the statement never reaches it).

Stated outcome (docs/reliability.md):
  - every request in the outage fails with 503 database-unavailable and
    Retry-After, within the service's own bound on one answer of the
    database (statement_timeout 5 s + DB_ANSWER_MARGIN_MS 1 s, then the
    connection is dropped; a reconnect gives up after connect_timeout, 2 s):
    seconds, never nginx's 35 s;
  - /healthz answers 503 meanwhile;
  - no thread stays stuck: after the outage as many slow requests as there
    are threads run at once (each holding its thread DB_SLEEP_S in
    PostgreSQL) and all finish in one round;
  - service resumes within seconds of the relay forwarding again; no worker
    crashed; no connection leaked.
Afterwards the service is started again on the stack's unix socket.

The outage is a minute and more (OUTAGE_S 65 s): beyond every bound the
service has on a database connection, the 60 s of its keepalives
(30 s idle + 3 x 10 s) included, so that no timer of any of them can end it
by chance. DRILL_DB_OUTAGE_S shortens it for a run by hand.
"""

import os
import threading
import time

import requests

import drill
from drill import mailapi, now
from tcp_relay import Relay

OUTAGE_S = float(os.environ.get("DRILL_DB_OUTAGE_S", "65"))
AFTER_S = 6.0
# include/mailsrv_limits.h: the longest a thread waits for one answer of
# the database, and for a new connection.
DB_ANSWER_WAIT_S = 5.0 + 1.0
DB_CONNECT_TIMEOUT_S = 2.0
BOUND_S = DB_ANSWER_WAIT_S + 1.5   # margin: a loaded machine, the ASan build
RESUME_S = 5.0
DB_SLEEP_S = 2.0
MARKER = "drill all threads"


def relay_url(port):
    return ("host=127.0.0.1 port=%d dbname=mailsrv user=mailsrv_app application_name=mailsrv"
            " passfile=%s" % (port, drill.STACK_VAR / "keys" / "pgpass"))


def every_thread_serves(ids, timeout=30):
    """POOL requests at once, each holding its worker thread DB_SLEEP_S
    inside PostgreSQL: done in one round (< 2 x DB_SLEEP_S) only when every
    thread takes one. Returns (statuses, seconds)."""
    out = []
    lock = threading.Lock()

    def one(sid):
        c = mailapi.Client(session=requests.Session())
        try:
            r = c.patch("/mail-servers/%d" % sid, {"sender_name": MARKER}, timeout=timeout)
            st = r.status_code
        except requests.RequestException as e:
            st = e.__class__.__name__
        with lock:
            out.append(st)

    threads = [threading.Thread(target=one, args=(ids[i % len(ids)],))
               for i in range(drill.POOL)]
    with drill.slow_updates(MARKER, DB_SLEEP_S):
        t0 = now()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 5)
        took = now() - t0
    return out, took


def test_database_silent_for_a_minute(ids):
    relay = Relay(drill.PG_PORT)
    try:
        drill.restart_service(MAILSRV_DATABASE_URL=relay_url(relay.port))
        _drill(ids, relay)
    finally:
        relay.resume()
        drill.restart_service()
        relay.stop()


def _drill(ids, relay):
    master, workers = drill.master_pid(), drill.workers()
    log = drill.LogWatch()
    assert drill.warm_pool(), "not every worker thread holds a connection"
    assert relay.connections() >= drill.POOL, "the service does not use the relay"
    before = drill.backends()

    health = []

    def probe_health(stop):
        s = requests.Session()
        while not stop.is_set():
            t0 = now()
            try:
                r = s.get(drill.BASE_URL + "/healthz", timeout=30)
                health.append((t0, now(), r.status_code))
            except requests.RequestException as e:
                health.append((t0, now(), e.__class__.__name__))
            time.sleep(0.5)

    with drill.Load(ids, workers=4, max_seconds=OUTAGE_S + 40, timeout=40) as load:
        stop = threading.Event()
        prober = threading.Thread(target=probe_health, args=(stop,))
        prober.start()
        time.sleep(1.0)
        t_stall = now()
        relay.stall()
        time.sleep(OUTAGE_S)
        t_resume = now()
        relay.resume()
        time.sleep(AFTER_S)
        stop.set()
        prober.join(40)
    results = load.results

    # In the outage: every answer a 503 database-unavailable with
    # Retry-After, none slower than the bound.
    in_outage = [r for r in results if r.t0 >= t_stall and r.t1 <= t_resume]
    assert len(in_outage) >= max(8, OUTAGE_S / 2), "too few answers in the outage: %s" % (
        load.summary())
    bad = [r for r in in_outage if not (r.status == 503 and r.slug == "database-unavailable"
                                        and r.retry_after)]
    assert not bad, "answers in the outage other than 503 database-unavailable: %s (%s)" % (
        bad[:5], load.summary())
    overlapping = [r for r in results if r.t1 >= t_stall and r.t0 <= t_resume]
    unanswered = [r for r in overlapping if r.status is None]
    assert not unanswered, "requests without an answer: %s" % unanswered[:5]
    slow = max(overlapping, key=lambda r: r.t1 - r.t0)
    slowest = slow.t1 - slow.t0
    assert slowest <= BOUND_S, "a request took %.2f s (%s %s, started %.2f s into the outage)" % (
        slowest, slow.kind, slow.status, slow.t0 - t_stall)
    median = drill.pctl([r.t1 - r.t0 for r in in_outage], 0.5)
    last_quarter = [r for r in in_outage if r.t0 >= t_stall + 0.75 * OUTAGE_S]
    assert last_quarter, "nothing answered in the last quarter of the outage"

    # /healthz says so.
    h_out = [h for h in health if h[0] >= t_stall + BOUND_S and h[1] <= t_resume]
    assert h_out and all(h[2] == 503 for h in h_out), "healthz in the outage: %s" % h_out[:5]
    h_slowest = max(h[1] - h[0] for h in health if h[1] >= t_stall and h[0] <= t_resume)

    # Back within seconds of the relay forwarding again, and only
    # successes from then on.
    first_ok = min((r.t1 for r in results if load.ok(r) and r.t1 >= t_resume), default=None)
    assert first_ok is not None, "no success after the outage: %s" % load.summary()
    resumed = first_ok - t_resume
    assert resumed <= RESUME_S, "first success %.2f s after the relay resumed" % resumed
    late = load.failures(t_from=t_resume + RESUME_S)
    assert not late, "failures %d s after the relay resumed: %s" % (RESUME_S, late[:5])
    h_ok = min((h[1] for h in health if h[0] >= t_resume and h[2] == 200), default=None)
    assert h_ok is not None and h_ok - t_resume <= RESUME_S, "healthz not back: %s" % health[-5:]

    # No thread stuck: every one of them takes a slow request at once.
    statuses, took = every_thread_serves(ids)
    assert statuses == [200] * drill.POOL, statuses
    assert took < 2 * DB_SLEEP_S, (
        "%d slow requests took %.2f s: not every thread serves" % (drill.POOL, took))

    # No worker crashed, no connection leaked.
    assert drill.master_pid() == master and drill.workers() == workers
    assert not log.lines(r"worker process \d+ (was terminated|exited)|restarted worker")
    after = drill.wait_backends(lambda b: len(b) <= drill.POOL, timeout=15)
    assert len(after) <= drill.POOL, "%d connections for %d threads" % (len(after), drill.POOL)
    given_up = log.lines(r"no answer from the database within")

    drill.report("db-silent",
                 outage_s="%.0f" % (t_resume - t_stall), requests=len(results),
                 failed=len(load.failures()), answers_in_outage=len(in_outage),
                 median_in_outage_s="%.2f" % median, slowest_in_outage_s="%.2f" % slowest,
                 bound_s="%.1f" % BOUND_S, healthz_in_outage=503,
                 healthz_slowest_s="%.2f" % h_slowest,
                 connections_given_up=len(given_up),
                 first_success_after_resume_s="%.3f" % resumed,
                 all_threads_slow_requests="%d in %.2f s" % (drill.POOL, took),
                 connections_before=len(before), connections_after=len(after))
