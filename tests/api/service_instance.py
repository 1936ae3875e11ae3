"""service_instance.py - a second service process for the tests that must
start one themselves (key setup, log format), and a raw FastCGI client to
talk to it without nginx.

  ServiceInstance(tmp, env, argv)  starts argv (build/mailsrv, maybe behind
                 setpriv) with env, its output in tmp/mailsrv.log; output(),
                 wait_ready(), stop()
  fcgi_request(sock, method, path, params=(), query=b"")
                 one request over the unix socket: (status, stdout text)
"""

import signal
import socket
import struct
import subprocess
import time


def _record(rtype, content):
    """One FastCGI record (FastCGI 1.0 section 3.3), request id 1, padded."""
    pad = (-len(content)) % 8
    return struct.pack(">BBHHBB", 1, rtype, 1, len(content), pad, 0) + content + b"\0" * pad


def _length(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def _pair(name, value):
    return _length(len(name)) + _length(len(value)) + name + value


def fcgi_request(sock, method, path, params=(), query=b"", timeout=10.0, body=b""):
    """One request over the FastCGI socket; params are extra (name, value)
    strings such as ("HTTP_AUTHORIZATION", "Bearer ..."); a body is sent as
    application/json. Returns (status, the response's stdout as text);
    status 0 when none."""
    base = [(b"REQUEST_METHOD", method.encode()), (b"REQUEST_URI", path.encode()),
            (b"DOCUMENT_URI", path.encode()), (b"QUERY_STRING", query),
            (b"CONTENT_LENGTH", str(len(body)).encode())]
    if body:
        base.append((b"CONTENT_TYPE", b"application/json"))
    base += [(n.encode(), v.encode()) for n, v in params]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(sock))
        s.sendall(_record(1, struct.pack(">HB5x", 1, 0))
                  + _record(4, b"".join(_pair(n, v) for n, v in base)) + _record(4, b"")
                  + (_record(5, body) if body else b"") + _record(5, b""))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    out, i = b"", 0
    while i + 8 <= len(data):
        _, t, _, n, pad, _ = struct.unpack(">BBHHBB", data[i:i + 8])
        if t == 6:  # FCGI_STDOUT
            out += data[i + 8:i + 8 + n]
        i += 8 + n + pad
    text = out.decode("latin-1")
    status = 0
    if text.startswith("Status: "):
        status = int(text[8:11])
    return status, text


class ServiceInstance:
    """A service process of the test's own, stopped by stop() (SIGTERM, then
    SIGKILL after 20 s)."""

    def __init__(self, tmp, env, argv):
        self.path = tmp / "mailsrv.log"
        self.log = open(self.path, "w+")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd="/")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.path.read_text(errors="replace")

    def wait_ready(self, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.p.poll() is not None:
                return False
            if "worker process ready" in self.output():
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
