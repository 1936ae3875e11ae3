"""scratch_db.py - a database of the test's own on the stack's PostgreSQL
(`mailsrv_scratch`, which the stack's pg_hba.conf lets the service's role
reach, scripts/stack.sh) and a second service instance on it, for the tests
that must not touch the stack's data: an upgrade from the previous release's
schema (test_upgrade.py) and a key rotation (test_rewrap.py).

  ScratchDb()            drop-and-create it (owner mailsrv_owner); migrate(dir)
                         runs scripts/migrate.sh on it; sql(text) runs SQL as
                         the owner; drop()
  Instance(tmp, db, key_file)
                         build/mailsrv on its own socket, database and keyring
                         (one process, a few threads); call(method, path, body)
"""

import json
import os
import pwd
import subprocess

import mailapi
from service_instance import ServiceInstance, fcgi_request

REPO = mailapi.REPO
BINARY = REPO / "build" / "mailsrv"
TOOL = REPO / "build" / "mailsrv-tool"
NAME = "mailsrv_scratch"
PG_SOCKET_DIR = os.environ.get("STACK_PG_SOCKET_DIR") or str(mailapi.STACK_VAR / "pg" / "run")
PG_PORT = os.environ.get("STACK_PG_PORT", "55432")
SERVICE_USER = os.environ.get("MAILSRV_USER") or "mailsrv"


def psql(sql, db="postgres"):
    """SQL as the superuser over the unix socket; the output's rows (-A -t)."""
    r = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t",
                        "-v", "ON_ERROR_STOP=1", "-h", PG_SOCKET_DIR, "-p", PG_PORT, "-d", db],
                       input=sql, capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout


class ScratchDb:
    def __init__(self):
        self.drop()
        psql("CREATE DATABASE %s OWNER mailsrv_owner" % NAME)
        self.url = ("host=%s port=%s dbname=%s user=mailsrv_app application_name=mailsrv-scratch"
                    % (PG_SOCKET_DIR, PG_PORT, NAME))

    def migrate(self, sql_dir=None):
        env = dict(os.environ, PGHOST=PG_SOCKET_DIR, PGPORT=PG_PORT, PGDATABASE=NAME)
        env.pop("MIGRATE_SQL_DIR", None)
        if sql_dir is not None:
            env["MIGRATE_SQL_DIR"] = str(sql_dir)
        r = subprocess.run([str(REPO / "scripts" / "migrate.sh")], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def sql(self, text):
        """As the schema's owner, like the migrations."""
        return psql("SET ROLE mailsrv_owner;\n" + text, db=NAME)

    def drop(self):
        # a service instance left over from a failed run must not keep it
        psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s';"
             " DROP DATABASE IF EXISTS %s" % (NAME, NAME))


def write_keyring(path, lines):
    """A keyring file as the service's user keeps it (owner-only)."""
    pw = pwd.getpwnam(SERVICE_USER)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join("%s %s\n" % (kid, key) for kid, key in lines))
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, 0o600)


class Instance(ServiceInstance):
    """build/mailsrv on its own socket (tmp/<name>/mailsrv.sock), database
    and keyring; requests go straight to its FastCGI socket."""

    def __init__(self, tmp, db_url, key_file, name="run"):
        pw = pwd.getpwnam(SERVICE_USER)
        os.chmod(tmp, 0o711)
        run = tmp / name
        run.mkdir(exist_ok=True)
        os.chown(run, pw.pw_uid, pw.pw_gid)
        self.sock = run / "mailsrv.sock"
        self.token = mailapi.mint_token(sub="scratch-tests")
        env = dict(os.environ)
        for k in [k for k in env if k.endswith("SAN_OPTIONS")]:
            del env[k]
        env.update({"MAILSRV_SOCKET": str(self.sock), "MAILSRV_PROCESSES": "1",
                    "MAILSRV_THREADS": "3", "MAILSRV_USER": SERVICE_USER,
                    "MAILSRV_DATABASE_URL": db_url, "MAILSRV_SECRET_KEY_FILE": str(key_file)})
        d = tmp / ("log-" + name)
        d.mkdir(exist_ok=True)
        super().__init__(d, env, [str(BINARY)])

    def call(self, method, path, body=None, headers=()):
        """(status, parsed JSON body or None)."""
        params = [("HTTP_AUTHORIZATION", "Bearer " + self.token)] + list(headers)
        data = json.dumps(body).encode() if body is not None else b""
        path, _, query = path.partition("?")
        status, text = fcgi_request(self.sock, method, "/api/v1" + path, params,
                                    query.encode(), timeout=30, body=data)
        _, _, payload = text.partition("\r\n\r\n")
        try:
            return status, json.loads(payload) if payload.strip() else None
        except ValueError:
            return status, None
