# -*- test-case-name: tests.unit.sip.test_transaction_model -*-
"""
The values the transaction layer works with: where a message goes
(L{Peer}), what the adapter must do (the actions), the transactions
themselves and the RFC 3261 section 17 matching keys.

They live apart from the state machine in L{conference.sip.transaction} so
the adapter and the tests can name them without the machinery, and so each
module stays one responsibility.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict, Hashable, Optional, Tuple, Union, cast

from conference.sip.compacted import from_wire
from conference.sip.message import Request, Response
from conference.sip.randomness import random_hex

# RFC 3261 section 8.1.1.7: branches of RFC 3261 elements start with it.
MAGIC_COOKIE = "z9hG4bK"


def new_tag() -> str:
    """
    A To/From tag with 64 bits of randomness (RFC 3261 section 19.3).
    """
    return random_hex(8)


def new_branch() -> str:
    """
    A Via branch: the RFC 3261 magic cookie and 80 bits of randomness
    (section 8.1.1.7).
    """
    return MAGIC_COOKIE + random_hex(10)


@dataclass(frozen=True)
class Peer:
    """
    The far end of a message: where a request came from, where a message
    goes.

    @ivar transport: C{"UDP"}, C{"TCP"} or C{"TLS"} (upper case).
    @ivar host: the IP address (no brackets for IPv6).
    @ivar port: the port.
    @ivar connection: for streams, an id of the connection, so responses go
        back over the one the request came on; L{None} for UDP.
    """

    transport: str
    host: str
    port: int
    connection: Optional[Hashable] = None

    @property
    def reliable(self) -> bool:
        """
        Whether the transport retransmits by itself (anything but UDP).
        """
        return self.transport.upper() != "UDP"


class TransactionState(enum.Enum):
    """
    The states of RFC 3261 figures 5 to 8, plus RFC 6026's Accepted.
    """

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class _TransactionBase:
    """
    What client and server transactions share.

    @ivar request: the request that created the transaction.
    @ivar peer: where its messages go.
    @ivar method: the request's method.
    @ivar state: a L{TransactionState}.
    @ivar key: the matching key it is filed under.
    @ivar created: the time it was created.
    @ivar last_response: the latest response sent (server) or received
        (client), or L{None}.
    @ivar final_response: the final response, once there is one.
    @ivar completed_at: when the final response was sent or received.
    @ivar ended: when the transaction terminated.
    @ivar timers: running timers by name, each with its heap sequence
        number (the layer's bookkeeping).
    @ivar interval: the current retransmission interval.

    The request and the responses may be held as their bytes alone
    (L{hold}); reading one then gives it back as a compacted message
    (L{conference.sip.compacted.from_wire}), kept from then on.
    """

    # Slots: a loaded server holds tens of thousands of completed
    # transactions for their timers, and a dictionary each is one more
    # object per transaction for the collectors to track (and PyPy's to
    # mark) and some hundred bytes more.
    __slots__ = (
        "_final",
        "_final_code",
        "_last",
        "_request",
        "completed_at",
        "created",
        "ended",
        "interval",
        "key",
        "method",
        "peer",
        "state",
        "timers",
    )

    def __init__(
        self,
        request: Request,
        peer: Peer,
        key: Hashable,
        created: float,
        state: TransactionState,
    ) -> None:
        self._request: Union[Request, bytes] = request
        self.peer = peer
        self.method: str = request.method
        self.key = key
        self.created = created
        self.state = state
        self._last: Union[Response, bytes, None] = None
        self._final: Union[Response, bytes, None] = None
        self._final_code: Optional[int] = None
        self.completed_at: Optional[float] = None
        self.ended: Optional[float] = None
        self.timers: Dict[str, int] = {}
        self.interval = 0.0

    @property
    def request(self) -> Request:
        """
        The request that created the transaction.
        """
        request = self._request
        if isinstance(request, bytes):
            request = self._request = cast(Request, from_wire(request))
        return request

    @request.setter
    def request(self, request: Request) -> None:
        self._request = request

    @property
    def last_response(self) -> Optional[Response]:
        """
        The latest response sent (server) or received (client), or L{None}.
        """
        last = self._last
        if isinstance(last, bytes):
            if last is self._final:
                return self.final_response
            last = self._last = cast(Response, from_wire(last))
        return last

    @last_response.setter
    def last_response(self, response: Optional[Response]) -> None:
        self._last = response

    @property
    def final_response(self) -> Optional[Response]:
        """
        The final response, once there is one (and until
        L{release_responses}: then L{final_code} alone says it was sent).
        """
        final = self._final
        if isinstance(final, bytes):
            response = cast(Response, from_wire(final))
            if self._last is final:
                self._last = response
            final = self._final = response
        return final

    @final_response.setter
    def final_response(self, response: Optional[Response]) -> None:
        self._final = response
        self._final_code = response.code if response is not None else None

    @property
    def final_code(self) -> Optional[int]:
        """
        The status code of the final response, once there is one, even
        after L{release_responses}.
        """
        return self._final_code

    def final_wire(self) -> Optional[bytes]:
        """
        The final response's bytes, without reading a held one back
        (L{None} before it is sent and after L{release_responses}).
        """
        final = self._final
        if final is None or isinstance(final, bytes):
            return final
        return final.to_bytes()

    def release_responses(self) -> None:
        """
        Drop the responses, held or not, once nothing will send them again:
        an INVITE's 2xx once its ACK arrived (RFC 6026: in the Accepted
        state a retransmitted INVITE is absorbed, and the ACK ended the 2xx's
        retransmissions).  The 2xx, with its SDP and VEVENT, is the largest
        part of what a join leaves behind for Timer L's 32 s.
        """
        self._last = None
        self._final = None

    def hold(self) -> None:
        """
        Keep the request and the responses as their bytes alone, for a
        transaction that completed and now only waits for its timer: tens
        of thousands of them on a loaded server, each then one object
        CPython's collector tracks (the transaction) instead of three (it,
        and its request and response, even compacted), and some ten fewer
        for PyPy's to mark.  Reading one back parses it again (see above),
        so call it once nothing in progress reads them.
        """
        request = self._request
        if not isinstance(request, bytes):
            self._request = request.to_bytes()
        final = self._final
        if final is not None and not isinstance(final, bytes):
            wire = final.to_bytes()
            if self._last is final:
                self._last = wire
            self._final = wire
        last = self._last
        if last is not None and not isinstance(last, bytes):
            self._last = last.to_bytes()

    @property
    def held(self) -> bool:
        """
        Whether the request is held as bytes (L{hold}) and not read back.
        """
        return isinstance(self._request, bytes)

    @property
    def is_invite(self) -> bool:
        """
        Whether this is an INVITE transaction (figures 5 and 7).
        """
        return self.method == "INVITE"

    @property
    def status(self) -> Optional[int]:
        """
        The status code of the final response, else of the last provisional,
        else L{None}.
        """
        if self._final_code is not None:
            return self._final_code
        response = self.last_response
        return response.code if response is not None else None

    @property
    def duration(self) -> Optional[float]:
        """
        Seconds from creation to the final response (or to termination
        when there was none); L{None} while neither happened.
        """
        end = self.completed_at if self.completed_at is not None else self.ended
        return None if end is None else end - self.created

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.method} {self.state.value}"
            f" status={self.status} peer={self.peer.transport}:{self.peer.host}:{self.peer.port}>"
        )


class ServerTransaction(_TransactionBase):
    """
    A server transaction (RFC 3261 section 17.2).

    @ivar rfc3261: whether it is matched by branch (L{False}: by the RFC
        2543 rules).
    @ivar to_tag: the To tag of the latest response sent with one.
    @ivar acked: whether the ACK for its final response arrived.
    @ivar merge_key: the section 8.2.2.2 key it is filed under, if any.
    @ivar accept_key: the key a 2xx ACK finds it by while Accepted.
    @ivar branch: the request's top Via branch, as counted by the layer.
    @ivar request_to_tag: for RFC 2543 matching (not L{rfc3261}), the To
        tag of the request that created it.
    @ivar released: whether the layer's caller is done with it
        (L{conference.sip.transaction.TransactionLayer.hold}), so that the
        layer may retire it once it only waits.
    """

    __slots__ = (
        "accept_key",
        "acked",
        "branch",
        "merge_key",
        "released",
        "request_to_tag",
        "rfc3261",
        "to_tag",
    )

    def __init__(
        self, request: Request, peer: Peer, key: Hashable, created: float, rfc3261: bool
    ) -> None:
        state = (
            TransactionState.PROCEEDING if request.method == "INVITE" else TransactionState.TRYING
        )
        super().__init__(request, peer, key, created, state)
        self.rfc3261 = rfc3261
        self.to_tag: Optional[str] = None
        self.acked = False
        self.merge_key: Optional[Hashable] = None
        self.accept_key: Optional[Hashable] = None
        # The top Via branch, kept as a string: the request's parsed views
        # are dropped once the final response is sent.
        self.branch: Optional[str] = None
        self.request_to_tag: Optional[str] = None
        self.released = False


class ClientTransaction(_TransactionBase):
    """
    A client transaction (RFC 3261 section 17.1).

    @ivar ack: the ACK the layer built for a non-2xx final response.
    """

    __slots__ = ("ack",)

    def __init__(self, request: Request, peer: Peer, key: Hashable, created: float) -> None:
        state = TransactionState.CALLING if request.method == "INVITE" else TransactionState.TRYING
        super().__init__(request, peer, key, created, state)
        self.ack: Optional[Request] = None


Transaction = Union[ServerTransaction, ClientTransaction]


# Actions ------------------------------------------------------------------


@dataclass(frozen=True)
class SendMessage:
    """
    Serialize C{message} and send it to C{peer}.
    """

    message: Union[Request, Response]
    peer: Peer


@dataclass(frozen=True)
class RequestReceived:
    """
    A new request for the application (never a retransmission nor an ACK);
    answer it with L{TransactionLayer.respond}.
    """

    request: Request
    transaction: ServerTransaction


@dataclass(frozen=True)
class AckReceived:
    """
    An ACK for a 2xx (or one matching no transaction): dialog business.
    """

    request: Request
    peer: Peer


@dataclass(frozen=True)
class CancelReceived:
    """
    A CANCEL matched C{transaction}; 200 (to the CANCEL) and 487 (to the
    INVITE, when it had no final response) are already among the actions.

    @ivar terminated: whether this CANCEL ended the INVITE with that 487
        (L{False}: its final response was sent before, and the CANCEL
        changes nothing, RFC 3261 section 9.2).
    """

    cancel: Request
    transaction: ServerTransaction
    terminated: bool = True


@dataclass(frozen=True)
class ResponseReceived:
    """
    A response for a client transaction, for the application (never an
    absorbed retransmission).
    """

    response: Response
    transaction: ClientTransaction


@dataclass(frozen=True)
class TransactionTimedOut:
    """
    A transaction gave up: C{reason} names the timer.
    """

    transaction: Transaction
    reason: str


@dataclass(frozen=True)
class TransactionCompleted:
    """
    The outcome of a transaction is known: its final response was sent
    (server) or received (client), or it gave up without one (Timer B, C
    or F).  Once per transaction, at that moment, for its log line:
    C{transaction.status} and C{transaction.duration}, the latency from
    the request's arrival (or sending) to the final response.
    """

    transaction: Transaction


@dataclass(frozen=True)
class TransactionTerminated:
    """
    A transaction ended and was forgotten (what a graceful stop waits for);
    it only absorbed retransmissions since its L{TransactionCompleted}.
    """

    transaction: Transaction


Action = Union[
    SendMessage,
    RequestReceived,
    AckReceived,
    CancelReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransactionCompleted,
    TransactionTerminated,
]


# Matching -----------------------------------------------------------------


def has_cookie(branch: object) -> bool:
    """
    Whether C{branch} is an RFC 3261 branch: the magic cookie followed by
    at least one character (a bare cookie, as in RFC 4475 section 3.2.1,
    identifies nothing and falls back to RFC 2543 matching).
    """
    return (
        isinstance(branch, str)
        and branch.startswith(MAGIC_COOKIE)
        and len(branch) > len(MAGIC_COOKIE)
    )


# Via hosts as written -> their lower-case form, one string object per
# peer: each completed transaction keeps its peer's host in its key until
# its timer.  Bounded: past it, hosts are lowered each time, not kept.
_HOSTS: Dict[str, str] = {}
MAX_SHARED_HOSTS = 4096


def shared_host(written: str) -> str:
    """
    The lower-case form of the Via host C{written}, the same string object
    for every message from that host (while fewer than L{MAX_SHARED_HOSTS}
    were seen).
    """
    host = _HOSTS.get(written)
    if host is None:
        host = written.lower()
        if len(_HOSTS) < MAX_SHARED_HOSTS:
            host = _HOSTS.setdefault(host, host)
            _HOSTS[written] = host
    return host


# Ports likewise, one int object per port seen (CPython shares only the
# small ones): the key of every completed transaction holds one.
_PORTS: Dict[int, int] = {}


def shared_port(port: int) -> int:
    """
    C{port}, the same int object for every key with that port (while fewer
    than L{MAX_SHARED_HOSTS} ports were seen).
    """
    found = _PORTS.get(port)
    if found is None:
        found = port
        if len(_PORTS) < MAX_SHARED_HOSTS:
            _PORTS[port] = port
    return found


def sent_by(via: Any) -> Tuple[str, int]:
    """
    The sent-by of a Via as (lower-case host, port with its default).
    """
    transport = str(via.transport or "UDP").upper()
    port = via.port
    if port in (None, ""):
        port = 5061 if transport == "TLS" else 5060
    return (shared_host(str(via.host)), int(port))


def rfc3261_key(branch: str, host: str, port: int, method: str) -> Hashable:
    """
    The key of a server transaction matched by an RFC 3261 branch (section
    17.2.3): the branch, the sent-by's lower-case C{host} and C{port}, and
    C{method} (INVITE for an ACK or a CANCEL's INVITE).  One flat tuple: it
    is kept by every completed transaction until its timer, so its port is
    a shared one (its host should be: L{shared_host}).
    """
    return ("3261", branch, host, shared_port(port), method)


def server_key(request: Request, method: str) -> Hashable:
    """
    The key a server transaction for C{request} is filed under, with
    C{method} in place of the request's own (INVITE for ACK and for the
    INVITE a CANCEL targets).

    With an RFC 3261 branch: branch, sent-by and method (section 17.2.3).
    Otherwise the RFC 2543 rules: Request-URI, From tag, Call-ID, CSeq
    number, method and top Via; the To tag is compared apart, since an ACK
    carries the tag of the response rather than of the request.
    """
    via = request.top_via
    branch = via.branch
    if branch is not None and has_cookie(branch):
        host, port = sent_by(via)
        return rfc3261_key(branch, host, port, method)
    transport = str(via.transport or "").upper()
    via_id = (transport, *sent_by(via), via.branch)
    return (
        "2543",
        str(request.uri),
        request.from_.tag,
        request.call_id,
        request.cseq.number,
        method,
        via_id,
    )


def merge_key(request: Request) -> Hashable:
    """
    The section 8.2.2.2 key: From tag, Call-ID and CSeq.
    """
    cseq = request.cseq
    return (request.from_.tag, request.call_id, cseq.number, cseq.method)


def build_ack(request: Request, response: Response) -> Request:
    """
    The ACK for a non-2xx final response to C{request} (section 17.1.1.3):
    same Request-URI, top Via, From, Call-ID, CSeq number and Route; the
    To of the response.
    """
    ack = Request("ACK", request.uri)  # type: ignore[arg-type]
    vias = request.header_values("via")
    if vias:
        ack.add_header("via", vias[0])
    ack.add_header("max-forwards", "70")
    for route in request.header_fields("route"):
        ack.add_header("route", route)
    for name in ("from",):
        for value in request.header_fields(name):
            ack.add_header(name, value)
    for value in response.header_fields("to"):
        ack.add_header("to", value)
    ack.add_header("call-id", request.call_id)
    ack.add_header("cseq", f"{request.cseq.number} ACK")
    return ack
