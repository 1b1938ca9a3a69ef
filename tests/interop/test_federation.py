# -*- test-case-name: tests.interop.test_federation -*-
"""
Federation end to end against the real plugin: an organizer of
another domain, example.org, with no account here, schedules a conference
with an S/MIME-signed REQUEST and no digest; the conference's REPLY goes
back to her domain, located through DNS (a C{twisted.names} server on
loopback serving example.org's SRV record, given by C{--resolver}), where
SIPp plays example.org's SIP server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

from twisted.trial.unittest import TestCase

from conference.sip.message import Response
from conference.sip.parser import parse_datagram
from conference.smime import sign_part
from tests.builders import request_bytes
from tests.interop.harness import SCENARIOS, ServerProcess, free_port, require_tool
from tests.interop.test_smime import ical
from tests.unit.smime.pki import make_user, pki, write

DORA = "sip:dora@example.org"
ROOM = "sip:conf@example.com"

# A DNS server for example.org: SRV for SIP over UDP pointing at SIPp.
_DNS = """
import sys
from twisted.internet import reactor
from twisted.names import authority, common, dns, server

port, sip_port = int(sys.argv[1]), int(sys.argv[2])

class Zone(authority.FileAuthority):
    def __init__(self):
        common.ResolverBase.__init__(self)
        self.soa = (b"example.org", dns.Record_SOA(mname=b"ns.example.org"))
        self.records = {
            b"example.org": [self.soa[1]],
            b"_sip._udp.example.org": [dns.Record_SRV(0, 0, sip_port, b"sip.example.org")],
            b"sip.example.org": [dns.Record_A("127.0.0.1")],
        }

factory = server.DNSServerFactory(authorities=[Zone()])
reactor.listenUDP(port, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
reactor.callWhenRunning(lambda: print("ready", flush=True))
reactor.run()
"""


def exchange(port: int, data: bytes, timeout: float = 10.0) -> Optional[Response]:
    """
    Send one request over UDP; the first final response, if any.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        while True:
            try:
                message = parse_datagram(sock.recv(65536))
            except socket.timeout:
                return None
            if isinstance(message, Response) and message.code >= 200:
                return message


class FederationTests(TestCase):
    """
    A signed REQUEST from example.org; the REPLY reaches example.org.
    """

    def setUp(self) -> None:
        self.sipp = require_tool("sipp")
        self.folder = Path(self.mktemp()).absolute()
        self.folder.mkdir(parents=True)
        self.sip_port, dns_port = free_port(), free_port()
        self.dns = subprocess.Popen(
            [sys.executable, "-c", _DNS, str(dns_port), str(self.sip_port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(self._stop, self.dns)
        assert self.dns.stdout is not None
        self.assertEqual(self.dns.stdout.readline().strip(), b"ready")
        ca = write(str(self.folder), "ca.pem", pki().ca.cert_pem())
        self.server = ServerProcess(
            [
                "--domain",
                "example.com",
                "--auth",
                "memory:alice:secret",
                "--smime-ca",
                ca,
                "--resolver",
                f"127.0.0.1:{dns_port}",
            ]
        )
        self.addCleanup(self.server.cleanup)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    def test_signed_request_reply_over_dns(self) -> None:
        """
        Dora's signed REQUEST is answered 200 without a digest, and SIPp,
        found through example.org's SRV record, receives the REPLY.
        """
        uas = subprocess.Popen(
            [
                self.sipp,
                "-sf",
                str(SCENARIOS / "message_uas.xml"),
                "-p",
                str(self.sip_port),
                "-i",
                "127.0.0.1",
                "-t",
                "u1",
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "30s",
                "-timeout_error",
            ],
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(self._stop, uas)
        dora = make_user(pki().ca, [DORA], common="dora")
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
        text = ical(ROOM, start, "fed-1@example.org", organizer=DORA)
        ctype, body = sign_part(
            "text/calendar; method=REQUEST", text.encode(), cert=dora.cert, key=dora.key
        )
        data = request_bytes(
            "MESSAGE",
            ROOM,
            via_host=f"127.0.0.1:{free_port()}",
            from_=f"<{DORA}>;tag=d1",
            to=f"<{ROOM}>",
            call_id="fed-1@example.org",
            headers=[("Content-Type", ctype)],
            body=body,
            rport=True,
        )
        response = exchange(self.server.port, data)
        assert response is not None, self.server.log()[-3000:]
        self.assertEqual(response.code, 200, self.server.log()[-3000:])
        output, _ = uas.communicate(timeout=40)
        self.assertEqual(
            uas.returncode, 0, output.decode(errors="replace")[-2000:] + self.server.log()[-3000:]
        )
        self.assertIn("Signed iTIP REQUEST from sip:dora@example.org", self.server.log())
