"""support.py - what the two-hosts tests share: an API client for one base
URL (a host's nginx or the front) that may send from another loopback
address, the test stack's PostgreSQL as its superuser, the nginx access
logs, a steady background load of GETs, and the figures line.

Nothing here prints a token or a secret: the tests compare values and show
statuses, counts and ids.
"""

import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections import namedtuple
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

import layout
import mailapi
import psql_session

PG_SOCK = os.environ.get("STACK_PG_SOCKET_DIR") or str(layout.STACK_VAR / "pg" / "run")
PG_PORT = os.environ.get("STACK_PG_PORT", "55433")
FIGURES = layout.STACK_VAR / "twohosts-figures.log"
RUN = uuid.uuid4().hex[:8]


def now():
    return time.monotonic()


class _FromAddress(HTTPAdapter):
    """Connections from a given local address (127.0.0.2: a client the
    front sees as another address than the tests' 127.0.0.1)."""

    def __init__(self, source, **kw):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kw)


class Api:
    """Requests to one base URL (https://127.0.0.1:port), verified against
    the layout's test CA, with the administrator's token."""

    def __init__(self, name, base, ca, token=None, source=None):
        self.name = name
        self.base = base
        self.token = token if token is not None else mailapi.mint_token(sub="two-hosts")
        self.ca = ca
        self.session = requests.Session()
        if source:
            self.session.mount("https://", _FromAddress(source))

    def request(self, method, path, body=None, ctype="application/json", timeout=30, **kw):
        headers = {"Authorization": "Bearer " + self.token,
                   "Accept": "application/json, application/problem+json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        # verify per request: REQUESTS_CA_BUNDLE would override a session's.
        return self.session.request(method, self.base + "/api/v1" + path, data=data,
                                    headers=headers, timeout=timeout, allow_redirects=False,
                                    verify=self.ca, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def create(self, body):
        r = self.request("POST", "/mail-servers", body)
        assert r.status_code == 201, "%s: create answered %d" % (self.name, r.status_code)
        return r.json()

    def fetch(self, sid):
        r = self.get("/mail-servers/%d" % sid)
        assert r.status_code == 200, "%s: GET %d answered %d" % (self.name, sid, r.status_code)
        return r.json()


def unique(prefix):
    return "%s %s-%s" % (prefix, RUN, uuid.uuid4().hex[:6])


def psql(sql, timeout=30):
    """SQL as the superuser over the stack's socket (root may be postgres by
    the stack's ident map); rows as lists of strings."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
           "-h", PG_SOCK, "-p", PG_PORT, "-U", "postgres", "-d", "mailsrv"]
    res = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, "psql failed: %s" % mailapi.redact(res.stderr.strip()[-500:])
    return [line.split("\t") for line in res.stdout.splitlines() if line]


class PsqlSession(psql_session.PsqlSession):
    """One psql kept open as the superuser, for sampling often without a new
    connection each time: query() runs a statement and returns its rows."""

    def __init__(self):
        super().__init__(PG_SOCK, PG_PORT)


# ---------------------------------------------------------------- access logs

# A host's line (log_format mailsrv): time request_id client "METHOD uri" status ...
HostLine = namedtuple("HostLine", "request_id client method uri status")
# The front's (log_format mailsrv_lb): time client "METHOD uri" status bytes
# time upstream_addr[, addr] upstream_status[, status]
FrontLine = namedtuple("FrontLine", "client method uri status upstreams upstream_statuses")


class LogTail:
    """An access log from the moment this was made (or from mark())."""

    def __init__(self, path):
        self.path = Path(path)
        self.mark()

    def mark(self):
        try:
            self.start = self.path.stat().st_size
        except OSError:
            self.start = 0

    def raw(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.start)
                data = f.read()
        except OSError:
            return []
        # a line being written is not read yet
        return data.decode("utf-8", "replace").split("\n")[:-1]


def host_lines(tail):
    out = []
    for line in tail.raw():
        head, _, rest = line.partition(' "')
        req, _, tail_ = rest.partition('" ')
        f = head.split()
        method, _, uri = req.partition(" ")
        out.append(HostLine(f[1], f[2], method, uri, int(tail_.split()[0])))
    return out


def front_lines(tail):
    out = []
    for line in tail.raw():
        head, _, rest = line.partition(' "')
        req, _, tail_ = rest.partition('" ')
        method, _, uri = req.partition(" ")
        words = tail_.split()
        status, more = int(words[0]), words[3:]
        addrs = [w.rstrip(",") for w in more if ":" in w]
        stats = [w.rstrip(",") for w in more if ":" not in w]
        out.append(FrontLine(head.split()[1], method, uri, status, addrs, stats))
    return out


# ---------------------------------------------------------------- load

Result = namedtuple("Result", "t0 t1 status error")


class Load:
    """A steady load of GETs through one base URL: `workers` threads, each
    with its own session (kept connections), a GET of a server or of a list
    page every `pause` seconds, until stop() or max_seconds. Every answer
    (or exception) is kept with its times."""

    def __init__(self, base, ca, ids, workers=4, pause=0.005, max_seconds=90):
        self.base, self.ca, self.ids = base, ca, list(ids)
        self.workers, self.pause, self.max_seconds = workers, pause, max_seconds
        self.token = mailapi.mint_token(sub="two-hosts-load")
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def __enter__(self):
        self.t_start = now()
        for i in range(self.workers):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)
        self._threads = []

    def _run(self, i):
        rnd = random.Random(i)
        s = requests.Session()
        h = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        deadline = self.t_start + self.max_seconds
        while not self._stop.is_set() and now() < deadline:
            if rnd.random() < 0.7:
                path = "/api/v1/mail-servers/%d" % rnd.choice(self.ids)
            else:
                path = "/api/v1/mail-servers?limit=5"
            t0 = now()
            try:
                r = s.get(self.base + path, headers=h, timeout=20, verify=self.ca)
                res = Result(t0, now(), r.status_code, None)
            except requests.RequestException as e:
                res = Result(t0, now(), None, e.__class__.__name__)
            with self._lock:
                self.results.append(res)
            time.sleep(self.pause)

    def failures(self):
        with self._lock:
            return [r for r in self.results if r.status != 200]

    def count(self):
        with self._lock:
            return len(self.results)

    def summary(self):
        by = {}
        with self._lock:
            for r in self.results:
                k = r.status if r.status is not None else r.error
                by[k] = by.get(k, 0) + 1
        return "%d requests: %s" % (sum(by.values()), ", ".join(
            "%s x%d" % kv for kv in sorted(by.items(), key=lambda kv: str(kv[0]))))


def report(name, **figures):
    """One line of figures per test: in the output (junit's system-out) and
    in $STACK_VAR/twohosts-figures.log, which tests/run_all.sh prints."""
    line = "%s: %s" % (name, ", ".join("%s=%s" % kv for kv in figures.items()))
    print("TWOHOSTS " + line)
    with open(FIGURES, "a") as f:
        f.write(line + "\n")
