"""Drill: stored ciphertexts tampered with in the database.

Someone with write access to the database (a stolen backup restored, an
operator's mistake, an attacker with SQL) moves encrypted secrets around:

  - one server's secret_key ciphertext copied into another server's row;
  - a server's secret_key ciphertext copied into its own refresh_token column;
  - one bit flipped in a third server's stored password.

Every ciphertext is sealed to its row and column (AES-GCM with the server id
and the column's name as associated data: docs/api.md, "Secrets"), so none of
them decrypts. Stated outcome (docs/reliability.md): using the secret (a
refresh for secret_key and refresh_token, an SMTP connection test for the
password and for an OAuth server's token) answers 409 conflict with
error_code secret_unreadable, whose detail names the secret to enter again;
the log holds exactly one integrity line per use, naming the server and the
column and no value; and nothing reaches the network: the stand-in OAuth
provider counts no token request and a listening SMTP port no connection.

Controls in the same drill show that the counters count: an untampered
server's refresh reaches the provider, and an untampered server's test
reaches the SMTP port.
"""

import socket
import threading

import drill
from drill import mailapi
import oauth2_support
from oauth2_support import refresh

INTEGRITY = r"integrity: the stored %s of mail server %d does not decrypt"


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections it accepts (and
    closes them at once: nothing here speaks SMTP)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            self.count += 1
            conn.close()

    def close(self):
        self._stop = True
        try:
            # wake accept()
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self.sock.close()
        self._t.join(5)


def smtp_test(api, sid):
    return api.post("/mail-servers/%d/test" % sid, {}, timeout=60)


def provider_calls(p):
    return p.stats()["token_calls"]


def unreadable(resp, column):
    body = mailapi.problem(resp, 409, "conflict")
    assert body.get("error_code") == "secret_unreadable", mailapi.describe(resp)
    assert column in body["detail"] and "again" in body["detail"], mailapi.describe(resp)
    return body


def test_tampered_ciphertexts_are_refused_once_and_send_nothing(api):
    p = oauth2_support.standin()
    p.client_id = "client-drill-%s" % drill.RUN
    p.client_secret = mailapi.secret("sk")
    p.reset(p.client_id, p.client_secret)
    smtp = Listener()
    try:
        _drill(api, p, smtp)
    finally:
        smtp.close()
        p.mode("normal")


def seeded_oauth(api, p):
    return oauth2_support.create_server(
        api, p, name=drill.unique("drill tampered oauth"), access_token=mailapi.secret("at"),
        refresh_token=p.seed())["id"]


def _drill(api, p, smtp):
    # Four OAuth servers with tokens entered by hand, two basic servers
    # whose SMTP host is the listener.
    a, b, c, ctl = (seeded_oauth(api, p) for _ in range(4))
    basic = mailapi.basic_body(server="127.0.0.1", port=smtp.port, enable_ssl=False)
    d = api.create(dict(basic, name=drill.unique("drill tampered basic")))["id"]
    ctl_basic = api.create(dict(basic, name=drill.unique("drill tampered basic"),
                                password=mailapi.secret("pw")))["id"]

    drill.psql(
        # a's secret_key into b's row
        "UPDATE mail_server SET secret_key_enc = (SELECT secret_key_enc FROM mail_server"
        " WHERE id = %d) WHERE id = %d;" % (a, b) +
        # c's secret_key into its own refresh_token column
        " UPDATE mail_server SET refresh_token_enc = secret_key_enc WHERE id = %d;" % c +
        # one bit of d's password (a byte in the middle of the ciphertext)
        " UPDATE mail_server SET password_enc = set_byte(password_enc,"
        " octet_length(password_enc) / 2,"
        " get_byte(password_enc, octet_length(password_enc) / 2) # 1) WHERE id = %d;" % d)

    before = provider_calls(p)
    # Control: an untampered server's refresh does reach the provider.
    r = refresh(api, ctl)
    assert r.status_code == 200, mailapi.describe(r)
    assert provider_calls(p) == before + 1, "the control refresh made no provider call"

    figures = {}
    cases = [
        ("copied-row", b, "secret_key", lambda: refresh(api, b)),
        ("copied-column", c, "refresh_token", lambda: refresh(api, c)),
        ("flipped-bit", d, "password", lambda: smtp_test(api, d)),
        # The OAuth server's test needs its token: the same refusal, no SMTP.
        ("copied-row-test", b, "secret_key", lambda: smtp_test(api, b)),
    ]
    for name, sid, column, use in cases:
        log = drill.LogWatch()
        calls, conns = provider_calls(p), smtp.count
        resp = use()
        body = unreadable(resp, column)
        assert provider_calls(p) == calls, "%s: the provider was called" % name
        assert smtp.count == conns, "%s: the SMTP port was connected to" % name
        # The line is written before the answer; give the log a moment.
        lines = log.wait_for(INTEGRITY % (column, sid), 2)
        text = log.text()
        assert len(lines) == 1, "%s: %d integrity lines: %s" % (name, len(lines), text[-800:])
        assert len([ln for ln in text.splitlines() if "integrity" in ln]) == 1, text[-800:]
        assert mailapi.SECRET_PREFIX not in text and mailapi.SECRET_PREFIX not in resp.text
        figures[name] = "%d/%s" % (resp.status_code, body["error_code"])

    # The servers themselves still read fine (no secret is decrypted for a GET).
    for sid in (b, c, d):
        assert api.fetch(sid)["id"] == sid

    # Control: an untampered basic server's test does reach the SMTP port.
    conns = smtp.count
    r = smtp_test(api, ctl_basic)
    assert r.status_code == 200, mailapi.describe(r)
    assert smtp.count == conns + 1, "the control test made no SMTP connection"

    # Entering the secret again repairs the server.
    api.update(b, {"secret_key": p.client_secret})
    r = refresh(api, b)
    assert r.status_code == 200, mailapi.describe(r)

    drill.report("tampered-secrets", **figures,
                 provider_calls_for_tampered=0, smtp_connections_for_tampered=0,
                 integrity_lines_per_use=1)
