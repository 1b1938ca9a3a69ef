# -*- test-case-name: tests.unit.sip.test_transaction -*-
"""
Tests for L{conference.sip.transaction}: every RFC 3261 section 17 timer
path under a fake clock, matching (RFC 3261 and RFC 2543), CANCEL, merged
requests, and that nothing leaks once the timers have run.
"""

from __future__ import annotations

import itertools
from typing import List, Optional, Sequence, Type, TypeVar

from twisted.trial.unittest import SynchronousTestCase

from conference.sip.compacted import CompactRequest
from conference.sip.errors import LocalProtocolError, RemoteProtocolError
from conference.sip.message import Message, Request, Response, make_response
from conference.sip.parser import parse_datagram
from conference.sip.transaction import (
    AckReceived,
    Action,
    CancelReceived,
    Peer,
    RequestReceived,
    SendMessage,
    ServerTransaction,
    TransactionCompleted,
    TransactionLayer,
    TransactionsExhausted,
    TransactionState,
    TransactionTerminated,
    TransactionTimedOut,
)
from tests.shared import corpus

UDP = Peer("UDP", "192.0.2.1", 5060)
TCP = Peer("TCP", "192.0.2.1", 40000, connection=7)

A = TypeVar("A")


def parse(text: str) -> Message:
    """
    Parse wire text (LF line ends allowed) with the project's parser.
    """
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    message = parse_datagram(data)
    assert message is not None
    return message


def request(
    method: str = "INVITE",
    *,
    branch: Optional[str] = "z9hG4bKinv1",
    cseq: int = 1,
    cseq_method: Optional[str] = None,
    from_tag: Optional[str] = "ft1",
    to_tag: Optional[str] = None,
    call_id: str = "call-1@client",
    via: str = "SIP/2.0/UDP client.example.com:5060",
    ruri: str = "sip:conf@example.com",
    extra: str = "",
) -> Request:
    """
    Build a request from wire text.
    """
    via_value = via + (f";branch={branch}" if branch is not None else "")
    ftag = f";tag={from_tag}" if from_tag else ""
    ttag = f";tag={to_tag}" if to_tag else ""
    text = (
        f"{method} {ruri} SIP/2.0\n"
        f"Via: {via_value}\n"
        "Max-Forwards: 70\n"
        f"From: <sip:alice@example.com>{ftag}\n"
        f"To: <sip:conf@example.com>{ttag}\n"
        f"Call-ID: {call_id}\n"
        f"CSeq: {cseq} {cseq_method or method}\n"
        "Contact: <sip:alice@192.0.2.1>\n"
        f"{extra}"
        "Content-Length: 0\n\n"
    )
    message = parse(text)
    assert isinstance(message, Request)
    return message


def response_to(req: Request, code: int, to_tag: Optional[str] = "tt1") -> Response:
    """
    Build a response to C{req} as a peer would send it (parsed from text).
    """
    return reparse(make_response(req, code, to_tag=to_tag))


def reparse(message: Message) -> Response:
    """
    Serialize and parse a response, as if it came over the wire.
    """
    parsed = parse(message.to_bytes().decode("utf-8"))
    assert isinstance(parsed, Response)
    return parsed


def only(actions: Sequence[Action], kind: Type[A]) -> List[A]:
    """
    The actions of one type.
    """
    return [a for a in actions if isinstance(a, kind)]


def sent_codes(actions: Sequence[Action]) -> List[object]:
    """
    The status codes (or methods) of every SendMessage, in order.
    """
    out: List[object] = []
    for action in only(actions, SendMessage):
        message = action.message
        out.append(message.code if isinstance(message, Response) else message.method)
    return out


def run_timers(layer: TransactionLayer, until: float) -> List[tuple[float, Action]]:
    """
    Fire every timer up to C{until} one deadline at a time, recording when
    each action happened.
    """
    out: List[tuple[float, Action]] = []
    while True:
        deadline = layer.next_deadline()
        if deadline is None or deadline > until:
            return out
        out.extend((deadline, a) for a in layer.advance(deadline))


def new_layer(**kwargs: Optional[float]) -> TransactionLayer:
    """
    A layer with deterministic tags and branches.
    """
    tags = itertools.count(1)
    branches = itertools.count(1)
    return TransactionLayer(
        tag_factory=lambda: f"tag{next(tags)}",
        branch_factory=lambda: f"z9hG4bKb{next(branches)}",
        **kwargs,  # type: ignore[arg-type]
    )


def start(layer: TransactionLayer, req: Request, peer: Peer = UDP) -> ServerTransaction:
    """
    Receive a new request and return its server transaction.
    """
    actions = layer.receive(req, peer, 0.0)
    received = only(actions, RequestReceived)
    assert len(received) == 1, actions
    return received[0].transaction


def assert_empty(case: SynchronousTestCase, layer: TransactionLayer) -> None:
    """
    Check that no transaction, index entry or timer is left.
    """
    case.assertEqual(layer.pending(), 0)
    case.assertEqual(
        layer.sizes(),
        {"server": 0, "client": 0, "merge": 0, "accepted": 0, "completed": 0, "timers": 0},
    )
    case.assertIsNone(layer.next_deadline())


class InviteServerTests(SynchronousTestCase):
    """
    INVITE server transactions (RFC 3261 section 17.2.1, RFC 6026).
    """

    def test_new_invite(self) -> None:
        """A new INVITE is passed to the application once, in Proceeding."""
        layer = new_layer()
        txn = start(layer, request())
        self.assertEqual(txn.state, TransactionState.PROCEEDING)
        self.assertEqual(txn.method, "INVITE")
        self.assertEqual(layer.pending(), 1)
        self.assertEqual(len(layer), 1)

    def test_trying_after_delay(self) -> None:
        """With no answer within 200 ms the layer sends 100 Trying itself."""
        layer = new_layer()
        txn = start(layer, request(extra="Timestamp: 54\n"))
        self.assertEqual(layer.next_deadline(), 0.2)
        self.assertEqual(layer.advance(0.19), [])
        actions = layer.advance(0.2)
        self.assertEqual(sent_codes(actions), [100])
        trying = only(actions, SendMessage)[0].message
        assert isinstance(trying, Response)
        self.assertIsNone(trying.to.tag)
        self.assertEqual(trying.header("timestamp"), "54")
        self.assertIs(txn.last_response, trying)

    def test_no_trying_when_answered(self) -> None:
        """An application answer before 200 ms cancels the automatic 100."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 180, to_tag="x"), 0.1)
        self.assertEqual(sent_codes(layer.advance(1.0)), [])

    def test_retransmission_before_any_response(self) -> None:
        """A retransmitted INVITE with nothing sent yet gets nothing."""
        layer = new_layer()
        start(layer, request())
        self.assertEqual(layer.receive(request(), UDP, 0.1), [])

    def test_retransmission_resends_last_response(self) -> None:
        """A retransmitted INVITE gets the last provisional again."""
        layer = new_layer()
        txn = start(layer, request())
        ringing = make_response(txn.request, 180, to_tag="x")
        layer.respond(txn, ringing, 0.1)
        actions = layer.receive(request(), UDP, 0.5)
        self.assertEqual(actions, [SendMessage(ringing, UDP)])

    def test_timer_g_and_h(self) -> None:
        """A non-2xx final is retransmitted on Timer G up to T2; Timer H ends it."""
        layer = new_layer()
        txn = start(layer, request())
        busy = make_response(txn.request, 486, to_tag="x")
        self.assertEqual(
            layer.respond(txn, busy, 0.0), [SendMessage(busy, UDP), TransactionCompleted(txn)]
        )
        self.assertEqual(txn.state, TransactionState.COMPLETED)
        events = run_timers(layer, 100.0)
        resent = [t for t, a in events if isinstance(a, SendMessage)]
        self.assertEqual(resent[:6], [0.5, 1.5, 3.5, 7.5, 11.5, 15.5])
        self.assertEqual(resent[-1], 31.5)
        timed_out = [(t, a) for t, a in events if isinstance(a, TransactionTimedOut)]
        self.assertEqual(len(timed_out), 1)
        self.assertEqual(timed_out[0][0], 32.0)
        self.assertIn("Timer H", timed_out[0][1].reason)
        self.assertIsInstance(events[-1][1], TransactionTerminated)
        self.assertEqual(txn.state, TransactionState.TERMINATED)
        assert_empty(self, layer)

    def test_retransmission_in_completed(self) -> None:
        """A retransmitted INVITE in Completed gets the final again."""
        layer = new_layer()
        txn = start(layer, request())
        busy = make_response(txn.request, 486, to_tag="x")
        layer.respond(txn, busy, 0.0)
        self.assertEqual(layer.receive(request(), UDP, 0.2), [SendMessage(busy, UDP)])

    def test_ack_for_non_2xx_absorbed(self) -> None:
        """The ACK for a non-2xx is absorbed; Timer I (T4) then ends the transaction."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 486, to_tag="x"), 0.0)
        ack = request("ACK", to_tag="x")
        self.assertEqual(layer.receive(ack, UDP, 0.6), [])
        self.assertEqual(txn.state, TransactionState.CONFIRMED)
        self.assertEqual(layer.receive(ack, UDP, 0.7), [])
        self.assertEqual(layer.receive(request(), UDP, 0.8), [])
        self.assertEqual(layer.next_deadline(), 0.6 + 5.0)
        events = run_timers(layer, 100.0)
        self.assertEqual([type(a) for _, a in events], [TransactionTerminated])
        assert_empty(self, layer)

    def test_reliable_final_no_timer_g(self) -> None:
        """Over TCP a non-2xx final is not retransmitted and the ACK ends it at once."""
        layer = new_layer()
        txn = start(layer, request(via="SIP/2.0/TCP client.example.com"), TCP)
        layer.respond(txn, make_response(txn.request, 603, to_tag="x"), 0.0)
        self.assertEqual(layer.next_deadline(), 32.0)
        actions = layer.receive(
            request("ACK", to_tag="x", via="SIP/2.0/TCP client.example.com"), TCP, 1.0
        )
        self.assertEqual(actions, [TransactionTerminated(txn)])
        assert_empty(self, layer)

    def test_reliable_timer_h(self) -> None:
        """Over TCP a missing ACK still times out on Timer H, with no resend."""
        layer = new_layer()
        txn = start(layer, request(), TCP)
        layer.respond(txn, make_response(txn.request, 486, to_tag="x"), 0.0)
        events = run_timers(layer, 100.0)
        self.assertEqual(only([a for _, a in events], SendMessage), [])
        self.assertEqual([t for t, a in events if isinstance(a, TransactionTimedOut)], [32.0])
        assert_empty(self, layer)

    def test_2xx_retransmitted_until_ack(self) -> None:
        """A 2xx is resent on T1, 2T1... up to T2 until its ACK (new branch) arrives."""
        layer = new_layer()
        txn = start(layer, request())
        ok = make_response(txn.request, 200, to_tag="x")
        layer.respond(txn, ok, 0.0)
        self.assertEqual(txn.state, TransactionState.ACCEPTED)
        events = run_timers(layer, 8.0)
        self.assertEqual([t for t, _ in events], [0.5, 1.5, 3.5, 7.5])
        ack = request("ACK", branch="z9hG4bKack1", to_tag="x")
        self.assertEqual(layer.receive(ack, UDP, 8.0), [AckReceived(ack, UDP)])
        self.assertTrue(txn.acked)
        # Once acknowledged, a retransmitted INVITE is absorbed (RFC 6026
        # section 7.1), and nothing will send the 2xx again.
        self.assertEqual(layer.receive(request(), UDP, 9.0), [])
        events = run_timers(layer, 100.0)
        self.assertEqual([(t, type(a)) for t, a in events], [(32.0, TransactionTerminated)])
        assert_empty(self, layer)

    def test_accepted_request_keyed_before_compacting(self) -> None:
        """An Accepted INVITE is keyed for its ACK when answered; its compacted request not read."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        self.assertEqual(txn.accept_key, ("call-1@client", 1, "ft1"))
        txn.request.compact()  # as the adapter does once it logged the outcome
        ack = request("ACK", branch="z9hG4bKack1", to_tag="x")
        self.assertEqual(layer.receive(ack, UDP, 0.1), [AckReceived(ack, UDP)])
        self.assertIsInstance(txn.request, CompactRequest)

    def test_2xx_never_acked(self) -> None:
        """A 2xx never ACKed is cleaned up after 64*T1 with a timeout."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        events = run_timers(layer, 100.0)
        resent = [t for t, a in events if isinstance(a, SendMessage)]
        self.assertEqual(resent[:5], [0.5, 1.5, 3.5, 7.5, 11.5])
        self.assertLessEqual(resent[-1], 32.0)
        timeouts = only([a for _, a in events], TransactionTimedOut)
        self.assertEqual(len(timeouts), 1)
        self.assertIn("2xx", timeouts[0].reason)
        self.assertIs(timeouts[0].transaction, txn)
        assert_empty(self, layer)

    def test_ack_with_wrong_tag(self) -> None:
        """An ACK whose To tag is not the 2xx's does not stop retransmission."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        ack = request("ACK", branch="z9hG4bKack1", to_tag="other")
        self.assertEqual(layer.receive(ack, UDP, 0.1), [AckReceived(ack, UDP)])
        self.assertFalse(txn.acked)

    def test_stray_ack(self) -> None:
        """An ACK matching nothing goes to the application."""
        layer = new_layer()
        ack = request("ACK", to_tag="x")
        self.assertEqual(layer.receive(ack, UDP, 0.0), [AckReceived(ack, UDP)])
        assert_empty(self, layer)

    def test_respond_after_final(self) -> None:
        """Responding after a final response is a local error."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 486, to_tag="x"), 0.0)
        self.assertRaises(
            LocalProtocolError, layer.respond, txn, make_response(txn.request, 200), 0.1
        )

    def test_respond_after_terminated(self) -> None:
        """Responding to a terminated transaction is a local error."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"), TCP)
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        self.assertEqual(txn.state, TransactionState.TERMINATED)
        error = self.assertRaises(
            LocalProtocolError, layer.respond, txn, make_response(txn.request, 200), 0.1
        )
        self.assertIn("terminated", error.reason)

    def test_garbled_request(self) -> None:
        """A request whose Via cannot be read is a 400 for the adapter."""
        layer = new_layer()
        req = request()
        req.remove_header("via")
        error = self.assertRaises(RemoteProtocolError, layer.receive, req, UDP, 0.0)
        self.assertEqual(error.status, 400)


class NonInviteServerTests(SynchronousTestCase):
    """
    Non-INVITE server transactions (RFC 3261 section 17.2.2).
    """

    def test_no_automatic_trying(self) -> None:
        """A non-INVITE gets no automatic 100 and no timer before it is answered."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"))
        self.assertEqual(txn.state, TransactionState.TRYING)
        self.assertIsNone(layer.next_deadline())
        self.assertEqual(layer.receive(request("MESSAGE"), UDP, 0.5), [])

    def test_provisional_then_retransmission(self) -> None:
        """A provisional moves to Proceeding and is resent on retransmission."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"))
        trying = make_response(txn.request, 100)
        layer.respond(txn, trying, 0.0)
        self.assertEqual(txn.state, TransactionState.PROCEEDING)
        self.assertEqual(layer.receive(request("MESSAGE"), UDP, 0.5), [SendMessage(trying, UDP)])

    def test_timer_j_unreliable(self) -> None:
        """Over UDP the final is resent on retransmission until Timer J (64*T1)."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"))
        ok = make_response(txn.request, 200, to_tag="x")
        self.assertEqual(
            layer.respond(txn, ok, 1.0), [SendMessage(ok, UDP), TransactionCompleted(txn)]
        )
        self.assertEqual(txn.state, TransactionState.COMPLETED)
        self.assertEqual(layer.receive(request("MESSAGE"), UDP, 2.0), [SendMessage(ok, UDP)])
        self.assertEqual(layer.next_deadline(), 33.0)
        self.assertEqual(layer.advance(32.9), [])
        self.assertEqual(layer.advance(33.0), [TransactionTerminated(txn)])
        self.assertEqual(txn.duration, 1.0)
        self.assertEqual(txn.status, 200)
        assert_empty(self, layer)

    def test_timer_j_reliable(self) -> None:
        """Over TCP Timer J is zero: the final response ends the transaction."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"), TCP)
        ok = make_response(txn.request, 200, to_tag="x")
        self.assertEqual(
            layer.respond(txn, ok, 0.0),
            [SendMessage(ok, TCP), TransactionCompleted(txn), TransactionTerminated(txn)],
        )
        assert_empty(self, layer)

    def test_later_retransmission_is_new(self) -> None:
        """After Timer J a late retransmission starts a new transaction."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"), TCP)
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        again = layer.receive(request("MESSAGE"), TCP, 1.0)
        self.assertEqual(len(only(again, RequestReceived)), 1)


class CancelTests(SynchronousTestCase):
    """
    CANCEL (RFC 3261 section 9.2).
    """

    def test_cancel_pending_invite(self) -> None:
        """CANCEL gets 200, its INVITE 487 with the same To tag, and the app is told."""
        layer = new_layer()
        txn = start(layer, request())
        cancel = request("CANCEL")
        actions = layer.receive(cancel, UDP, 0.3)
        self.assertEqual(sent_codes(actions), [200, 487])
        ok, terminated = (a.message for a in only(actions, SendMessage))
        assert isinstance(ok, Response) and isinstance(terminated, Response)
        self.assertEqual(ok.cseq.method, "CANCEL")
        self.assertEqual(terminated.cseq.method, "INVITE")
        self.assertIsNotNone(ok.to.tag)
        self.assertEqual(ok.to.tag, terminated.to.tag)
        self.assertEqual(only(actions, CancelReceived), [CancelReceived(cancel, txn)])
        self.assertEqual(txn.state, TransactionState.COMPLETED)
        # The CANCEL retransmitted gets its 200 again, and no second 487.
        self.assertEqual(sent_codes(layer.receive(request("CANCEL"), UDP, 0.4)), [200])
        # The ACK for the 487 is absorbed.
        ack = request("ACK", to_tag=terminated.to.tag)
        self.assertEqual(layer.receive(ack, UDP, 0.5), [])
        run_timers(layer, 100.0)
        assert_empty(self, layer)

    def test_cancel_keeps_provisional_tag(self) -> None:
        """The 487 reuses the To tag of a provisional already sent."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 180, to_tag="early"), 0.1)
        actions = layer.receive(request("CANCEL"), UDP, 0.3)
        tags = [a.message.to.tag for a in only(actions, SendMessage)]
        self.assertEqual(tags, ["early", "early"])

    def test_cancel_after_final(self) -> None:
        """A CANCEL after the final gets 200, no 487, and is reported as changing nothing."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.1)
        actions = layer.receive(request("CANCEL"), UDP, 0.3)
        self.assertEqual(sent_codes(actions), [200])
        [received] = only(actions, CancelReceived)
        self.assertEqual((received.transaction, received.terminated), (txn, False))

    def test_2xx_answers_retransmissions_until_ack(self) -> None:
        """Before its ACK, a retransmitted INVITE gets the 2xx again; after, nothing."""
        layer = new_layer()
        txn = start(layer, request())
        ok = make_response(txn.request, 200, to_tag="x")
        layer.respond(txn, ok, 0.0)
        self.assertEqual(layer.receive(request(), UDP, 0.2), [SendMessage(ok, UDP)])
        ack = request("ACK", branch="z9hG4bKack1", to_tag="x")
        layer.receive(ack, UDP, 0.3)
        self.assertEqual(layer.receive(request(), UDP, 0.4), [])

    def test_acked_2xx_released(self) -> None:
        """The ACK releases the held 2xx; its code still counts as a final response sent."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        txn.hold()
        layer.receive(request("ACK", branch="z9hG4bKack1", to_tag="x"), UDP, 0.3)
        self.assertIsNone(txn.final_response)
        self.assertIsNone(txn.last_response)
        self.assertEqual((txn.final_code, txn.status), (200, 200))
        actions = layer.receive(request("CANCEL"), UDP, 0.4)
        self.assertEqual(sent_codes(actions), [200])
        [received] = only(actions, CancelReceived)
        self.assertFalse(received.terminated)
        self.assertRaises(
            LocalProtocolError, layer.respond, txn, make_response(txn.request, 486), 0.5
        )

    def test_cancel_without_match(self) -> None:
        """A CANCEL matching no INVITE gets 481, and its retransmission 481 again."""
        layer = new_layer()
        actions = layer.receive(request("CANCEL"), UDP, 0.0)
        self.assertEqual(sent_codes(actions), [481])
        self.assertEqual(only(actions, CancelReceived), [])
        self.assertEqual(sent_codes(layer.receive(request("CANCEL"), UDP, 0.1)), [481])
        run_timers(layer, 100.0)
        assert_empty(self, layer)

    def test_cancel_of_non_invite(self) -> None:
        """A CANCEL for a non-INVITE's branch matches nothing: 481."""
        layer = new_layer()
        start(layer, request("MESSAGE"))
        actions = layer.receive(request("CANCEL"), UDP, 0.0)
        self.assertEqual(sent_codes(actions), [481])

    def test_cancel_rfc2543(self) -> None:
        """A CANCEL without a cookie branch matches its INVITE by the RFC 2543 rules."""
        layer = new_layer()
        txn = start(layer, request(branch=None))
        actions = layer.receive(request("CANCEL", branch=None), UDP, 0.3)
        self.assertEqual(sent_codes(actions), [200, 487])
        self.assertEqual(only(actions, CancelReceived)[0].transaction, txn)


class CompletionTests(SynchronousTestCase):
    """
    L{TransactionCompleted}: once per server transaction, when its final
    response is sent, whoever sends it.
    """

    def test_at_final_not_at_timer_j(self) -> None:
        """A MESSAGE completes when its 200 goes out, with the latency, not at Timer J."""
        layer = new_layer()
        txn = start(layer, request("MESSAGE"))
        layer.respond(txn, make_response(txn.request, 100), 0.5)
        actions = layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 1.25)
        self.assertEqual(only(actions, TransactionCompleted), [TransactionCompleted(txn)])
        self.assertEqual((txn.status, txn.duration), (200, 1.25))
        events = run_timers(layer, 100.0)
        self.assertEqual([(t, type(a)) for t, a in events], [(33.25, TransactionTerminated)])

    def test_provisional_does_not_complete(self) -> None:
        """A provisional response is not an outcome."""
        layer = new_layer()
        txn = start(layer, request())
        ringing = make_response(txn.request, 180, to_tag="x")
        self.assertEqual(layer.respond(txn, ringing, 0.1), [SendMessage(ringing, UDP)])

    def test_layer_answers_complete(self) -> None:
        """The layer's own finals (CANCEL's 200, the INVITE's 487, 481, 482) complete too."""
        layer = new_layer()
        invite = start(layer, request())
        actions = layer.receive(request("CANCEL"), UDP, 0.3)
        completed = only(actions, TransactionCompleted)
        self.assertEqual(
            [(a.transaction.method, a.transaction.status) for a in completed],
            [("CANCEL", 200), ("INVITE", 487)],
        )
        self.assertIs(completed[1].transaction, invite)
        self.assertEqual(invite.duration, 0.3)
        alone = layer.receive(request("CANCEL", branch="z9hG4bKother"), UDP, 0.4)
        self.assertEqual([a.transaction.status for a in only(alone, TransactionCompleted)], [481])
        start(layer, request("MESSAGE", branch="z9hG4bKm1", call_id="merge"))
        merged = layer.receive(request("MESSAGE", branch="z9hG4bKm2", call_id="merge"), UDP, 0.5)
        self.assertEqual([a.transaction.status for a in only(merged, TransactionCompleted)], [482])

    def test_once_per_transaction(self) -> None:
        """Retransmissions, the ACK and the timers never complete a transaction again."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 486, to_tag="x"), 0.0)
        later = layer.receive(request(), UDP, 0.2)
        later += layer.receive(request("ACK", to_tag="x"), UDP, 0.6)
        later += [a for _, a in run_timers(layer, 100.0)]
        self.assertEqual(only(later, TransactionCompleted), [])
        assert_empty(self, layer)


class MatchingTests(SynchronousTestCase):
    """
    Request matching (section 17.2.3), merged requests (section 8.2.2.2)
    and the RFC 2543 fallback.
    """

    def test_different_sent_by(self) -> None:
        """The same branch from another sent-by is another transaction."""
        layer = new_layer()
        start(layer, request("MESSAGE"))
        other = request("MESSAGE", via="SIP/2.0/UDP other.example.com", call_id="c2")
        self.assertEqual(len(only(layer.receive(other, UDP, 0.0), RequestReceived)), 1)
        self.assertEqual(layer.pending(), 2)

    def test_merged_request(self) -> None:
        """Same From tag, Call-ID and CSeq on another branch, no To tag: 482."""
        layer = new_layer()
        start(layer, request())
        merged = request(branch="z9hG4bKother")
        actions = layer.receive(merged, UDP, 0.1)
        self.assertEqual(sent_codes(actions), [482])
        self.assertEqual(only(actions, RequestReceived), [])
        # Its retransmission gets the 482 again, not the application.
        self.assertEqual(sent_codes(layer.receive(merged, UDP, 0.2)), [482])

    def test_not_merged_with_to_tag(self) -> None:
        """A request with a To tag is never treated as merged."""
        layer = new_layer()
        start(layer, request("INFO", to_tag="x"))
        other = request("INFO", branch="z9hG4bKother", to_tag="x")
        self.assertEqual(len(only(layer.receive(other, UDP, 0.1), RequestReceived)), 1)

    def test_rfc2543_retransmission(self) -> None:
        """Without a cookie, an identical request is a retransmission (its request compacted)."""
        layer = new_layer()
        txn = start(layer, request(branch=None))
        self.assertFalse(txn.rfc3261)
        busy = make_response(txn.request, 486, to_tag="x")
        layer.respond(txn, busy, 0.0)
        txn.request.compact()  # as the adapter does: matching does not read it back
        self.assertEqual(layer.receive(request(branch=None), UDP, 0.1), [SendMessage(busy, UDP)])
        ack = request("ACK", branch=None, to_tag="x")
        self.assertEqual(layer.receive(ack, UDP, 0.2), [])
        self.assertEqual(txn.state, TransactionState.CONFIRMED)
        self.assertIsInstance(txn.request, CompactRequest)

    def test_rfc2543_ack_wrong_tag(self) -> None:
        """An RFC 2543 ACK whose To tag is not the response's is not absorbed."""
        layer = new_layer()
        txn = start(layer, request(branch=None))
        layer.respond(txn, make_response(txn.request, 486, to_tag="x"), 0.0)
        ack = request("ACK", branch=None, to_tag="y")
        self.assertEqual(layer.receive(ack, UDP, 0.2), [AckReceived(ack, UDP)])
        self.assertEqual(txn.state, TransactionState.COMPLETED)

    def test_rfc2543_new_cseq(self) -> None:
        """Without a cookie, a new CSeq is a new transaction."""
        layer = new_layer()
        start(layer, request("MESSAGE", branch=None))
        actions = layer.receive(request("MESSAGE", branch=None, cseq=2), UDP, 0.1)
        self.assertEqual(len(only(actions, RequestReceived)), 1)

    def test_rfc2543_2xx_ack(self) -> None:
        """An RFC 2543 ACK for a 2xx stops its retransmission and reaches the app."""
        layer = new_layer()
        txn = start(layer, request(branch=None))
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        ack = request("ACK", branch=None, to_tag="x", ruri="sip:alice@192.0.2.1")
        self.assertEqual(layer.receive(ack, UDP, 0.2), [AckReceived(ack, UDP)])
        self.assertTrue(txn.acked)

    def test_badbranch(self) -> None:
        """RFC 4475 3.2.1: a bare cookie branch falls back to RFC 2543 matching."""
        text = corpus("rfc4475", "badbranch.dat").read_bytes().decode("utf-8")
        first = parse(text)
        assert isinstance(first, Request)
        layer = new_layer()
        txn = start(layer, first)
        self.assertFalse(txn.rfc3261)
        self.assertEqual(layer.receive(parse(text), UDP, 0.1), [])
        # Another request with the same bare branch and sent-by but a new
        # Call-ID is not mistaken for a retransmission.
        other = parse(text.replace("Call-ID: badbranch.", "Call-ID: other."))
        self.assertEqual(len(only(layer.receive(other, UDP, 0.2), RequestReceived)), 1)
        self.assertEqual(layer.pending(), 2)

    def test_inv2543(self) -> None:
        """RFC 4475 3.4.1: an RFC 2543 INVITE (no branch) makes a transaction."""
        text = corpus("rfc4475", "inv2543.dat").read_bytes().decode("utf-8")
        layer = new_layer()
        txn = start(layer, parse(text))  # type: ignore[arg-type]
        self.assertFalse(txn.rfc3261)
        self.assertEqual(layer.receive(parse(text), UDP, 0.1), [])

    def test_stray_response(self) -> None:
        """A response matching no client transaction is dropped."""
        layer = new_layer()
        self.assertEqual(layer.receive(response_to(request(), 200), UDP, 0.0), [])

    def test_broken_response(self) -> None:
        """A response without Via is dropped, not raised."""
        layer = new_layer()
        response = response_to(request(), 200)
        response.remove_header("via")
        self.assertEqual(layer.receive(response, UDP, 0.0), [])


class TransactionCapTests(SynchronousTestCase):
    """
    The number of live server transactions is bounded;
    new requests past the cap are refused statelessly, whoever sends them.
    """

    def fill(self, layer: TransactionLayer, count: int) -> List[ServerTransaction]:
        return [
            start(layer, request("OPTIONS", branch=f"z9hG4bKfill{n}", call_id=f"c{n}"))
            for n in range(count)
        ]

    def test_new_request_past_cap_refused(self) -> None:
        """Past the cap a new request raises 503 with Retry-After and creates nothing."""
        layer = new_layer(max_server=3)
        self.fill(layer, 3)
        with self.assertRaises(TransactionsExhausted) as caught:
            layer.receive(request("INVITE", branch="z9hG4bKnew"), UDP, 0.0)
        self.assertEqual(caught.exception.status, 503)
        self.assertEqual(caught.exception.headers, [("Retry-After", "10")])
        self.assertEqual(layer.sizes()["server"], 3)
        self.assertEqual(layer.sizes()["merge"], 3)

    def test_cancel_past_cap_refused(self) -> None:
        """A CANCEL, which would make a transaction too, is refused like any new request."""
        layer = new_layer(max_server=1)
        start(layer, request("INVITE"))
        with self.assertRaises(TransactionsExhausted):
            layer.receive(request("CANCEL"), UDP, 0.0)

    def test_bye_passes_cap(self) -> None:
        """A BYE is taken at the cap: refusing it would keep the call the caller ended."""
        layer = new_layer(max_server=1)
        self.fill(layer, 1)
        bye = request("BYE", branch="z9hG4bKbye", to_tag="tt1", cseq=2)
        self.assertEqual(len(only(layer.receive(bye, UDP, 0.0), RequestReceived)), 1)
        with self.assertRaises(TransactionsExhausted):
            layer.receive(request("OPTIONS", branch="z9hG4bKnew", call_id="n"), UDP, 0.0)

    def test_retransmission_and_ack_pass(self) -> None:
        """Retransmissions of live transactions and ACKs are handled as usual at the cap."""
        layer = new_layer(max_server=1, retry_after=3)
        invite = request("INVITE")
        txn = start(layer, invite)
        layer.respond(txn, make_response(invite, 486, to_tag="tt1"), 0.0)
        self.assertEqual(sent_codes(layer.receive(request("INVITE"), UDP, 0.1)), [486])
        ack = request("ACK", to_tag="tt1")
        self.assertEqual(layer.receive(ack, UDP, 0.2), [])
        self.assertIs(txn.state, TransactionState.CONFIRMED)

    def test_room_again_when_transactions_end(self) -> None:
        """Once transactions end their timers, new requests are taken again."""
        layer = new_layer(max_server=2)
        for txn in self.fill(layer, 2):
            layer.respond(txn, make_response(txn.request, 200, to_tag="t"), 0.0)
        with self.assertRaises(TransactionsExhausted):
            layer.receive(request("OPTIONS", branch="z9hG4bKlate"), UDP, 1.0)
        run_timers(layer, 64 * layer.t1)
        start(layer, request("OPTIONS", branch="z9hG4bKlate"))
        self.assertEqual(layer.sizes()["server"], 1)

    def test_no_cap_by_default(self) -> None:
        """Without max_server the layer takes any number of transactions."""
        layer = new_layer()
        self.assertEqual(len(self.fill(layer, 50)), 50)


class AbsorbTests(SynchronousTestCase):
    """
    absorbable and absorb: what the layer handles from a request's method
    and RFC 3261 key alone, as receive would.
    """

    KEY = ("3261", "z9hG4bKinv1", "client.example.com", 5060, "INVITE")

    def test_ack_of_non_2xx(self) -> None:
        """The ACK of a non-2xx is absorbed and starts Timer I, once; later ones do nothing."""
        layer = new_layer()
        txn = start(layer, request())
        layer.respond(txn, make_response(txn.request, 404, to_tag="x"), 0.0)
        self.assertIs(layer.absorbable("ACK", self.KEY), txn)
        self.assertEqual(layer.absorb("ACK", txn, UDP, 0.6), [])
        self.assertIs(txn.state, TransactionState.CONFIRMED)
        self.assertEqual(layer.next_deadline(), 0.6 + layer.t4)
        self.assertIs(layer.absorbable("ACK", self.KEY), txn)
        self.assertEqual(layer.absorb("ACK", txn, UDP, 0.7), [])
        self.assertEqual(layer.next_deadline(), 0.6 + layer.t4)
        run_timers(layer, 100.0)
        assert_empty(self, layer)

    def test_retransmission(self) -> None:
        """A retransmission gets the last response again, with the peer it came from."""
        layer = new_layer()
        txn = start(layer, request("OPTIONS", cseq_method="OPTIONS"))
        ok = make_response(txn.request, 200, to_tag="x")
        layer.respond(txn, ok, 0.0)
        key = (*self.KEY[:4], "OPTIONS")
        moved = Peer("UDP", "192.0.2.1", 5999)
        self.assertIs(layer.absorbable("OPTIONS", key), txn)
        self.assertEqual(layer.absorb("OPTIONS", txn, moved, 0.5), [SendMessage(ok, moved)])
        self.assertEqual(txn.peer, moved)

    def test_declined(self) -> None:
        """Unknown keys, 2xx ACKs, other methods and RFC 2543 transactions are left to receive."""
        layer = new_layer()
        self.assertIsNone(layer.absorbable("ACK", self.KEY))
        txn = start(layer, request())
        self.assertIsNone(layer.absorbable("ACK", self.KEY))  # no final yet
        self.assertIsNone(layer.absorbable("BYE", (*self.KEY[:4], "INVITE")))
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        self.assertIsNone(layer.absorbable("ACK", self.KEY))  # a 2xx's ACK is dialog business
        old = start(layer, request(branch="old1", call_id="c2"))
        layer.respond(old, make_response(old.request, 404, to_tag="y"), 0.0)
        self.assertIsNone(layer.absorbable("ACK", old.key))


class WakeTimeTests(SynchronousTestCase):
    """
    wake_time: lax timers (those that only end transactions) may wait the
    slack; exact ones never do; advance still fires everything in order.
    """

    def test_lax_timer_waits_slack(self) -> None:
        """Timer J alone: wake at its deadline plus the slack; next_deadline stays exact."""
        layer = new_layer()
        txn = start(layer, request("OPTIONS"))
        layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        self.assertEqual(layer.next_deadline(), 32.0)
        self.assertEqual(layer.wake_time(0.05), 32.05)

    def test_exact_timer_first(self) -> None:
        """A retransmission timer due before the slack ends is the wake time."""
        layer = new_layer()
        done = start(layer, request("OPTIONS", branch="z9hG4bKo"))
        layer.respond(done, make_response(done.request, 200, to_tag="x"), 0.0)
        busy = start(layer, request())
        layer.respond(busy, make_response(busy.request, 486, to_tag="y"), 31.8)
        # Timer J at 32.0; the 486's Timer G at 32.3.
        self.assertEqual(layer.wake_time(0.5), 32.3)
        self.assertEqual(layer.wake_time(0.1), 32.1)

    def test_advance_in_order_across_kinds(self) -> None:
        """One late advance fires exact and lax timers together, earliest first."""
        layer = new_layer()
        done = start(layer, request("OPTIONS", branch="z9hG4bKo"))
        layer.respond(done, make_response(done.request, 200, to_tag="x"), 0.0)
        busy = start(layer, request())
        layer.respond(busy, make_response(busy.request, 486, to_tag="y"), 31.8)
        actions = layer.advance(32.4)
        self.assertEqual([type(a) for a in actions], [TransactionTerminated, SendMessage])
        self.assertIs(actions[0].transaction, done)  # type: ignore[union-attr]
        self.assertEqual(layer.next_deadline(), 33.3)  # Timer G again, 1 s on

    def test_empty(self) -> None:
        """No timers: no wake time."""
        self.assertIsNone(new_layer().wake_time(1.0))
