# -*- test-case-name: tests.unit.sip.test_transaction,tests.unit.sip.test_completed -*-
"""
The RFC 3261 section 17 transaction layer as a sans-I/O state machine.

Retransmissions, response absorption and the timers that end transactions
are what make SIP work over UDP; keeping them here, driven by an injected
clock and returning actions instead of sending, lets the Twisted adapter
stay thin and lets tests run every timer path without waiting.  The
server half and the timers are here; the client half is in
L{conference.sip.transaction_client}, which the layer inherits.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable, Dict, Hashable, List, Optional, Tuple, Union

from conference.sip.completed import CompletedTable
from conference.sip.errors import LocalProtocolError, RemoteProtocolError, SIPProtocolError
from conference.sip.message import Message, Request, Response, make_response
from conference.sip.transaction_client import ClientTransactions
from conference.sip.transaction_model import (
    MAGIC_COOKIE,
    AckReceived,
    Action,
    CancelReceived,
    ClientTransaction,
    Peer,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    ServerTransaction,
    Transaction,
    TransactionCompleted,
    TransactionState,
    TransactionTerminated,
    TransactionTimedOut,
    has_cookie,
    merge_key,
    new_branch,
    new_tag,
    server_key,
)

__all__ = [
    "MAGIC_COOKIE",
    "AckReceived",
    "Action",
    "CancelReceived",
    "ClientTransaction",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "SendMessage",
    "ServerTransaction",
    "Transaction",
    "TransactionLayer",
    "TransactionCompleted",
    "TransactionState",
    "TransactionTerminated",
    "TransactionTimedOut",
    "TransactionsExhausted",
]

S = TransactionState

# Heap entries are (deadline, sequence number); the layer maps live sequence
# numbers to their transaction, whose own small map from timer name to
# sequence number says which of its timers fired.  A cancelled timer's entry
# stays in the heap until it comes up (or the heap is compacted), and holding
# only two numbers it keeps no ended transaction alive meanwhile.  Nor does it
# give the garbage collector anything to visit: CPython's stops tracking such
# tuples, where a (transaction, name) pair per live timer was one more object
# to visit per waiting transaction.  No name in the entry either: it is
# found in the transaction's map when the timer fires, so entries stay
# pairs of numbers (a three-part entry was no faster on either runtime).
_TimerEntry = Tuple[float, int]

# Timers that only end a transaction or report that it timed out: firing
# them a little late changes nothing a peer sees, so an adapter may wake
# once for many of them (L{TransactionLayer.wake_time}); at thousands of
# requests a second, every transaction's Timer J would otherwise wake the
# event loop on its own.  Retransmission and 100 Trying timers stay exact.
LAX_TIMERS = frozenset({"J", "I", "K", "D", "H", "L", "M", "B", "F", "C"})


class TransactionsExhausted(RemoteProtocolError):
    """
    A new request arrived while C{max_server} server transactions are
    live: answer it statelessly with this 503 and its Retry-After, without
    a transaction, whoever sent it.
    """

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            "Service Unavailable (too many transactions)",
            503,
            [("Retry-After", str(retry_after))],
        )
        self.limit = limit


class TransactionLayer(ClientTransactions):
    """
    Server and client transactions of one SIP element.

    Feed it what arrives with L{receive}, what the application answers with
    L{respond}, what the element originates with L{send_request}, and the
    clock with L{advance} (at L{next_deadline}); do what the returned
    actions say.

    @ivar t1: RTT estimate (RFC 3261 T1), seconds.
    @ivar t2: longest retransmit interval for non-INVITE requests and
        INVITE responses (T2).
    @ivar t4: longest time a message stays in the network (T4).
    @ivar trying_delay: how long an INVITE may wait for the application's
        first response before the layer sends 100 Trying itself.
    @ivar max_server: the most live server transactions; a new request
        beyond them raises L{TransactionsExhausted} (L{None}: no cap).
        Retransmissions, ACKs and responses are never refused.
    @ivar retry_after: the Retry-After of that 503, in seconds.
    @ivar admission: asked about each new request (not a retransmission,
        ACK or CANCEL) before a transaction is made; it raises a
        L{RemoteProtocolError} (e.g. L{conference.overload.Overloaded}) to
        have it answered statelessly instead.
    """

    def __init__(
        self,
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        trying_delay: float = 0.2,
        branch_factory: Callable[[], str] = new_branch,
        tag_factory: Callable[[], str] = new_tag,
        max_server: Optional[int] = None,
        retry_after: int = 10,
    ) -> None:
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.trying_delay = trying_delay
        self.branch_factory = branch_factory
        self.tag_factory = tag_factory
        self.max_server = max_server
        self.retry_after = retry_after
        self.admission: Optional[Callable[[Request], None]] = None
        self._server: Dict[Hashable, ServerTransaction] = {}
        # Live server transactions by branch, for L{serving}.
        self._branches: Dict[str, int] = {}
        self._client: Dict[Hashable, ClientTransaction] = {}
        # Merge keys of live transactions (to them) and retired ones (to
        # their RFC 3261 key): only membership counts.
        self._merge: Dict[Hashable, object] = {}
        self._accepted: Dict[Hashable, ServerTransaction] = {}
        # Held transactions that only wait for Timer J or L (L{hold}).
        self._completed = CompletedTable()
        # Exact timers, and the LAX_TIMERS apart.
        self._heap: List[_TimerEntry] = []
        self._lax_heap: List[_TimerEntry] = []
        self._timers: Dict[int, Transaction] = {}
        self._seq = itertools.count()

    # Introspection ---------------------------------------------------------

    def pending(self) -> int:
        """
        How many transactions are not terminated yet, those retired to the
        completed table (L{hold}) included.
        """
        return len(self._server) + len(self._client) + len(self._completed)

    def __len__(self) -> int:
        return self.pending()

    def dropped_early(self) -> int:
        """
        How many retired transactions were dropped before their timer, the
        completed table being at C{max_server} rows (their retransmissions
        would be taken as new requests).
        """
        return self._completed.dropped_early

    def sizes(self) -> Dict[str, int]:
        """
        The size of every internal table, for leak checks and metrics.
        """
        return {
            "server": len(self._server),
            "client": len(self._client),
            "merge": len(self._merge),
            "accepted": len(self._accepted),
            "completed": len(self._completed),
            "timers": len(self._heap) + len(self._lax_heap),
        }

    # Timers ----------------------------------------------------------------

    def next_deadline(self) -> Optional[float]:
        """
        The earliest time at which L{advance} has something to do.
        """
        return self.wake_time(0.0)

    def wake_time(self, slack: float) -> Optional[float]:
        """
        When to call L{advance} next if timers that only end transactions
        (L{LAX_TIMERS}) may fire up to C{slack} seconds late: the earliest
        exact deadline, or the earliest lax one plus C{slack}, whichever
        comes first.  Waking then, one call handles every lax timer due.
        """
        timers = self._timers
        heap = self._heap
        while heap and heap[0][1] not in timers:
            heapq.heappop(heap)
        lax = self._lax_heap
        while lax and lax[0][1] not in timers:
            heapq.heappop(lax)
        expiry = self._completed.next_deadline()
        if lax and (expiry is None or lax[0][0] < expiry):
            expiry = lax[0][0]
        if expiry is None:
            return heap[0][0] if heap else None
        later = expiry + slack
        return min(heap[0][0], later) if heap else later

    def advance(self, now: float) -> List[Action]:
        """
        Fire every timer due at or before C{now}, earliest first.

        A timer that fires reschedules from its own deadline, not from
        C{now}, so a late call replays the exact schedule.
        """
        actions: List[Action] = []
        self._forget_retired(self._completed.expire(now))
        timers = self._timers
        while True:
            # Earliest first across both heaps (either may be rebuilt by
            # what a timer does, so both are looked up again each time).
            heap, lax = self._heap, self._lax_heap
            if heap and (not lax or heap[0] <= lax[0]):
                source = heap
            elif lax:
                source = lax
            else:
                break
            if source[0][0] > now:
                break
            at, seq = heapq.heappop(source)
            txn = timers.pop(seq, None)
            if txn is None:
                continue
            own = txn.timers
            for name in own:
                if own[name] == seq:
                    break
            del own[name]
            if not timers:
                heap.clear()
                lax.clear()
            if isinstance(txn, ServerTransaction):
                self._fire_server(txn, name, at, actions)
            else:
                self._fire_client(txn, name, at, actions)
        return actions

    def _schedule(self, txn: Transaction, name: str, at: float) -> None:
        self._cancel(txn, name)
        seq = next(self._seq)
        txn.timers[name] = seq
        self._timers[seq] = txn
        heapq.heappush(self._lax_heap if name in LAX_TIMERS else self._heap, (at, seq))

    def _cancel(self, txn: Transaction, name: str) -> None:
        seq = txn.timers.pop(name, None)
        if seq is None:
            return
        timers = self._timers
        del timers[seq]
        heap, lax = self._heap, self._lax_heap
        if not timers:
            heap.clear()
            lax.clear()
        elif len(heap) + len(lax) > 64 and len(heap) + len(lax) > 4 * len(timers):
            # Mostly cancelled entries: rebuild (amortised O(1) a cancel).
            self._heap = [e for e in heap if e[1] in timers]
            heapq.heapify(self._heap)
            self._lax_heap = [e for e in lax if e[1] in timers]
            heapq.heapify(self._lax_heap)

    def _terminate(self, txn: Transaction, now: float, actions: List[Action]) -> None:
        for name in list(txn.timers):
            self._cancel(txn, name)
        txn.state = S.TERMINATED
        txn.ended = now
        if txn.completed_at is None:
            actions.append(TransactionCompleted(txn))  # it gave up without a final
        if isinstance(txn, ServerTransaction):
            if self._server.get(txn.key) is txn:
                del self._server[txn.key]
                self._forget_branch(txn.branch)
            for table, key in ((self._merge, txn.merge_key), (self._accepted, txn.accept_key)):
                if key is not None and table.get(key) is txn:
                    del table[key]
        elif self._client.get(txn.key) is txn:
            del self._client[txn.key]
        actions.append(TransactionTerminated(txn))

    # Server side -----------------------------------------------------------

    def receive(self, message: Message, peer: Peer, now: float) -> List[Action]:
        """
        Take a parsed message that arrived from C{peer}.

        @raise RemoteProtocolError: (400) if a request lacks or garbles a
            header the matching rules need; the adapter answers it
            statelessly (or drops it if it is an ACK).  Broken responses
            are dropped instead.
        @raise TransactionsExhausted: (503) for a new request while
            C{max_server} server transactions are live.
        """
        if isinstance(message, Response):
            try:
                return self._receive_response(message, now)
            except SIPProtocolError:
                return []
        try:
            return self._receive_request(message, peer, now)
        except RemoteProtocolError:
            raise
        except SIPProtocolError as e:
            raise RemoteProtocolError(e.reason, 400) from e

    def _receive_request(self, message: Request, peer: Peer, now: float) -> List[Action]:
        key = server_key(message, "INVITE" if message.method == "ACK" else message.method)
        if message.method == "ACK":
            return self._receive_ack(message, key, peer, now)
        txn = self._match(key, message)
        if txn is not None:
            return self._retransmitted(txn, peer)
        absorbed = self._completed.absorb(key, peer)
        if absorbed is not None:
            return absorbed
        if self.full() and message.method != "BYE":
            # A BYE passes: the caller ends the call whatever we answer
            # (RFC 3261 section 15.1.1), so refusing it would only keep the
            # call's state; it is answered at once and its transaction
            # retires to a row, which holds no place under the cap.
            raise TransactionsExhausted(self.max_server or 0, self.retry_after)
        if message.method == "CANCEL":
            return self._receive_cancel(message, key, peer, now)
        if self.admission is not None:
            self.admission(message)
        if self.merged(message):
            txn = self._new_server(message, key, peer, now)
            return self._respond(txn, self._answer(message, 482, "Loop Detected (merged)"), now)
        return [RequestReceived(message, self._filed(message, key, peer, now))]

    def merged(self, request: Request) -> bool:
        """
        Whether new C{request} is a merged copy (section 8.2.2.2): no To
        tag, and a live transaction's From tag, Call-ID and CSeq.
        """
        # Nothing live to merge with (a server answering statelessly):
        # no key to build.
        return bool(self._merge) and request.to.tag is None and merge_key(request) in self._merge

    def adopt(self, request: Request, peer: Peer, now: float) -> ServerTransaction:
        """
        The server transaction of a new request begun without one
        (L{conference.sip.stateless}) whose answer needs one after all:
        filed as L{receive} files it (the L{admission} and L{merged}
        checks were made before), C{now} being when the request arrived.

        @raise TransactionsExhausted: at C{max_server} live transactions.
        """
        if self.full():
            raise TransactionsExhausted(self.max_server or 0, self.retry_after)
        return self._filed(request, server_key(request, request.method), peer, now)

    def _filed(self, request: Request, key: Hashable, peer: Peer, now: float) -> ServerTransaction:
        txn = self._new_server(request, key, peer, now)
        txn.merge_key = mkey = merge_key(request)
        self._merge[mkey] = txn
        return txn

    def _match(self, key: Hashable, request: Request) -> Optional[ServerTransaction]:
        txn = self._server.get(key)
        if txn is None or txn.rfc3261:
            return txn
        # RFC 2543 matching also needs the To tag of the original request.
        return txn if request.to.tag == txn.request_to_tag else None

    def full(self) -> bool:
        """
        Whether C{max_server} server transactions are live (no new one may
        start).  Those retired to the completed table do not count: it
        holds at most C{max_server} rows of its own, dropping the oldest
        early past that (L{CompletedTable.trim}).
        """
        return self.max_server is not None and len(self._server) >= self.max_server

    def _forget_retired(self, rows: List[Tuple[Hashable, Optional[Hashable]]]) -> None:
        """The branches and merge keys of rows the completed table dropped."""
        for key, mkey in rows:
            self._forget_branch(key[1])  # type: ignore[index]
            if mkey is not None and self._merge.get(mkey) is key:
                del self._merge[mkey]

    def serving(self, branch: str) -> bool:
        """
        Whether a live server transaction has this Via branch: a request
        with it may be a retransmission that transaction must absorb, so
        the overload path must not refuse it unparsed.
        """
        return branch in self._branches

    def _forget_branch(self, branch: Optional[str]) -> None:
        if not branch:
            return
        count = self._branches.get(branch, 0) - 1
        if count > 0:
            self._branches[branch] = count
        else:
            self._branches.pop(branch, None)

    def _new_server(
        self, request: Request, key: Hashable, peer: Peer, now: float
    ) -> ServerTransaction:
        branch = request.top_via.branch
        txn = ServerTransaction(request, peer, key, now, has_cookie(branch))
        txn.branch = branch
        if not txn.rfc3261:
            # Kept apart: the request is compacted once answered.
            txn.request_to_tag = request.to.tag
        if self._server.get(key) is not None:
            self._forget_branch(branch)  # replaced: counted again below
        self._server[key] = txn
        if branch:
            self._branches[branch] = self._branches.get(branch, 0) + 1
        if txn.is_invite:
            self._schedule(txn, "100", now + self.trying_delay)
        return txn

    def _retransmitted(self, txn: ServerTransaction, peer: Peer) -> List[Action]:
        txn.peer = peer
        if txn.state is S.CONFIRMED or txn.last_response is None:
            return []
        return [SendMessage(txn.last_response, peer)]

    def _answer(self, request: Request, code: int, phrase: Optional[str] = None) -> Response:
        return make_response(request, code, phrase, to_tag=self.tag_factory())

    def _receive_ack(self, ack: Request, key: Hashable, peer: Peer, now: float) -> List[Action]:
        txn = self._server.get(key)
        if txn is not None and not txn.rfc3261 and ack.to.tag != txn.to_tag:
            txn = None
        if txn is not None and txn.state in (S.COMPLETED, S.CONFIRMED):
            return self._absorb_ack(txn, now)
        if txn is None or txn.state is not S.ACCEPTED:
            try:
                akey = (ack.call_id, ack.cseq.number, ack.from_.tag)
            except SIPProtocolError:
                return []
            txn = self._accepted.get(akey)
            if txn is not None and txn.to_tag is not None and ack.to.tag != txn.to_tag:
                txn = None
        if txn is not None:
            txn.acked = True
            self._cancel(txn, "2xx")
            # Nothing sends the 2xx again: Timer L only waits now.
            txn.release_responses()
            self._retire_if_waiting(txn)
        return [AckReceived(ack, peer)]

    def hold(self, transaction: ServerTransaction) -> None:
        """
        The caller is done with C{transaction}, which completed: keep its
        messages as bytes alone (L{ServerTransaction.hold}), and once it
        only waits for its timer (a non-INVITE's final sent over UDP, an
        INVITE's 2xx acknowledged) retire it to the completed table, which
        absorbs its retransmissions as it would until Timer J or L.  A
        retired transaction is no longer the layer's: it stays in the
        state it was in and no action names it again; L{pending}, L{full}
        and L{serving} count it until its timer.
        """
        transaction.released = True
        if not self._retire_if_waiting(transaction):
            transaction.hold()

    def _retire_if_waiting(self, txn: ServerTransaction) -> bool:
        """
        Retire C{txn} if its caller released it (L{hold}), it is the live
        transaction under an RFC 3261 key (branch, sent-by, method: what
        the table keeps), and it only waits: an INVITE whose 2xx was
        acknowledged, or a non-INVITE whose final went out over UDP (over
        TCP or TLS it ended at once).  Whether it was retired.
        """
        if not (txn.released and txn.rfc3261 and self._server.get(txn.key) is txn):
            return False
        if txn.state is S.ACCEPTED and txn.acked:
            self._retire(txn, txn.to_tag or "")
            return True
        if txn.state is S.COMPLETED and not txn.is_invite:
            wire = txn.final_wire()
            if wire:
                self._retire(txn, wire)
                return True
        return False

    def _retire(self, txn: ServerTransaction, row: Union[bytes, str]) -> None:
        """
        Move C{txn}, which only waits for its Timer J or L, to the completed
        table until that timer's deadline.
        """
        for name in list(txn.timers):
            self._cancel(txn, name)
        key, mkey = txn.key, txn.merge_key
        del self._server[key]
        if txn.accept_key is not None and self._accepted.get(txn.accept_key) is txn:
            del self._accepted[txn.accept_key]
        if mkey is not None and self._merge.get(mkey) is txn:
            self._merge[mkey] = key
        else:
            mkey = None
        assert txn.completed_at is not None
        self._completed.add(key, row, mkey, txn.completed_at + 64 * self.t1)
        if self.max_server is not None and len(self._completed) > self.max_server:
            # Rows are bounded like live transactions, by dropping the
            # oldest, nearest their deadline, rather than by refusing work.
            self._forget_retired(self._completed.trim(self.max_server))

    def _absorb_ack(self, txn: ServerTransaction, now: float) -> List[Action]:
        """
        The ACK for a non-2xx final of C{txn} (Completed or Confirmed):
        absorbed, and Timer I started by the first (section 17.2.1).
        """
        if txn.state is not S.COMPLETED:
            return []
        txn.state = S.CONFIRMED
        txn.acked = True
        self._cancel(txn, "G")
        self._cancel(txn, "H")
        actions: List[Action] = []
        self._later(txn, "I", now, 0.0 if txn.peer.reliable else self.t4, actions)
        return actions

    def absorbable(self, method: str, key: Hashable) -> Union[ServerTransaction, Hashable, None]:
        """
        The live server transaction a request known only by its method and
        RFC 3261 server key (L{conference.sip.rawmatch.raw_server_key})
        belongs to, when L{absorb} can handle that request without parsing
        it: the ACK of a non-2xx final response, or a retransmission (of a
        retired transaction too: then its key).  L{None} otherwise (the
        caller then parses the message and gives it to L{receive}).
        Changes nothing.
        """
        txn = self._server.get(key)
        if txn is None:
            # A retired transaction absorbs its request's retransmissions;
            # an ACK with an acknowledged INVITE's key is the dialog's.
            return key if method != "ACK" and key in self._completed else None
        if not txn.rfc3261:
            return None
        if method == "ACK":
            return txn if txn.state in (S.COMPLETED, S.CONFIRMED) else None
        return txn if method == txn.method else None

    def absorb(
        self, method: str, found: Union[ServerTransaction, Hashable], peer: Peer, now: float
    ) -> List[Action]:
        """
        Handle a request L{absorbable} found C{found} for, as L{receive}
        would: an ACK absorbed (Timer I started by the first), a
        retransmission answered with the last response sent.
        """
        if not isinstance(found, ServerTransaction):
            return self._completed.absorb(found, peer) or []
        if method == "ACK":
            return self._absorb_ack(found, now)
        return self._retransmitted(found, peer)

    def _receive_cancel(
        self, cancel: Request, key: Hashable, peer: Peer, now: float
    ) -> List[Action]:
        invite_key = server_key(cancel, "INVITE")
        invite = self._match(invite_key, cancel)
        txn = self._new_server(cancel, key, peer, now)
        if invite is None:
            # An INVITE whose 2xx was acknowledged still matches (section
            # 9.2): the CANCEL gets 200 and changes nothing.
            retired_tag = self._completed.invite_tag(invite_key)
            if retired_tag is not None:
                tag = retired_tag or self.tag_factory()
                return self._respond(txn, make_response(cancel, 200, to_tag=tag), now)
        if invite is None or not invite.is_invite:
            return self._respond(txn, self._answer(cancel, 481), now)
        tag = invite.to_tag or self.tag_factory()
        actions = self._respond(txn, make_response(cancel, 200, to_tag=tag), now)
        pending = invite.final_code is None
        if pending:
            terminated = make_response(invite.request, 487, to_tag=tag)
            actions.extend(self._respond(invite, terminated, now))
        actions.append(CancelReceived(cancel, invite, pending))
        return actions

    def respond(
        self, transaction: ServerTransaction, response: Response, now: float
    ) -> List[Action]:
        """
        Send the application's response through its server transaction.

        @raise LocalProtocolError: if the transaction is terminated or
            already sent a final response.
        """
        if transaction.state is S.TERMINATED:
            raise LocalProtocolError("cannot respond: transaction terminated")
        if transaction.final_code is not None:
            raise LocalProtocolError(
                f"cannot respond: final response {transaction.final_code} already sent"
            )
        return self._respond(transaction, response, now)

    def _respond(self, txn: ServerTransaction, response: Response, now: float) -> List[Action]:
        actions: List[Action] = [SendMessage(response, txn.peer)]
        txn.last_response = response
        self._cancel(txn, "100")
        tag = _to_tag(response)
        if tag is not None:
            txn.to_tag = tag
        if response.code < 200:
            if txn.state is S.TRYING:
                txn.state = S.PROCEEDING
            return actions
        txn.final_response = response
        txn.completed_at = now
        actions.append(TransactionCompleted(txn))
        accepted = txn.is_invite and response.code < 300
        if accepted:
            # Keyed now, from the views parsed already: the adapter
            # compacts the request once it is done with it (which drops
            # them), and reading them after would parse the request again.
            try:
                req = txn.request
                txn.accept_key = (req.call_id, req.cseq.number, req.from_.tag)
                self._accepted[txn.accept_key] = txn
            except SIPProtocolError:
                pass
        # From here on the transaction only waits (for retransmissions, an
        # ACK, its timer), holding its request and response compacted
        # (Message.compact): the adapter does that once it has sent the
        # response and logged the outcome, which reads the request.
        if accepted:
            txn.state = S.ACCEPTED
            txn.interval = self.t1
            self._schedule(txn, "2xx", now + self.t1)
            self._schedule(txn, "L", now + 64 * self.t1)
        elif txn.is_invite:
            txn.state = S.COMPLETED
            if not txn.peer.reliable:
                txn.interval = self.t1
                self._schedule(txn, "G", now + self.t1)
            self._schedule(txn, "H", now + 64 * self.t1)
        else:
            txn.state = S.COMPLETED
            self._later(txn, "J", now, 0.0 if txn.peer.reliable else 64 * self.t1, actions)
        return actions

    def _later(
        self, txn: Transaction, name: str, now: float, delay: float, actions: List[Action]
    ) -> None:
        """
        Schedule a terminating timer, or terminate at once if it is zero.
        """
        if delay <= 0:
            self._terminate(txn, now, actions)
        else:
            self._schedule(txn, name, now + delay)

    def _fire_server(
        self, txn: ServerTransaction, name: str, at: float, actions: List[Action]
    ) -> None:
        if name == "100":
            if txn.last_response is None and txn.state is S.PROCEEDING:
                trying = make_response(txn.request, 100)
                timestamp = txn.request.header("timestamp")
                if timestamp is not None:
                    trying.add_header("timestamp", timestamp)
                txn.last_response = trying
                actions.append(SendMessage(trying, txn.peer))
        elif name in ("G", "2xx"):
            assert txn.final_response is not None
            actions.append(SendMessage(txn.final_response, txn.peer))
            txn.interval = min(2 * txn.interval, self.t2)
            self._schedule(txn, name, at + txn.interval)
        elif name == "H":
            actions.append(TransactionTimedOut(txn, "Timer H: no ACK for the final response"))
            self._terminate(txn, at, actions)
        elif name == "L" and not txn.acked:
            actions.append(TransactionTimedOut(txn, "no ACK for the 2xx response within 64*T1"))
            self._terminate(txn, at, actions)
        else:  # I, J, L after an ACK
            self._terminate(txn, at, actions)


def _to_tag(response: Response) -> Optional[str]:
    try:
        tag: Optional[str] = response.to.tag
    except SIPProtocolError:
        return None
    return tag
