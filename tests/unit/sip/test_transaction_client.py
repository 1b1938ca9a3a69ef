# -*- test-case-name: tests.unit.sip.test_transaction_client -*-
"""
Tests for the client side of L{conference.sip.transaction} (Timers A, B,
D, E, F, K, the ACK for non-2xx finals) and for the whole layer under a
fake clock: random interleavings never raise and never leak.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple, Union

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import LocalProtocolError
from conference.sip.message import Message, Request, Response, make_response
from conference.sip.transaction import (
    Action,
    ClientTransaction,
    Peer,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    ServerTransaction,
    TransactionCompleted,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
    TransactionTimedOut,
)
from tests.unit.sip.test_transaction import (
    TCP,
    UDP,
    assert_empty,
    new_layer,
    only,
    request,
    response_to,
    run_timers,
    sent_codes,
)


def send(
    layer: TransactionLayer, method: str = "NOTIFY", peer: Peer = UDP, branch: str = "z9hG4bKc1"
) -> ClientTransaction:
    """
    Start a client transaction and check that the request goes out.
    """
    to_tag = None if method == "INVITE" else "far"
    req = request(method, branch=branch, to_tag=to_tag, via="SIP/2.0/UDP conf.example.com")
    txn, actions = layer.send_request(req, peer, 0.0)
    assert actions == [SendMessage(req, peer)], actions
    return txn


class InviteClientTests(SynchronousTestCase):
    """
    INVITE client transactions (RFC 3261 section 17.1.1).
    """

    def test_timers_a_and_b(self) -> None:
        """Over UDP the INVITE is resent on Timer A (doubling) until Timer B."""
        layer = new_layer()
        txn = send(layer, "INVITE")
        self.assertEqual(txn.state, TransactionState.CALLING)
        events = run_timers(layer, 100.0)
        resent = [t for t, a in events if isinstance(a, SendMessage)]
        self.assertEqual(resent, [0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
        timeouts = [(t, a) for t, a in events if isinstance(a, TransactionTimedOut)]
        self.assertEqual([t for t, _ in timeouts], [32.0])
        self.assertIn("Timer B", timeouts[0][1].reason)
        assert_empty(self, layer)

    def test_reliable_no_timer_a(self) -> None:
        """Over TCP there is no Timer A; Timer B still fires."""
        layer = new_layer()
        send(layer, "INVITE", TCP)
        events = run_timers(layer, 100.0)
        self.assertEqual(sent_codes([a for _, a in events]), [])
        self.assertEqual([t for t, a in events if isinstance(a, TransactionTimedOut)], [32.0])

    def test_provisional_then_2xx(self) -> None:
        """A 1xx stops Timer A; a 2xx and its retransmissions reach the app until Timer M."""
        layer = new_layer()
        txn = send(layer, "INVITE")
        ringing = response_to(txn.request, 180)
        self.assertEqual(layer.receive(ringing, UDP, 0.2), [ResponseReceived(ringing, txn)])
        self.assertEqual(txn.state, TransactionState.PROCEEDING)
        ok = response_to(txn.request, 200)
        self.assertEqual(
            layer.receive(ok, UDP, 1.0), [ResponseReceived(ok, txn), TransactionCompleted(txn)]
        )
        self.assertEqual(txn.state, TransactionState.ACCEPTED)
        self.assertEqual(layer.receive(ok, UDP, 2.0), [ResponseReceived(ok, txn)])
        events = run_timers(layer, 100.0)
        self.assertEqual([(t, type(a)) for t, a in events], [(33.0, TransactionTerminated)])
        assert_empty(self, layer)

    def test_proceeding_guard(self) -> None:
        """A transaction stuck in Proceeding gives up after three minutes."""
        layer = new_layer()
        txn = send(layer, "INVITE")
        layer.receive(response_to(txn.request, 183), UDP, 1.0)
        events = run_timers(layer, 1000.0)
        self.assertEqual([t for t, a in events if isinstance(a, TransactionTimedOut)], [181.0])
        assert_empty(self, layer)

    def test_non_2xx_generates_ack(self) -> None:
        """A non-2xx final is ACKed by the layer (section 17.1.1.3) and Timer D runs."""
        layer = new_layer()
        txn = send(layer, "INVITE")
        busy = response_to(txn.request, 486, to_tag="busy")
        actions = layer.receive(busy, UDP, 0.1)
        self.assertEqual(sent_codes(actions), ["ACK"])
        self.assertEqual(only(actions, ResponseReceived), [ResponseReceived(busy, txn)])
        ack = only(actions, SendMessage)[0].message
        assert isinstance(ack, Request)
        self.assertEqual(ack.top_via.branch, "z9hG4bKc1")
        self.assertEqual(ack.to.tag, "busy")
        self.assertEqual((ack.cseq.number, ack.cseq.method), (1, "ACK"))
        self.assertEqual(str(ack.uri), str(txn.request.uri))
        self.assertEqual(ack.call_id, txn.request.call_id)
        # A retransmitted final only gets the ACK again.
        self.assertEqual(layer.receive(busy, UDP, 0.5), [SendMessage(ack, UDP)])
        events = run_timers(layer, 100.0)
        self.assertEqual([(t, type(a)) for t, a in events], [(32.1, TransactionTerminated)])
        assert_empty(self, layer)

    def test_reliable_timer_d_zero(self) -> None:
        """Over TCP Timer D is zero: the non-2xx final ends the transaction."""
        layer = new_layer()
        txn = send(layer, "INVITE", TCP)
        actions = layer.receive(response_to(txn.request, 404), TCP, 0.1)
        self.assertEqual(sent_codes(actions), ["ACK"])
        self.assertIsInstance(actions[-1], TransactionTerminated)
        assert_empty(self, layer)


class NonInviteClientTests(SynchronousTestCase):
    """
    Non-INVITE client transactions (RFC 3261 section 17.1.2).
    """

    def test_timers_e_and_f(self) -> None:
        """Over UDP the request is resent on Timer E (capped at T2) until Timer F."""
        layer = new_layer()
        send(layer)
        events = run_timers(layer, 100.0)
        resent = [t for t, a in events if isinstance(a, SendMessage)]
        self.assertEqual(resent[:6], [0.5, 1.5, 3.5, 7.5, 11.5, 15.5])
        self.assertEqual(resent[-1], 31.5)
        timeouts = [(t, a) for t, a in events if isinstance(a, TransactionTimedOut)]
        self.assertEqual([t for t, _ in timeouts], [32.0])
        self.assertIn("Timer F", timeouts[0][1].reason)
        assert_empty(self, layer)

    def test_provisional_sets_t2(self) -> None:
        """After a 1xx, Timer E resends every T2."""
        layer = new_layer()
        txn = send(layer)
        layer.receive(response_to(txn.request, 100, to_tag=None), UDP, 0.1)
        self.assertEqual(txn.state, TransactionState.PROCEEDING)
        events = run_timers(layer, 20.0)
        resent = [t for t, a in events if isinstance(a, SendMessage)]
        self.assertEqual(resent, [0.5, 4.5, 8.5, 12.5, 16.5])

    def test_final_and_timer_k(self) -> None:
        """A final reaches the app once; retransmissions are absorbed until Timer K."""
        layer = new_layer()
        txn = send(layer)
        ok = response_to(txn.request, 200)
        self.assertEqual(
            layer.receive(ok, UDP, 1.0), [ResponseReceived(ok, txn), TransactionCompleted(txn)]
        )
        self.assertEqual(txn.state, TransactionState.COMPLETED)
        self.assertEqual(layer.receive(ok, UDP, 2.0), [])
        self.assertEqual(layer.next_deadline(), 6.0)
        self.assertEqual(layer.advance(6.0), [TransactionTerminated(txn)])
        self.assertEqual(txn.duration, 1.0)
        assert_empty(self, layer)

    def test_reliable_timer_k_zero(self) -> None:
        """Over TCP Timer K is zero."""
        layer = new_layer()
        txn = send(layer, peer=TCP)
        ok = response_to(txn.request, 200)
        self.assertEqual(
            layer.receive(ok, TCP, 1.0),
            [ResponseReceived(ok, txn), TransactionCompleted(txn), TransactionTerminated(txn)],
        )
        assert_empty(self, layer)

    def test_response_for_other_method(self) -> None:
        """A response whose CSeq method differs from the transaction's is stray."""
        layer = new_layer()
        txn = send(layer)
        ok = response_to(txn.request, 200)
        ok.set_header("cseq", "1 INFO")
        self.assertEqual(layer.receive(ok, UDP, 0.1), [])

    def test_refuses_ack(self) -> None:
        """ACK never gets a client transaction."""
        layer = new_layer()
        req = request("ACK", branch="z9hG4bKa", to_tag="x")
        self.assertRaises(LocalProtocolError, layer.send_request, req, UDP, 0.0)

    def test_refuses_branch_without_cookie(self) -> None:
        """The caller's Via must carry an RFC 3261 branch."""
        layer = new_layer()
        for branch in (None, "z9hG4bK", "abc"):
            req = request("NOTIFY", branch=branch, to_tag="x")
            self.assertRaises(LocalProtocolError, layer.send_request, req, UDP, 0.0)

    def test_refuses_duplicate_branch(self) -> None:
        """A branch already in use is refused."""
        layer = new_layer()
        send(layer)
        req = request("NOTIFY", branch="z9hG4bKc1", to_tag="x")
        self.assertRaises(LocalProtocolError, layer.send_request, req, UDP, 0.0)

    def test_new_branch(self) -> None:
        """new_branch uses the factory, which defaults to cookie branches."""
        self.assertEqual(new_layer().new_branch(), "z9hG4bKb1")
        branch = TransactionLayer().new_branch()
        self.assertTrue(branch.startswith("z9hG4bK") and len(branch) > 7)


class TimerTableTests(SynchronousTestCase):
    """
    The timer heap: deadlines, ordering and compaction.
    """

    def test_idle(self) -> None:
        """An idle layer has no deadline and advancing does nothing."""
        layer = new_layer()
        self.assertIsNone(layer.next_deadline())
        self.assertEqual(layer.advance(1e9), [])

    def test_late_advance_replays_schedule(self) -> None:
        """One late advance fires everything due, in deadline order."""
        layer = new_layer()
        txn = send(layer)
        actions = layer.advance(100.0)
        self.assertEqual(len(only(actions, SendMessage)), 10)
        timeout, completed, terminated = actions[-3:]
        assert isinstance(timeout, TransactionTimedOut)
        self.assertIs(timeout.transaction, txn)
        self.assertEqual(completed, TransactionCompleted(txn))
        self.assertEqual(terminated, TransactionTerminated(txn))

    def test_cancelled_timers_compacted(self) -> None:
        """Timers of transactions that ended early do not pile up in the heap."""
        layer = new_layer()
        send(layer, branch="z9hG4bKkeep")
        for i in range(500):
            txn = send(layer, peer=TCP, branch=f"z9hG4bKx{i}")
            layer.receive(response_to(txn.request, 200), TCP, 0.0)
        self.assertEqual(layer.pending(), 1)
        self.assertLess(layer.sizes()["timers"], 100)
        self.assertEqual(layer.next_deadline(), 0.5)


class CompletionTests(SynchronousTestCase):
    """
    L{TransactionCompleted} on the client side: when the final response
    arrives, or when the transaction gives up without one.
    """

    def test_final_received(self) -> None:
        """A NOTIFY completes when its final arrives, with the round-trip time."""
        layer = new_layer()
        txn = send(layer)
        layer.receive(response_to(txn.request, 100), UDP, 0.1)
        actions = layer.receive(response_to(txn.request, 404), UDP, 0.75)
        self.assertEqual(only(actions, TransactionCompleted), [TransactionCompleted(txn)])
        self.assertEqual((txn.status, txn.duration), (404, 0.75))
        self.assertEqual(only([a for _, a in run_timers(layer, 100.0)], TransactionCompleted), [])

    def test_2xx_retransmissions(self) -> None:
        """Copies of an INVITE's 2xx reach the app but complete nothing again."""
        layer = new_layer()
        txn = send(layer, "INVITE")
        ok = response_to(txn.request, 200)
        self.assertEqual(len(only(layer.receive(ok, UDP, 0.2), TransactionCompleted)), 1)
        again = layer.receive(response_to(txn.request, 200), UDP, 0.7)
        self.assertEqual(only(again, TransactionCompleted), [])
        self.assertEqual(txn.duration, 0.2)

    def test_timeout(self) -> None:
        """Timer F completes the transaction without a final, 64*T1 after sending."""
        layer = new_layer()
        txn = send(layer)
        events = [(t, type(a)) for t, a in run_timers(layer, 100.0)]
        self.assertEqual(
            [e for e in events if e[1] is not SendMessage],
            [
                (32.0, TransactionTimedOut),
                (32.0, TransactionCompleted),
                (32.0, TransactionTerminated),
            ],
        )
        self.assertEqual((txn.status, txn.duration), (None, 32.0))


class RecordingLayer(TransactionLayer):
    """
    A transaction layer that also keeps every action it returns, so a test
    can check what holds across a whole run; with C{holds}, it also L{hold}s
    each server transaction that completed, as the adapter does, and notes
    which transactions that retired.
    """

    def __init__(self, holds: bool = False) -> None:
        super().__init__()
        self.actions: List[Action] = []
        self.holds = holds
        self.retired: Set[int] = set()

    def receive(self, message: Message, peer: Peer, now: float) -> List[Action]:
        return self._keep(super().receive(message, peer, now))

    def respond(
        self, transaction: ServerTransaction, response: Response, now: float
    ) -> List[Action]:
        return self._keep(super().respond(transaction, response, now))

    def send_request(
        self, request: Request, peer: Peer, now: float
    ) -> Tuple[ClientTransaction, List[Action]]:
        txn, actions = super().send_request(request, peer, now)
        return txn, self._keep(actions)

    def advance(self, now: float) -> List[Action]:
        return self._keep(super().advance(now))

    def _keep(self, actions: List[Action]) -> List[Action]:
        self.actions.extend(actions)
        if self.holds:
            for action in actions:
                if isinstance(action, TransactionCompleted) and isinstance(
                    action.transaction, ServerTransaction
                ):
                    self.hold(action.transaction)
        return actions

    def _retire(self, txn: ServerTransaction, row: Union[bytes, str]) -> None:
        self.retired.add(id(txn))
        super()._retire(txn, row)


class LeakTests(SynchronousTestCase):
    """
    Whole-layer runs under a fake clock.
    """

    def test_64_t1_no_leaks(self) -> None:
        """A busy mix of transactions, clock run past 64*T1: nothing is left."""
        layer = new_layer()
        now = 0.0
        for i in range(20):
            peer = UDP if i % 2 else TCP
            invite = request(branch=f"z9hG4bKi{i}", call_id=f"c{i}")
            txn = only(layer.receive(invite, peer, now), RequestReceived)[0].transaction
            code = (180, 200, 486, 603)[i % 4]
            layer.respond(txn, make_response(invite, code, to_tag=f"t{i}"), now + 0.1)
            msg = request("MESSAGE", branch=f"z9hG4bKm{i}", call_id=f"m{i}")
            mtxn = only(layer.receive(msg, peer, now), RequestReceived)[0].transaction
            layer.respond(mtxn, make_response(msg, 200, to_tag="m"), now)
            send(layer, "NOTIFY", peer, branch=f"z9hG4bKn{i}")
            send(layer, "INVITE", peer, branch=f"z9hG4bKo{i}")
            now += 0.05
        self.assertGreater(layer.pending(), 0)
        step = 0.0
        while step <= 64 * 0.5 + 200:
            layer.advance(step)
            step += 0.25
        # The five provisional-only INVITEs never got a final: the app is
        # responsible for them; answering ends them too.
        leftover = list(layer._server.values())
        self.assertEqual({t.status for t in leftover}, {180})
        for txn in leftover:
            layer.respond(txn, make_response(txn.request, 500, to_tag="z"), step)
        run_timers(layer, step + 100)
        assert_empty(self, layer)

    @settings(max_examples=200, deadline=None)
    @given(
        st.booleans(),
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "invite",
                        "retransmit",
                        "ack",
                        "ack2xx",
                        "cancel",
                        "respond",
                        "message",
                        "send",
                        "reply",
                        "advance",
                    ]
                ),
                st.integers(min_value=0, max_value=3),
                st.sampled_from([100, 180, 200, 404, 486]),
                st.floats(min_value=0.0, max_value=5.0),
                st.booleans(),
            ),
            max_size=40,
        ),
    )
    def test_random_interleavings(
        self, holds: bool, steps: List[Tuple[str, int, int, float, bool]]
    ) -> None:
        """Random retransmissions, answers, holds and timer advances never raise nor leak."""
        layer = RecordingLayer(holds)
        now = 0.0
        servers: List[ServerTransaction] = []
        clients: List[ClientTransaction] = []
        for op, n, code, dt, reliable in steps:
            peer = TCP if reliable else UDP
            branch = f"z9hG4bKr{n}"
            tag: Optional[str] = f"t{n}"
            if op in {"invite", "retransmit"}:
                layer.receive(request(branch=branch, call_id=f"c{n}"), peer, now)
            elif op == "message":
                layer.receive(request("MESSAGE", branch=branch, call_id=f"m{n}"), peer, now)
            elif op == "ack":
                ack = request("ACK", branch=branch, call_id=f"c{n}", to_tag=tag)
                layer.receive(ack, peer, now)
            elif op == "ack2xx":
                ack = request("ACK", branch=branch + "a", call_id=f"c{n}", to_tag=tag)
                layer.receive(ack, peer, now)
            elif op == "cancel":
                layer.receive(request("CANCEL", branch=branch, call_id=f"c{n}"), peer, now)
            elif op == "respond":
                servers = [t for t in layer._server.values() if t.method != "CANCEL"]
                if servers:
                    txn = servers[n % len(servers)]
                    # Tagged as the ACKs of its call are (c1 -> t1).
                    tagged = f"t{txn.request.call_id[1:]}"
                    response = make_response(txn.request, code, to_tag=tagged)
                    if txn.final_code is None:
                        layer.respond(txn, response, now)
                    else:
                        self.assertRaises(LocalProtocolError, layer.respond, txn, response, now)
            elif op == "send":
                method = "INVITE" if code % 2 else "NOTIFY"
                req = request(method, branch=branch + "c", call_id=f"s{n}", to_tag="x")
                if (branch + "c", method) not in layer._client:
                    clients.append(layer.send_request(req, peer, now)[0])
            elif op == "reply" and clients:
                txn2 = clients[n % len(clients)]
                layer.receive(response_to(txn2.request, code), peer, now)
            else:
                now += dt
                layer.advance(now)
        # Answer whatever the application still owes, then let time run out.
        for txn in list(layer._server.values()):
            if txn.final_code is None:
                layer.respond(txn, make_response(txn.request, 500, to_tag="z"), now)
        for _ in range(4):
            now += 200.0
            layer.advance(now)
        assert_empty(self, layer)
        # Every transaction completed exactly once, and before it terminated
        # or retired (after which no action names it).
        seen: Dict[int, str] = {}
        for action in layer.actions:
            if isinstance(action, TransactionCompleted):
                self.assertNotIn(id(action.transaction), seen)
                seen[id(action.transaction)] = "completed"
            elif isinstance(action, TransactionTerminated):
                self.assertEqual(seen.get(id(action.transaction)), "completed")
                self.assertNotIn(id(action.transaction), layer.retired)
                seen[id(action.transaction)] = "terminated"
        for retired in layer.retired:
            self.assertEqual(seen.get(retired), "completed")
            seen[retired] = "retired"
        self.assertLessEqual(set(seen.values()), {"terminated", "retired"})
