"""smtp_server.py - real SMTP servers on 127.0.0.1 for the connection-test
tests (test_smtp_*.py), built on aiosmtpd (Debian's python3-aiosmtpd).

    srv = SmtpServer(tls="starttls", users={"alice": pw}).start()
    ... srv.port ... srv.verbs() ... srv.messages() ... srv.auths()
    srv.stop()

Each server runs its own asyncio loop in a thread of the test process, on an
ephemeral port (the service's outbound policy refuses ports below 1024 other
than 25, 465 and 587 at test time, so high ports are what a test uses).

TLS modes (`tls=`):
  "none"               no STARTTLS offered; AUTH offered in clear text (a
                       server that would take a password unencrypted)
  "starttls"           STARTTLS offered; AUTH offered only after it
  "starttls_required"  as "starttls", and every command but EHLO, HELO,
                       NOOP, QUIT and STARTTLS is refused (530) before it
  "implicit"           TLS from the first byte (as on port 465)
The certificate (`cert=`) is one that tests/oauth_ca.sh made in the test CA
directory: "server" (127.0.0.1, the test CA), "wronghost" (wrong.example
only), "expired" (2020) or "untrusted" (another CA).

Logins: `users={username: password}` for AUTH PLAIN and LOGIN;
`oauth=check` (a function token -> {"active", "serial"}, e.g.
provider_check(standin)) offers XOAUTH2. `mechanisms=` narrows what is
offered (libcurl picks LOGIN over PLAIN when both are offered), or adds
OAUTHBEARER, which is recorded and always refused (libcurl prefers it over
XOAUTH2 unless told otherwise).

`port=` 0 (the default) takes an ephemeral port; a fixed one (465: TLS from
the first byte is what the service does on port 465 only) is waited for
while another process holds it, up to `port_wait` seconds.
`auth_required=True` refuses MAIL FROM before a login (530).

Switches (attributes, changeable while running): `refuse_mail` and
`refuse_rcpt` hold a reply line ("550 5.7.1 ...") to refuse MAIL FROM or
RCPT TO with, or None; `offer_broken_starttls` (mode "none") offers STARTTLS
in the EHLO answer and then refuses it (454).

What it records, per connection (`connections()`): every command line's verb
in order, with whether TLS was up when it came, and the argument of MAIL
and RCPT (addresses, not secrets); for AUTH only the mechanism. Logins
(`auths()`): mechanism, user, accepted or not, and for XOAUTH2 the serial of
the access token (from the provider), never a password or a token: the
credentials are compared and dropped. Messages (`messages()`): envelope and
the raw bytes of DATA. aiosmtpd's own logger (which would log command lines,
AUTH's initial response included) is silenced.

Also here: SilentServer (accepts TCP connections and never says a word) and
ClosedPort (a port bound but not listening: connection refused).
"""

import argparse
import asyncio
import base64
import binascii
import logging
import os
import socket
import ssl
import sys
import threading
import time
import warnings
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, MISSING

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# aiosmtpd logs every command line at INFO, AUTH's initial response (the
# base64 of a password) included: not a word of it anywhere.
logging.getLogger("mail.log").setLevel(logging.CRITICAL + 1)
logging.getLogger("mail.log").propagate = False

TLS_MODES = ("none", "starttls", "starttls_required", "implicit")
CERTS = ("server", "wronghost", "expired", "untrusted")


def ca_dir():
    """The test CA directory (tests/oauth_ca.sh under $STACK_VAR)."""
    stack_var = Path(os.environ.get("STACK_VAR") or (REPO / "var" / "test"))
    return stack_var / "test-ca"


def provider_check(standin):
    """An XOAUTH2 check against the stand-in OAuth provider's access tokens."""
    return standin.introspect


class _Recorder:
    """Everything one server saw, behind one lock (the loop thread writes,
    the test thread reads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conns = []
        self.auth_log = []
        self.msgs = []
        self.tls_failures = 0
        self.changed = threading.Condition(self.lock)

    def new_conn(self, tls):
        with self.lock:
            c = {"commands": [], "tls": tls, "closed": False, "tls_handshakes": 1 if tls else 0}
            self.conns.append(c)
            self.changed.notify_all()
            return c

    def command(self, conn, verb, arg, tls):
        with self.lock:
            conn["commands"].append({"verb": verb, "arg": arg, "tls": tls})
            self.changed.notify_all()

    def update(self, fn):
        with self.lock:
            fn()
            self.changed.notify_all()


class _Session(SMTP):
    """aiosmtpd's SMTP, recording each command line (verb, TLS state) before
    it is handled."""

    def __init__(self, owner, **kw):
        super().__init__(owner, **kw)
        self._owner = owner
        self._conn = None
        # While a command is being handled, lines read are its own (DATA's
        # message, AUTH's responses, which carry credentials): only lines
        # read between commands are command lines.
        self._in_command = False
        for name, method in list(self._smtp_methods.items()):
            self._smtp_methods[name] = self._guarded(method)

    def _guarded(self, method):
        async def run(arg):
            self._in_command = True
            try:
                return await method(arg)
            finally:
                self._in_command = False
        return run

    def _tls_up(self):
        return self._owner.tls == "implicit" or self._tls_protocol is not None

    def _client_connected_cb(self, reader, writer):
        super()._client_connected_cb(reader, writer)
        until = reader.readuntil
        session = self

        async def readuntil(separator=b"\n"):
            line = await until(separator)
            if not session._in_command and session._conn is not None:
                session._record(line)
            return line
        reader.readuntil = readuntil

    def _record(self, line):
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if verb == "AUTH":
            arg = arg.split(" ", 1)[0].upper()  # the mechanism, never the response
        elif verb not in ("MAIL", "RCPT", "EHLO", "HELO"):
            arg = ""
        self._owner.rec.command(self._conn, verb, arg, self._tls_up())

    def connection_made(self, transport):
        starttls_done = self._original_transport is not None
        super().connection_made(transport)
        if starttls_done:
            conn = self._conn
            self._owner.rec.update(lambda: conn.__setitem__(
                "tls_handshakes", conn["tls_handshakes"] + 1))
        else:
            self._conn = self._owner.rec.new_conn(self._owner.tls == "implicit")

    def connection_lost(self, error):
        conn = self._conn
        if conn is not None:
            self._owner.rec.update(lambda: conn.__setitem__("closed", True))
        super().connection_lost(error)


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 in a thread of its own."""

    def __init__(self, *, tls="none", cert="server", users=None, oauth=None,
                 mechanisms=None, auth_required=False, refuse_mail=None,
                 refuse_rcpt=None, hostname="smtp.test.example", certs=None,
                 port=0, port_wait=120.0):
        assert tls in TLS_MODES, tls
        assert cert in CERTS, cert
        self.tls = tls
        self.cert = cert
        self.users = {k.encode(): v.encode() for k, v in (users or {}).items()}
        self.oauth = oauth
        self.auth_required = auth_required
        self.refuse_mail = refuse_mail
        self.refuse_rcpt = refuse_rcpt
        self.offer_broken_starttls = False
        self.hostname = hostname
        self.certs = Path(certs) if certs else ca_dir()
        offered = []
        if self.users:
            offered += ["PLAIN", "LOGIN"]
        if oauth is not None:
            offered.append("XOAUTH2")
        self.mechanisms = [m.upper() for m in (mechanisms if mechanisms is not None else offered)]
        self.rec = _Recorder()
        self.host = "127.0.0.1"
        self.want_port = port
        self.port_wait = port_wait
        self.port = None
        self._loop = None
        self._thread = None
        self._server = None
        self._ctx = None

    # ---- aiosmtpd handler hooks (self is the handler)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.offer_broken_starttls and server.tls_context is None:
            responses.insert(len(responses) - 1, "250-STARTTLS")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
               "raw": bytes(envelope.original_content or b"")}
        self.rec.update(lambda: self.rec.msgs.append(msg))
        return "250 2.0.0 OK queued"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        """PLAIN and LOGIN: compare, record user and outcome, drop the rest."""
        assert isinstance(auth_data, LoginPassword)
        want = self.users.get(auth_data.login)
        ok = want is not None and want == auth_data.password
        entry = {"mechanism": mechanism, "user": auth_data.login.decode("utf-8", "replace"),
                 "ok": ok, "tls": server._tls_up()}
        self.rec.update(lambda: self.rec.auth_log.append(entry))
        return AuthResult(success=ok, handled=False)

    async def auth_XOAUTH2(self, server, args):
        """XOAUTH2 (Google's and Microsoft's SASL mechanism): the initial
        response, or one after an empty 334 challenge, is base64 of
        "user=<email>^Aauth=Bearer <token>^A^A"."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        user, token = "", ""
        for part in blob.split(b"\x01"):
            if part.startswith(b"user="):
                user = part[5:].decode("utf-8", "replace")
            elif part.startswith(b"auth="):
                scheme, _, tok = part[5:].decode("utf-8", "replace").partition(" ")
                if scheme.lower() == "bearer":
                    token = tok
        del blob
        verdict = {"active": False, "serial": None}
        if token and self.oauth is not None:
            loop = asyncio.get_running_loop()
            try:
                verdict = await loop.run_in_executor(None, self.oauth, token)
            except Exception:  # the provider is away: refuse, as a server would
                verdict = {"active": False, "serial": None}
        del token
        ok = bool(verdict.get("active"))
        entry = {"mechanism": "XOAUTH2", "user": user, "ok": ok,
                 "token_serial": verdict.get("serial"), "tls": server._tls_up()}
        self.rec.update(lambda: self.rec.auth_log.append(entry))
        if ok:
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.3 Authentication unsuccessful")

    async def auth_OAUTHBEARER(self, server, args):
        """Offered only on request, always refused, and recorded: a client
        asked for XOAUTH2 must not pick this one."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        entry = {"mechanism": "OAUTHBEARER", "user": "", "ok": False, "tls": server._tls_up()}
        self.rec.update(lambda: self.rec.auth_log.append(entry))
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 OAUTHBEARER is not accepted here")

    # ---- running

    def _tls_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        pem, key = self.certs / (self.cert + ".pem"), self.certs / (self.cert + ".key")
        if not pem.exists() or not key.exists():
            raise RuntimeError("%s is missing: run tests/oauth_ca.sh %s (before the stack "
                               "starts: the service must trust the same CA)"
                               % (pem, self.certs))
        ctx.load_cert_chain(str(pem), str(key))
        return ctx

    def _factory(self):
        starttls = self.tls in ("starttls", "starttls_required")
        excluded = [m for m in ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
                    if m not in self.mechanisms]
        kw = {
            "hostname": self.hostname,
            "enable_SMTPUTF8": True,
            "tls_context": self._ctx if starttls else None,
            "require_starttls": self.tls == "starttls_required",
            # Without TLS from a STARTTLS, AUTH is offered and taken only in
            # mode "none" (in clear: the server a careless client would
            # give its password to) and "implicit" (TLS all along).
            "auth_require_tls": starttls,
            "auth_required": self.auth_required,
            "auth_exclude_mechanism": excluded,
            "authenticator": self._authenticate,
            "timeout": 60,
        }
        with warnings.catch_warnings():
            # Mode "none" takes a login in clear text on purpose (the server
            # a careless client would give its password to): aiosmtpd's
            # warning about that is noise here.
            warnings.simplefilter("ignore", UserWarning)
            return _Session(self, **kw)

    def start(self):
        if self.tls != "none":
            self._ctx = self._tls_context()
        sock = _bind(self.host, self.want_port, self.port_wait)
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_exception)
        ready = threading.Event()
        failure = []

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(self._loop.create_server(
                    self._factory, sock=sock,
                    ssl=self._ctx if self.tls == "implicit" else None))
            except Exception as e:  # reported by start()
                failure.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            pending = asyncio.all_tasks(self._loop)
            for t in pending:
                t.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="smtp-%d" % self.port, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def _loop_exception(self, loop, context):
        # Failed TLS handshakes (the service refusing our certificate) and
        # clients that hang up land here: counted, not printed.
        self.rec.update(lambda: setattr(self.rec, "tls_failures", self.rec.tls_failures + 1))

    def stop(self):
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- what it saw

    def connections(self):
        """[{"commands": [{"verb", "arg", "tls"}], "tls", "tls_handshakes",
        "closed"}] per connection, oldest first (copies)."""
        with self.rec.lock:
            return [dict(c, commands=[dict(x) for x in c["commands"]]) for c in self.rec.conns]

    def verbs(self):
        """Every command verb received, over all connections, in order."""
        return [x["verb"] for c in self.connections() for x in c["commands"]]

    def auths(self):
        """[{"mechanism", "user", "ok", "tls", "token_serial"?}], in order."""
        with self.rec.lock:
            return [dict(a) for a in self.rec.auth_log]

    def messages(self):
        """[{"mail_from", "rcpt_tos", "raw"}]: what DATA delivered."""
        with self.rec.lock:
            return [dict(m) for m in self.rec.msgs]

    def wait_closed(self, timeout=5.0):
        """Wait until every connection so far has ended (the client's last
        bytes are then recorded); True when they had."""
        deadline = time.monotonic() + timeout
        with self.rec.lock:
            while not all(c["closed"] for c in self.rec.conns):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.rec.changed.wait(left)
        return True

    def wait_connections(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.rec.lock:
            while len(self.rec.conns) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.rec.changed.wait(left)
        return True


def _bind(host, port, wait):
    """A TCP socket bound to host:port (port 0: any free one); a fixed port
    that is taken (another test run's server) is tried again until `wait`
    seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return sock
        except OSError:
            sock.close()
            if port == 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word (no
    greeting): the "server never answers" case. Holds every connection
    open until stopped."""

    def __init__(self, host="127.0.0.1", port=0, port_wait=120.0):
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if family == socket.AF_INET:
            self.sock = _bind(host, port, port_wait)
        else:
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.received = []   # byte counts per connection (reads are drained)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        t = threading.Thread(target=self._accept, name="silent-%d" % self.port, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted.append(conn)

    def connections(self):
        with self._lock:
            return len(self.accepted)

    def closed_by_client(self):
        """How many accepted connections the client has closed by now."""
        n = 0
        with self._lock:
            conns = list(self.accepted)
        for c in conns:
            try:
                c.setblocking(False)
                data = c.recv(4096, socket.MSG_PEEK)
                if data == b"":
                    n += 1
            except BlockingIOError:
                pass
            except OSError:
                n += 1
        return n

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        with self._lock:
            for c in self.accepted:
                c.close()
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ClosedPort:
    """A port of 127.0.0.1 that refuses connections: bound (so nothing else
    takes it meanwhile) but not listening."""

    def __init__(self):
        self.host = "127.0.0.1"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((self.host, 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main():
    """By hand: run one server and print what it sees when stopped (Ctrl-C)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tls", choices=TLS_MODES, default="none")
    ap.add_argument("--cert", choices=CERTS, default="server")
    ap.add_argument("--user", action="append", default=[], help="name:password")
    args = ap.parse_args()
    users = dict(u.split(":", 1) for u in args.user)
    srv = SmtpServer(tls=args.tls, cert=args.cert, users=users).start()
    print(srv.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    srv.stop()
    for c in srv.connections():
        print(" ".join(x["verb"] for x in c["commands"]))
    for a in srv.auths():
        print(a["mechanism"], a["user"], "ok" if a["ok"] else "refused")
    print("%d messages" % len(srv.messages()))
    sys.exit(0)


if __name__ == "__main__":
    main()
