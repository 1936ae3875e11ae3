"""Key rotation that ends (deploy/README.md, "Rotating the secrets key"),
under load: a new key goes first in the keyring, the service restarts on it,
`mailsrv-tool rewrap` re-encrypts every stored secret under it while the
service serves, its report says no secret is left on the old key, the old
key is removed and the service, restarted on a keyring without it, still
opens every secret.

All of it runs on a database and service instances of the test's own
(scratch_db.py): the tool goes over every row of its database, and the
stack's keyring must keep decrypting the stack's own. A restart is a rolling
one, as on the documented several-hosts layout: the next instance starts on
its own socket, the load moves to it, then the previous one stops.

The load (a thread): GETs, PATCHes that store the same password again (a new
ciphertext under the instance's first key: a row changed under the tool's
pass) and saved-server SMTP tests, which log in to a real loopback SMTP
server with the stored password; every answer must be the expected one.
"""

import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import mailapi
from scratch_db import TOOL, Instance, ScratchDb, write_keyring
from smtp_support import USER, basic_for, login_server, oauth_body, smtp  # noqa: F401

OLD = ("old1", "1f" * 32)
NEW = ("new2", "2e" * 32)
BASIC = 40  # basic servers, one password each
OAUTH = 3  # oauth2 servers: a client secret, an access and a refresh token each,
#            and an authorization started (the flow's code verifier)


@pytest.fixture
def tmp_dir():
    d = Path(tempfile.mkdtemp(prefix="mailsrv-rewrap."))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def rewrap(db, key_file, *args):
    env = {"PATH": "/usr/bin:/bin", "MAILSRV_DATABASE_URL": db.url,
           "MAILSRV_SECRET_KEY_FILE": str(key_file)}
    r = subprocess.run([str(TOOL), "rewrap"] + list(args), env=env, capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


class Load(threading.Thread):
    """Requests to whichever instance is current, until stopped."""

    def __init__(self, inst, basic_ids, oauth_ids, pw):
        super().__init__(daemon=True)
        self.inst, self.basic_ids, self.oauth_ids, self.pw = inst, basic_ids, oauth_ids, pw
        self.done = threading.Event()
        self.failures = []
        self.counts = {"GET": 0, "PATCH": 0, "TEST": 0}

    def check(self, what, status, body, want):
        if status != want:
            self.failures.append((what, status, mailapi.redact(repr(body))[:300]))

    def run(self):
        i = 0
        next_test = 0.0
        while not self.done.is_set():
            inst = self.inst
            sid = self.basic_ids[i % len(self.basic_ids)]
            st, body = inst.call("GET", "/mail-servers/%d" % sid)
            self.check("GET", st, body, 200)
            self.counts["GET"] += 1
            if i % 2 == 0:
                st, body = inst.call("PATCH", "/mail-servers/%d" % sid, {"password": self.pw})
                self.check("PATCH", st, body, 200)
                self.counts["PATCH"] += 1
                oid = self.oauth_ids[i % len(self.oauth_ids)]
                st, body = inst.call("PATCH", "/mail-servers/%d" % oid,
                                     {"refresh_token": mailapi.secret("rt")})
                self.check("PATCH oauth2", st, body, 200)
            if time.monotonic() >= next_test:
                # a saved server's test: at most 6 a minute per server; two
                # a second over 40 servers in turn is 3 a minute each
                next_test = time.monotonic() + 0.5
                tid = self.basic_ids[self.counts["TEST"] % len(self.basic_ids)]
                st, body = inst.call("POST", "/mail-servers/%d/test" % tid, {})
                self.check("TEST", st, body, 200)
                if st == 200 and body.get("error") is not None:
                    self.failures.append(("TEST result", body.get("stage"),
                                          body.get("error")))
                self.counts["TEST"] += 1
            i += 1


def report(out):
    m = re.search(r'^rewrap: rewrote (\d+) secrets under key "(\S+)"', out, re.M)
    assert m, out
    keys = {k: int(n) for k, n in re.findall(r'^rewrap: key "([^"]+)"[^:]*: (\d+) secrets',
                                             out, re.M)}
    return int(m.group(1)), m.group(2), keys


def test_rotation_under_load(tmp_dir, smtp):  # noqa: F811
    db = ScratchDb()
    instances = []
    load = None
    try:
        db.migrate()
        ring_old, ring_both, ring_new = (tmp_dir / n for n in ("old.keys", "both.keys",
                                                               "new.keys"))
        write_keyring(ring_old, [OLD])
        write_keyring(ring_both, [NEW, OLD])
        write_keyring(ring_new, [NEW])

        a = Instance(tmp_dir, db.url, ring_old, "a")
        instances.append(a)
        assert a.wait_ready(), a.output()[-2000:]
        srv, pw = login_server(smtp, "starttls")
        basic_ids, oauth_ids = [], []
        for _ in range(BASIC):
            st, body = a.call("POST", "/mail-servers", basic_for(srv, password=pw))
            assert st == 201, body
            basic_ids.append(body["id"])
        for _ in range(OAUTH):
            st, body = a.call("POST", "/mail-servers", oauth_body(
                access_token=mailapi.secret("at"), refresh_token=mailapi.secret("rt")))
            assert st == 201, body
            assert body["secret_key_set"] and body["refresh_token_set"], body
            oauth_ids.append(body["id"])
        # a flow in progress on each: its PKCE verifier is stored encrypted
        for oid in oauth_ids:
            st, body = a.call("POST", "/mail-servers/%d/oauth2/authorize" % oid)
            assert st == 200 and "authorization_url" in body, body
        total = BASIC + 3 * OAUTH + OAUTH
        rc, out, err = rewrap(db, ring_old)
        assert rc == 0, out + err
        assert report(out) == (0, "old1", {"old1": total}), out

        load = Load(a, basic_ids, oauth_ids, pw)
        load.start()
        time.sleep(1)

        # 1. the new key first, the old one kept: a rolling restart
        b = Instance(tmp_dir, db.url, ring_both, "b")
        instances.append(b)
        assert b.wait_ready(), b.output()[-2000:]
        load.inst = b
        time.sleep(0.5)
        a.stop()
        time.sleep(1)

        # 2. rewrap while the service serves (small pages: many of them)
        before = dict(load.counts)
        rc, out, err = rewrap(db, ring_both, "--batch", "7")
        assert rc == 0, out + err
        rewrote, first, keys = report(out)
        assert first == "new2"
        assert keys == {"new2": total, "old1": 0}, out
        # what the service rewrote itself under the new key was not redone
        assert 0 < rewrote <= total, out
        assert 'key "old1": 0 secrets left; no stored secret uses it' in out
        assert pw not in out + err
        time.sleep(1)
        assert load.counts["PATCH"] > before["PATCH"], "no load while the tool ran"

        # again: nothing left to do
        rc, out, err = rewrap(db, ring_both)
        assert rc == 0 and report(out) == (0, "new2", {"new2": total, "old1": 0}), out

        # 3. the old key removed: the next rolling restart
        c = Instance(tmp_dir, db.url, ring_new, "c")
        instances.append(c)
        assert c.wait_ready(), c.output()[-2000:]
        load.inst = c
        time.sleep(0.5)
        b.stop()
        time.sleep(2)
        load.done.set()
        load.join(timeout=60)
        assert not load.is_alive()
        assert load.failures == [], load.failures
        assert load.counts["TEST"] >= 3, load.counts

        # every secret opens with the new key alone: the tool decrypts each
        rc, out, err = rewrap(db, ring_new)
        assert rc == 0, out + err
        assert report(out) == (0, "new2", {"new2": total}), out
        # and the service logs in with a stored password after the restart
        n_auths = len(srv.auths())
        st, body = c.call("POST", "/mail-servers/%d/test" % basic_ids[-1], {})
        assert st == 200 and body.get("error") is None, mailapi.redact(repr(body))
        auths = srv.auths()
        assert len(auths) > n_auths and all(x["ok"] for x in auths), auths

        # the old keyring alone now opens nothing: the tool says so and fails
        rc, out, err = rewrap(db, ring_old)
        assert rc == 1, out + err
        assert "cannot be decrypted" in err
        assert 'key "new2" (not in the keyring): %d secrets' % total in out
    finally:
        if load is not None:
            load.done.set()
            load.join(timeout=60)
        for inst in instances:
            inst.stop()
        db.drop()
