# -*- test-case-name: tests.unit.bindings.test_data -*-
"""
Tests for L{conference.bindings.data}.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.bindings.data import (
    InlineData,
    body_multipart,
    build_data_uri,
    is_cid_uri,
    is_data_uri,
    is_inline,
    parse_data_uri,
    resolve_cid,
    resolve_inline,
)
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import parse_media_type
from conference.sip.multipart import BodyPart, Multipart, build_multipart, parse_multipart
from conference.sip.uri import parse_uri


def multipart(*parts: BodyPart) -> Multipart:
    """
    A parsed multipart body of C{parts}.
    """
    content_type, body = build_multipart(list(parts))
    return parse_multipart(body, content_type)


class DataURITests(SynchronousTestCase):
    """
    parse_data_uri and build_data_uri (RFC 2397).
    """

    def test_rfc2397Examples(self) -> None:
        """
        The RFC's examples decode, with the default media type when none
        is named.
        """
        self.assertEqual(
            parse_data_uri("data:,A%20brief%20note"),
            InlineData("text/plain;charset=US-ASCII", b"A brief note"),
        )
        self.assertEqual(
            parse_data_uri("data:text/plain;charset=iso-8859-7,%be%e1%be"),
            InlineData("text/plain;charset=iso-8859-7", b"\xbe\xe1\xbe"),
        )
        self.assertEqual(
            parse_data_uri("data:;charset=utf-8,x").content_type, "text/plain;charset=utf-8"
        )

    def test_base64(self) -> None:
        """
        ;base64 data is decoded, also when %-escaped.
        """
        self.assertEqual(
            parse_data_uri("data:application/octet-stream;base64,AAEC%2F%2F8%3D"),
            InlineData("application/octet-stream", b"\x00\x01\x02\xff\xff"),
        )

    def test_refused(self) -> None:
        """
        Missing comma, bad escapes, bad base64 and bad media types are 400s.
        """
        for uri, words in [
            ("data:text/plain", "without ','"),
            ("data:,%zz", "%-escape"),
            ("data:;base64,!!!", "base64"),
            ("data:nonsense,x", "not type/subtype"),
            ("http://x", "not a data: URI"),
        ]:
            e = self.assertRaises(RemoteProtocolError, parse_data_uri, uri)
            self.assertEqual(e.status, 400)
            self.assertIn(words, e.reason)

    def test_sizeCap(self) -> None:
        """
        Data over the cap is a 413; data at the cap is accepted.
        """
        self.assertEqual(len(parse_data_uri("data:,aaaa", max_size=4).data), 4)
        e = self.assertRaises(RemoteProtocolError, parse_data_uri, "data:,aaaaa", max_size=4)
        self.assertEqual(e.status, 413)
        e = self.assertRaises(
            RemoteProtocolError, parse_data_uri, "data:," + "a" * 10000, max_size=4
        )
        self.assertEqual(e.status, 413)

    def test_buildForms(self) -> None:
        """
        Printable text is %-encoded, anything else base64; the result is a
        URI the SIP URI parser accepts.
        """
        text = build_data_uri('text/plain;charset="a b"', b"Hello, <world>")
        self.assertEqual(text, "data:text/plain;charset=%22a%20b%22,Hello%2C%20%3Cworld%3E")
        binary = build_data_uri("image/png", b"\x89PNG")
        self.assertEqual(binary, "data:image/png;base64,iVBORw==")
        for uri in (text, binary):
            self.assertEqual(str(parse_uri(uri)), uri)

    def test_schemes(self) -> None:
        """
        data: and cid: are recognised in any case.
        """
        self.assertTrue(is_data_uri("DATA:,x") and is_cid_uri("Cid:a") and is_inline("cid:b"))
        self.assertFalse(is_inline("http://x"))

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(["text/plain", "text/plain;charset=utf-8", "application/xml", "image/png"]),
        st.binary(max_size=100),
    )
    def test_roundTrip(self, content_type: str, data: bytes) -> None:
        """
        Whatever the data, building then parsing gives it back.
        """
        uri = build_data_uri(content_type, data)
        self.assertEqual(parse_data_uri(uri), InlineData(str(parse_media_type(content_type)), data))


class CidTests(SynchronousTestCase):
    """
    resolve_cid and resolve_inline (RFC 2392).
    """

    def test_found(self) -> None:
        """
        A cid: URI names the part with that Content-ID; %-escapes are undone
        and the transfer encoding is removed.
        """
        body = multipart(
            BodyPart("application/sdp", b"v=0\r\n"),
            BodyPart(
                "application/cpl+xml",
                b"PGNwbC8+",
                content_id="cpl 1@example.com",
                headers=(("Content-Transfer-Encoding", "base64"),),
            ),
        )
        self.assertEqual(
            resolve_cid("cid:cpl%201@example.com", body),
            InlineData("application/cpl+xml", b"<cpl/>"),
        )
        self.assertEqual(
            resolve_inline("cid:cpl%201@example.com", body),
            resolve_cid("cid:cpl%201@example.com", body),
        )
        self.assertIsNone(resolve_inline("http://x", body))

    def test_refused(self) -> None:
        """
        No body, no such part, an empty cid: or a part over the cap are
        refused.
        """
        body = multipart(BodyPart("text/plain", b"12345", content_id="a@b"))
        e = self.assertRaises(RemoteProtocolError, resolve_cid, "cid:a@b", None)
        self.assertIn("no multipart body", e.reason)
        e = self.assertRaises(RemoteProtocolError, resolve_cid, "cid:x@b", body)
        self.assertIn("names no part", e.reason)
        e = self.assertRaises(RemoteProtocolError, resolve_cid, "cid:", body)
        self.assertIn("empty", e.reason)
        e = self.assertRaises(RemoteProtocolError, resolve_cid, "cid:a@b", body, max_size=4)
        self.assertEqual(e.status, 413)

    def test_bodyMultipart(self) -> None:
        """
        Only a multipart body is parsed for cid: lookups.
        """
        content_type, body = build_multipart([BodyPart("text/plain", b"x", content_id="a@b")])
        parsed = body_multipart(parse_media_type(content_type), body)
        assert parsed is not None
        self.assertEqual(parsed.parts[0].content_id, "a@b")
        self.assertIsNone(body_multipart(parse_media_type("application/sdp"), b"v=0"))
        self.assertIsNone(body_multipart(None, b""))
