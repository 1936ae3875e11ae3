"""Socket activation (deploy/mailsrv.socket, docs/design.md): under systemd
the socket unit owns the FastCGI socket and passes it to the service as
descriptor 3 with LISTEN_FDS=1 and LISTEN_PID=<the service's pid>; the
service then serves on it instead of creating its own, and a restart loses
no connection: the socket stays open while the service is down, a
connection made meanwhile waits in its backlog, and the next start answers
it. Shown here as systemd does it: the test creates and binds the socket,
and a shell that becomes the service (exec, so $$ is the service's pid)
hands it over (bash: dash takes no descriptor above 9). The service starts as root and drops to MAILSRV_USER as the
stack's does.
"""

import fcntl
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mailapi import REPO
from service_instance import ServiceInstance, fcgi_request

BINARY = REPO / "build" / "mailsrv"
PASSED_FD = 10  # the socket's descriptor in the shell (at least), moved to 3 for the service


def service_env(tmp, **extra):
    user = os.environ.get("MAILSRV_USER") or "mailsrv"
    env = dict(os.environ)
    for k in [k for k in env if k.endswith("SAN_OPTIONS") or k.startswith("LISTEN_")]:
        del env[k]
    env.update({"MAILSRV_SOCKET": str(tmp / "run" / "own.sock"), "MAILSRV_PROCESSES": "1",
                "MAILSRV_THREADS": "2", "MAILSRV_USER": user})
    env.update(extra)
    return env


class ActivatedService(ServiceInstance):
    """build/mailsrv started as systemd starts a socket-activated service:
    fd 3 is `listener`, LISTEN_FDS=1, LISTEN_PID=its own pid (or
    `listen_pid` to show a foreign one is ignored)."""

    def __init__(self, tmp, listener, env, listen_pid="$$", name="mailsrv.log"):
        fd = fcntl.fcntl(listener.fileno(), fcntl.F_DUPFD, PASSED_FD)
        script = ('exec 3<&%d %d<&-; LISTEN_FDS=1 LISTEN_PID=%s exec "$0"'
                  % (fd, fd, listen_pid))
        self.path = tmp / name
        self.log = open(self.path, "w+")
        try:
            self.p = subprocess.Popen(["/bin/bash", "-c", script, str(BINARY)], env=env,
                                      stdout=self.log, stderr=subprocess.STDOUT, cwd="/",
                                      pass_fds=(fd,))
        finally:
            os.close(fd)


def unix_listener(path, backlog=16):
    """The socket as the socket unit makes it: bound, group of the socket
    (the stack's), mode 0660, listening."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    group = os.environ.get("MAILSRV_SOCKET_GROUP") or "mailsrv-sock"
    os.chown(path, 0, grp.getgrnam(group).gr_gid)
    os.chmod(path, 0o660)
    s.listen(backlog)
    return s


@pytest.fixture
def tmp():
    d = Path(tempfile.mkdtemp(prefix="mailsrv-activation."))
    os.chmod(d, 0o711)
    run = d / "run"
    run.mkdir()
    pw = pwd.getpwnam(os.environ.get("MAILSRV_USER") or "mailsrv")
    os.chown(run, pw.pw_uid, pw.pw_gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_the_service_serves_on_the_socket_it_is_passed(tmp):
    path = tmp / "passed.sock"
    listener = unix_listener(path)
    svc = ActivatedService(tmp, listener, service_env(tmp))
    try:
        assert svc.wait_ready(), svc.output()[-2000:]
        assert "listening on the socket passed by systemd" in svc.output()
        status, _ = fcgi_request(path, "GET", "/livez")
        assert status == 200
        status, _ = fcgi_request(path, "GET", "/readyz")
        assert status == 200
        # It made no socket of its own at MAILSRV_SOCKET.
        assert not (tmp / "run" / "own.sock").exists()
        # It dropped root, as when it creates the socket itself.
        assert "running as uid %d" % pwd.getpwnam(
            os.environ.get("MAILSRV_USER") or "mailsrv").pw_uid in svc.output()
    finally:
        svc.stop()
    assert svc.p.returncode == 0, svc.output()[-2000:]
    # Stopping never removes the socket: it is systemd's.
    assert path.exists()
    listener.close()


def test_a_restart_loses_no_connection(tmp):
    path = tmp / "passed.sock"
    listener = unix_listener(path)
    env = service_env(tmp)
    first = ActivatedService(tmp, listener, env, name="first.log")
    try:
        assert first.wait_ready(), first.output()[-2000:]
        assert fcgi_request(path, "GET", "/livez")[0] == 200
    finally:
        first.stop()
    assert first.p.returncode == 0, first.output()[-2000:]

    # The service is down; the socket is not. A request made now waits in
    # the backlog (connect succeeds at once) and is answered once the
    # service is back.
    result = {}

    def ask():
        t0 = time.monotonic()
        try:
            result["answer"] = fcgi_request(path, "GET", "/livez", timeout=30)
        except OSError as e:
            result["error"] = repr(e)
        result["seconds"] = time.monotonic() - t0

    waiting = threading.Thread(target=ask)
    waiting.start()
    time.sleep(1.0)
    assert waiting.is_alive(), "answered while no service ran: %r" % result
    second = ActivatedService(tmp, listener, env, name="second.log")
    try:
        assert second.wait_ready(), second.output()[-2000:]
        waiting.join(30)
        assert not waiting.is_alive()
        assert "error" not in result, result
        assert result["answer"][0] == 200, result
        assert result["seconds"] >= 1.0
        assert fcgi_request(path, "GET", "/livez")[0] == 200
    finally:
        second.stop()
    assert second.p.returncode == 0, second.output()[-2000:]
    listener.close()


def test_variables_meant_for_another_process_are_ignored(tmp):
    """LISTEN_PID names another process (a parent that did not clear them):
    the descriptor is not taken, the service creates its own socket."""
    path = tmp / "passed.sock"
    listener = unix_listener(path)
    svc = ActivatedService(tmp, listener, service_env(tmp), listen_pid="1")
    own = tmp / "run" / "own.sock"
    try:
        assert svc.wait_ready(), svc.output()[-2000:]
        assert 'listening on "%s"' % own in svc.output()
        assert fcgi_request(own, "GET", "/livez")[0] == 200
    finally:
        svc.stop()
    listener.close()


def test_a_tcp_socket_is_refused(tmp):
    """FastCGI stays on a unix socket: a passed TCP socket (ListenStream=
    a port) stops the start with a message, nothing listens."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    svc = ActivatedService(tmp, tcp, service_env(tmp))
    try:
        svc.p.wait(timeout=20)
    finally:
        svc.stop()
        tcp.close()
    assert svc.p.returncode != 0
    assert "must be a listening unix stream socket" in svc.output()
    assert not (tmp / "run" / "own.sock").exists()


def test_more_than_one_socket_is_refused(tmp):
    path = tmp / "passed.sock"
    listener = unix_listener(path)
    env = service_env(tmp)
    fd = fcntl.fcntl(listener.fileno(), fcntl.F_DUPFD, PASSED_FD)
    log = tmp / "two.log"
    try:
        with open(log, "w") as out:
            p = subprocess.run(
                ["/bin/bash", "-c", 'exec 3<&%d 4<&%d %d<&-; LISTEN_FDS=2 LISTEN_PID=$$ exec "$0"'
                 % (fd, fd, fd), str(BINARY)], env=env, stdout=out, stderr=subprocess.STDOUT,
                cwd="/", pass_fds=(fd,), timeout=20)
    finally:
        os.close(fd)
        listener.close()
    assert p.returncode != 0
    assert "exactly one socket is expected" in log.read_text()
