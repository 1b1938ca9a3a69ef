# -*- test-case-name: tests.unit.web.test_resource -*-
"""
A status site over the focus fixture: memory stores, a fake clock, fake
media, and HTTP requests written into a real L{Site} over a
L{StringTransport}, answers parsed back.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import StringTransport

from conference.app.control import ConferenceControl
from conference.app.core import CoreRouter
from conference.auth import make_portal
from conference.records import StoreError
from conference.sip.digest import compute_ha1, compute_response, parse_auth_header
from conference.transport.server import SIPServer
from conference.web import status_site
from tests.unit.app.test_focus import FocusFixture

ORGANIZER = "sip:alice@example.com"
ATTENDEE = "sip:bob@example.com"
STRANGER = "sip:carol@example.com"
ADMIN = "sip:root@example.com"
CONF = "sip:conf@example.com"


def digest_authorization(
    challenge: str,
    user: str,
    password: str,
    uri: str,
    *,
    method: str = "GET",
    nc: int = 1,
    algorithm: str = "SHA-256",
) -> str:
    """
    An C{Authorization} value answering the digest C{challenge} (qop=auth,
    C{algorithm}) as a browser would.
    """
    _, params = parse_auth_header(challenge)
    realm, nonce = params["realm"], params["nonce"]
    ha1 = compute_ha1(algorithm, user, realm, password)
    response = compute_response(
        algorithm, ha1, nonce=nonce, method=method, uri=uri, qop="auth", nc=nc, cnonce="c0ffee"
    )
    opaque = f', opaque="{params["opaque"]}"' if "opaque" in params else ""
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc:08x}, '
        f'cnonce="c0ffee"{opaque}'
    )


class FailingConferences:
    """
    A conference store whose database is down.
    """

    def get(self, uri: str) -> Deferred[Any]:
        return fail(StoreError("database is gone"))

    def list(self, organizer: Any = None, state: Any = None) -> Deferred[Any]:
        return fail(StoreError("database is gone"))


@dataclass
class Answer:
    """
    A parsed HTTP response.
    """

    code: int
    headers: Dict[str, List[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def parse_answer(data: bytes) -> Answer:
    """
    Parse one HTTP/1.1 response (chunked or with a length).
    """
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    answer = Answer(int(lines[0].split()[1]))
    for line in lines[1:]:
        name, _, value = line.partition(":")
        answer.headers.setdefault(name.strip().lower(), []).append(value.strip())
    if answer.header("transfer-encoding") == "chunked":
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2 :]
        answer.body = body
    else:
        answer.body = rest
    return answer


class WebFixture(FocusFixture):
    """
    The focus fixture plus a status site: alice organizes the stored
    conference, bob attends, carol is a stranger and root an admin.
    """

    metrics_public = False

    def setUp(self) -> None:
        super().setUp()
        checker = InMemoryUsernamePasswordDatabaseDontUse(
            alice=b"pw-a", bob=b"pw-b", carol=b"pw-c", root=b"pw-r"
        )
        self.sip = SIPServer(
            CoreRouter(["example.com"], tag_factory=lambda: "t"), reactor=self.clock
        )
        #: The conference control the status page's actions go through.
        self.control = ConferenceControl(self.focus, admins=[ADMIN])
        self.site = status_site(
            self,
            make_portal([checker]),
            ["example.com"],
            [ADMIN],
            self.clock,
            metrics_public=self.metrics_public,
        )

    def request(
        self,
        path: str,
        user: Optional[str] = "alice",
        *,
        method: str = "GET",
        form: Optional[Dict[str, str]] = None,
        headers: Tuple[Tuple[str, str], ...] = (),
        peer: str = "127.0.0.1",
    ) -> Answer:
        """
        Send one request as C{user} (basic, password C{pw-<first letter>};
        None: no credentials) from C{peer} and return the answer.
        """
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
        if user is not None:
            token = base64.b64encode(f"{user}:pw-{user[0]}".encode()).decode()
            lines.append(f"Authorization: Basic {token}")
        lines += [f"{name}: {value}" for name, value in headers]
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            lines.append("Content-Type: application/x-www-form-urlencoded")
        lines.append(f"Content-Length: {len(body)}")
        transport = StringTransport(peerAddress=IPv4Address("TCP", peer, 40000))
        channel = self.site.buildProtocol(None)
        assert channel is not None
        channel.makeConnection(transport)
        channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        self.clock.advance(0)
        return parse_answer(transport.value())

    def join(self, call_id: str = "call-1", who: str = "bob") -> Any:
        """
        C{who} joins the conference through the focus (its 200).
        """
        response = self.answer(
            self.invite(call_id=call_id, from_=f"<sip:{who}@example.com>;tag={who}1")
        )
        self.assertEqual(response.code, 200)
        return response
