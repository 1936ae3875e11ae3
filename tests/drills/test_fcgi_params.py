"""Drill: a FastCGI PARAMS record with huge lengths, sent straight to the
service's socket by a process that is not nginx (libfcgi 2.4.2 asserts on the
failed allocation and the whole process dies: docs/design.md, "Library traps").

Stated outcome (docs/reliability.md):
  - from a user outside the socket's group (nobody): refused by the
    socket's permissions (connect() fails with EACCES), nothing dies;
  - as nginx's user (www-data), who may connect: the process that takes the
    record dies, the master restarts it within 2 s, and the other process
    keeps serving; only the dead process's in-flight requests may fail.

The raw client is tests/drills/fcgi_raw.py, fed to `python3 -` on stdin under
runuser, so the other user needs no access to the test tree.
"""

import grp
import os
import pwd
import stat
import subprocess
import time

import drill
from drill import now

RAW = drill.HERE / "fcgi_raw.py"
BACK_WITHIN_S = 2.0


def raw_as(user, kind="huge"):
    res = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-",
                          str(drill.SOCKET), kind],
                         input=RAW.read_text(), capture_output=True, text=True, timeout=30,
                         cwd="/")
    assert res.returncode == 0, res.stderr[-500:]
    return res.stdout.strip()


def in_group(user, gid):
    pw = pwd.getpwnam(user)
    return pw.pw_gid == gid or user in grp.getgrgid(gid).gr_mem


def test_socket_refuses_other_users():
    st = drill.SOCKET.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert not in_group("nobody", st.st_gid), "nobody is in the socket's group"
    assert in_group("www-data", st.st_gid), "nginx's user is not in the socket's group"
    workers = drill.workers()
    log = drill.LogWatch()

    assert raw_as("nobody") == "EACCES"
    assert raw_as("nobody", "normal") == "EACCES"
    # The socket itself answers a well-formed request from nginx's user.
    out = raw_as("www-data", "normal")
    assert out.startswith("closed ") and int(out.split()[1]) > 0, out

    time.sleep(0.3)
    assert drill.workers() == workers
    assert not log.lines(r"was terminated|exited with status")
    drill.report("fcgi-params-other-user", user="nobody", answer="EACCES",
                 socket_mode=oct(stat.S_IMODE(st.st_mode)),
                 socket_group=grp.getgrgid(st.st_gid).gr_name)


def test_huge_params_from_nginx_user_costs_one_process(ids):
    master, workers = drill.master_pid(), drill.workers()
    log = drill.LogWatch()
    drill.warm_pool()

    with drill.Load(ids, workers=4, max_seconds=60) as load:
        time.sleep(1.0)
        t_send = now()
        out = raw_as("www-data")
        # Which process took it? The one that is gone.
        dead, t_gone = None, None
        while now() < t_send + 5 and dead is None:
            gone = [p for p in workers if not drill.alive(p)]
            if gone:
                dead, t_gone = gone[0], now()
            time.sleep(0.005)
        assert dead is not None, "no worker process died (raw client: %s)" % out
        drill.expect_crash(dead, "test_fcgi_params huge PARAMS record")
        new, t_ready = None, None
        while now() < t_gone + 10 and t_ready is None:
            fresh = [p for p in drill.children(master) if p not in workers]
            if fresh:
                new = fresh[0]
                if log.lines(r"\[%d\] LOG: worker process ready" % new):
                    t_ready = now()
            time.sleep(0.005)
        time.sleep(2.0)

    assert out.startswith("closed") or out.startswith("error"), out
    assert t_ready is not None, "no new worker became ready: %s" % log.text()[-800:]
    back = t_ready - t_gone
    assert back <= BACK_WITHIN_S, "the new worker was ready %.2f s after the crash" % back

    died = log.lines(r"worker process %d (was terminated by signal|exited with status)" % dead)
    assert died and "signal 6" in died[0], died  # libfcgi's assert: SIGABRT
    assert log.lines(r"fcgiapp\.c.*Assertion"), "no libfcgi assertion in the log"

    failed = load.in_flight_failures(t_gone)
    served = load.successes(t_from=t_send, t_to=t_ready)
    assert served, "nothing was served while the process was restarted"
    assert len(load.successes(t_from=t_ready)) > 50, load.summary()

    assert drill.master_pid() == master
    assert sorted(drill.workers()) == sorted([p for p in workers if p != dead] + [new])

    drill.report("fcgi-params-nginx-user", user="www-data", died=died[0].split(": ", 1)[-1],
                 requests=len(load.results), failed=len(failed),
                 dead_after_send_ms="%.0f" % ((t_gone - t_send) * 1000),
                 ready_after_death_ms="%.0f" % (back * 1000), served_during_restart=len(served))
