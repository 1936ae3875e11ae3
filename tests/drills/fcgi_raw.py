"""fcgi_raw.py - a raw FastCGI client for the PARAMS-record drill.

Run as a script: python3 fcgi_raw.py SOCKET [huge|normal]. It connects to the
service's unix socket as whatever user runs it and sends BEGIN_REQUEST and one
PARAMS record:
  huge    name and value lengths both 0x7ffffffe in the 4-byte encoding (the
          record libfcgi 2.4.2 dies on: docs/design.md, "Library traps")
  normal  a small, valid request for /healthz (to show the socket answers)
It prints one line, "EACCES", "ECONNREFUSED", "closed <n bytes read>" or
"error <errno name>", and exits 0. Standard library only, so it can be fed
to `python3 -` on stdin by a user who cannot read the test tree.
"""

import errno
import socket
import struct
import sys

FCGI_VERSION_1 = 1
FCGI_BEGIN_REQUEST = 1
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_RESPONDER = 1


def record(rtype, request_id, content):
    """One FastCGI record (FastCGI 1.0 section 3.3), padded to 8 bytes."""
    pad = (-len(content)) % 8
    return struct.pack(">BBHHBB", FCGI_VERSION_1, rtype, request_id, len(content), pad, 0) \
        + content + b"\0" * pad


def length(n):
    """A name or value length: one byte below 128, else four with the top bit."""
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def pair(name, value):
    return length(len(name)) + length(len(value)) + name + value


def huge_request():
    begin = record(FCGI_BEGIN_REQUEST, 1, struct.pack(">HB5x", FCGI_RESPONDER, 0))
    # The lengths claim about 4 GiB of name and value; a few bytes follow.
    body = length(0x7ffffffe) + length(0x7ffffffe) + b"A" * 64
    return begin + record(FCGI_PARAMS, 1, body)


def normal_request():
    begin = record(FCGI_BEGIN_REQUEST, 1, struct.pack(">HB5x", FCGI_RESPONDER, 0))
    params = b"".join(pair(k, v) for k, v in (
        (b"REQUEST_METHOD", b"GET"), (b"DOCUMENT_URI", b"/healthz"),
        (b"QUERY_STRING", b""), (b"REQUEST_ID", b"fcgiraw0000000000000000000000001")))
    return (begin + record(FCGI_PARAMS, 1, params) + record(FCGI_PARAMS, 1, b"")
            + record(FCGI_STDIN, 1, b""))


def main():
    path = sys.argv[1]
    kind = sys.argv[2] if len(sys.argv) > 2 else "huge"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
        return 0
    try:
        s.sendall(huge_request() if kind == "huge" else normal_request())
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        print("closed %d" % len(got))
    except socket.timeout:
        print("error timeout")
    except OSError as e:
        print("error %s" % errno.errorcode.get(e.errno, str(e.errno)))
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
