"""The documented install starts: deploy/README.md tells the operator to run
deploy/install-keys.sh for the service's user and keys; this test runs that
script into a fresh directory and starts the service with its result, as the
systemd unit does (started as the service's user, not as root), and asks it
for /healthz over its FastCGI socket. The key rule (owner-only, owned by the
service's user) is the loaders' (src/crypto.c): the group-readable keys of
older instructions are refused.

Also: a worker process is not dumpable (no core file, no ptrace by its own
user), and the systemd unit and the README agree on the socket's group.
"""

import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import mailapi
from service_instance import ServiceInstance, fcgi_request

REPO = mailapi.REPO
README = REPO / "deploy" / "README.md"
UNIT = REPO / "deploy" / "mailsrv.service"
SOCKET_UNIT = REPO / "deploy" / "mailsrv.socket"
ENV_EXAMPLE = REPO / "deploy" / "mailsrv.env.example"
SCRIPT = REPO / "deploy" / "install-keys.sh"
BINARY = REPO / "build" / "mailsrv"
TOOL = REPO / "build" / "mailsrv-tool"
USER = "mailsrv"
SOCKET_GROUP = "mailsrv-sock"


def readme_key_commands():
    """The key-setup lines of the README's "User and keys" section."""
    text = README.read_text()
    m = re.search(r"^## 2\. User and keys\n(.*?)^## ", text, re.S | re.M)
    assert m, "deploy/README.md has no 'User and keys' section"
    return [l.strip() for l in m.group(1).splitlines() if l.startswith("    ")]


def test_readme_runs_the_script():
    cmds = readme_key_commands()
    assert any(c.startswith("deploy/install-keys.sh") for c in cmds), cmds
    # Nothing else there makes or changes a key file by hand: one source.
    for c in cmds:
        assert not re.search(r"\b(chmod|chown|gen-secret-key|gen-hmac-key)\b", c), c


class Service(ServiceInstance):
    """build/mailsrv started as the service's user (as systemd's User= does)."""

    def __init__(self, tmp, key_dir):
        run = tmp / "run"  # the service's own directory for the socket it creates
        run.mkdir()
        pw = pwd.getpwnam(USER)
        os.chown(run, pw.pw_uid, pw.pw_gid)
        self.sock = run / "mailsrv.sock"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MAILSRV_") and not k.endswith("SAN_OPTIONS")}
        env.update({
            "MAILSRV_DATABASE_URL": os.environ["MAILSRV_DATABASE_URL"],
            "MAILSRV_SOCKET": str(self.sock),
            "MAILSRV_SOCKET_GROUP": SOCKET_GROUP,
            "MAILSRV_PROCESSES": "1",
            "MAILSRV_THREADS": "1",
            "MAILSRV_JWT_ALG": "HS256",
            "MAILSRV_JWT_KEY_FILE": str(key_dir / "jwt-hs256.key"),
            "MAILSRV_SECRET_KEY_FILE": str(key_dir / "secrets.key"),
            "MAILSRV_PUBLIC_URL": "http://127.0.0.1:9",
            "MAILSRV_CONSOLE_URL": "http://127.0.0.1:9/",
        })
        super().__init__(tmp, env, ["setpriv", "--reuid", USER, "--regid", USER,
                                    "--init-groups", "--", str(BINARY)])


def worker_pids(master):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path("/proc/%s/stat" % d).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master and fields[0] != "Z":
                out.append(int(d))
    return out


def install_keys(key_dir):
    res = subprocess.run([str(SCRIPT), "--tool", str(TOOL), str(key_dir)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # never key material on its output
    for f in ("secrets.key", "jwt-hs256.key"):
        secret = (key_dir / f).read_text().split()[-1]
        assert secret not in res.stdout + res.stderr
    return res


def test_documented_install_starts():
    tmp = Path(tempfile.mkdtemp(prefix="mailsrv-install-"))
    os.chmod(tmp, 0o755)
    key_dir = tmp / "keys"
    svc = None
    try:
        install_keys(key_dir)
        pw = pwd.getpwnam(USER)
        st = key_dir.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o750)
        assert st.st_gid == pw.pw_gid
        for f in ("secrets.key", "jwt-hs256.key"):
            st = (key_dir / f).stat()
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, 0o600), f
        # run again: idempotent, the keys are kept
        before = (key_dir / "secrets.key").read_bytes()
        install_keys(key_dir)
        assert (key_dir / "secrets.key").read_bytes() == before

        svc = Service(tmp, key_dir)
        assert svc.wait_ready(), "the service did not start:\n" + svc.output()[-2000:]
        st = svc.sock.stat()
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == __import__("grp").getgrnam(SOCKET_GROUP).gr_gid
        status, answer = fcgi_request(svc.sock, "GET", "/healthz")
        assert status == 200, answer[:300]

        # A worker is not dumpable: its /proc files belong to root, while
        # the master's (the service's user, never a set-uid change) do not.
        master = svc.p.pid
        workers = worker_pids(master)
        assert workers, "no worker process"
        assert Path("/proc/%d/environ" % master).stat().st_uid == pw.pw_uid
        for w in workers:
            assert Path("/proc/%d/environ" % w).stat().st_uid == 0, \
                "worker %d is dumpable" % w
    finally:
        if svc is not None:
            svc.stop()
        shutil.rmtree(tmp)


def test_group_readable_keys_are_refused():
    """The older instructions (keys 0640, group mailsrv) do not start."""
    tmp = Path(tempfile.mkdtemp(prefix="mailsrv-install-"))
    os.chmod(tmp, 0o755)
    key_dir = tmp / "keys"
    svc = None
    try:
        install_keys(key_dir)
        for f in ("secrets.key", "jwt-hs256.key"):
            os.chmod(key_dir / f, 0o640)
            svc = Service(tmp, key_dir)
            assert not svc.wait_ready(5), "started with a group-readable " + f
            out = svc.output()
            assert f in out and "mode 0640" in out and "0600 or 0400" in out, out[-1000:]
            assert svc.p.returncode == 1
            svc.stop()
            svc = None
            shutil.rmtree(tmp / "run")
            os.chmod(key_dir / f, 0o600)
    finally:
        if svc is not None:
            svc.stop()
        shutil.rmtree(tmp)


def unit_settings(unit=UNIT):
    out = {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_systemd_unit():
    u = unit_settings()
    assert u["User"] == [USER] and u["Group"] == [USER]
    # no core file of a process holding keys and decrypted secrets
    assert u.get("LimitCORE") == ["0"]
    # The socket is the socket unit's, with a dedicated group, never
    # www-data's (every other www-data socket); the service needs no
    # supplementary group for it.
    assert "SupplementaryGroups" not in u
    s = unit_settings(SOCKET_UNIT)
    assert s.get("SocketGroup") == [SOCKET_GROUP] and s.get("SocketUser") == [USER]
    assert s.get("SocketMode") == ["0660"]
    assert u.get("Requires") == ["mailsrv.socket"]
    example = ENV_EXAMPLE.read_text()
    assert "#MAILSRV_SOCKET_GROUP=%s" % SOCKET_GROUP in example
    assert "www-data" not in SOCKET_UNIT.read_text().replace("(www-data)", "")
