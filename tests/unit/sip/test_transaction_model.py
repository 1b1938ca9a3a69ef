# -*- test-case-name: tests.unit.sip.test_transaction_model -*-
"""
Tests for L{conference.sip.transaction_model}: peers, the matching keys of
RFC 3261 section 17.2.3 and RFC 2543, the ACK built for non-2xx finals,
and the transaction summary used for logging.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip import transaction_model
from conference.sip.message import make_response
from conference.sip.transaction_model import (
    MAGIC_COOKIE,
    ClientTransaction,
    Peer,
    ServerTransaction,
    TransactionState,
    build_ack,
    has_cookie,
    merge_key,
    rfc3261_key,
    sent_by,
    server_key,
    shared_host,
    shared_port,
)
from tests.unit.sip.test_transaction import UDP, request, response_to


class PeerTests(SynchronousTestCase):
    """
    L{Peer}.
    """

    def test_reliable(self) -> None:
        """Only UDP is unreliable, whatever the case of the name."""
        self.assertFalse(Peer("UDP", "h", 1).reliable)
        self.assertFalse(Peer("udp", "h", 1).reliable)
        self.assertTrue(Peer("TCP", "h", 1).reliable)
        self.assertTrue(Peer("TLS", "::1", 1, connection=("c", 1)).reliable)

    def test_hashable(self) -> None:
        """Peers are values: equal fields, equal peers."""
        self.assertEqual(Peer("TCP", "h", 1, 3), Peer("TCP", "h", 1, 3))
        self.assertEqual(len({Peer("TCP", "h", 1, 3), Peer("TCP", "h", 1, 3)}), 1)


class KeyTests(SynchronousTestCase):
    """
    The matching keys.
    """

    def test_cookie(self) -> None:
        """Only the cookie followed by something is an RFC 3261 branch."""
        self.assertTrue(has_cookie(MAGIC_COOKIE + "x"))
        for branch in (None, "", MAGIC_COOKIE, "z9hg4bkX", "abc", 5):
            self.assertFalse(has_cookie(branch), branch)

    @settings(max_examples=200)
    @given(st.text(min_size=1, max_size=20))
    def test_cookie_prefix(self, rest: str) -> None:
        """Any non-empty suffix after the cookie counts."""
        self.assertTrue(has_cookie(MAGIC_COOKIE + rest))

    def test_sent_by_defaults(self) -> None:
        """A missing port is 5060, or 5061 over TLS; the host is case-folded."""
        udp = request(via="SIP/2.0/UDP Client.Example.COM").top_via
        tls = request(via="SIP/2.0/TLS client.example.com").top_via
        explicit = request(via="SIP/2.0/UDP client.example.com:5070").top_via
        self.assertEqual(sent_by(udp), ("client.example.com", 5060))
        self.assertEqual(sent_by(tls), ("client.example.com", 5061))
        self.assertEqual(sent_by(explicit), ("client.example.com", 5070))

    def test_rfc3261_key(self) -> None:
        """Branch, sent-by and method; the default port equals an explicit 5060."""
        a = server_key(request(via="SIP/2.0/UDP client.example.com"), "INVITE")
        b = server_key(request(via="SIP/2.0/UDP client.example.com:5060"), "INVITE")
        self.assertEqual(a, b)
        self.assertEqual(a, ("3261", "z9hG4bKinv1", "client.example.com", 5060, "INVITE"))
        self.assertNotEqual(a, server_key(request(), "CANCEL"))
        ack = request("ACK", to_tag="x")
        self.assertEqual(server_key(ack, "INVITE"), a)

    HOSTS = ("Shared.Example.COM", "shared.example.com", "SHARED.example.com")

    def test_hosts_shared(self) -> None:
        """Keys of messages from one host hold one lower-case host string, however it is written."""
        keys = [
            server_key(request(via=f"SIP/2.0/UDP {host}", branch=f"z9hG4bK{n}"), "INVITE")
            for n, host in enumerate(self.HOSTS)
        ]
        hosts = [key[2] for key in keys]  # type: ignore[index]
        self.assertEqual(hosts[0], "shared.example.com")
        self.assertIs(hosts[0], hosts[1])
        self.assertIs(hosts[0], hosts[2])

    def test_hosts_bounded(self) -> None:
        """Past the bound, hosts are still lowered, but no longer remembered."""
        self.patch(transaction_model, "_HOSTS", {})
        self.patch(transaction_model, "MAX_SHARED_HOSTS", 2)
        self.assertEqual(shared_host("A.example"), "a.example")
        self.assertEqual(shared_host("B.example"), "b.example")
        self.assertEqual(len(transaction_model._HOSTS), 2)
        self.assertEqual(shared_host("C.example"), "c.example")
        self.assertEqual(len(transaction_model._HOSTS), 2)
        self.assertNotIn("C.example", transaction_model._HOSTS)

    def test_ports_shared(self) -> None:
        """Keys with the same port hold one int object for it, within the bound."""
        self.patch(transaction_model, "_PORTS", {})
        self.patch(transaction_model, "MAX_SHARED_HOSTS", 1)
        first = rfc3261_key("z9hG4bK1", "h", int("40123"), "INVITE")
        second = rfc3261_key("z9hG4bK2", "h", int("40123"), "BYE")
        self.assertIs(first[3], second[3])  # type: ignore[index]
        self.assertEqual(shared_port(int("40124")), 40124)
        self.assertNotIn(40124, transaction_model._PORTS)

    def test_no_instance_dictionary(self) -> None:
        """Transactions keep their attributes in slots: no dictionary per transaction."""
        server = ServerTransaction(request(), UDP, "k", 0.0, True)
        client = ClientTransaction(request(), UDP, "k", 0.0)
        for txn in (server, client):
            self.assertFalse(hasattr(txn, "__dict__"), txn)

    def test_rfc2543_key(self) -> None:
        """Without a cookie: Request-URI, From tag, Call-ID, CSeq and top Via count."""
        base = server_key(request(branch=None), "INVITE")
        self.assertEqual(base, server_key(request(branch=None), "INVITE"))
        self.assertEqual(base, server_key(request(branch=None, to_tag="t"), "INVITE"))
        for changed in (
            request(branch=None, ruri="sip:other@example.com"),
            request(branch=None, from_tag="f2"),
            request(branch=None, call_id="c2"),
            request(branch=None, cseq=2),
            request(branch=None, via="SIP/2.0/UDP elsewhere.example.com"),
        ):
            self.assertNotEqual(base, server_key(changed, "INVITE"))

    def test_merge_key(self) -> None:
        """The merge key ignores the branch but not the CSeq method."""
        self.assertEqual(merge_key(request()), merge_key(request(branch="z9hG4bKz")))
        self.assertNotEqual(merge_key(request()), merge_key(request("OPTIONS")))


class AckTests(SynchronousTestCase):
    """
    L{build_ack} (section 17.1.1.3).
    """

    def test_fields(self) -> None:
        """The ACK copies URI, top Via, From, Call-ID, Route; takes To from the response."""
        invite = request(
            extra="Route: <sip:p1.example.com;lr>\nRoute: <sip:p2.example.com;lr>\n",
            via="SIP/2.0/UDP conf.example.com;branch=z9hG4bKq, SIP/2.0/UDP other.example.com",
            branch=None,
        )
        ack = build_ack(invite, response_to(invite, 486, to_tag="busy"))
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(str(ack.uri), str(invite.uri))
        self.assertEqual([v.branch for v in ack.vias], ["z9hG4bKq"])
        self.assertEqual(ack.header("from"), invite.header("from"))
        self.assertEqual(ack.to.tag, "busy")
        self.assertEqual(ack.call_id, invite.call_id)
        self.assertEqual(str(ack.cseq), "1 ACK")
        self.assertEqual(
            ack.header_values("route"), ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        )
        self.assertEqual(ack.body, b"")


class SummaryTests(SynchronousTestCase):
    """
    What a transaction tells the log line.
    """

    def test_server_summary(self) -> None:
        """Status and duration follow the responses; repr names method and state."""
        txn = ServerTransaction(request(), UDP, "k", 10.0, True)
        self.assertEqual(txn.state, TransactionState.PROCEEDING)
        self.assertIsNone(txn.status)
        self.assertIsNone(txn.duration)
        txn.last_response = make_response(txn.request, 180)
        self.assertEqual(txn.status, 180)
        txn.final_response = make_response(txn.request, 200)
        txn.completed_at = 12.5
        self.assertEqual((txn.status, txn.duration), (200, 2.5))
        self.assertIn("INVITE Proceeding status=200", repr(txn))

    def test_hold(self) -> None:
        """A held transaction keeps bytes alone and reads them back, once, when asked."""
        txn = ServerTransaction(request(), UDP, "k", 10.0, True)
        req = txn.request
        txn.last_response = make_response(req, 180, to_tag="t")
        txn.hold()  # before the final: the provisional is held too
        self.assertTrue(txn.held)
        self.assertIsInstance(txn._last, bytes)
        self.assertEqual(txn.status, 180)
        self.assertTrue(txn.held)  # status read the response, not the request
        final = make_response(req, 486, to_tag="t")
        txn.last_response = txn.final_response = final
        txn.hold()
        self.assertTrue(txn.held)
        self.assertEqual((txn._request, txn._final), (req.to_bytes(), final.to_bytes()))
        self.assertIs(txn._last, txn._final)
        self.assertEqual(txn.status, 486)
        self.assertIs(txn.last_response, txn.final_response)
        self.assertIs(txn.final_response, txn.final_response)
        back = txn.request
        self.assertFalse(txn.held)
        self.assertIs(txn.request, back)
        self.assertEqual((back.method, back.call_id), ("INVITE", req.call_id))

    def test_hold_last_read_first(self) -> None:
        """Reading a held last response first gives the final response, the same object."""
        txn = ServerTransaction(request(), UDP, "k", 10.0, True)
        final = make_response(txn.request, 404, to_tag="t")
        txn.last_response = txn.final_response = final
        txn.hold()
        last = txn.last_response
        assert last is not None
        self.assertEqual(last.code, 404)
        self.assertIs(txn.final_response, last)

    def test_client_summary(self) -> None:
        """A client transaction that ended without a response lasts until it ended."""
        txn = ClientTransaction(request("NOTIFY"), UDP, "k", 1.0)
        self.assertEqual(txn.state, TransactionState.TRYING)
        self.assertFalse(txn.is_invite)
        txn.ended = 33.0
        self.assertEqual(txn.duration, 32.0)
        self.assertEqual(
            ClientTransaction(request(), UDP, "k", 0.0).state, TransactionState.CALLING
        )


class RandomIdTests(SynchronousTestCase):
    """
    Tags and branches: batched cryptographic randomness (randomness.py).
    """

    def test_ids(self) -> None:
        """Tags carry 64 random bits; branches the RFC 3261 magic cookie and 80 bits."""
        from conference.sip.transaction_model import MAGIC_COOKIE, new_branch, new_tag

        self.assertNotEqual(new_tag(), new_tag())
        self.assertEqual(len(new_tag()), 16)
        branch = new_branch()
        self.assertTrue(branch.startswith(MAGIC_COOKIE))
        self.assertEqual(len(branch), len(MAGIC_COOKIE) + 20)
