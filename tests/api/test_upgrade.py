"""Upgrades (README.md, "Upgrading"): scripts/migrate.sh brings a database
that the previous release's schema made, and that holds that release's data,
to this release's schema, and this release's service works on the result.

The previous release's schema: every migration file but the newest, applied
by the same script from a directory that holds only those (MIGRATE_SQL_DIR),
into a database of the test's own (scratch_db.py); its data is written as
that release wrote it (plain SQL on the old tables). Then the migrations run
to the end from sql/ and a second service instance on that database reads,
changes and lists what was there.
"""

import shutil
import tempfile
from pathlib import Path

import pytest

import mailapi
from scratch_db import Instance, ScratchDb, write_keyring
from service_instance import fcgi_request

SQL_DIR = mailapi.REPO / "sql"
KEY = "ab" * 32


@pytest.fixture
def tmp_dir():
    d = Path(tempfile.mkdtemp(prefix="mailsrv-upgrade."))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_migrations_upgrade_the_previous_release_with_its_data(tmp_dir):
    files = sorted(SQL_DIR.glob("[0-9][0-9][0-9]_*.sql"))
    assert len(files) >= 2
    previous = tmp_dir / "previous-sql"
    previous.mkdir()
    for f in files[:-1]:
        shutil.copy(f, previous / f.name)
    db = ScratchDb()
    inst = None
    try:
        out = db.migrate(previous)
        assert "%d applied" % (len(files) - 1) in out, out
        # the previous release's data, as it wrote it
        db.sql("""
            INSERT INTO mail_server (name, server, port, sender_name, sender_email,
                                     is_default, enable_ssl, auth_type, username)
            VALUES ('Old basic', 'smtp.old.example', 587, 'Console', 'c@old.example',
                    true, true, 'basic', 'olduser');
            INSERT INTO mail_server (name, server, port, sender_name, sender_email,
                                     auth_type, client_id, authorization_url, token_url,
                                     scope, oauth2_status)
            VALUES ('Old oauth', 'smtp.old.example', 465, 'Console', 'c@old.example',
                    'oauth2', 'cid', 'https://login.old.example/authorize',
                    'https://login.old.example/token', 'smtp', 'not_connected');
        """)
        ids = [int(x) for x in db.sql("SELECT id FROM mail_server ORDER BY id").split()]
        assert len(ids) == 2

        # the upgrade: the rest of the migrations, from the release's sql/
        out = db.migrate()
        assert "migrate: applying %s" % files[-1].name in out, out
        assert "1 applied, %d already up to date" % (len(files) - 1) in out, out
        # run again: nothing to do
        assert "0 applied, %d already up to date" % len(files) in db.migrate()
        recorded = db.sql("SELECT filename FROM schema_migrations ORDER BY filename").split()
        assert recorded == [f.name for f in files]

        # this release's service on the upgraded database
        key_file = tmp_dir / "secrets.key"
        write_keyring(key_file, [("up1", KEY)])
        inst = Instance(tmp_dir, db.url, key_file)
        assert inst.wait_ready(), inst.output()[-2000:]
        # ready: the newest migration is the one this build expects
        assert fcgi_request(inst.sock, "GET", "/readyz")[0] == 200
        st, body = inst.call("GET", "/mail-servers?sort=name")
        assert st == 200, body
        got = {s["name"]: s for s in body["items"]}
        assert set(got) == {"Old basic", "Old oauth"}
        old = got["Old basic"]
        assert (old["id"], old["is_default"], old["username"], old["password_set"],
                old["version"]) == (ids[0], True, "olduser", False, 1)
        assert got["Old oauth"]["oauth2_status"] == "not_connected"
        st, body = inst.call("GET", "/mail-servers/default")
        assert st == 200 and body["id"] == ids[0], body
        # a change through this release's statements (its audit event too)
        pw = mailapi.secret("up")
        st, body = inst.call("PATCH", "/mail-servers/%d" % ids[0],
                             {"password": pw, "port": 2525}, [("HTTP_IF_MATCH", '"1"')])
        assert st == 200, body
        assert (body["port"], body["password_set"], body["version"]) == (2525, True, 2)
        st, body = inst.call("GET", "/audit-events?mail_server_id=%d" % ids[0])
        assert st == 200, body
        assert [e["action"] for e in body["items"]] == ["mail_server.updated"]
        st, body = inst.call("DELETE", "/mail-servers/%d" % ids[1])
        assert st == 204, body
    finally:
        if inst is not None:
            inst.stop()
        db.drop()
