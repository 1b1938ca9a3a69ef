# -*- test-case-name: tests.unit.sip.test_stateless -*-
"""
The stateless UAS of RFC 3261 section 8.2.7, for answers that need no
transaction.

Most requests a busy server answers change nothing and would get the same
answer again: OPTIONS, and out-of-dialog requests to an address that names
nothing (404), or refused by the core's checks (405, 415, 416, 420, 501).
Section 8.2.7 lets a UAS answer those without a server transaction, if
its To tag is made "in a stateless manner" so that a retransmitted request
gets the same response: a retransmission is answered again, just as the
first copy was, and the ACK of such a non-2xx final is dropped.  That
saves the transaction, its matching tables, its Timer J or H/I and the
memory they hold for 32 seconds per request.

The adapter (L{conference.transport.server.SIPServer}) gives a
L{candidate} request to the application with a L{Pending} in place of
its transaction.  If the final answer comes at once and L{allowed} says
it may be sent statelessly, it goes out with the To tag of
L{StatelessTags.tag}; anything else (a provisional response, a 2xx
other than OPTIONS', an answer still to come, a challenge whose nonce
differs each time) makes the adapter create the transaction there and
then (L{conference.sip.transaction.TransactionLayer.adopt}) and answer
through it, so nothing changes for those.

L{raw_stateless_ack} recognises the ACK of a stateless answer from the
raw datagram (its request line and To tag), so it costs no parse.

Sans-I/O: messages and bytes in, a decision out.
"""

from __future__ import annotations

import os
import re
from collections import deque
from hashlib import blake2b
from typing import Any, Deque, Dict, Optional, Tuple

from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.rawmatch import raw_head
from conference.sip.transaction import TransactionLayer
from conference.sip.transaction_model import has_cookie

__all__ = [
    "STATELESS_REFUSALS",
    "TAG_PREFIX",
    "Pending",
    "RecentInvites",
    "StatelessTags",
    "StatelessUAS",
    "allowed",
    "candidate",
    "is_stateless_tag",
    "raw_stateless_ack",
    "stamp",
]

#: Final codes an out-of-dialog request may be answered with statelessly:
#: what the UAS core decides from the request and the server's own
#: configuration (405, 415, 416, 420, 501) or from a lookup that found
#: nothing (404, and 410 for a conference that is over), so that a
#: retransmission gets the same answer.  Not 401/407 (a new nonce each
#: time), not 403, 480 or 486 (they depend on who asks and when: unless the
#: application promises the answer stands, L{Response.stable_until}), not
#: 5xx (transient by nature).
STATELESS_REFUSALS = frozenset({404, 405, 410, 415, 416, 420, 501})

#: Every stateless To tag starts with this.  Tags from
#: L{conference.sip.transaction_model.new_tag} are hexadecimal, and "s"
#: and "l" are not hex digits, so no dialog or transaction of ours ever
#: has a tag of this form: an ACK carrying one belongs to a stateless
#: answer and to nothing else.
TAG_PREFIX = "sl"

# Hex digits of a stateless tag after its prefix (64 bits).
_TAG_DIGITS = 16
_TAG_LENGTH = len(TAG_PREFIX) + _TAG_DIGITS
_HEX = frozenset("0123456789abcdef")


def is_stateless_tag(tag: Optional[str]) -> bool:
    """
    Whether C{tag} has the form of a L{StatelessTags} tag.
    """
    return (
        tag is not None
        and len(tag) == _TAG_LENGTH
        and tag.startswith(TAG_PREFIX)
        and _HEX.issuperset(tag[len(TAG_PREFIX) :])
    )


class StatelessTags:
    """
    Deterministic To tags: a keyed hash (BLAKE2b, 64 bits) of the parts
    that identify a request and its retransmissions.  The key is a
    per-process secret, so others cannot predict the tags; a restart
    changes them, which costs a retransmission straddling it no more than
    a stateful server's restart would.
    """

    def __init__(self, secret: Optional[bytes] = None) -> None:
        """
        @param secret: the hash key (at most 64 bytes); random when
            L{None}.
        """
        self._secret = secret if secret is not None else os.urandom(32)
        # Keyed once: each tag copies this state rather than keying a new
        # hash (a third of the tag's cost), with the same digest.
        self._keyed = blake2b(key=self._secret, digest_size=_TAG_DIGITS // 2)

    def tag(self, *parts: str) -> str:
        """
        The To tag for the request identified by C{parts} (for a parsed
        request: L{request_parts}; the quick path passes its raw lines).
        """
        text = "\x00".join(parts).encode("utf-8", "surrogateescape")
        keyed = self._keyed.copy()
        keyed.update(text)
        return TAG_PREFIX + keyed.hexdigest()

    def tag_for(self, request: Request) -> str:
        """
        The To tag of stateless answers to C{request}.
        """
        return self.tag(*request_parts(request))


def request_parts(request: Request) -> tuple[str, str, str]:
    """
    What identifies C{request} and its retransmissions, and its ACK for a
    non-2xx final too (section 17.1.1.3: same Call-ID, From tag and top
    Via branch): those three.
    """
    return (request.call_id or "", request.from_.tag or "", request.top_via.branch or "")


def candidate(request: Request) -> bool:
    """
    Whether C{request} may be answered statelessly, should its answer
    allow it: a request outside any dialog (no To tag) that is neither
    ACK nor CANCEL (which only ever concern a transaction or a dialog),
    with an RFC 3261 top Via branch (RFC 2543 requests are matched on
    fields a retransmission need not repeat exactly, so they keep their
    transaction).
    """
    if request.method in ("ACK", "CANCEL"):
        return False
    try:
        return request.to.tag is None and has_cookie(request.top_via.branch)
    except SIPProtocolError:
        return False


def allowed(request: Request, response: Response) -> bool:
    """
    Whether C{response}, the application's answer to the L{candidate}
    C{request}, may be sent without a transaction: any final answer to
    OPTIONS but a 401/407 challenge, or one of L{STATELESS_REFUSALS}.
    A 2xx to anything but OPTIONS may create a dialog or record a change,
    and a provisional response announces a transaction: never.
    """
    code = response.code
    if code in STATELESS_REFUSALS:
        return True
    return request.method == "OPTIONS" and 200 <= code < 300


def stamp(request: Request, response: Response, tag: str) -> None:
    """
    Give C{response} the To tag C{tag} in place of the one the application
    chose: C{request}'s To field as written, then C{;tag=}.
    """
    # Its view is not built here: nothing reads a stateless answer's To
    # before it is sent (it is parsed from this text if something does).
    response.headers["to"] = [request.headers["to"][0] + ";tag=" + tag]


class Pending:
    """
    A request being answered on the stateless path: what the adapter
    passes where a server transaction would go.

    @ivar request: the request.
    @ivar peer: where it came from.
    @ivar arrived: when it arrived (for the log line's latency).
    @ivar tag: the To tag of its stateless answer once worked out
        (L{stateless_tag}), else L{None}.
    @ivar transaction: the server transaction made for it when its
        answer could not be stateless (L{None} until then).
    @ivar answered: whether a final answer went out statelessly.
    @ivar refused: whether no transaction could be made for it (the
        server was at its cap and refused it; later answers are dropped).
    """

    __slots__ = (
        "_tags",
        "answered",
        "arrived",
        "peer",
        "refused",
        "request",
        "tag",
        "transaction",
    )

    def __init__(
        self,
        request: Request,
        peer: Any,
        arrived: float,
        tags: Optional[StatelessTags] = None,
    ) -> None:
        """
        @param tags: what L{stateless_tag} works the tag out with (L{None}:
            there is none to work out, and L{refusal_tag} offers none).
        """
        self.request = request
        self.peer = peer
        self.arrived = arrived
        self.tag: Optional[str] = None
        self._tags = tags
        self.transaction: Any = None
        self.answered = False
        self.refused = False

    @property
    def open(self) -> bool:
        """
        Whether an answer may still go out without a transaction.
        """
        return self.transaction is None and not self.answered and not self.refused

    def refusal_tag(self, status: int) -> Optional[str]:
        """
        The To tag for the application's refusal with C{status}, when that
        refusal would go without a transaction (one of
        L{STATELESS_REFUSALS}, the request still L{open}): the stateless
        tag, worked out once and stamped again by L{StatelessUAS.finish}.
        Else L{None}, and the application draws a tag of its own: a
        stateless tag on a transaction's answer would have its ACK dropped
        unread (L{raw_stateless_ack}).
        """
        if status not in STATELESS_REFUSALS or not self.open or self._tags is None:
            return None
        return self.stateless_tag()

    def stateless_tag(self) -> str:
        """
        The To tag of its stateless answer, worked out once by whoever asks
        first: the start of an OPTIONS, a refusal, L{StatelessUAS.finish}.

        @raise ValueError: for a pending request made without tags.
        """
        if self.tag is None:
            if self._tags is None:
                raise ValueError("a Pending made without tags has no stateless tag")
            self.tag = self._tags.tag_for(self.request)
        return self.tag


class RecentInvites:
    """
    The branches of the INVITEs answered statelessly in the last
    C{window} seconds, so that a CANCEL for one still gets 200 (section
    9.2: the INVITE was answered, the CANCEL changes nothing), as it did
    when the INVITE's transaction lived on for its ACK, rather than 481.
    A set of strings, not transactions: at most C{limit}, the oldest
    forgotten first.
    """

    def __init__(self, window: float = 5.0, limit: int = 65536) -> None:
        """
        @param window: seconds a branch is remembered (by default T4,
            how long a UDP INVITE transaction outlives its ACK).
        @param limit: the most branches remembered.
        """
        self.window = window
        self.limit = limit
        self._expiry: Dict[str, float] = {}
        self._order: Deque[Tuple[float, str]] = deque()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, branch: str, now: float) -> None:
        """
        Remember C{branch}, answered at C{now} (the clock never goes back).
        """
        order = self._order
        while order and (order[0][0] <= now or len(order) >= self.limit):
            self._drop_oldest()
        expiry = now + self.window
        self._expiry[branch] = expiry
        order.append((expiry, branch))

    def holds(self, branch: str, now: float) -> bool:
        """
        Whether C{branch} was answered statelessly within the window.
        """
        return self._expiry.get(branch, now) > now

    def _drop_oldest(self) -> None:
        at, branch = self._order.popleft()
        if self._expiry.get(branch) == at:  # not remembered again since
            del self._expiry[branch]


class StatelessUAS:
    """
    The stateless path's decisions for the server transactions of one
    L{TransactionLayer}: which requests start on it, which answers finish
    on it, and the ACKs and CANCELs that follow them.

    @ivar tags: the To tags of its answers.
    @ivar recent: the INVITEs it answered lately.
    """

    def __init__(self, layer: TransactionLayer, secret: Optional[bytes] = None) -> None:
        self.layer = layer
        self.tags = StatelessTags(secret)
        self.recent = RecentInvites(layer.t4)

    def start(self, request: Request, peer: Any, now: float) -> Optional[Pending]:
        """
        A L{Pending} for a new C{request} that may be answered without a
        transaction, or L{None}: not a L{candidate}, or the layer's
        business (a retransmission of a request it serves, a merged copy,
        or the cap reached, whose 503 must come before the application).

        @raise RemoteProtocolError: from the layer's admission check
            (overload), as for any new request.
        """
        if not candidate(request):
            return None
        layer = self.layer
        if layer.full() or layer.serving(request.top_via.branch or "") or layer.merged(request):
            return None
        if layer.admission is not None:
            layer.admission(request)
        # An OPTIONS's 2xx always goes without a transaction (allowed), so
        # its tag is chosen now and offered to the application, which then
        # need not draw a random one that finish would replace.
        pending = Pending(request, peer, now, self.tags)
        if request.method == "OPTIONS":
            pending.stateless_tag()
        return pending

    def finish(self, pending: Pending, response: Response, now: float) -> bool:
        """
        Whether C{response} goes to C{pending}'s request without a
        transaction (it is still L{Pending.open} and the answer is
        L{allowed}); if so it is given the stateless To tag.
        """
        request = pending.request
        if not pending.open or not (allowed(request, response) or self._stable(response, now)):
            return False
        # Stamped even when the application used the tag offered (as cheap
        # as checking): a refusal may carry a tag of its own.
        stamp(request, response, pending.stateless_tag())
        pending.answered = True
        if request.method == "INVITE":
            self.recent.add(request.top_via.branch or "", now)
        return True

    def _stable(self, response: Response, now: float) -> bool:
        """
        Whether C{response} is a refusal the application promises to give
        again (L{Response.stable_until}) for as long as its request may be
        retransmitted (Timer B, 64*T1, the longest of those windows), so
        that answering a retransmission afresh is answering it as its
        transaction would.  Never a challenge: a new nonce each time.
        """
        until = response.stable_until
        return (
            until is not None
            and response.code >= 300
            and response.code not in (401, 407)
            and until >= now + 64 * self.layer.t1
        )

    def drops(self, ack: Request) -> bool:
        """
        Whether C{ack}, parsed, is the ACK of a stateless answer (for
        those L{raw_stateless_ack} did not see: streams, unusual spelling).
        """
        return is_stateless_tag(ack.to.tag)

    def cancel_answer(self, cancel: Request, now: float) -> Optional[Response]:
        """
        The 200 for a CANCEL of an INVITE answered statelessly within
        L{RecentInvites.window}, with that answer's To tag, as its
        transaction would have answered (section 9.2); L{None} for any
        other CANCEL (the layer answers it).
        """
        branch = cancel.top_via.branch or ""
        if self.layer.serving(branch) or not self.recent.holds(branch, now):
            return None
        return make_response(cancel, 200, to_tag=self.tags.tag_for(cancel))


# How a stateless tag's parameter usually reads.
_TAG_MARK = b"=" + TAG_PREFIX.encode("ascii")
# The To header line (full or compact name) and its value.
_TO_LINE = re.compile(rb"\r\n(?:to|t)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_TAG_PARAM = re.compile(rb";[ \t]*tag[ \t]*=[ \t]*([^;, \t]*)", re.IGNORECASE)


def raw_stateless_ack(data: bytes) -> bool:
    """
    Whether datagram C{data} is the ACK of a stateless answer: a request
    line starting C{ACK }, and one To header line, unfolded, whose tag
    parameter (after the address) has the form of a stateless tag.  Such
    an ACK matches no transaction and no dialog of ours (see
    L{TAG_PREFIX}), so it can be dropped unparsed, as section 8.2.7 says
    a stateless UAS does.  L{False} for anything else, and for what is
    written unusually (the parser then reads it).
    """
    if not data.startswith(b"ACK ") or _TAG_MARK not in data:
        # Most ACKs of our 2xx answers: no stateless tag as usually written
        # (an unusual spelling is read by the parser, which drops it too).
        return False
    head = raw_head(data)
    if head is None:
        return False
    found = _TO_LINE.search(head)
    if found is None or _TO_LINE.search(head, found.end()) is not None:
        return False
    value = found.group(1)
    params = _TAG_PARAM.findall(value[value.rfind(b">") + 1 :])
    if len(params) != 1:
        return False
    return is_stateless_tag(params[0].decode("latin-1"))
