"""The health probes outside /api/v1 (docs/api.md#health-probes): /livez (the
process answers, no database), /readyz (the database answers in time, its
schema is the one this build expects, the service is not draining) and
/healthz (the same as /readyz). No token, GET and HEAD, through nginx.

The schema check is shown with real rows (as the superuser, over the stack's
unix socket): with the build's own migration not recorded /readyz turns 503
while /livez stays 200; a migration newer than the build (the next release's,
run before its workers start in a rolling upgrade) leaves it ready.
The outage and draining answers: test_pg_outage.py and the SIGTERM drill
(tests/drills/test_sigterm_probes.py).
"""

import glob
import os
import subprocess
from pathlib import Path

import pytest

from mailapi import REPO, STACK_VAR, Client, describe, problem

PROBES = ("/livez", "/readyz", "/healthz")


def newest_migration():
    return sorted(p.name for p in (REPO / "sql").glob("[0-9][0-9][0-9]_*.sql"))[-1]


def superuser_sql(statement):
    """One statement as the postgres superuser over the stack's socket."""
    sock_dir = os.environ.get("STACK_PG_SOCKET_DIR") or str(Path(STACK_VAR) / "pg" / "run")
    socks = [s for s in glob.glob(os.path.join(sock_dir, ".s.PGSQL.*"))
             if not s.endswith(".lock")]
    assert socks, "no PostgreSQL socket in %s" % sock_dir
    port = socks[0].rsplit(".", 1)[-1]
    res = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t",
                          "-v", "ON_ERROR_STOP=1", "-h", sock_dir, "-p", port, "-d", "mailsrv",
                          "-c", statement], capture_output=True, text=True, timeout=30, cwd="/")
    assert res.returncode == 0, res.stderr[-500:]
    return res.stdout.strip()


@pytest.mark.parametrize("path", PROBES)
def test_probe_answers_without_a_token(anon, client_for, path):
    for client in (anon, client_for("not-a-token")):
        r = client.get(path)
        assert r.status_code == 200, describe(r)
        assert r.json() == {"status": "ok"}
        assert r.headers.get("X-Request-Id")


@pytest.mark.parametrize("path", PROBES)
def test_probe_head_and_methods(anon, path):
    g = anon.get(path)
    h = anon.request("HEAD", path)
    assert h.status_code == 200, describe(h)
    assert h.content == b""
    assert h.headers["Content-Length"] == g.headers["Content-Length"]
    assert h.headers["Content-Type"] == g.headers["Content-Type"]
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = anon.request(method, path)
        problem(r, 405, "method-not-allowed")
        assert r.headers["Allow"] == "GET, HEAD"


def test_probes_are_not_rate_limited(anon):
    # a load balancer may probe often; the API's rate limit is not for it
    answers = [anon.get("/readyz").status_code for _ in range(60)]
    assert answers == [200] * 60


def test_readyz_accepts_the_next_releases_schema(anon):
    expected = newest_migration()
    assert superuser_sql("SELECT max(filename) FROM schema_migrations") == expected
    future = "999_newer_than_this_build.sql"
    superuser_sql("INSERT INTO schema_migrations (filename, sha256) VALUES ('%s', '%s')"
                  % (future, "0" * 64))
    try:
        for path in ("/readyz", "/healthz"):
            # each worker thread asks the database itself: every answer says so
            for _ in range(4):
                assert anon.get(path).status_code == 200
        assert anon.get("/livez").status_code == 200
    finally:
        superuser_sql("DELETE FROM schema_migrations WHERE filename = '%s'" % future)
    assert anon.get("/readyz").status_code == 200


def test_readyz_refuses_a_schema_behind_the_build(anon):
    expected = newest_migration()
    row = superuser_sql("SELECT sha256 FROM schema_migrations WHERE filename = '%s'" % expected)
    superuser_sql("DELETE FROM schema_migrations WHERE filename = '%s'" % expected)
    try:
        for path in ("/readyz", "/healthz"):
            for _ in range(4):
                body = problem(anon.get(path), 503, "database-unavailable")
                assert body["error_code"] == "schema_mismatch"
                assert expected not in str(body)
        assert anon.get("/livez").status_code == 200
    finally:
        superuser_sql("INSERT INTO schema_migrations (filename, sha256) VALUES ('%s', '%s')"
                      % (expected, row))
    assert anon.get("/readyz").status_code == 200
