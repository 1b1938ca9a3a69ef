# -*- test-case-name: tests.loopback.test_embedding -*-
"""
An application that embeds the server chooses its reactor after importing
us: here C{asyncioreactor}, installed after C{import conference} and the
service's own modules, runs the service built by L{conference.tap}.

It runs in a fresh interpreter (a reactor is installed once per process)
on loopback with ephemeral ports.
"""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

# Prints the reactor's class, then the status line of the answer to an
# OPTIONS sent over UDP, then "stopped" once the service stopped.
_EMBED = """
import sys

import conference
import conference.tap

assert "twisted.internet.reactor" not in sys.modules, "imported the reactor"

from twisted.internet import asyncioreactor

asyncioreactor.install()

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

options = conference.tap.Options()
options.parseOptions(
    ["--listen", "udp:0:interface=127.0.0.1", "--store", "memory", "--stop-timeout", "0.2"]
)
service = conference.tap.makeService(options)
print(type(reactor).__name__, flush=True)

OPTIONS = (
    "OPTIONS sip:localhost SIP/2.0\\r\\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKembed1\\r\\n"
    "Max-Forwards: 70\\r\\n"
    "From: <sip:probe@localhost>;tag=e1\\r\\n"
    "To: <sip:localhost>\\r\\n"
    "Call-ID: embed-1@127.0.0.1\\r\\n"
    "CSeq: 1 OPTIONS\\r\\n"
    "Content-Length: 0\\r\\n\\r\\n"
)


class Client(DatagramProtocol):
    def datagramReceived(self, data, addr):
        print(data.split(b"\\r\\n", 1)[0].decode(), flush=True)
        service.stopService().addCallback(stopped)


def stopped(_):
    print("stopped", flush=True)
    reactor.stop()


def ready(_):
    server = service.udp_ports[0].getHost().port
    client = reactor.listenUDP(0, Client(), interface="127.0.0.1")
    message = OPTIONS.format(port=client.getHost().port).encode()
    client.write(message, ("127.0.0.1", server))


def give_up():
    print("timed out", flush=True)
    reactor.stop()


service.ready.addCallback(ready)
reactor.callWhenRunning(service.startService)
reactor.callLater(20, give_up)
reactor.run()
"""


class AsyncioEmbeddingTests(SynchronousTestCase):
    """
    The service on a reactor installed after importing it.
    """

    def test_asyncio_reactor(self) -> None:
        """
        After C{import conference} and C{conference.tap}, asyncioreactor can
        still be installed; the service runs on it and answers OPTIONS 200.
        """
        result = subprocess.run(
            [sys.executable, "-c", _EMBED],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            result.stdout.splitlines(), ["AsyncioSelectorReactor", "SIP/2.0 200 OK", "stopped"]
        )
