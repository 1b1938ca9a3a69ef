# -*- test-case-name: tests.unit.test_overload_feedback -*-
"""
RFC 7339 overload feedback: while this server sheds new requests, a client
that asked for feedback (an C{oc} parameter in the top Via of its request)
learns from every response the share it should drop before sending, so
that refusals it would have drawn cost this server nothing.

The server's own shedding (L{conference.overload}) decides the share; this
module only reports it, in the loss-based algorithm's terms (RFC 7339
section 5.10: C{oc} is the percentage of new requests to drop).  Our
reading of the open points is in docs/limits.rst, "Overload".

Sans-I/O: L{OverloadFeedback} takes the current share and the time and
says what to advertise; L{with_feedback} rewrites a response's top Via.
"""

from __future__ import annotations

import math
from typing import List, NamedTuple, Optional

from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Response
from conference.sip.via import format_via, parse_via

__all__ = [
    "Advice",
    "OverloadFeedback",
    "advised_field",
    "asks_feedback",
    "with_feedback",
    "with_raw_feedback",
]

#: The only algorithm we speak, which every RFC 7339 client must support.
LOSS = "loss"
#: Parameters of ours a response's top Via replaces (any the client sent).
_OURS = frozenset({"oc", "oc-algo", "oc-validity", "oc-seq"})


class Advice(NamedTuple):
    """
    What to put in a response's top Via.

    @ivar percent: the share of new requests the client should drop, 0-100.
    @ivar validity_ms: how long the advice holds (0: stop dropping now).
    @ivar seq: the advice's sequence number (RFC 7339 C{oc-seq}): it grows
        whenever the advice changes, so a client ignores stale copies.
    """

    percent: int
    validity_ms: int
    seq: str

    def parameters(self) -> str:
        """The Via parameters, C{;oc=...;oc-algo="loss";...}, as written on the wire."""
        return (
            f';oc={self.percent};oc-algo="{LOSS}";oc-validity={self.validity_ms};oc-seq={self.seq}'
        )


class OverloadFeedback:
    """
    The advice to give now, from the share of new requests the server
    refuses.

    While the share is above zero the advice is that share, valid for
    C{validity} seconds (refreshed by every response, and changed, with a
    new sequence number, whenever the percentage changes).  When shedding
    stops, the advice becomes C{oc=0} with a validity of 0 (RFC 7339:
    stop reducing) for one more C{validity}, so clients that heard the
    last non-zero advice hear that it is over before it would have
    expired anyway; after that nothing is added, which is what a server
    that is not overloaded says.

    Sequence numbers are the wall clock in milliseconds (C{seconds.mmm},
    within the C{1*12DIGIT "." 1*5DIGIT} of the grammar), bumped by a
    millisecond when two changes fall in the same one, so they grow
    across restarts of the server too.
    """

    def __init__(self, validity: float = 0.5) -> None:
        """
        @param validity: seconds an advice holds; clients stop dropping
            when it passes without a fresh one.
        @raise ValueError: unless C{validity} is positive.
        """
        if validity <= 0:
            raise ValueError("the feedback validity must be positive")
        self.validity = validity
        self._percent = 0
        self._seq_ms = 0
        self._seq = ""
        self._stopped: Optional[float] = None

    def advice(self, share: float, now: float) -> Optional[Advice]:
        """
        The advice for a response sent at C{now} (wall-clock seconds) while
        the server refuses C{share} (0 to 1) of new requests, or L{None}
        when there is nothing to say (not overloaded, and the stop signal
        has been given long enough).
        """
        percent = min(100, max(0, math.ceil(share * 100 - 1e-9)))
        if percent != self._percent:
            if percent == 0:
                self._stopped = now
            self._percent = percent
            self._bump(now)
        if percent > 0:
            return Advice(percent, int(self.validity * 1000), self._seq)
        stopped = self._stopped
        if stopped is None or now - stopped > self.validity:
            return None
        return Advice(0, 0, self._seq)

    def _bump(self, now: float) -> None:
        """A new sequence number, later than every earlier one."""
        ms = max(int(now * 1000), self._seq_ms + 1)
        self._seq_ms = ms
        self._seq = f"{ms // 1000}.{ms % 1000:03d}"


def asks_feedback(field: str) -> bool:
    """
    Whether a Via field value I{may} carry an C{oc} parameter: a cheap
    test on the text, so responses to clients that never ask are not
    parsed again.  L{with_feedback} decides exactly.
    """
    return "oc" in field.lower()


def advised_field(field: str, advice: Advice) -> Optional[str]:
    """
    The Via field value C{field} with C{advice} in its first Via, when that
    Via carries C{oc}, the client's sign that it supports RFC 7339, and
    its C{oc-algo} list (default: loss) includes loss; else L{None}.

    @raise conference.sip.errors.RemoteProtocolError: for a Via that does
        not parse (the caller's message was parsed already, or the caller
        sends nothing different for it).
    """
    if not asks_feedback(field):
        return None
    vias = parse_via(field)
    params = vias[0].otherParams
    if "oc" not in params:
        return None
    offered = params.get("oc-algo")
    if offered is not None and LOSS not in {a.strip().lower() for a in offered.split(",")}:
        return None
    for name in _OURS:
        params.pop(name, None)
    written: List[str] = [format_via(vias[0]) + advice.parameters()]
    written += [format_via(via) for via in vias[1:]]
    return ", ".join(written)


def with_feedback(response: Response, advice: Advice) -> bool:
    """
    Put C{advice} in the top Via of C{response} (see L{advised_field}).

    @return: whether the response was changed.
    """
    fields = response.headers.get("via")
    if not fields:
        return False
    field = advised_field(fields[0], advice)
    if field is None:
        return False
    # In place, so Via stays the first header; its parsed views are
    # remembered with the old text and so are parsed again if asked for.
    response.headers["via"] = [field, *fields[1:]]
    return True


def with_raw_feedback(line: bytes, advice: Advice) -> Optional[bytes]:
    """
    The raw Via header line C{line} (C{Via: ...} as received, for a
    response made without parsing) with C{advice} in its first Via, or
    L{None} when that Via does not ask for it or does not parse.
    """
    name, _, value = line.partition(b":")
    try:
        field = advised_field(value.decode("utf-8").strip(), advice)
    except (UnicodeDecodeError, RemoteProtocolError):
        return None
    return None if field is None else name + b": " + field.encode("utf-8")
