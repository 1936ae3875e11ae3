"""Drill: PostgreSQL restarted under load, cleanly (`pg_ctl stop -m fast`)
and by a crash (`pg_ctl stop -m immediate`, no shutdown checkpoint, crash
recovery on start).

Stated outcome (docs/reliability.md):
  - requests during the outage get 503 problem details
    (/problems/database-unavailable) with Retry-After, quickly: none hangs;
  - the first success comes within 5 s of PostgreSQL accepting connections;
  - no worker crashed (same master and worker pids, nothing in the log);
  - no connection leaked (the service's backends afterwards are at most
    processes x threads, and every one of them is new).
"""

import threading
import time

import pytest

import drill
from drill import now

OUTAGE_S = 2.0          # how long PostgreSQL stays down
AFTER_S = 7.0           # load after PostgreSQL is back
# "Quickly, not hangs": no request in the outage waits longer than one
# connection attempt (libpq connect_timeout, DB_CONNECT_TIMEOUT_S = 2 s) and
# a margin for a loaded machine and the ASan build; the median is reported.
QUICK_S = 2.5
RECOVER_S = 5.0         # the first success after PostgreSQL accepts connections


def poll_ready(started, out, stop):
    """Record when PostgreSQL first accepts connections after `started`."""
    while not stop.is_set():
        if now() >= started and drill.pg_ready():
            out.append(now())
            return
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restart_under_load(ids, mode):
    master, workers = drill.master_pid(), drill.workers()
    log = drill.LogWatch()
    assert drill.warm_pool(), "not every worker thread holds a connection"
    before = drill.backends()

    with drill.Load(ids, workers=4, max_seconds=60) as load:
        time.sleep(1.0)
        t_stop = now()
        drill.stack("pg-stop", mode)
        t_down = now()
        assert not drill.pg_ready()
        time.sleep(OUTAGE_S)
        ready, stop = [], threading.Event()
        t_start = now()
        poller = threading.Thread(target=poll_ready, args=(t_start, ready, stop))
        poller.start()
        try:
            drill.stack("pg-start")
            poller.join(15)
        finally:
            stop.set()
        assert ready, "PostgreSQL did not accept connections after pg-start"
        t_accept = ready[0]
        time.sleep(AFTER_S)
    results = load.results

    # Every failure is a 503 database-unavailable with Retry-After: no 500,
    # no gateway error, no connection error, no timeout.
    bad = [r for r in results if not load.ok(r) and
           not (r.status == 503 and r.slug == "database-unavailable" and r.retry_after)]
    assert not bad, "failures other than 503 database-unavailable with Retry-After: %s (%s)" % (
        bad[:5], load.summary())

    # In the outage every request answered, quickly, with that 503.
    in_outage = [r for r in results if r.t0 >= t_down and r.t1 <= t_start]
    assert len(in_outage) >= 20, "too few requests in the outage: %s" % load.summary()
    assert all(r.status == 503 for r in in_outage), load.summary()
    overlapping = [r for r in results if r.t1 >= t_stop and r.t0 <= t_accept]
    slow = max(overlapping, key=lambda r: r.t1 - r.t0)
    slowest = slow.t1 - slow.t0
    assert slowest < QUICK_S, (
        "a request during the outage took %.2f s: %s %s, started %.2f s after pg-stop began"
        " (PostgreSQL down at +%.2f s, started at +%.2f s, accepting at +%.2f s)" % (
            slowest, slow.kind, slow.status, slow.t0 - t_stop, t_down - t_stop,
            t_start - t_stop, t_accept - t_stop))
    median = drill.pctl([r.t1 - r.t0 for r in overlapping], 0.5)

    # Recovery: the first success after PostgreSQL accepts connections, and
    # nothing but successes once every thread had its chance to reconnect.
    first_ok = min((r.t1 for r in results if load.ok(r) and r.t0 >= t_start), default=None)
    assert first_ok is not None, "no success after the restart: %s" % load.summary()
    recovered = first_ok - t_accept
    assert recovered <= RECOVER_S, "first success %.2f s after PostgreSQL accepted" % recovered
    late = load.failures(t_from=t_accept + RECOVER_S)
    assert not late, "failures more than %d s after the restart: %s" % (RECOVER_S, late[:5])

    # No worker crashed.
    assert drill.master_pid() == master and drill.workers() == workers
    crashes = log.lines(r"worker process \d+ (was terminated|exited)|restarted worker")
    assert not crashes, crashes

    # No connection leaked: every connection is new, and at most one per thread.
    after = drill.wait_backends(lambda b: len(b) <= drill.POOL, timeout=10)
    assert len(after) <= drill.POOL, "%d connections for %d threads" % (len(after), drill.POOL)
    assert not set(after) & set(before), "a connection survived the restart?"

    drill.report("pg-restart-%s" % mode,
                 requests=len(results), failed=len(load.failures()),
                 outage_s="%.2f" % (t_accept - t_stop),
                 outage_answers=len(overlapping),
                 median_in_outage_ms="%.1f" % (median * 1000),
                 slowest_in_outage_ms="%.0f" % (slowest * 1000),
                 first_success_after_accept_s="%.3f" % recovered,
                 connections_before=len(before), connections_after=len(after))
