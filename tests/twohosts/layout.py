"""layout.py - the production layout of several hosts (deploy/README.md,
"Several hosts") run on this machine, on loopback only:

    client --HTTPS--> front nginx (render-nginx.sh lb)
                        |--HTTPS--> host a: nginx (host site) --unix socket--> service a
                        `--HTTPS--> host b: nginx (host site) --unix socket--> service b
                                    services a and b --> the test stack's PostgreSQL

Each "host" is its own nginx, rendered by `deploy/render-nginx.sh host` from
the production templates with a certificate of a test CA (tests/oauth_ca.sh,
made afresh under DIR/ca: its server.pem names localhost and 127.0.0.1), on
its own 127.0.0.1 ports, and its own service (its own unix socket, master
and worker processes, database connections with an application_name of its
own) on the test stack's database with the stack's keys and settings (the
MAILSRV_* of the environment, `scripts/stack.sh env`). The front is nginx
rendered by `deploy/render-nginx.sh lb` over both hosts, which take the
client's address from its X-Forwarded-For (REAL_IP_FROM=127.0.0.1), as the
README says.

The rendered sites are used as rendered: nginx.conf here is only what a
Debian nginx.conf gives a site (an http{} block that includes it) plus what
running beside other nginx instances needs (pid file, error log and
temporary paths of its own). The hosts' per-address limits are raised to
the test stack's (every request of the tests comes from 127.0.0.1, one
address for nginx): the limits themselves are shown by tests/api.

Users, as the test stack's: the services start as root, open their socket
(group mailsrv-sock, mode 0660) and become MAILSRV_USER (mailsrv); each nginx
has a root master and workers as www-data (Layout.check_users, at start).

Ports (TEST_TWOHOSTS_PORT, default 18443, and the five after it): host a's
HTTPS, host b's HTTPS, the front's HTTPS, then the three plain-HTTP
listeners (each site's redirect to HTTPS).

Every process is started here and stopped by its pid (pid files under DIR,
checked against /proc before any signal), never by name: Layout.stop()
runs at the end of the session and at exit, and `python3 layout.py stop`
stops what an interrupted run left behind (tests/run_all.sh runs it after
the suite).
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

# The API suite's helpers (this file also runs alone: `layout.py stop`).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
import procfs  # noqa: E402
from procfs import children  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STACK_VAR = Path(os.environ.get("STACK_VAR") or (REPO / "var" / "test"))
DIR = STACK_VAR / "twohosts"
RENDER = REPO / "deploy" / "render-nginx.sh"
SERVER_NAME = "localhost"  # in the test CA's server.pem, with IP:127.0.0.1
PORT_BASE = int(os.environ.get("TEST_TWOHOSTS_PORT", "18443"))
NGINX_USER = os.environ.get("STACK_NGINX_USER", "www-data")
# The service as the test stack runs it: the sanitizer build under
# tests/run_all.sh (STACK_MAILSRV_BIN), else build/mailsrv.
BINARY = os.environ.get("STACK_MAILSRV_BIN") or str(REPO / "build" / "mailsrv")
PROCESSES, THREADS = 2, 4
# The test stack's nginx limits (scripts/stack.sh): far above what the
# tests send from their one address.
HOST_LIMITS = ["API_RATE=1000r/s", "API_BURST=2000", "SENSITIVE_RATE=200r/s",
               "SENSITIVE_BURST=400", "CONN_LIMIT=1000"]
SHUTDOWN_DEADLINE_S = 10  # the service's drain (docs/design.md)
FAIL_TIMEOUT_S = 5  # the front's passive health, render-nginx.sh's default

assert 1024 <= PORT_BASE <= 65530, "TEST_TWOHOSTS_PORT must leave room for six ports"


def now():
    return time.monotonic()


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pid, seconds):
    deadline = now() + seconds
    while alive(pid) and now() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def recorded_pid(pidfile, mark):
    """The pid in pidfile when that process is alive and its executable is
    mark or its command line holds mark (so a reused pid is never taken for
    ours); else None."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        exe = ""
    try:
        cmd = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmd = ""
    return pid if (exe == mark or mark in cmd) and alive(pid) else None


def http_get(base, path, ca, timeout=2, session=None):
    """GET base+path (verified against the CA); the response or None."""
    try:
        return (session or requests).get(base + path, verify=ca, timeout=timeout,
                                         allow_redirects=False)
    except requests.RequestException:
        return None


class Nginx:
    """One nginx instance: DIR/<name>/ holds its rendered files (conf/), the
    nginx.conf that includes the site, pid file, logs and temporary files."""

    def __init__(self, name):
        self.name = name
        self.dir = DIR / name
        self.conf = self.dir / "nginx.conf"
        self.pidfile = self.dir / "nginx.pid"
        self.error_log = self.dir / "error.log"
        self.access_log = self.dir / "access.log"

    def render(self, mode, site, variables):
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        res = subprocess.run([str(RENDER), mode, str(self.dir / "conf")] + variables,
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, "render-nginx.sh %s: %s" % (mode, res.stderr.strip())
        d = {"user": NGINX_USER, "d": self.dir, "site": self.dir / "conf" / site}
        self.conf.write_text("""# Only what a Debian nginx.conf gives a site, with paths of this
# instance's own; the site is the rendered one, included as is.
user %(user)s;
worker_processes 1;
pid "%(d)s/nginx.pid";
error_log "%(d)s/error.log";
events {
    worker_connections 1024;
}
http {
    server_tokens off;
    client_body_temp_path "%(d)s/tmp/client_body";
    fastcgi_temp_path "%(d)s/tmp/fastcgi";
    proxy_temp_path "%(d)s/tmp/proxy";
    scgi_temp_path "%(d)s/tmp/scgi";
    uwsgi_temp_path "%(d)s/tmp/uwsgi";
    include "%(site)s";
}
""" % d)

    def start(self):
        res = subprocess.run(["nginx", "-q", "-c", str(self.conf), "-p", str(self.dir) + "/",
                              "-e", str(self.error_log)], capture_output=True, text=True,
                             timeout=30)
        assert res.returncode == 0, "nginx %s did not start: %s" % (self.name,
                                                                    res.stderr.strip())
        assert self.pid(), "nginx %s wrote no pid file" % self.name

    def pid(self):
        return recorded_pid(self.pidfile, str(self.conf))

    def stop(self):
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGQUIT)  # graceful: finishes what is in flight
        if not wait_gone(pid, 10):
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)
        # A worker of a master killed outright is left behind: by its parent.
        for w in children(pid):
            os.kill(w, signal.SIGKILL)




def group_members(pgid, exe):
    """Live processes of process group pgid whose executable is exe."""
    out = []
    for pid in procfs.pids():
        fields = procfs.stat(pid)
        try:
            if (fields is not None and int(fields[2]) == pgid and fields[0] != "Z"
                    and os.readlink("/proc/%d/exe" % pid) == exe):
                out.append(pid)
        except (OSError, ValueError):
            continue
    return out


class Service:
    """One host's service: the test stack's binary and settings, its own
    socket, pool and database connections (application_name mailsrv-<host>),
    MAILSRV_PUBLIC_URL the front's (the OAuth redirect_uri every host builds
    alike). Started in a session of its own (setsid), so its process group
    is the master's pid."""

    def __init__(self, host, public_url):
        self.host = host
        self.dir = DIR / host / "service"
        self.socket = self.dir / "run" / "mailsrv.sock"
        self.pidfile = self.dir / "mailsrv.pid"
        self.log = self.dir / "mailsrv.log"
        self.app_name = "mailsrv-" + host
        self.public_url = public_url
        self.proc = None
        assert len(str(self.socket)) <= 107, "socket path too long: choose a shorter STACK_VAR"

    def env(self):
        env = dict(os.environ)
        for k in [k for k in env if k.startswith("LISTEN_")]:
            del env[k]
        url = env.get("MAILSRV_DATABASE_URL")
        assert url, "MAILSRV_DATABASE_URL is not set: export scripts/stack.sh env first"
        url = re.sub(r"\s*application_name=\S+", "", url).strip()
        env.update({
            "MAILSRV_DATABASE_URL": url + " application_name=" + self.app_name,
            "MAILSRV_SOCKET": str(self.socket),
            "MAILSRV_SOCKET_GROUP": env.get("MAILSRV_SOCKET_GROUP") or "mailsrv-sock",
            "MAILSRV_USER": env.get("MAILSRV_USER") or "mailsrv",
            "MAILSRV_PROCESSES": str(PROCESSES),
            "MAILSRV_THREADS": str(THREADS),
            "MAILSRV_PUBLIC_URL": self.public_url,
            "MAILSRV_CONSOLE_URL": self.public_url + "/",
        })
        return env

    def start(self):
        assert self.pid() is None, "service %s is running already" % self.host
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.dir / "run", 0o755)
        with open(self.log, "a") as log:
            log.write("--- %s layout: starting %s\n"
                      % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), BINARY))
            log.flush()
            self.proc = subprocess.Popen([BINARY], env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd="/", start_new_session=True)
        self.pidfile.write_text("%d\n%s\n" % (self.proc.pid, BINARY))

    def pid(self):
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid  # ours, started here (its exe may not be readable yet)
        return recorded_pid(self.pidfile, BINARY)

    def terminate(self):
        """SIGTERM to the master, as systemd stops it; returns (pid, when)."""
        pid = self.pid()
        assert pid, "service %s is not running" % self.host
        os.kill(pid, signal.SIGTERM)
        return pid, now()

    def wait_exit(self, pid, seconds=SHUTDOWN_DEADLINE_S + 10):
        deadline = now() + seconds
        while now() < deadline:
            if self.proc is not None and self.proc.pid == pid:
                if self.proc.poll() is not None:
                    return True
            elif not alive(pid):
                return True
            time.sleep(0.01)
        return False

    def stop(self):
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not self.wait_exit(pid):
                os.kill(pid, signal.SIGKILL)
                self.wait_exit(pid, 5)
        # Workers of a master that died are left in its process group (the
        # recorded pid): those still running this binary.
        try:
            pgid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pgid = None
        if pgid is not None:
            for p in group_members(pgid, BINARY):
                os.kill(p, signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.pidfile.unlink(missing_ok=True)

    def output(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class Host:
    """A worker host: its nginx (the production host site) and its service."""

    def __init__(self, name, https_port, http_port, front_url, ca):
        self.name = name
        self.https_port = https_port
        self.http_port = http_port
        self.addr = "127.0.0.1:%d" % https_port
        self.base = "https://" + self.addr
        self.ca = ca
        self.nginx = Nginx(name)
        self.service = Service(name, front_url)

    def render(self):
        ca_dir = DIR / "ca"
        self.nginx.render("host", "mailsrv-site.conf", [
            "SERVER_NAME=" + SERVER_NAME,
            "TLS_CERT=%s" % (ca_dir / "server.pem"), "TLS_KEY=%s" % (ca_dir / "server.key"),
            "HTTPS_LISTEN=" + self.addr, "HTTP_LISTEN=127.0.0.1:%d" % self.http_port,
            "SOCKET=%s" % self.service.socket,
            "REAL_IP_FROM=127.0.0.1",  # the front's address
            "ACCESS_LOG=%s" % self.nginx.access_log] + HOST_LIMITS)

    def ready(self, timeout=2):
        r = http_get(self.base, "/readyz", self.ca, timeout=timeout)
        return r is not None and r.status_code == 200

    def wait_ready(self, seconds=30):
        """Until the service answers /readyz 200 through this host's nginx
        with its whole pool; fails with the service's log otherwise."""
        deadline = now() + seconds
        while now() < deadline:
            if self.service.pid() is None:
                break
            if self.ready() and len(children(self.service.pid())) >= PROCESSES:
                return now()
            time.sleep(0.05)
        raise AssertionError("host %s did not become ready; its service's log ends:\n%s"
                             % (self.name, self.service.output()[-1500:]))


class Front:
    """The front load balancer (render-nginx.sh lb over both hosts)."""

    def __init__(self, https_port, http_port, hosts, ca):
        self.https_port = https_port
        self.http_port = http_port
        self.base = "https://127.0.0.1:%d" % https_port
        self.ca = ca
        self.hosts = hosts
        self.nginx = Nginx("front")

    def render(self):
        ca_dir = DIR / "ca"
        self.nginx.render("lb", "mailsrv-lb.conf", [
            "SERVER_NAME=" + SERVER_NAME,
            "TLS_CERT=%s" % (ca_dir / "server.pem"), "TLS_KEY=%s" % (ca_dir / "server.key"),
            "HTTPS_LISTEN=127.0.0.1:%d" % self.https_port,
            "HTTP_LISTEN=127.0.0.1:%d" % self.http_port,
            "HOSTS=" + " ".join(h.addr for h in self.hosts),
            "UPSTREAM_CA=%s" % self.ca,
            "ACCESS_LOG=%s" % self.nginx.access_log])


class Layout:
    """Two hosts and the front; start() builds and starts everything, stop()
    stops whatever of it runs (idempotent)."""

    def __init__(self):
        p = PORT_BASE
        self.ca = str(DIR / "ca" / "ca.pem")
        front_url = "https://127.0.0.1:%d" % (p + 2)
        self.a = Host("a", p, p + 3, front_url, self.ca)
        self.b = Host("b", p + 1, p + 4, front_url, self.ca)
        self.hosts = [self.a, self.b]
        self.front = Front(p + 2, p + 5, self.hosts, self.ca)

    def nginxes(self):
        return [self.front.nginx] + [h.nginx for h in self.hosts]

    def start(self):
        self.stop()  # leftovers of an interrupted run
        if DIR.exists():
            shutil.rmtree(DIR)
        DIR.mkdir(parents=True)
        os.chmod(DIR, 0o755)
        res = subprocess.run([str(REPO / "tests" / "oauth_ca.sh"), str(DIR / "ca")],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, "tests/oauth_ca.sh: %s" % res.stderr.strip()[-500:]
        busy = [port for port in range(PORT_BASE, PORT_BASE + 6) if port_in_use(port)]
        assert not busy, ("ports %s are in use: choose others with TEST_TWOHOSTS_PORT"
                          % busy)
        for h in self.hosts:
            h.service.start()
            h.render()
            h.nginx.start()
        self.front.render()
        self.front.nginx.start()
        for h in self.hosts:
            h.wait_ready()
        self.check_users()
        deadline = now() + 15
        while True:
            r = http_get(self.front.base, "/readyz", self.ca)
            if r is not None and r.status_code == 200:
                break
            assert now() < deadline, "the front does not answer /readyz"
            time.sleep(0.05)

    def check_users(self):
        """As the test stack's: each service's master and workers run as
        MAILSRV_USER (the master left root once its socket was open), each
        nginx has a root master and workers as nginx's user."""
        service_uid = pwd.getpwnam(os.environ.get("MAILSRV_USER") or "mailsrv").pw_uid
        nginx_uid = pwd.getpwnam(NGINX_USER).pw_uid
        for h in self.hosts:
            pids = [h.service.pid()] + children(h.service.pid())
            uids = {proc_uids(p) for p in pids}
            assert uids == {(service_uid,) * 4}, "service %s runs as %s" % (h.name, uids)
        for n in self.nginxes():
            assert proc_uids(n.pid()) == (0,) * 4, "nginx %s's master is not root" % n.name
            workers = children(n.pid())
            assert workers and {proc_uids(w) for w in workers} == {(nginx_uid,) * 4}, \
                "nginx %s's workers do not run as %s" % (n.name, NGINX_USER)

    def stop(self):
        for n in self.nginxes():
            n.stop()
        for h in self.hosts:
            h.service.stop()


def proc_uids(pid):
    """(real, effective, saved, filesystem) uid of a process."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return tuple(int(x) for x in line.split()[1:5])
    raise AssertionError("no Uid line for process %d" % pid)


def port_in_use(port):
    res = subprocess.run(["ss", "-Hltn", "( sport = :%d )" % port], capture_output=True,
                         text=True, timeout=10)
    return bool(res.stdout.strip())


if __name__ == "__main__":
    if sys.argv[1:] != ["stop"]:
        sys.exit("usage: layout.py stop   (stops what a run of tests/twohosts left running)")
    Layout().stop()
