# -*- test-case-name: tests.interop.test_plugin -*-
"""
The real plugin, as a subprocess on loopback, driven by real peers: SIPp
and sipsak for OPTIONS over UDP, TCP and TLS, a CANCELled INVITE, digest
REGISTER, the RFC 4475 torture messages and a flood of mutated messages.
"""

from __future__ import annotations

import atexit
import random
import re
import socket
import ssl
import time
from pathlib import Path
from typing import Optional

from twisted.trial.unittest import TestCase

from tests.interop.harness import ServerProcess, require_tool, run, run_sipp, udp_exchange
from tests.shared import corpus

SCENARIOS = Path(__file__).parent / "scenarios"

OPTIONS = (
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK{n}\r\n"
    "From: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:127.0.0.1>\r\n"
    "Call-ID: probe-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


_server: Optional[ServerProcess] = None


def shared_server() -> ServerProcess:
    """
    One server for all these tests (trial has no class fixtures), stopped
    when the test process exits.
    """
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = ServerProcess(
            ["--auth", "memory:alice:secret", "--domain", "example.com"], tls=True
        )
        atexit.register(_server.cleanup)
    return _server


class PluginInteropTests(TestCase):
    """
    OPTIONS, CANCEL, digest, torture and flood against the running plugin.
    """

    @property
    def proc(self) -> ServerProcess:
        return shared_server()

    def sipp(self, scenario: str, transport: str = "u1", *extra: str) -> None:
        failure = run_sipp(self.proc, scenario, *extra, transport=transport, timeout=20)
        self.assertFalse(failure, failure)

    def assert_alive(self) -> None:
        answer = udp_exchange(self.proc.port, OPTIONS.format(n=random.randrange(10**9)).encode())
        self.assertIsNotNone(answer, "server stopped answering")
        assert answer is not None
        self.assertTrue(answer.startswith(b"SIP/2.0 200 "), answer[:80])
        self.assertEqual(self.proc.tracebacks(), [], self.proc.log()[-4000:])

    def test_options_udp_sipp(self) -> None:
        """SIPp's OPTIONS over UDP gets 200 with Allow and Accept."""
        self.sipp("options.xml", "u1")

    def test_options_tcp_sipp(self) -> None:
        """SIPp's OPTIONS over TCP gets 200 with Allow and Accept."""
        self.sipp("options.xml", "t1")

    def test_options_sipsak_udp_tcp(self) -> None:
        """sipsak's OPTIONS over UDP and TCP get 200."""
        sipsak = require_tool("sipsak")
        for transport in ("udp", "tcp"):
            result = run(
                [sipsak, "-vv", "-s", f"sip:127.0.0.1:{self.proc.port}", f"--transport={transport}"]
            )
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("SIP/2.0 200 OK", result.stdout)

    def test_options_tls(self) -> None:
        """OPTIONS over TLS (Python's ssl client; Debian's sipsak has no TLS) gets 200."""
        assert self.proc.tls_port is not None
        context = ssl.create_default_context(cafile=str(self.proc.folder / "cert.pem"))
        context.check_hostname = False
        address = ("127.0.0.1", self.proc.tls_port)
        with socket.create_connection(address, timeout=5) as raw, context.wrap_socket(raw) as tls:
            self.assertIn(tls.version(), ("TLSv1.2", "TLSv1.3"))
            port = tls.getsockname()[1]
            tls.sendall(
                OPTIONS.replace("UDP 127.0.0.1:9", f"TLS 127.0.0.1:{port}").format(n=7).encode()
            )
            answer = tls.recv(65536)
        self.assertTrue(answer.startswith(b"SIP/2.0 200 OK"), answer[:80])

    def test_cancel_sipp(self) -> None:
        """A CANCEL for an answered INVITE matches its transaction and gets 200."""
        self.sipp("cancel.xml", "u1")
        self.assert_alive()

    def test_register_digest_sipp(self) -> None:
        """SIPp registers with digest after a 401 challenge."""
        users = self.proc.folder / "users.csv"
        users.write_text(
            "SEQUENTIAL\nalice;example.com;[authentication username=alice password=secret]\n"
        )
        # SIPp computes the digest uri from -auth_uri (default: its target
        # address); the server checks it against the Request-URI.
        self.sipp("register_auth.xml", "u1", "-inf", str(users), "-auth_uri", "example.com")

    def test_register_digest_sipsak(self) -> None:
        """sipsak registers with digest (MD5, qop=auth) after a 401."""
        sipsak = require_tool("sipsak")
        result = run(
            [
                sipsak,
                "-vv",
                "-U",
                "-s",
                f"sip:alice@127.0.0.1:{self.proc.port}",
                "-u",
                "alice",
                "-a",
                "secret",
                "-C",
                "sip:alice@127.0.0.1:5999",
                "-x",
                "300",
            ]
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("authorizing", result.stdout)
        self.assertIn("All usrloc tests completed successful", result.stdout)

    def test_register_wrong_password(self) -> None:
        """A wrong password never registers: sipsak ends on a 401."""
        sipsak = require_tool("sipsak")
        result = run(
            [
                sipsak,
                "-vv",
                "-U",
                "-s",
                f"sip:alice@127.0.0.1:{self.proc.port}",
                "-u",
                "alice",
                "-a",
                "wrong",
                "-C",
                "sip:alice@127.0.0.1:5999",
                "-x",
                "300",
            ]
        )
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn("401", result.stdout + result.stderr)
        self.assert_alive()

    def test_torture_replay(self) -> None:
        """Every RFC 4475 message sent by sipsak leaves the server answering, no traceback."""
        sipsak = require_tool("sipsak")
        folder = corpus("rfc4475")
        for path in sorted(folder.glob("*.dat")):
            run(
                [
                    sipsak,
                    "-f",
                    str(path),
                    "-s",
                    f"sip:127.0.0.1:{self.proc.port}",
                    "-r",
                    str(self.proc.port),
                    "-D",
                    "1",
                    "--nagios-warn=1",
                ],
                timeout=10,
            )
        self.assert_alive()

    def test_torture_answers(self) -> None:
        """Invalid torture requests sent over UDP get a 4xx/5xx naming the fault, or nothing."""
        folder = corpus("rfc4475")
        for name in (
            "badinv01",
            "clerr",
            "ncl",
            "scalar02",
            "quotbal",
            "ltgtruri",
            "lwsruri",
            "lwsstart",
            "trws",
            "escruri",
            "regbadct",
            "badaspec",
            "badvers",
            "mismatch01",
            "mismatch02",
        ):
            data = (folder / f"{name}.dat").read_bytes()
            answer = udp_exchange(self.proc.port, data, timeout=0.5)
            if answer is not None:
                code = int(answer.split(b" ", 2)[1])
                self.assertTrue(400 <= code < 600, f"{name}: {answer[:60]!r}")
        self.assert_alive()

    def test_mutated_flood(self) -> None:
        """Thousands of mutated messages leave the server answering with no traceback."""
        folder = corpus("rfc4475")
        seeds = [p.read_bytes() for p in sorted(folder.glob("*.dat"))]
        rng = random.Random(4475)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(3000):
                data = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(1, 8)):
                    op = rng.random()
                    pos = rng.randrange(len(data) or 1)
                    if op < 0.4 and data:
                        data[pos] = rng.randrange(256)
                    elif op < 0.7:
                        data[pos:pos] = bytes(
                            rng.choice([b":", b";", b"\r\n", b" ", b"<", b"%", b"\x00", b","])
                        )
                    elif data:
                        del data[pos : pos + rng.randint(1, 20)]
                sock.sendto(bytes(data), ("127.0.0.1", self.proc.port))
                if i % 200 == 0:
                    time.sleep(0.2)  # let the burst drain before probing
                    self.assert_alive()
        self.assert_alive()
        self.assertNotRegex(self.proc.log(), re.compile(r"Unhandled|Traceback"))
