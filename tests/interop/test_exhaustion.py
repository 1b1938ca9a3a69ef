# -*- test-case-name: tests.interop.test_exhaustion -*-
"""
Exhaustion by slow peers against the real plugin over loopback sockets: slow
connections sending one byte at a time, a flood of connections from one
address and half-open TLS handshakes no longer lock other peers out.

Two loopback addresses stand for two sources: the attacker connects from
127.0.0.2, the honest peer from 127.0.0.1.
"""

from __future__ import annotations

import atexit
import socket
import time
from typing import List, Optional

from twisted.trial.unittest import TestCase

from tests.interop.harness import ServerProcess

ATTACKER = "127.0.0.2"

OPTIONS = (
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{n}\r\n"
    "From: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:127.0.0.1>\r\n"
    "Call-ID: exhaust-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)

_server: Optional[ServerProcess] = None


def shared_server() -> ServerProcess:
    """
    One server with small caps and short deadlines for all these tests.
    """
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = ServerProcess(
            [
                "--max-connections-per-source",
                "4",
                "--message-timeout",
                "2",
                "--handshake-timeout",
                "2",
                "--idle-timeout",
                "5",
            ],
            tls=True,
        )
        atexit.register(_server.cleanup)
    return _server


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """
    A TCP connection to the server from C{source}.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """
    Whether the server closes (or resets) C{sock} within C{within} seconds.
    """
    sock.settimeout(within)
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class SlowPeerInteropTests(TestCase):
    """
    Slowloris and half-open TLS against the running plugin.
    """

    def setUp(self) -> None:
        self.proc = shared_server()
        self.sockets: List[socket.socket] = []

    def tearDown(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.assertEqual(self.proc.tracebacks(), [])

    def open(self, source: str = "127.0.0.1", port: Optional[int] = None) -> socket.socket:
        sock = connect(port or self.proc.port, source)
        self.sockets.append(sock)
        return sock

    def options(self, n: int) -> bytes:
        """An OPTIONS over a new connection from 127.0.0.1; the first answer line."""
        sock = self.open()
        sock.settimeout(5)
        sock.sendall(OPTIONS.format(n=n).encode())
        return sock.recv(4096).split(b"\r\n", 1)[0]

    def test_byte_at_a_time(self) -> None:
        """Slow senders are closed at the message deadline while an honest peer is served."""
        slow = [self.open(ATTACKER) for _ in range(4)]
        data = OPTIONS.format(n="slow").encode()
        started = time.monotonic()
        alive = list(slow)
        for i in range(12):  # one byte per connection every 0.3 s: never idle
            for sock in list(alive):
                try:
                    sock.sendall(data[i : i + 1])
                except OSError:
                    alive.remove(sock)
            time.sleep(0.3)
        self.assertEqual(self.options(1), b"SIP/2.0 200 OK")
        for sock in slow:
            self.assertTrue(closed_by_server(sock, 1.0))
        self.assertLess(time.monotonic() - started, 6.0)

    def test_per_source_cap(self) -> None:
        """A fifth connection from one address is refused at once; another address gets in."""
        for _ in range(4):
            self.open(ATTACKER)
        time.sleep(0.2)
        fifth = self.open(ATTACKER)
        self.assertTrue(closed_by_server(fifth, 1.0))
        self.assertEqual(self.options(2), b"SIP/2.0 200 OK")

    def test_half_open_tls(self) -> None:
        """A TLS connection that never finishes its handshake is closed at its deadline."""
        assert self.proc.tls_port is not None
        silent = self.open(ATTACKER, self.proc.tls_port)
        partial = self.open(ATTACKER, self.proc.tls_port)
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello
        started = time.monotonic()
        self.assertTrue(closed_by_server(silent, 4.0))
        self.assertTrue(closed_by_server(partial, 1.0))
        self.assertLess(time.monotonic() - started, 4.0)
        self.assertIn("TLS handshake not finished within 2 s", self.proc.log())
