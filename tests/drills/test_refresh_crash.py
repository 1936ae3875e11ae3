"""Drill: the worker dies between the provider's token answer and its storing.

The window: a refresh called the provider, which answered with new tokens
(and, if it rotates refresh tokens, retired the old refresh token), and the
worker process dies before the new tokens are committed. The test build's
failpoint "refresh-answered" (include/failpoint.h; only the sanitizer build
that `make test` runs has it) kills the worker process with SIGKILL at
exactly that point; the drill arms it with a file under
$MAILSRV_FAILPOINT_DIR (tests/run_all.sh sets it).

Stated outcome (docs/reliability.md): the refresh request in flight fails
(nginx: 503 upstream-unreachable); the master starts a new worker; the
server's refresh lock goes with the dead connection; the stored tokens are
the old ones, untouched; and the next call settles it with at most one more
provider call: with a provider that rotates refresh tokens (the old one is
now retired: reuse, so the provider refuses it and revokes the family) the
server becomes reauthorization_required; with one that does not rotate, the
next call gets new tokens and the server stays connected. No retry loop: the
service makes no provider call of its own afterwards.
"""

import os
import time
from pathlib import Path

import pytest

import drill
from drill import mailapi, now
import oauth2_support
from oauth2_support import refresh

FAILPOINT = "refresh-answered"
QUIET_S = 3.0   # afterwards, no provider call of the service's own for this long


def failpoint_dir():
    d = os.environ.get("MAILSRV_FAILPOINT_DIR")
    assert d, ("MAILSRV_FAILPOINT_DIR is not set: this drill needs the test build's failpoints"
               " (tests/run_all.sh sets it; see docs/reliability.md, running a drill alone)")
    return Path(d)


def calls(p):
    return p.stats()["token_calls"]


def held_refresh_locks():
    return int(drill.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                          " AND classid = 1868657012 AND granted")[0][0])


def test_production_build_has_no_failpoint():
    """The failpoint is in the sanitizer build the drills run, and only there."""
    prod = (drill.REPO / "build" / "mailsrv").read_bytes()
    assert b"MAILSRV_FAILPOINT_DIR" not in prod, "build/mailsrv contains the failpoints"
    running = Path(os.readlink("/proc/%d/exe" % drill.master_pid())).read_bytes()
    assert b"MAILSRV_FAILPOINT_DIR" in running, (
        "the running service has no failpoints: run the drills against build/asan/mailsrv")


@pytest.mark.parametrize("rotation", ["rotating", "not-rotating"])
def test_worker_dies_between_answer_and_commit(api, rotation):
    fp_dir = failpoint_dir()
    p = oauth2_support.standin()
    p.client_id = "client-drill-%s" % drill.RUN
    p.client_secret = mailapi.secret("sk")
    p.reset(p.client_id, p.client_secret)
    if rotation == "not-rotating":
        p.mode("no_refresh")   # answers keep the old refresh token valid
    try:
        _drill(api, p, fp_dir, rotation)
    finally:
        p.mode("normal")
        try:
            (fp_dir / FAILPOINT).unlink()
        except FileNotFoundError:
            pass


def _drill(api, p, fp_dir, rotation):
    s = oauth2_support.create_server(
        api, p, name=drill.unique("drill refresh crash"), access_token=mailapi.secret("at"),
        refresh_token=p.seed())
    sid = s["id"]
    master, workers = drill.master_pid(), drill.workers()

    # Arm: a file the service's user may remove.
    fp_dir.mkdir(mode=0o700, exist_ok=True)
    st = os.stat("/proc/%d" % workers[0])
    os.chown(fp_dir, st.st_uid, st.st_gid)
    (fp_dir / FAILPOINT).touch()
    os.chown(fp_dir / FAILPOINT, st.st_uid, st.st_gid)

    log = drill.LogWatch()
    c0 = calls(p)
    t0 = now()
    r = refresh(api, sid)
    t_answer = now()
    # The worker died in the window: nginx answers for it.
    mailapi.problem(r, 503, "upstream-unreachable")
    fired = log.wait_for(r"failpoint %s: the worker process ends now" % FAILPOINT, 5)
    assert len(fired) == 1, log.text()[-800:]
    victim = int(fired[0].split("[", 1)[1].split("]", 1)[0])
    assert victim in workers
    assert not (fp_dir / FAILPOINT).exists()
    assert calls(p) == c0 + 1, "the provider did not answer the crashed refresh"
    died = log.wait_for(r"worker process %d was terminated by signal 9" % victim, 5)
    assert died, log.text()[-800:]

    # A new worker; the lock went with the dead connection; nothing stored.
    assert drill.wait_pool(), "no full pool after the crash"
    assert drill.master_pid() == master
    t_lock = now()
    while held_refresh_locks() and now() < t_lock + 5:
        time.sleep(0.02)
    assert held_refresh_locks() == 0, "the dead worker's refresh lock is still held"
    lock_gone_ms = (now() - t_answer) * 1000
    after_crash = api.fetch(sid)
    assert after_crash["version"] == s["version"], "something was stored by the dead refresh"
    assert after_crash["oauth2_status"] == s["oauth2_status"]

    # No retry of the service's own.
    time.sleep(QUIET_S)
    assert calls(p) == c0 + 1, "the service called the provider by itself after the crash"

    # The next call settles it, with one provider call.
    r = refresh(api, sid)
    assert calls(p) == c0 + 2, "the next refresh made %d provider calls" % (calls(p) - c0 - 1)
    if rotation == "rotating":
        body = mailapi.problem(r, 502, "oauth2-provider-error")
        assert body["error_code"] == "invalid_grant", mailapi.describe(r)
        rep = api.fetch(sid)
        assert rep["oauth2_status"] == "reauthorization_required", rep
        assert p.stats()["reuse_detected"] >= 1
    else:
        assert r.status_code == 200, mailapi.describe(r)
        rep = r.json()
        assert rep["oauth2_status"] == "connected" and rep["access_token_expires_at"], rep

    # And nothing more: no loop.
    time.sleep(QUIET_S)
    assert calls(p) == c0 + 2, "provider calls after the settling call"

    drill.report("refresh-crash-%s" % rotation,
                 crashed_answer="503 upstream-unreachable",
                 crashed_request_s="%.2f" % (t_answer - t0),
                 lock_released_after_ms="%.0f" % lock_gone_ms,
                 provider_calls_crashed=1, provider_calls_next=1,
                 provider_calls_after=0,
                 next_answer="%d" % r.status_code, status_after=rep["oauth2_status"])
