"""One psql kept open as PostgreSQL's superuser over the test stack's socket,
for the suites that hold a lock while the service works or sample the
database often without a new connection each time (the drills, the two-hosts
layout)."""

import subprocess
import time

import mailapi


class PsqlSession:
    """query() runs a statement, waits until psql says it has run (a marker
    line echoed after it) and returns its rows as lists of strings."""

    def __init__(self, sock, port, database="mailsrv"):
        cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
               "-h", str(sock), "-p", str(port), "-U", "postgres", "-d", database]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.n = 0

    def query(self, sql, timeout=30):
        self.n += 1
        marker = "psql-session-marker-%d" % self.n
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo %s\n" % marker)
        self.p.stdin.flush()
        rows = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError("the psql session ended: %s"
                                     % mailapi.redact(" ".join(map(str, rows))[-300:]))
            if line.strip() == marker:
                return rows
            rows.append(line.rstrip("\n").split("\t"))
        raise AssertionError("the psql session did not answer within %d s" % timeout)

    run = query

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("\\q\n")
                self.p.stdin.flush()
                self.p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()
