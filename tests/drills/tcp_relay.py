"""tcp_relay.py - a TCP relay on 127.0.0.1 that a drill can make go silent.

    relay = Relay(upstream_port)      # listens on 127.0.0.1:relay.port
    relay.stall()                     # silence: nothing forwarded, nothing reset
    relay.resume()                    # forwards again, what was held included
    relay.stop()

While stalled the relay neither reads nor accepts: bytes stay in the kernel's
buffers, and new connections complete their handshake (the kernel does it
from the listen backlog) and then hear nothing. Every connection stays open
at the TCP level, so the peer's kernel sees its data acknowledged and its
keepalive probes answered: exactly what a stalled middlebox, a frozen
PostgreSQL host behind a proxy, or a network path that drops packets above
the TCP layer looks like. No RST, no FIN, no ICMP: only silence.

One thread, a selector, blocking sends (the volumes are a database
protocol's); standard library only.
"""

import selectors
import socket
import threading


class Relay:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(512)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.peer = {}          # socket -> the socket it forwards to
        self.accepted = 0
        self._forward = threading.Event()
        self._forward.set()
        self._stop = False
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._run, name="relay", daemon=True)
        self._t.start()

    # -- control

    def stall(self):
        self._forward.clear()

    def resume(self):
        self._forward.set()

    def stalled(self):
        return not self._forward.is_set()

    def connections(self):
        with self._lock:
            return len(self.peer) // 2

    def stop(self):
        self._stop = True
        self._forward.set()
        self._t.join(10)
        with self._lock:
            for s in list(self.peer):
                s.close()
            self.peer.clear()
        self.lsock.close()
        self.sel.close()

    # -- the loop

    def _run(self):
        while not self._stop:
            if not self._forward.wait(0.05):
                continue  # stalled: touch nothing
            for key, _ in self.sel.select(0.05):
                if not self._forward.is_set() or self._stop:
                    break
                if key.fileobj is self.lsock:
                    self._accept()
                else:
                    self._pump(key.fileobj)

    def _accept(self):
        try:
            c, _ = self.lsock.accept()
        except BlockingIOError:
            return
        try:
            u = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            c.close()
            return
        for s in (c, u):
            s.setblocking(True)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.peer[c], self.peer[u] = u, c
            self.accepted += 1
        self.sel.register(c, selectors.EVENT_READ, None)
        self.sel.register(u, selectors.EVENT_READ, None)

    def _close_pair(self, s):
        with self._lock:
            other = self.peer.pop(s, None)
            if other is not None:
                self.peer.pop(other, None)
        for x in (s, other):
            if x is None:
                continue
            try:
                self.sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _pump(self, s):
        other = self.peer.get(s)
        if other is None:
            return
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close_pair(s)
            return
        try:
            other.sendall(data)
        except OSError:
            self._close_pair(s)
