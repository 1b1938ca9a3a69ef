# -*- test-case-name: tests.interop.test_smime -*-
"""
S/MIME end to end against the real plugin : a
conference scheduled by a MESSAGE that Debian's C{openssl smime -sign}
signed works (200, and joining it by INVITE gets 200), and the calendar
parts the server signs (the join's VEVENT, the 486's VFREEBUSY, the iTIP
REPLY MESSAGE) verify with C{openssl smime -verify}.  Certificates are
made in the test with C{cryptography}; the client is plain Python UDP
with digest.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from twisted.trial.unittest import TestCase

from conference.sip.headers import parse_media_type, parse_warning
from conference.sip.message import Request, Response
from conference.sip.multipart import parse_multipart
from conference.sip.parser import parse_datagram
from conference.smime import parse_entity
from tests.interop.harness import ServerProcess, require_tool
from tests.interop.test_bind import SIPClient
from tests.unit.smime.pki import Identity, files, make_user, openssl, pki, write

USERS = "memory:alice:secret:bob:secret"
ROOM = "sip:conf@example.com"
LATER = "sip:later@example.com"
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def ical(room: str, start: datetime, uid: str, organizer: str = "sip:alice@example.com") -> str:
    """
    A REQUEST for a one-hour conference at C{room}.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//interop//EN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
        f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
        "SUMMARY:S/MIME interop",
        f"ORGANIZER:{organizer}",
        f"ATTENDEE;CUTYPE=ROOM;PARTSTAT=NEEDS-ACTION:{room}",
        "ATTENDEE;PARTSTAT=NEEDS-ACTION:sip:bob@example.com",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines)


class Client(SIPClient):
    """
    L{SIPClient} with bodies, provisional responses skipped, and requests
    from the server (iTIP MESSAGEs) kept and answered 200.
    """

    def __init__(self, port: int, user: str = "alice") -> None:
        super().__init__(port, user)
        self.body = b""
        self.requests: List[Request] = []

    def build(  # type: ignore[override]
        self, method: str, to: str, headers: Sequence[Tuple[str, str]] = (), **kw: object
    ) -> Tuple[str, bytes]:
        call_id, data = super().build(method, to, headers, **kw)  # type: ignore[arg-type]
        tail = b"Content-Length: 0\r\n\r\n"
        assert data.endswith(tail)
        length = f"Content-Length: {len(self.body)}\r\n\r\n".encode()
        return call_id, data[: -len(tail)] + length + self.body

    def receive(self, timeout: float = 5.0, call_id: Optional[str] = None) -> Optional[Response]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            message = parse_datagram(data)
            if isinstance(message, Request):
                self.requests.append(message)
                self.answer(message)
            elif (
                isinstance(message, Response)
                and message.code >= 200
                and (call_id is None or message.header("call-id") == call_id)
            ):
                return message
        return None

    def answer(self, request: Request) -> None:
        lines = ["SIP/2.0 200 OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            lines += [f"{name.title()}: {v}" for v in request.header_fields(name)]
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), ("127.0.0.1", self.port))

    def send(
        self,
        method: str,
        uri: str,
        headers: Sequence[Tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        self.body = body
        return self.exchange(method, uri, headers, uri=uri)

    def exchange(
        self, method: str, to: str, headers: Sequence[Tuple[str, str]] = (), **kw: object
    ) -> Response:
        """
        Send a request, answer one challenge; the final response of that
        Call-ID (stray retransmissions of earlier answers are skipped).
        """
        for attempt in range(2):
            call_id, data = self.build(method, to, headers, **kw)
            self.sock.sendto(data, ("127.0.0.1", self.port))
            response = self.receive(call_id=call_id)
            assert response is not None, f"no answer to {method}"
            if response.code != 401 or attempt == 1:
                break
            self.learn(response)
        assert response is not None
        return response

    def wait_request(self, timeout: float = 5.0) -> Optional[Request]:
        deadline = time.monotonic() + timeout
        while not self.requests and time.monotonic() < deadline:
            self.receive(0.2)
        return self.requests.pop(0) if self.requests else None


class SMIMEInteropTests(TestCase):
    """
    openssl signs what we schedule; openssl verifies what we sign.
    """

    def setUp(self) -> None:
        require_tool("openssl")
        p = pki()
        self.folder = Path(self.mktemp()).resolve()
        self.folder.mkdir(parents=True)
        self.ca = write(str(self.folder), "ca.pem", p.ca.cert_pem())
        server_cert, server_key, _ = files(str(self.folder), p.server, "server")
        self.proc = ServerProcess(
            [
                "--auth",
                USERS,
                "--domain",
                "example.com",
                "--smime-ca",
                self.ca,
                "--smime-cert",
                server_cert,
                "--smime-key",
                server_key,
            ]
        )
        self.addCleanup(self.proc.cleanup)
        self.alice = Client(self.proc.port)
        self.addCleanup(self.alice.close)

    def openssl_signed(self, who: Identity, name: str, text: str) -> Tuple[str, bytes]:
        """
        C{text} as a text/calendar entity signed by C{openssl smime -sign}.
        """
        cert, key, _ = files(str(self.folder), who, name)
        entity = write(
            str(self.folder),
            f"{name}-entity.txt",
            b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n" + text.encode(),
        )
        media, body = parse_entity(
            openssl("smime", "-sign", "-in", entity, "-signer", cert, "-inkey", key)
        )
        return str(media), body

    def verify(self, content_type: str, body: bytes, name: str) -> bytes:
        """
        C{openssl smime -verify} of a server-signed part against the CA.
        """
        path = write(
            str(self.folder), name, f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        return openssl("smime", "-verify", "-CAfile", self.ca, "-in", path)

    def schedule(self, room: str, start: datetime, uid: str, who: Identity) -> Response:
        ctype, body = self.openssl_signed(who, uid, ical(room, start, uid))
        return self.alice.send("MESSAGE", room, [("Content-Type", ctype)], body)

    def invite(self, room: str, accept: str) -> Response:
        headers = [
            ("Contact", f"<sip:alice@127.0.0.1:{self.alice.local_port}>"),
            ("Content-Type", "application/sdp"),
            ("Accept", accept),
        ]
        return self.alice.send("INVITE", room, headers, SDP)

    def test_openssl_signed_schedule_and_signed_answers(self) -> None:
        """An openssl-signed REQUEST schedules; the 200, 486 and REPLY verify with openssl."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.alice.body = b""
        contact = ("Contact", f"<sip:alice@127.0.0.1:{self.alice.local_port}>")
        registered = self.alice.exchange(
            "REGISTER", "sip:alice@example.com", [contact, ("Expires", "600")]
        )
        self.assertEqual(registered.code, 200)
        response = self.schedule(ROOM, now - timedelta(minutes=5), "interop-now", pki().alice)
        self.assertEqual(response.code, 200, self.proc.log()[-3000:])
        # The conference's iTIP REPLY comes signed by the server.
        reply = self.alice.wait_request()
        assert reply is not None, self.proc.log()[-3000:]
        ctype = reply.header("content-type")
        assert ctype is not None
        self.assertTrue(ctype.startswith("multipart/signed"), ctype)
        self.assertIn(b"REPLY", self.verify(ctype, reply.body, "reply.eml"))
        # Joining it: 200 whose VEVENT part openssl verifies.
        joined = self.invite(ROOM, "application/sdp, application/calendar+xml")
        self.assertEqual(joined.code, 200, self.proc.log()[-3000:])
        media = parse_media_type(joined.header("content-type") or "")
        (signed,) = [
            p
            for p in parse_multipart(joined.body, media).parts
            if p.media_type.mime == "multipart/signed"
        ]
        content = self.verify(str(signed.media_type), signed.body, "join.eml")
        self.assertIn(b"VEVENT", content)
        self.assertIn(b"interop-now", content)
        # A conference not open yet: 486 with a signed VFREEBUSY.
        later = self.schedule(LATER, now + timedelta(days=1), "interop-later", pki().alice)
        self.assertEqual(later.code, 200)
        busy = self.invite(LATER, "application/sdp, text/calendar")
        self.assertEqual(busy.code, 486)
        content = self.verify(busy.header("content-type") or "", busy.body, "busy.eml")
        self.assertIn(b"VFREEBUSY", content)
        self.assertEqual(self.proc.tracebacks(), [], self.proc.log()[-3000:])

    def test_openssl_signed_by_someone_else(self) -> None:
        """Alice's digest with Bob's openssl signature on her REQUEST is 403 with a Warning."""
        bob = make_user(pki().ca, ["sip:bob@example.com"], common="bob")
        start = datetime.now(timezone.utc) + timedelta(days=2)
        response = self.schedule(ROOM, start, "interop-bob", bob)
        self.assertEqual(response.code, 403)
        (value,) = response.header_fields("warning")
        self.assertIn(
            "S/MIME signer sip:bob@example.com is not the ORGANIZER", parse_warning(value)[0].text
        )
        joined = self.invite(ROOM, "application/sdp")
        self.assertEqual(joined.code, 404)  # nothing was scheduled
        self.assertIn("ignored", self.proc.log())
