# -*- test-case-name: tests.unit.sip.test_transaction_client -*-
"""
The client half of the RFC 3261 section 17 transaction layer: requests
this element sends, their retransmissions (Timers A and E), the
responses that come back, and the timers that give up (B, F, and C for an
INVITE stuck in Proceeding).

L{conference.sip.transaction.TransactionLayer} inherits it; the timers
themselves (scheduling, cancelling, ending a transaction) are the
layer's, so both halves share one clock and one heap.  Kept apart so that
each module holds one side of section 17.
"""

from __future__ import annotations

from typing import Callable, Dict, Hashable, List, Tuple

from conference.sip.errors import LocalProtocolError
from conference.sip.message import Request, Response
from conference.sip.transaction_model import (
    Action,
    ClientTransaction,
    Peer,
    ResponseReceived,
    SendMessage,
    Transaction,
    TransactionCompleted,
    TransactionState,
    TransactionTimedOut,
    build_ack,
    has_cookie,
)

__all__ = ["PROCEEDING_GUARD", "ClientTransactions"]

S = TransactionState

# How long an INVITE client transaction waits in Proceeding for a final
# response before giving up (the value of RFC 3261 Timer C), so a peer
# that sends 180 and then nothing cannot pin the transaction forever.
PROCEEDING_GUARD = 180.0


class ClientTransactions:
    """
    Client transactions (RFC 3261 section 17.1), for a layer that provides
    the timers (L{_schedule}, L{_cancel}, L{_later}, L{_terminate}) and
    the settings below.

    @ivar t1: RTT estimate (RFC 3261 T1), seconds.
    @ivar t2: longest retransmit interval for non-INVITE requests.
    @ivar t4: longest time a message stays in the network.
    @ivar branch_factory: makes the branch of a request's top Via.
    """

    t1: float
    t2: float
    t4: float
    branch_factory: Callable[[], str]
    _client: Dict[Hashable, ClientTransaction]

    def _schedule(self, txn: Transaction, name: str, at: float) -> None:
        """Start (or restart) timer C{name} of C{txn}, due at C{at}."""
        raise NotImplementedError

    def _cancel(self, txn: Transaction, name: str) -> None:
        """Stop timer C{name} of C{txn}, if it runs."""
        raise NotImplementedError

    def _later(
        self, txn: Transaction, name: str, now: float, delay: float, actions: List[Action]
    ) -> None:
        """End C{txn} after C{delay} seconds (timer C{name}), or now if zero."""
        raise NotImplementedError

    def _terminate(self, txn: Transaction, now: float, actions: List[Action]) -> None:
        """End C{txn} at C{now}."""
        raise NotImplementedError

    def new_branch(self) -> str:
        """
        A fresh branch parameter with the RFC 3261 magic cookie.
        """
        return self.branch_factory()

    def send_request(
        self, request: Request, peer: Peer, now: float
    ) -> Tuple[ClientTransaction, List[Action]]:
        """
        Start a client transaction for a request this element originates.

        The caller supplies the top Via (it knows its sent-by); its branch
        must carry the magic cookie and be unique.

        @raise LocalProtocolError: for ACK (it has no transaction), a Via
            without a usable branch, or a branch already in use.
        """
        if request.method == "ACK":
            raise LocalProtocolError("ACK is sent without a client transaction")
        branch = request.top_via.branch
        if not has_cookie(branch):
            raise LocalProtocolError(f"top Via branch {branch!r} lacks the z9hG4bK cookie")
        key = (branch, request.method)
        if key in self._client:
            raise LocalProtocolError(f"branch {branch} is already in use")
        txn = ClientTransaction(request, peer, key, now)
        self._client[key] = txn
        txn.interval = self.t1
        if txn.is_invite:
            if not peer.reliable:
                self._schedule(txn, "A", now + self.t1)
            self._schedule(txn, "B", now + 64 * self.t1)
        else:
            if not peer.reliable:
                self._schedule(txn, "E", now + self.t1)
            self._schedule(txn, "F", now + 64 * self.t1)
        return txn, [SendMessage(request, peer)]

    def _receive_response(self, response: Response, now: float) -> List[Action]:
        key = (response.top_via.branch, response.cseq.method)
        txn = self._client.get(key)
        if txn is None:
            return []  # stray response (section 17.1.3): dropped
        code = response.code
        state = txn.state
        actions: List[Action] = []
        if txn.is_invite:
            if state in (S.CALLING, S.PROCEEDING):
                self._cancel(txn, "A")
                self._cancel(txn, "B")
                txn.last_response = response
                if code < 200:
                    txn.state = S.PROCEEDING
                    self._schedule(txn, "C", now + PROCEEDING_GUARD)
                    return [ResponseReceived(response, txn)]
                self._cancel(txn, "C")
                txn.final_response = response
                txn.completed_at = now
                actions.append(ResponseReceived(response, txn))
                actions.append(TransactionCompleted(txn))
                if code < 300:
                    txn.state = S.ACCEPTED
                    self._schedule(txn, "M", now + 64 * self.t1)
                else:
                    txn.state = S.COMPLETED
                    txn.ack = build_ack(txn.request, response)
                    actions.insert(0, SendMessage(txn.ack, txn.peer))
                    delay = 0.0 if txn.peer.reliable else max(32.0, 64 * self.t1)
                    self._later(txn, "D", now, delay, actions)
            elif state is S.ACCEPTED and 200 <= code < 300:
                actions.append(ResponseReceived(response, txn))
            elif state is S.COMPLETED and code >= 300 and txn.ack is not None:
                actions.append(SendMessage(txn.ack, txn.peer))
            return actions
        if state in (S.TRYING, S.PROCEEDING):
            txn.last_response = response
            actions.append(ResponseReceived(response, txn))
            if code < 200:
                txn.state = S.PROCEEDING
            else:
                txn.state = S.COMPLETED
                txn.final_response = response
                txn.completed_at = now
                actions.append(TransactionCompleted(txn))
                self._cancel(txn, "E")
                self._cancel(txn, "F")
                self._later(txn, "K", now, 0.0 if txn.peer.reliable else self.t4, actions)
        return actions

    def _fire_client(
        self, txn: ClientTransaction, name: str, at: float, actions: List[Action]
    ) -> None:
        if name == "A":
            actions.append(SendMessage(txn.request, txn.peer))
            txn.interval *= 2
            self._schedule(txn, "A", at + txn.interval)
        elif name == "E":
            actions.append(SendMessage(txn.request, txn.peer))
            if txn.state is S.PROCEEDING:
                txn.interval = self.t2
            else:
                txn.interval = min(2 * txn.interval, self.t2)
            self._schedule(txn, "E", at + txn.interval)
        elif name in ("B", "C", "F"):
            reason = {
                "B": "Timer B: no response to the INVITE",
                "C": "no final response to the INVITE within 3 minutes",
                "F": "Timer F: no final response",
            }[name]
            actions.append(TransactionTimedOut(txn, reason))
            self._terminate(txn, at, actions)
        else:  # D, K, M
            self._terminate(txn, at, actions)
