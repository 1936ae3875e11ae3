"""drill.py - what every fault drill shares: the test stack's processes,
PostgreSQL as its superuser, the service's log, and a bounded background load.

The drills run against the stack that tests/run_all.sh started (the same one
as the API suite: STACK_VAR, STACK_HTTP_PORT, STACK_PG_PORT and the service's
MAILSRV_* settings come from its environment). Everything here talks to
127.0.0.1 or to unix sockets under STACK_VAR, and every process it signals is
one of the stack's, found through the pid files the stack wrote.

Sanitizer build: a drill that crashes a worker on purpose (SIGSEGV, the
PARAMS record) records the pid in $STACK_VAR/log/expected-crashes, so that
run_all.sh's sanitizer check does not count that process's report (ASan's
SEGV report for a `kill -SEGV`, or its warning for libfcgi's failed 4 GiB
allocation) as a finding.
"""

import contextlib
import itertools
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import namedtuple
from pathlib import Path
from urllib.parse import urlsplit

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "api"))

import mailapi  # noqa: E402  (the API suite's client, tokens and bodies)
from procfs import children  # noqa: E402,F401  (also used as drill.children)
import psql_session  # noqa: E402

REPO = mailapi.REPO
STACK = REPO / "scripts" / "stack.sh"
STACK_VAR = mailapi.STACK_VAR
BASE_URL = mailapi.BASE_URL
HTTP_PORT = urlsplit(BASE_URL).port or 80
PG_PORT = int(os.environ.get("STACK_PG_PORT", "55433"))
PG_SOCK = Path(os.environ.get("STACK_PG_SOCKET_DIR") or (STACK_VAR / "pg" / "run"))
PG_BIN = Path("/usr/lib/postgresql/15/bin")
LOG = STACK_VAR / "log" / "mailsrv.log"
PIDFILE = STACK_VAR / "run" / "mailsrv.pid"
SOCKET = Path(os.environ.get("MAILSRV_SOCKET") or (STACK_VAR / "run" / "mailsrv.sock"))
EXPECTED_CRASHES = STACK_VAR / "log" / "expected-crashes"
# The pool as the stack started it (tests/run_all.sh exports scripts/stack.sh env).
PROCESSES = int(os.environ["MAILSRV_PROCESSES"])
THREADS = int(os.environ["MAILSRV_THREADS"])
POOL = PROCESSES * THREADS

# include/mailsrv_limits.h
DB_LOCK_TIMEOUT_S = 2.0
DB_STATEMENT_TIMEOUT_S = 5.0
SHUTDOWN_DEADLINE_S = 10

assert urlsplit(BASE_URL).hostname == "127.0.0.1", "the drills only ever load 127.0.0.1"


def now():
    return time.monotonic()


# ---------------------------------------------------------------- the stack


def stack_env():
    env = dict(os.environ)
    env["STACK_VAR"] = str(STACK_VAR)
    env["STACK_HTTP_PORT"] = str(HTTP_PORT)
    env["STACK_PG_PORT"] = str(PG_PORT)
    return env


def stack(*args, timeout=180, env=None):
    """scripts/stack.sh ARGS with the test stack's settings (and env's on top
    of them); fails the drill with the end of its output when it fails."""
    e = stack_env()
    e.update(env or {})
    res = subprocess.run([str(STACK)] + list(args), env=e, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, "stack.sh %s failed (%d): %s" % (
        " ".join(args), res.returncode, (res.stdout + res.stderr).strip()[-800:])
    return res.stdout


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def master_pid():
    """The running master's pid (from the stack's pid file), or None."""
    try:
        lines = PIDFILE.read_text().split("\n")
        pid, binary = int(lines[0]), lines[1]
    except (OSError, ValueError, IndexError):
        return None
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None
    return pid if exe == binary and alive(pid) else None




def workers():
    m = master_pid()
    return children(m) if m else []


def healthy(timeout=2):
    try:
        return requests.get(BASE_URL + "/healthz", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_pool(deadline_s=30):
    """Wait until the master runs all its workers and /healthz answers 200."""
    deadline = now() + deadline_s
    while now() < deadline:
        if len(workers()) == PROCESSES and healthy():
            return True
        time.sleep(0.1)
    return False


def ensure_healthy():
    """Bring the stack back to a full, healthy pool: `stack.sh start` starts
    whatever is not running (PostgreSQL, the service, nginx) and leaves what
    runs alone."""
    if master_pid() and len(workers()) == PROCESSES and healthy():
        return
    stack("start")
    assert wait_pool(), "the stack did not come back to %d healthy workers" % PROCESSES


def restart_service(**env):
    """Stop the service (SIGTERM to the master: it drains and exits) and
    start it again through `stack.sh start`, with the MAILSRV_* settings in
    env over the stack's (none: the stack's own). nginx and PostgreSQL stay."""
    master = master_pid()
    if master:
        os.kill(master, signal.SIGTERM)
        deadline = now() + SHUTDOWN_DEADLINE_S + 10
        while alive(master) and now() < deadline:
            time.sleep(0.05)
        assert not alive(master), "the master did not exit after SIGTERM"
    stack("start", env=env)
    assert wait_pool(), "the service did not come back with %d workers" % PROCESSES


def expect_crash(pid, why):
    """Record a process this drill crashes on purpose (see the header)."""
    with open(EXPECTED_CRASHES, "a") as f:
        f.write("%d %s\n" % (pid, why))


# ---------------------------------------------------------------- the log


class LogWatch:
    """The service's log from the moment this was made."""

    def __init__(self):
        try:
            self.start = LOG.stat().st_size
        except OSError:
            self.start = 0

    def text(self):
        try:
            with open(LOG, "rb") as f:
                f.seek(self.start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def lines(self, pattern):
        rx = re.compile(pattern)
        return [line for line in self.text().splitlines() if rx.search(line)]

    def wait_for(self, pattern, timeout):
        deadline = now() + timeout
        while True:
            found = self.lines(pattern)
            if found or now() > deadline:
                return found
            time.sleep(0.01)


# ---------------------------------------------------------------- PostgreSQL


def psql(sql, timeout=30):
    """Run SQL as the superuser on the unix socket (root may be postgres by
    the stack's ident map). Returns rows as lists of strings."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
           "-h", str(PG_SOCK), "-p", str(PG_PORT), "-U", "postgres", "-d", "mailsrv"]
    res = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, "psql failed: %s" % res.stderr.strip()[-500:]
    return [line.split("\t") for line in res.stdout.splitlines() if line]


def pg_ready():
    res = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(PG_SOCK), "-p",
                          str(PG_PORT), "-d", "mailsrv", "-t", "1"], capture_output=True)
    return res.returncode == 0


Backend = namedtuple("Backend", "pid state wait_event_type wait_event query_start state_change "
                     "query")


def backends():
    """The service's connections: application_name 'mailsrv', role mailsrv_app."""
    rows = psql("SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),"
                " extract(epoch FROM query_start), extract(epoch FROM state_change),"
                " left(regexp_replace(query, '\\s+', ' ', 'g'), 80)"
                " FROM pg_stat_activity"
                " WHERE application_name = 'mailsrv' AND usename = 'mailsrv_app'")
    return {int(r[0]): Backend(int(r[0]), r[1], r[2], r[3], float(r[4] or 0), float(r[5] or 0),
                               r[6] if len(r) > 6 else "") for r in rows}


def wait_backends(pred, timeout=10, poll=0.05):
    deadline = now() + timeout
    while True:
        b = backends()
        if pred(b) or now() > deadline:
            return b
        time.sleep(poll)


def warm_pool(timeout=20):
    """Make every worker thread hold its connection: concurrent requests
    until PROCESSES x THREADS backends exist."""
    deadline = now() + timeout
    s = requests.Session()
    while now() < deadline:
        if len(backends()) >= POOL:
            return True
        threads = [threading.Thread(target=lambda: _quiet_get(s)) for _ in range(2 * POOL)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return len(backends()) >= POOL


def _quiet_get(session):
    try:
        requests.get(BASE_URL + "/healthz", timeout=5)
    except requests.RequestException:
        pass


@contextlib.contextmanager
def slow_updates(marker, seconds):
    """While in the block, an UPDATE of mail_server that sets sender_name to
    marker sleeps `seconds` in PostgreSQL (a trigger the superuser creates
    for the drill and drops after it): a request made slow on purpose,
    touching nothing else."""
    drop = ("DROP TRIGGER IF EXISTS drill_slow_update ON mail_server;"
            " DROP FUNCTION IF EXISTS drill_slow_update();")
    psql(drop + """
CREATE FUNCTION drill_slow_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sender_name = %s THEN
        PERFORM pg_sleep(%s);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER drill_slow_update BEFORE UPDATE ON mail_server
    FOR EACH ROW EXECUTE FUNCTION drill_slow_update();
""" % ("'" + marker.replace("'", "''") + "'", float(seconds)))
    try:
        yield
    finally:
        psql(drop)


class Session(psql_session.PsqlSession):
    """A psql session kept open (as the superuser), for holding locks while
    the service works: run() a statement and wait until it has run."""

    def __init__(self):
        super().__init__(PG_SOCK, PG_PORT)


# ---------------------------------------------------------------- load


Result = namedtuple("Result", "t0 t1 kind status slug retry_after error")


def slug_of(resp):
    if resp.headers.get("Content-Type", "").startswith("application/problem+json"):
        try:
            t = resp.json().get("type", "")
        except ValueError:
            return "(not json)"
        return t.rsplit("/", 1)[-1]
    return ""


class Load:
    """A bounded background load: `workers` threads, each with its own
    requests.Session, sending a mix of cheap requests to 127.0.0.1 until
    stop(), max_seconds or max_requests, whichever comes first. Every answer
    (or exception) is recorded with its start and end time."""

    def __init__(self, ids, workers=4, max_seconds=60, max_requests=40000, writes=True,
                 timeout=15):
        assert ids, "the load needs some servers to read"
        self.ids = list(ids)
        self.nworkers = workers
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.writes = writes
        self.timeout = timeout
        self.token = mailapi.mint_token(sub="drill-load")
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._count = 0
        self._threads = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.t_start = now()
        for i in range(self.nworkers):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        self._threads = []

    def _take(self):
        with self._lock:
            if self._count >= self.max_requests:
                return False
            self._count += 1
            return True

    def _run(self, i):
        rnd = random.Random(i)
        s = requests.Session()
        h = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        deadline = self.t_start + self.max_seconds
        while not self._stop.is_set() and now() < deadline and self._take():
            r = rnd.random()
            sid = rnd.choice(self.ids)
            if r < 0.45:
                kind, method, url, body = "get", "GET", "/api/v1/mail-servers/%d" % sid, None
            elif r < 0.75:
                kind, method, url, body = "list", "GET", "/api/v1/mail-servers?limit=5", None
            elif r < 0.9 or not self.writes:
                kind, method, url, body = "health", "GET", "/healthz", None
            else:
                kind, method, url = "patch", "PATCH", "/api/v1/mail-servers/%d" % sid
                body = b'{"sender_name": "drill %d"}' % rnd.randrange(1000000)
            hdrs = dict(h)
            if body is not None:
                hdrs["Content-Type"] = "application/merge-patch+json"
            t0 = now()
            try:
                resp = s.request(method, BASE_URL + url, data=body, headers=hdrs,
                                 timeout=self.timeout)
                res = Result(t0, now(), kind, resp.status_code, slug_of(resp),
                             resp.headers.get("Retry-After"), None)
            except requests.RequestException as e:
                res = Result(t0, now(), kind, None, "", None, e.__class__.__name__)
                time.sleep(0.01)
            with self._lock:
                self.results.append(res)
            if res.status is not None and res.status >= 500:
                time.sleep(0.005)  # a failing service is not hammered

    # -- views of the results

    def ok(self, r):
        return r.status is not None and r.status < 500

    def failures(self, t_from=None, t_to=None):
        return [r for r in self.results if not self.ok(r) and
                (t_from is None or r.t1 >= t_from) and (t_to is None or r.t0 <= t_to)]

    def successes(self, t_from=None, t_to=None):
        return [r for r in self.results if self.ok(r) and
                (t_from is None or r.t0 >= t_from) and (t_to is None or r.t1 <= t_to)]

    def in_flight_failures(self, t_gone):
        """The failures, asserted to be what a worker process that ended at
        t_gone can cost: at most one per thread of it, each nginx's 503
        upstream-unreachable, each started before the process was gone
        (polled every 5 ms, hence the 0.25 s)."""
        failed = self.failures()
        assert len(failed) <= THREADS, "%d failures: %s" % (len(failed), self.summary())
        assert all(r.status == 503 and r.slug == "upstream-unreachable" for r in failed), \
            self.summary()
        assert all(r.t0 <= t_gone + 0.25 for r in failed), \
            "failures after the process ended: %s" % failed
        return failed

    def summary(self):
        by = {}
        for r in self.results:
            key = r.status if r.status is not None else r.error
            if r.slug:
                key = "%s %s" % (key, r.slug)
            by[key] = by.get(key, 0) + 1
        return "%d requests: %s" % (len(self.results), ", ".join(
            "%s x%d" % (k, v) for k, v in sorted(by.items(), key=lambda kv: str(kv[0]))))


RUN = uuid.uuid4().hex[:8]
_names = itertools.count(1)


def unique(prefix):
    """A server name no earlier run on this stack used."""
    return "%s %s-%d" % (prefix, RUN, next(_names))


def seed(n, prefix):
    """n servers created through the API; returns their ids."""
    api = mailapi.Client(session=requests.Session())
    return [api.create(mailapi.basic_body(name=unique(prefix)))["id"] for _ in range(n)]


def report(name, **figures):
    """One line of figures per drill, in the junit XML's system-out and in
    $STACK_VAR/drill-figures.log (docs/reliability.md quotes them)."""
    line = "%s: %s" % (name, ", ".join("%s=%s" % kv for kv in figures.items()))
    print("DRILL " + line)
    with open(STACK_VAR / "drill-figures.log", "a") as f:
        f.write(line + "\n")


def pctl(values, q):
    """The q-quantile by the nearest-rank method (p99 of 300: the 297th)."""
    v = sorted(values)
    if not v:
        return float("nan")
    return v[max(0, min(len(v) - 1, math.ceil(q * len(v)) - 1))]


def kill(pid, sig):
    os.kill(pid, sig)


SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSEGV": signal.SIGSEGV, "SIGTERM": signal.SIGTERM}
