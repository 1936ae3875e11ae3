"""Drill: every connection of the service terminated with
pg_terminate_backend, under load.

Stated outcome (docs/reliability.md): each connection reconnects on its next use,
and at most one request fails per killed connection (the one that finds it
dead). The service does better for reads: an idle connection the server
closed is found before use (one poll), and a read whose connection is
terminated under it runs once more on a new connection (db_exec,
db_statement_reads_only), so only writes may fail: the service retries nothing that might
have been committed. The failures are 503 database-unavailable with
Retry-After; no worker crashes; afterwards the service holds one new
connection per thread and none of the old ones.
"""

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

import drill
from drill import now


def counters():
    """The service's unlabelled counters from /metrics (whole service)."""
    r = requests.get(drill.BASE_URL + "/metrics", timeout=10)
    assert r.status_code == 200, r.status_code
    return {s.name: s.value for f in text_string_to_metric_families(r.text)
            for s in f.samples if not s.labels}


def test_terminate_every_connection(ids):
    master, workers = drill.master_pid(), drill.workers()
    log = drill.LogWatch()
    assert drill.warm_pool(), "not every worker thread holds a connection"
    before = counters()

    with drill.Load(ids, workers=4, max_seconds=60) as load:
        time.sleep(1.0)
        t_kill = now()
        # MATERIALIZED: the filter first, then the function (a plain WHERE
        # may call pg_terminate_backend before the cheaper tests).
        killed = [int(r[0]) for r in drill.psql(
            "WITH s AS MATERIALIZED (SELECT pid FROM pg_stat_activity"
            " WHERE application_name = 'mailsrv' AND usename = 'mailsrv_app')"
            " SELECT pid FROM s WHERE pg_terminate_backend(pid)")]
        # Long enough for the 4 load threads to reach every worker thread
        # (connections are handed to threads in turn) several times.
        time.sleep(4.0)
    assert len(killed) == drill.POOL, "terminated %d connections, expected %d" % (
        len(killed), drill.POOL)

    failed = load.failures(t_from=t_kill)
    assert len(failed) <= len(killed), "%d failed requests for %d killed connections: %s" % (
        len(failed), len(killed), load.summary())
    assert all(r.status == 503 and r.slug == "database-unavailable" and r.retry_after
               for r in failed), load.summary()
    failed_reads = [r for r in failed if r.kind != "patch"]
    assert not failed_reads, "%d reads failed (%s): %s" % (
        len(failed_reads), ", ".join(sorted({r.kind for r in failed_reads})), load.summary())
    assert not load.failures(t_to=t_kill), "failures before the drill: %s" % load.summary()
    last_failure = max((r.t1 for r in failed), default=t_kill)

    # Each thread reconnected: as many connections as threads, all new.
    # Threads the load has not reached yet reconnect on their next request.
    assert drill.warm_pool(), "not every thread reconnected"
    after = drill.backends()
    assert len(after) == drill.POOL, "%d connections for %d threads" % (len(after), drill.POOL)
    assert not set(after) & set(killed), "a terminated connection is still listed"

    assert drill.master_pid() == master and drill.workers() == workers
    # The metrics saw the same: a new connection per killed one, and every
    # read run again that the log names.
    metrics = counters()
    reconnects = metrics["mailsrv_db_reconnects_total"] - before["mailsrv_db_reconnects_total"]
    assert reconnects >= len(killed), (reconnects, len(killed))
    reruns = metrics["mailsrv_db_reads_rerun_total"] - before["mailsrv_db_reads_rerun_total"]
    assert reruns == len(log.lines(r"running \S+ again on a new connection")), reruns
    assert not log.lines(r"worker process \d+ (was terminated|exited)|restarted worker")

    drill.report("pg-terminate", requests=len(load.results), killed=len(killed),
                 failed=len(failed), failed_reads=len(failed_reads),
                 reads_run_again=len(log.lines(r"running \S+ again on a new connection")),
                 last_failure_after_kill_s="%.3f" % (last_failure - t_kill),
                 connections_after=len(after))
