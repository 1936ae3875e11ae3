#!/usr/bin/python3
"""soak.py - `make soak`: a bounded mixed load against a stack of its own,
watching that the service's resources stay flat.

It starts its own stack (scripts/stack.sh with STACK_VAR=<repo>/var/soak, or
/var/tmp/mailsrv-soak-* when PostgreSQL or nginx's user cannot reach the
checkout; nginx on 38080, PostgreSQL on 55490; the production build
build/mailsrv), warms up, then runs a mixed load (every endpoint but the
OAuth ones: list with search and sort, get, default, create, replace, patch
with and without If-Match, delete, batch delete, /healthz, and refused
requests: 400, 401, 404, 412, 415, 422) for SOAK_SECONDS, sampling every
SOAK_INTERVAL seconds:
  - resident memory (VmRSS) of the master and of each worker process,
  - their open file descriptors (/proc/<pid>/fd),
  - the service's PostgreSQL connections (pg_stat_activity,
    application_name 'mailsrv').
It prints a table and a verdict, writes a JSON summary
($STACK_VAR/soak-summary.json, or SOAK_JSON), and stops the stack.

Flat means, for each series (total worker RSS, master RSS, total descriptors,
connections): the average of the last third of the samples is within the
tolerance of the average of the first third (RSS: 10 % and at least 2 MiB;
descriptors: +4 or 10 %, as a sample also counts the requests in flight;
connections: +2), and the series does not grow
monotonically (never falling, ending above its start by more than the
tolerance). Also: no worker restarted, no 5xx answer, and connections never
above processes x threads. Exit status 0 when all of that holds.

Settings: SOAK_SECONDS (300), SOAK_INTERVAL (10), SOAK_WARMUP (20),
SOAK_CLIENTS (load threads, 8), SOAK_HTTP_PORT (38080), SOAK_PG_PORT (55490),
SOAK_STACK_VAR.
"""

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "scripts" / "stack.sh"


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip().isdigit() else default


SECONDS = env_int("SOAK_SECONDS", 300)
INTERVAL = env_int("SOAK_INTERVAL", 10)
WARMUP = env_int("SOAK_WARMUP", 20)
CLIENTS = env_int("SOAK_CLIENTS", 8)
HTTP_PORT = env_int("SOAK_HTTP_PORT", 38080)
PG_PORT = env_int("SOAK_PG_PORT", 55490)


def reachable_by(user, path):
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)],
                          capture_output=True).returncode == 0


def default_var():
    if os.environ.get("SOAK_STACK_VAR"):
        return Path(os.environ["SOAK_STACK_VAR"])
    if len(str(REPO)) <= 60 and reachable_by("postgres", REPO) and reachable_by("www-data", REPO):
        return REPO / "var" / "soak"
    return Path("/var/tmp/mailsrv-soak-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:12])


STACK_VAR = default_var()
MARK = STACK_VAR / ".soak-stack"

# The stack's environment, and the API suite's helpers pointed at it.
for v in [k for k in os.environ if k.startswith("MAILSRV_")] + \
        ["STACK_MAILSRV_BIN", "STACK_MAILSRV_TOOL", "STACK_PROCESSES", "STACK_THREADS",
         "ASAN_OPTIONS", "UBSAN_OPTIONS"]:
    os.environ.pop(v, None)
os.environ.update(STACK_VAR=str(STACK_VAR), STACK_HTTP_PORT=str(HTTP_PORT),
                  STACK_PG_PORT=str(PG_PORT),
                  MAILSRV_TEST_URL="http://127.0.0.1:%d" % HTTP_PORT)
sys.path.insert(0, str(REPO / "tests" / "api"))
sys.path.insert(0, str(REPO / "tests" / "drills"))
BASE = os.environ["MAILSRV_TEST_URL"]


def stack(*args, check=True):
    res = subprocess.run([str(STACK)] + list(args), capture_output=True, text=True,
                         timeout=300)
    if check and res.returncode != 0:
        sys.stderr.write(res.stdout[-2000:] + res.stderr[-2000:])
        raise SystemExit("soak: stack.sh %s failed" % " ".join(args))
    return res.stdout


# ---------------------------------------------------------------- sampling


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def pg_connections(sock_dir):
    res = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-h", sock_dir, "-p", str(PG_PORT), "-U", "postgres",
         "-d", "mailsrv", "-c",
         "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mailsrv'"
         " AND usename = 'mailsrv_app'"], capture_output=True, text=True, timeout=30)
    return int(res.stdout.strip()) if res.returncode == 0 else -1


# ---------------------------------------------------------------- load


class Mix:
    """The mixed load: CLIENTS threads, each its own session."""

    def __init__(self, mailapi, ids):
        self.m = mailapi
        self.token = mailapi.mint_token(sub="soak")
        self.ids = list(ids)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counts = {}
        self.total = 0
        self.errors = []

    def count(self, what, status):
        with self.lock:
            key = "%s %s" % (what, status)
            self.counts[key] = self.counts.get(key, 0) + 1
            self.total += 1
            if status is None or status >= 500:
                self.errors.append(key)

    def run(self, seed):
        import requests
        rnd = random.Random(seed)
        s = requests.Session()
        auth = {"Authorization": "Bearer " + self.token}
        js = dict(auth, **{"Content-Type": "application/json"})
        mp = dict(auth, **{"Content-Type": "application/merge-patch+json"})
        mine = []  # servers this thread created and may delete
        n = 0
        while not self.stop.is_set():
            n += 1
            r = rnd.random()
            sid = rnd.choice(self.ids)
            try:
                if r < 0.25:
                    q = rnd.choice(["", "relay", "soak", "example", "%", "_x"])
                    sort = rnd.choice(["name", "-port", "created_at", "-updated_at",
                                       "sender_email", "is_default"])
                    resp = s.get(BASE + "/api/v1/mail-servers", headers=auth, timeout=30,
                                 params={"q": q, "sort": sort, "limit": rnd.choice([5, 50, 200]),
                                         "offset": rnd.choice([0, 10])})
                    what = "list"
                elif r < 0.45:
                    resp = s.get(BASE + "/api/v1/mail-servers/%d" % sid, headers=auth, timeout=30)
                    what = "get"
                elif r < 0.50:
                    resp = s.get(BASE + "/api/v1/mail-servers/default", headers=auth, timeout=30)
                    what = "default"
                elif r < 0.57:
                    body = self.m.oauth_body(name="soak %d-%d-%d" % (seed, n, rnd.randrange(1 << 30))) \
                        if rnd.random() < 0.3 else \
                        self.m.basic_body(name="soak %d-%d-%d" % (seed, n, rnd.randrange(1 << 30)))
                    resp = s.post(BASE + "/api/v1/mail-servers", headers=js, timeout=30,
                                  data=json.dumps(body))
                    what = "create"
                    if resp.status_code == 201:
                        mine.append(resp.json()["id"])
                elif r < 0.67:
                    body = {"sender_name": "soak %d" % rnd.randrange(1000),
                            "is_default": rnd.random() < 0.2}
                    if rnd.random() < 0.3:
                        body["port"] = rnd.choice([25, 465, 587, 2525])
                    h = dict(mp)
                    if rnd.random() < 0.3:
                        h["If-Match"] = '"%d"' % rnd.randrange(1, 5)
                    resp = s.patch(BASE + "/api/v1/mail-servers/%d" % sid, headers=h, timeout=30,
                                   data=json.dumps(body))
                    what = "patch"
                elif r < 0.72:
                    body = self.m.basic_body(name="soak fixed %d" % sid, port=rnd.choice([25, 587]))
                    resp = s.put(BASE + "/api/v1/mail-servers/%d" % sid, headers=js, timeout=30,
                                 data=json.dumps(body))
                    what = "put"
                elif r < 0.79 and mine:
                    victim = mine.pop(rnd.randrange(len(mine)))
                    if rnd.random() < 0.5:
                        resp = s.delete(BASE + "/api/v1/mail-servers/%d" % victim, headers=auth,
                                        timeout=30)
                        what = "delete"
                    else:
                        more = mine[:3]
                        del mine[:3]
                        resp = s.post(BASE + "/api/v1/mail-servers/batch-delete", headers=js,
                                      timeout=30, data=json.dumps({"ids": [victim] + more + [10 ** 12]}))
                        what = "batch"
                elif r < 0.85:
                    resp = s.get(BASE + "/healthz", timeout=30)
                    what = "health"
                else:
                    what, resp = self.refused(s, rnd, auth, js, mp, sid)
                self.count(what, resp.status_code)
            except requests.RequestException as e:
                self.count("error " + e.__class__.__name__, None)
                time.sleep(0.05)
        # Leave the table as it was found.
        for i in range(0, len(mine), 500):
            try:
                s.post(BASE + "/api/v1/mail-servers/batch-delete", headers=js, timeout=30,
                       data=json.dumps({"ids": mine[i:i + 500]}))
            except requests.RequestException:
                pass

    def refused(self, s, rnd, auth, js, mp, sid):
        k = rnd.randrange(7)
        if k == 0:
            return "400", s.get(BASE + "/api/v1/mail-servers?limit=0", headers=auth, timeout=30)
        if k == 1:
            return "401", s.get(BASE + "/api/v1/mail-servers", timeout=30,
                                headers={"Authorization": "Bearer x.y.z"})
        if k == 2:
            return "404", s.get(BASE + "/api/v1/mail-servers/999999999", headers=auth, timeout=30)
        if k == 3:
            return "412", s.patch(BASE + "/api/v1/mail-servers/%d" % sid, timeout=30,
                                  headers=dict(mp, **{"If-Match": '"999999"'}), data="{}")
        if k == 4:
            return "415", s.post(BASE + "/api/v1/mail-servers", data="x", timeout=30,
                                 headers=dict(auth, **{"Content-Type": "text/plain"}))
        if k == 5:
            return "422", s.post(BASE + "/api/v1/mail-servers", headers=js, timeout=30,
                                 data=json.dumps({"name": "", "port": 0, "auth_type": "x"}))
        return "400", s.post(BASE + "/api/v1/mail-servers", headers=js, timeout=30,
                             data='{"name": "a", "name": "b"}')


# ---------------------------------------------------------------- verdict


def third_averages(series):
    n = len(series)
    k = max(1, n // 3)
    first, last = series[:k], series[-k:]
    return sum(first) / len(first), sum(last) / len(last)


def judge(name, series, tol_abs, tol_rel=0.0):
    a, b = third_averages(series)
    tol = max(tol_abs, a * tol_rel)
    monotonic = len(series) >= 4 and all(y >= x for x, y in zip(series, series[1:])) and \
        series[-1] - series[0] > tol
    flat = b - a <= tol and not monotonic
    return {"series": name, "first_third_avg": round(a, 1), "last_third_avg": round(b, 1),
            "growth": round(b - a, 1), "tolerance": round(tol, 1), "monotonic": monotonic,
            "min": min(series), "max": max(series), "flat": flat}


# ---------------------------------------------------------------- main


def main():
    if MARK.exists():
        stack("stop", check=False)
        shutil.rmtree(STACK_VAR)
    if not STACK_VAR.exists():
        STACK_VAR.mkdir(parents=True)
        MARK.touch()
    print("soak: stack in %s (http %d, postgresql %d), %d s of load, a sample every %d s"
          % (STACK_VAR, HTTP_PORT, PG_PORT, SECONDS, INTERVAL), flush=True)
    summary = {"ok": False}
    try:
        stack("start")
        env = stack("env")
        for line in env.splitlines():
            if line.startswith("export "):
                k, _, v = line[7:].partition("=")
                os.environ[k] = subprocess.run(["bash", "-c", "printf %s " + v],
                                               capture_output=True, text=True).stdout
        import mailapi
        import drill  # the drills' /proc helpers (children of the master)
        sock_dir = os.environ["STACK_PG_SOCKET_DIR"]
        procs = int(os.environ["MAILSRV_PROCESSES"])
        threads = int(os.environ["MAILSRV_THREADS"])
        master = int((STACK_VAR / "run" / "mailsrv.pid").read_text().split()[0])
        workers0 = drill.children(master)

        api = mailapi.Client()
        ids = [api.create(mailapi.basic_body(name="soak seed %d" % i))["id"] for i in range(30)]
        ids += [api.create(mailapi.oauth_body(name="soak seed oauth %d" % i))["id"]
                for i in range(10)]

        mix = Mix(mailapi, ids)
        pool = [threading.Thread(target=mix.run, args=(i,), daemon=True) for i in range(CLIENTS)]
        t0 = time.monotonic()
        for t in pool:
            t.start()
        time.sleep(WARMUP)

        rows = []
        last_total, last_t = 0, t0  # the first sample's rate: over the warm-up
        header = "%6s %8s %10s %10s %10s %6s %6s %6s" % (
            "t(s)", "req/s", "master KiB", "workers KiB", "max wkr KiB", "fds", "pgconn", "5xx")
        print(header, flush=True)
        start = time.monotonic()
        nsamples = SECONDS // INTERVAL + 1
        for i in range(nsamples):
            time.sleep(max(0.0, start + i * INTERVAL - time.monotonic()))
            now = time.monotonic()
            workers = drill.children(master)
            rss_w = [rss_kib(p) for p in workers]
            sample = {
                "t": round(now - t0, 1),
                "rps": round((mix.total - last_total) / max(0.001, now - last_t), 1),
                "master_rss_kib": rss_kib(master),
                "workers_rss_kib": sum(rss_w),
                "max_worker_rss_kib": max(rss_w) if rss_w else 0,
                "fds": nfds(master) + sum(nfds(p) for p in workers),
                "pg_connections": pg_connections(sock_dir),
                "errors_5xx": len(mix.errors),
                "workers": workers,
            }
            last_total, last_t = mix.total, now
            rows.append(sample)
            print("%6.0f %8.0f %10d %10d %10d %6d %6d %6d" % (
                sample["t"], sample["rps"], sample["master_rss_kib"], sample["workers_rss_kib"],
                sample["max_worker_rss_kib"], sample["fds"], sample["pg_connections"],
                sample["errors_5xx"]), flush=True)
        mix.stop.set()
        for t in pool:
            t.join(60)

        pool_max = procs * threads
        verdicts = [
            judge("workers_rss_kib", [r["workers_rss_kib"] for r in rows], 2048, 0.10),
            judge("master_rss_kib", [r["master_rss_kib"] for r in rows], 2048, 0.10),
            judge("fds", [r["fds"] for r in rows], 4, 0.10),
            judge("pg_connections", [r["pg_connections"] for r in rows], 2),
        ]
        restarted = any(r["workers"] != workers0 for r in rows)
        conn_ok = all(0 <= r["pg_connections"] <= pool_max for r in rows)
        flat = all(v["flat"] for v in verdicts)
        ok = flat and not restarted and not mix.errors and conn_ok and len(rows) >= 3
        summary = {
            "ok": ok, "seconds": SECONDS, "interval": INTERVAL, "warmup": WARMUP,
            "clients": CLIENTS, "processes": procs, "threads": threads,
            "requests": mix.total, "requests_per_second": round(mix.total / (time.monotonic() - t0), 1),
            "answers": dict(sorted(mix.counts.items())), "errors_5xx": len(mix.errors),
            "workers_restarted": restarted, "connections_within_pool": conn_ok,
            "verdicts": verdicts, "samples": rows,
        }
        print()
        for v in verdicts:
            print("soak: %-16s first third %10.1f  last third %10.1f  growth %+8.1f"
                  " (tolerance %.1f)%s  %s" % (
                      v["series"], v["first_third_avg"], v["last_third_avg"], v["growth"],
                      v["tolerance"], ", grows monotonically" if v["monotonic"] else "",
                      "flat" if v["flat"] else "NOT FLAT"))
        print("soak: %d requests (%.0f/s), %d 5xx or connection errors, workers restarted: %s,"
              " connections within %d: %s" % (mix.total, summary["requests_per_second"],
                                              len(mix.errors), "yes" if restarted else "no",
                                              pool_max, "yes" if conn_ok else "no"))
        print("soak: %s" % ("PASSED: flat" if ok else "FAILED"))
    finally:
        out = Path(os.environ.get("SOAK_JSON") or (STACK_VAR / "soak-summary.json"))
        try:
            out.write_text(json.dumps(summary, indent=1) + "\n")
            print("soak: summary in %s" % out)
        except OSError as e:
            print("soak: could not write %s: %s" % (out, e))
        stack("stop", check=False)
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
