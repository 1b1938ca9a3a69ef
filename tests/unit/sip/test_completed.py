# -*- test-case-name: tests.unit.sip.test_completed -*-
"""
Tests for L{conference.sip.completed}: the table of retired server
transactions, and the layer retiring held ones into it
(L{conference.sip.transaction.TransactionLayer.hold}) so that they absorb
retransmissions, CANCELs and merged copies as they did until their timer.
"""

from __future__ import annotations

from typing import List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.completed import CompletedTable
from conference.sip.errors import LocalProtocolError
from conference.sip.message import Response, make_response
from conference.sip.transaction import (
    AckReceived,
    Peer,
    RequestReceived,
    SendMessage,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
)
from tests.unit.sip.test_transaction import (
    TCP,
    UDP,
    assert_empty,
    new_layer,
    only,
    request,
    run_timers,
    sent_codes,
    start,
)

MOVED = Peer("UDP", "198.51.100.7", 5999)


def ok_bytes(method: str = "MESSAGE") -> bytes:
    """The bytes of a 200 to a C{method} request."""
    return make_response(request(method), 200, to_tag="x").to_bytes()


class CompletedTableTests(SynchronousTestCase):
    """
    The table alone: rows, what a retransmission gets, expiry in order.
    """

    def test_absorb_resends_final(self) -> None:
        """A non-INVITE row answers a retransmission with its final, to where it came from."""
        table = CompletedTable()
        table.add("k", ok_bytes(), None, 32.0)
        actions = table.absorb("k", MOVED)
        assert actions is not None
        self.assertEqual(sent_codes(actions), [200])
        self.assertEqual(only(actions, SendMessage)[0].peer, MOVED)
        self.assertEqual(only(actions, SendMessage)[0].message.to_bytes(), ok_bytes())

    def test_absorb_acknowledged_invite(self) -> None:
        """An acknowledged INVITE's row absorbs silently and gives its To tag to a CANCEL."""
        table = CompletedTable()
        table.add("k", "tag9", None, 32.0)
        self.assertEqual(table.absorb("k", UDP), [])
        self.assertEqual(table.invite_tag("k"), "tag9")
        self.assertIsNone(table.absorb("other", UDP))
        self.assertIsNone(table.invite_tag("other"))

    def test_expire_in_order(self) -> None:
        """Rows expire at their deadline, oldest first, giving back their merge keys."""
        table = CompletedTable()
        table.add("a", "t", ("m", 1), 10.0)
        table.add("b", "t", None, 11.0)
        self.assertEqual(table.next_deadline(), 10.0)
        self.assertEqual(table.expire(9.9), [])
        self.assertEqual(table.expire(10.0), [("a", ("m", 1))])
        self.assertNotIn("a", table)
        self.assertEqual(table.next_deadline(), 11.0)
        self.assertEqual(table.expire(50.0), [("b", None)])
        self.assertEqual(len(table), 0)
        self.assertIsNone(table.next_deadline())

    def test_late_row_waits_for_earlier(self) -> None:
        """A row whose deadline is before the last one's waits as long, never less."""
        table = CompletedTable()
        table.add("a", "t", None, 12.0)
        table.add("b", "t", None, 11.0)
        self.assertEqual(table.expire(11.5), [])
        self.assertEqual([k for k, _ in table.expire(12.0)], ["a", "b"])

    def test_trim_drops_oldest(self) -> None:
        """Past a limit the oldest rows go early, with their merge keys, and are counted."""
        table = CompletedTable()
        for n, name in enumerate("abcde"):
            table.add(name, "t", (name, 1), 10.0 + n)
        self.assertEqual(table.trim(5), [])
        self.assertEqual(table.trim(3), [("a", ("a", 1)), ("b", ("b", 1))])
        self.assertEqual((len(table), table.dropped_early), (3, 2))
        self.assertEqual(table.next_deadline(), 12.0)
        self.assertEqual([k for k, _ in table.expire(20.0)], ["c", "d", "e"])

    def test_duplicate_key_refused(self) -> None:
        """A key already kept cannot be added again (it would expire early)."""
        table = CompletedTable()
        table.add("a", "t", None, 12.0)
        self.assertRaises(ValueError, table.add, "a", "t", None, 13.0)

    def test_queue_trimmed(self) -> None:
        """The consumed part of the queue is dropped as it grows: memory stays bounded."""
        table = CompletedTable()
        for i in range(5000):
            table.add(i, "t", None, float(i))
            table.expire(float(i) - 10)
        self.assertEqual(len(table), 10)
        self.assertLess(len(table._keys), 3000)
        self.assertEqual(table.next_deadline(), 4990.0)

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(
            st.tuples(st.floats(min_value=0.0, max_value=5.0), st.booleans()),
            max_size=60,
        )
    )
    def test_never_early(self, steps: List[Tuple[float, bool]]) -> None:
        """Whatever the order of deadlines, no row expires before its own."""
        table = CompletedTable()
        deadlines = {}
        now = 0.0
        for i, (delta, add) in enumerate(steps):
            if add:
                deadlines[i] = now + delta * 4 - 5
                table.add(i, "t", None, deadlines[i])
            else:
                now += delta
                for key, _ in table.expire(now):
                    self.assertLessEqual(deadlines.pop(key), now)  # type: ignore[call-overload]
        for key, _ in table.expire(now + 100):
            deadlines.pop(key)  # type: ignore[call-overload]
        self.assertEqual(deadlines, {})
        self.assertEqual(len(table), 0)


def retired_message(layer: TransactionLayer, peer: Peer = UDP) -> Response:
    """Answer a MESSAGE 200 at 1.0 and hold it, as the adapter does; its 200."""
    txn = start(layer, request("MESSAGE"), peer)
    ok = make_response(txn.request, 200, to_tag="x")
    layer.respond(txn, ok, 1.0)
    layer.hold(txn)
    return ok


class RetiredNonInviteTests(SynchronousTestCase):
    """
    A held non-INVITE that completed over UDP is a table row until Timer J.
    """

    def test_retired(self) -> None:
        """The transaction leaves the layer's tables; its branch and merge key stay."""
        layer = new_layer()
        retired_message(layer)
        sizes = layer.sizes()
        self.assertEqual((sizes["server"], sizes["completed"], sizes["merge"]), (0, 1, 1))
        self.assertEqual(sizes["timers"], 0)
        self.assertEqual(layer.pending(), 1)
        self.assertTrue(layer.serving("z9hG4bKinv1"))

    def test_retransmission_gets_final(self) -> None:
        """A retransmission gets the final response again, sent to where it came from."""
        layer = new_layer()
        ok = retired_message(layer)
        actions = layer.receive(request("MESSAGE"), MOVED, 2.0)
        self.assertEqual(len(actions), 1)
        sent = only(actions, SendMessage)[0]
        self.assertEqual((sent.message.to_bytes(), sent.peer), (ok.to_bytes(), MOVED))

    def test_raw_path(self) -> None:
        """absorbable finds the row by key and absorb answers as receive does."""
        layer = new_layer()
        ok = retired_message(layer)
        key = ("3261", "z9hG4bKinv1", "client.example.com", 5060, "MESSAGE")
        found = layer.absorbable("MESSAGE", key)
        self.assertEqual(found, key)
        actions = layer.absorb("MESSAGE", found, MOVED, 2.0)
        self.assertEqual(only(actions, SendMessage)[0].message.to_bytes(), ok.to_bytes())
        self.assertIsNone(layer.absorbable("ACK", (*key[:4], "INVITE")))

    def test_merged_copy_refused(self) -> None:
        """A merged copy (same From tag, Call-ID and CSeq, new branch) still gets 482."""
        layer = new_layer()
        retired_message(layer)
        actions = layer.receive(request("MESSAGE", branch="z9hG4bKfork"), UDP, 2.0)
        self.assertEqual(sent_codes(actions), [482])

    def test_expires_at_timer_j(self) -> None:
        """At Timer J (64*T1 after the final) the row goes; a late copy is a new request."""
        layer = new_layer()
        retired_message(layer)
        self.assertEqual(layer.next_deadline(), 33.0)
        self.assertEqual(layer.wake_time(0.5), 33.5)
        self.assertEqual(layer.advance(32.9), [])
        self.assertEqual(layer.sizes()["completed"], 1)
        self.assertEqual(layer.advance(33.0), [])  # nothing names a retired transaction
        assert_empty(self, layer)
        self.assertFalse(layer.serving("z9hG4bKinv1"))
        again = layer.receive(request("MESSAGE"), UDP, 34.0)
        self.assertEqual(len(only(again, RequestReceived)), 1)

    def test_rows_bounded_apart(self) -> None:
        """Rows hold no place under max_server; past as many rows the oldest goes early."""
        layer = new_layer(max_server=2)
        for n in range(3):
            txn = start(layer, request("MESSAGE", branch=f"z9hG4bKm{n}", call_id=f"m{n}"))
            layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 1.0)
            layer.hold(txn)
            self.assertFalse(layer.full())
        sizes = layer.sizes()
        self.assertEqual((sizes["server"], sizes["completed"], sizes["merge"]), (0, 2, 2))
        self.assertEqual(layer.dropped_early(), 1)
        self.assertFalse(layer.serving("z9hG4bKm0"))
        self.assertTrue(layer.serving("z9hG4bKm1"))
        kept = layer.receive(request("MESSAGE", branch="z9hG4bKm2", call_id="m2"), UDP, 2.0)
        self.assertEqual(sent_codes(kept), [200])
        dropped = layer.receive(request("MESSAGE", branch="z9hG4bKm0", call_id="m0"), UDP, 2.0)
        self.assertEqual(len(only(dropped, RequestReceived)), 1)

    def test_reliable_not_kept(self) -> None:
        """Over TCP Timer J is zero: the transaction ended, nothing is kept."""
        layer = new_layer()
        retired_message(layer, TCP)
        assert_empty(self, layer)

    def test_unanswered_held_stays(self) -> None:
        """A held transaction still in progress stays the layer's, and is answered as before."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"))
        layer.hold(txn)
        self.assertEqual(layer.sizes()["completed"], 0)
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 1.0)
        self.assertEqual(layer.sizes()["server"], 1)  # released earlier: retired at next hold
        layer.hold(txn)
        self.assertEqual((layer.sizes()["server"], layer.sizes()["completed"]), (0, 1))

    def test_answering_again_refused(self) -> None:
        """The retired transaction's object refuses a second answer, as it did."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"))
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 1.0)
        layer.hold(txn)
        again = make_response(request("MESSAGE"), 500, to_tag="x")
        self.assertRaises(LocalProtocolError, layer.respond, txn, again, 2.0)


class RetiredInviteTests(SynchronousTestCase):
    """
    A held INVITE whose 2xx was acknowledged is a table row until Timer L.
    """

    def accepted(self, layer: TransactionLayer) -> None:
        """An INVITE answered 200 at 0.0 and held, then its ACK at 0.2."""
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="dlg"), 0.0)
        layer.hold(txn)
        self.assertIs(txn.state, TransactionState.ACCEPTED)
        self.assertEqual(layer.sizes()["completed"], 0)  # still resends its 2xx
        ack = request("ACK", branch="z9hG4bKack", to_tag="dlg")
        self.assertEqual(layer.receive(ack, UDP, 0.2), [AckReceived(ack, UDP)])

    def test_retired_at_ack(self) -> None:
        """The ACK retires it: no 2xx retransmission, no Timer L, no accept key left."""
        layer = new_layer()
        self.accepted(layer)
        sizes = layer.sizes()
        self.assertEqual(
            (sizes["server"], sizes["accepted"], sizes["completed"], sizes["timers"]), (0, 0, 1, 0)
        )
        self.assertEqual(layer.next_deadline(), 32.0)

    def test_retransmission_absorbed(self) -> None:
        """A retransmitted INVITE is absorbed without an answer (RFC 6026 section 7.1)."""
        layer = new_layer()
        self.accepted(layer)
        self.assertEqual(layer.receive(request(), UDP, 1.0), [])

    def test_ack_again_to_dialog(self) -> None:
        """A retransmitted ACK still goes to the dialog, as before."""
        layer = new_layer()
        self.accepted(layer)
        ack = request("ACK", branch="z9hG4bKack", to_tag="dlg")
        self.assertEqual(layer.receive(ack, UDP, 0.5), [AckReceived(ack, UDP)])

    def test_cancel_after(self) -> None:
        """A CANCEL after it gets 200 with the dialog's To tag, and no 487 follows."""
        layer = new_layer()
        self.accepted(layer)
        actions = layer.receive(request("CANCEL"), UDP, 1.0)
        self.assertEqual(sent_codes(actions), [200])
        response = only(actions, SendMessage)[0].message
        assert isinstance(response, Response)
        self.assertEqual(response.to.tag, "dlg")

    def test_merged_copy_refused(self) -> None:
        """A forked copy of the INVITE arriving after the ACK still gets 482."""
        layer = new_layer()
        self.accepted(layer)
        actions = layer.receive(request(branch="z9hG4bKfork"), UDP, 1.0)
        self.assertEqual(sent_codes(actions), [482])

    def test_expires_at_timer_l(self) -> None:
        """At Timer L (64*T1 after the 2xx) the row goes, and the layer is empty."""
        layer = new_layer()
        self.accepted(layer)
        events = run_timers(layer, 100.0)
        self.assertEqual([type(a) for _, a in events], [])
        assert_empty(self, layer)

    def test_ack_before_hold(self) -> None:
        """Acknowledged before the caller holds it, it retires when held."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="dlg"), 0.0)
        layer.receive(request("ACK", branch="z9hG4bKack", to_tag="dlg"), UDP, 0.2)
        self.assertEqual(layer.sizes()["completed"], 0)
        layer.hold(txn)
        self.assertEqual((layer.sizes()["server"], layer.sizes()["completed"]), (0, 1))

    def test_never_acked_times_out(self) -> None:
        """Held but never acknowledged, it resends its 2xx and times out as before."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="dlg"), 0.0)
        layer.hold(txn)
        events = run_timers(layer, 100.0)
        self.assertIn(TransactionTerminated(txn), [a for _, a in events])
        assert_empty(self, layer)

    def test_non_2xx_not_retired(self) -> None:
        """A refused INVITE still resends its final until the ACK: it stays the layer's."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 486, to_tag="busy"), 0.0)
        layer.hold(txn)
        layer.receive(request("ACK", to_tag="busy"), UDP, 0.2)
        self.assertEqual((layer.sizes()["server"], layer.sizes()["completed"]), (1, 0))
        self.assertIs(txn.state, TransactionState.CONFIRMED)
        run_timers(layer, 100.0)
        assert_empty(self, layer)

    def test_rfc2543_invite_not_retired(self) -> None:
        """An RFC 2543 INVITE acknowledged after its hold stays the layer's until Timer L."""
        layer = new_layer()
        txn = start(layer, request(branch=None))
        layer.respond(txn, make_response(txn.request, 200, to_tag="dlg"), 0.0)
        layer.hold(txn)
        layer.receive(request("ACK", branch=None, to_tag="dlg"), UDP, 0.2)
        self.assertTrue(txn.acked)
        self.assertEqual((layer.sizes()["server"], layer.sizes()["completed"]), (1, 0))
        events = run_timers(layer, 100.0)
        self.assertEqual([a for _, a in events], [TransactionTerminated(txn)])
        assert_empty(self, layer)

    def test_rfc2543_not_retired(self) -> None:
        """A transaction matched by the RFC 2543 rules is never retired (no branch key)."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE", branch=None))
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        layer.hold(txn)
        self.assertEqual((layer.sizes()["server"], layer.sizes()["completed"]), (1, 0))
        again = layer.receive(request("MESSAGE", branch=None), UDP, 1.0)
        self.assertEqual(sent_codes(again), [200])
