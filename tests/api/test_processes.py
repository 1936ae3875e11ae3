"""Who runs what: nothing of the stack runs as root but nginx's master, the
service refuses root without a user to become, and the stack's state
directory is used only when it is the caller's alone.

The stack's processes are found through the pid files it wrote (never by
name): the service's master and its workers, nginx's master and its workers,
PostgreSQL's postmaster and its children.
"""

import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import mailapi
from procfs import children

STACK_VAR = mailapi.STACK_VAR
STACK = mailapi.REPO / "scripts" / "stack.sh"
SERVICE_USER = os.environ.get("MAILSRV_USER", "mailsrv")


def pid_from(path):
    return int(Path(path).read_text().split()[0])


def status_of(pid):
    """(real, effective, saved) uids and the supplementary gids of pid."""
    uids, groups = None, []
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("Uid:"):
            uids = tuple(int(x) for x in line.split()[1:4])
        elif line.startswith("Groups:"):
            groups = [int(x) for x in line.split()[1:]]
    return uids, groups




def stack_processes():
    """name -> pids, from the stack's pid files."""
    mailsrv = pid_from(STACK_VAR / "run" / "mailsrv.pid")
    nginx = pid_from(STACK_VAR / "nginx" / "nginx.pid")
    postgres = pid_from(STACK_VAR / "pg" / "data" / "postmaster.pid")
    return {
        "mailsrv master": [mailsrv],
        "mailsrv worker": children(mailsrv),
        "nginx master": [nginx],
        "nginx worker": children(nginx),
        "postgres postmaster": [postgres],
        "postgres child": children(postgres),
    }


def test_no_stack_process_runs_as_root_but_nginx_master():
    procs = stack_processes()
    assert procs["mailsrv worker"] and procs["nginx worker"] and procs["postgres child"]
    service = pwd.getpwnam(SERVICE_USER)
    www_data = grp.getgrnam("www-data").gr_gid
    as_root = []
    for name, pids in procs.items():
        for pid in pids:
            uids, groups = status_of(pid)
            if name == "nginx master":
                continue
            if 0 in uids:
                as_root.append((name, pid, uids))
            if name.startswith("mailsrv"):
                # the service's own user, its own group only: neither root's
                # nor www-data's (other sockets of that group)
                assert uids == (service.pw_uid,) * 3, (name, pid, uids)
                assert 0 not in groups and www_data not in groups, (name, pid, groups)
    assert as_root == [], "processes running as root: %s" % as_root


def service_env(tmp):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSRV_")}
    env.update({
        "MAILSRV_DATABASE_URL": os.environ["MAILSRV_DATABASE_URL"],
        "MAILSRV_SOCKET": str(tmp / "s.sock"),
        "MAILSRV_PROCESSES": "1",
        "MAILSRV_THREADS": "1",
        "MAILSRV_JWT_ALG": "HS256",
        "MAILSRV_JWT_KEY_FILE": os.environ["MAILSRV_JWT_KEY_FILE"],
        "MAILSRV_SECRET_KEY_FILE": os.environ["MAILSRV_SECRET_KEY_FILE"],
        "MAILSRV_PUBLIC_URL": "http://127.0.0.1:9",
        "MAILSRV_CONSOLE_URL": "http://127.0.0.1:9/",
    })
    # The sanitizer build writes its reports where its user may write.
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        env.pop(k, None)
    return env


def test_service_refuses_root_without_a_user_to_become():
    binary = mailapi.REPO / "build" / "mailsrv"
    tmp = Path(tempfile.mkdtemp(prefix="mailsrv-root-"))
    try:
        env = service_env(tmp)
        p = subprocess.Popen([str(binary)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=20)
            raise AssertionError("the service ran as root without MAILSRV_USER: %s" % out[-500:])
        assert p.returncode == 1, out
        assert "refusing to run as root" in out and "MAILSRV_USER" in out, out
        assert not (tmp / "s.sock").exists(), "a socket was made before refusing"
        # MAILSRV_USER naming root is no way around it.
        env["MAILSRV_USER"] = "root"
        res = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=10)
        assert res.returncode == 1 and "root" in res.stderr + res.stdout
    finally:
        shutil.rmtree(tmp)


def stack_keys(var):
    """scripts/stack.sh keys with STACK_VAR=var; the command's result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSRV_")}
    env["STACK_VAR"] = str(var)
    return subprocess.run([str(STACK), "keys"], env=env, capture_output=True, text=True,
                          timeout=60)


def test_stack_var_used_only_when_ours_alone():
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="mailsrv-var-", dir="/var/tmp"))
    try:
        # made first by another user (as under /var/tmp anyone may)
        theirs = base / "theirs"
        theirs.mkdir(mode=0o755)
        os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
        # ours, but writable by everyone
        open_dir = base / "open"
        open_dir.mkdir()
        os.chmod(open_dir, 0o777)
        # a symbolic link to a directory of ours
        target = base / "target"
        target.mkdir(mode=0o755)
        link = base / "link"
        link.symlink_to(target)
        for var, why in ((theirs, "belongs to uid %d" % nobody.pw_uid),
                         (open_dir, "writable by its group or others"),
                         (link, "symbolic link")):
            res = stack_keys(var)
            assert res.returncode != 0, "STACK_VAR %s was used: %s" % (var, res.stdout)
            assert "not used" in res.stderr and why in res.stderr, res.stderr
            assert not (var / "keys").exists(), "%s was written into" % var
        assert list(target.iterdir()) == []
    finally:
        shutil.rmtree(base)
