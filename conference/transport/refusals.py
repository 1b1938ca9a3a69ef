# -*- test-case-name: tests.unit.transport.test_server -*-
"""
What the SIP server does before the transaction layer takes a request:
RFC 3581's received and rport in the top Via, and the refusals of what
cannot be parsed or accepted, of sources over their
rate limits and bodies over their caps, of new requests past the
transaction cap, and of the share overload shedding refuses (from the
raw lines, without parsing), with RFC 7339 feedback for clients that ask.

A mixin of L{conference.transport.server.SIPServer}, kept apart so that
module stays the glue of transports, transaction layer and application:
every path here ends in one stateless answer (or a drop) and a count.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Optional

from twisted.logger import Logger

from conference.limits import BodyLimits, RateLimiter
from conference.overload import (
    EXEMPT_METHODS,
    OVERLOADED_REASON,
    OverloadControl,
    ProportionalShedding,
)
from conference.overload_feedback import (
    OverloadFeedback,
    asks_feedback,
    with_feedback,
    with_raw_feedback,
)
from conference.sip import quick, stateless
from conference.sip import transaction as txn
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Message, Request, Response, error_response, make_response
from conference.sip.transaction_model import new_tag
from conference.sip.via import Via, format_via, parse_via, with_received

__all__ = ["Refusals"]

log = Logger()


class Refusals:
    """
    The refusing half of L{conference.transport.server.SIPServer}: what it
    needs of the server is declared here and provided there.
    """

    layer: txn.TransactionLayer
    stats: Dict[str, int]
    limiter: Optional[RateLimiter]
    body_limits: Optional[BodyLimits]
    overload: Optional[OverloadControl]
    queue: Optional[ProportionalShedding]
    feedback: Optional[OverloadFeedback]
    uas: stateless.StatelessUAS
    _shed_noted: float

    def now(self) -> float:
        raise NotImplementedError()

    def send(self, message: Message, peer: txn.Peer) -> None:
        raise NotImplementedError()

    def _send_bytes(self, data: bytes, peer: txn.Peer, host: str, port: int, what: Any) -> None:
        raise NotImplementedError()

    def _refuse_unparsed(self, data: bytes, peer: txn.Peer, waited: float = 0.0) -> bool:
        """
        Refuse a new request 503 from its raw lines (L{conference.sip.quick})
        when it falls in L{queue}'s refused share, and absorb the ACKs of
        such refusals; whether it was done.  Anything else (responses,
        requests in a dialog, exempt methods, possible retransmissions of
        a request being served, what the quick reader declines) is left to
        the full path.
        """
        control = self.overload
        if control is None:
            return False
        if data.startswith(b"ACK "):
            # Most are the ACKs of refusals: told from their To tag alone,
            # as the full path would (any other ACK takes it).
            return stateless.raw_stateless_ack(data)
        request = quick.peek(data)
        if request is None:
            return False
        if (
            request.method in EXEMPT_METHODS
            or request.to_tag is not None
            or self.layer.serving(request.branch)
        ):
            return False
        if self.queue is not None and not self.queue.refuse_next(waited):
            return False
        retry = control.refuse(request.method)
        self.stats["overloaded"] += 1
        feedback = self.feedback
        if feedback is not None and b"oc" in request.vias[0].lower():
            advice = feedback.advice(self._shed_share(), self.now())
            line = None if advice is None else with_raw_feedback(request.vias[0], advice)
            if line is not None:
                request = replace(request, vias=(line, *request.vias[1:]))
        data = quick.refusal(
            request,
            503,
            OVERLOADED_REASON,
            to_tag=self.uas.tags.tag(
                request.branch,
                request.lines[0].decode("latin-1"),
                request.lines[2].decode("latin-1"),
            ),
            headers=[("Retry-After", str(retry))],
        )
        self._send_bytes(data, peer, peer.host, quick.reply_port(request, peer.port), "503")
        return True

    def refuse(self, error: RemoteProtocolError, peer: txn.Peer) -> None:
        """
        Answer a request we cannot parse or accept, statelessly; drop a bad
        response.  Logged once, at info.
        """
        self.stats["refused"] += 1
        message = error.message
        log.info(
            "Refused message from {peer.host}:{peer.port}/{peer.transport}: {status} {reason}",
            peer=peer,
            status=error.status,
            reason=error.reason,
        )
        if not isinstance(message, Request) or message.method == "ACK":
            return
        try:
            self._fix_via(message, peer)
            response = error_response(message, error, new_tag())
            self.send(response, peer)
        except Exception:
            # Too broken to answer (no usable Via, To, ...): drop it.
            self.stats["dropped"] += 1

    # --- stateless answers (conference.sip.stateless) ---------------------

    # --- abuse limits -------------------------------------------

    def _over_limits(self, request: Request, peer: txn.Peer) -> bool:
        """
        Apply the per-source rate limit and the body caps before the
        transaction layer sees C{request}, so a refused request costs no
        transaction: answered 503 with Retry-After (logged at most once a
        minute per source), or 413 (raised, so refused like a bad request).
        """
        limiter = self.limiter
        if limiter is not None:
            retry = limiter.check_source(peer.host, request.method, self.now())
            if retry is not None:
                self.stats["limited"] += 1
                if limiter.should_log_source(peer.host, self.now()):
                    log.warn(
                        "Rate limiting {peer.host} ({peer.transport}): answering 503 "
                        "(Retry-After {retry}); further refusals of it not logged for a minute",
                        peer=peer,
                        retry=retry,
                    )
                if request.method != "ACK":
                    self.send(self._limited(request, retry), peer)
                return True
        if self.body_limits is not None and request.body:
            ctype = request.content_type
            self.body_limits.check(ctype.mime if ctype is not None else None, len(request.body))
        return False

    def _limited(self, request: Request, retry: int) -> Response:
        return make_response(
            request,
            503,
            "Service Unavailable (rate limited)",
            to_tag=new_tag(),
            headers=[("Retry-After", str(retry))],
        )

    def _shed(self, request: Any, error: txn.TransactionsExhausted, peer: txn.Peer) -> None:
        """
        Answer a request past the transaction cap statelessly:
        503 with Retry-After, counted in C{stats["shed"]}, logged at most
        once a minute.  Exempt sources are shed like any other.
        """
        self.stats["shed"] += 1
        now = self.now()
        if now - self._shed_noted >= 60.0:
            self._shed_noted = now
            log.warn(
                "{limit} transactions live: answering new requests 503 (Retry-After); "
                "further ones not logged for a minute",
                limit=error.limit,
            )
        self.send(error_response(request, error, new_tag()), peer)

    def _fix_via(self, request: Request, peer: txn.Peer) -> None:
        """
        Add received/rport to the top Via (RFC 3261 section 18.2.1, RFC 3581).
        """
        fields = request.headers.get("via")
        if not fields:
            return
        remembered: Optional[List[Via]] = None
        try:
            # Usually parsed (and remembered) by validation already.
            remembered = request.parsed_vias()
            top = remembered[0]
        except SIPProtocolError:
            # A message being refused may have a bad Via further down: only
            # the first field matters here.
            top = parse_via(fields[0])[0]
        if not top.rportRequested and top.host.strip("[]") == peer.host:
            return
        if len(fields) == 1 and remembered is not None:
            # The usual case: one Via field.  Change a copy of the top Via,
            # never the remembered one, and remember the new list with the
            # new text, so that it is not parsed again.
            vias = [top.copy(), *remembered[1:]]
        else:
            vias = parse_via(fields[0])  # a fresh parse, of this field alone
        top = vias[0]
        rport = peer.port if top.rportRequested else None
        if rport is not None:
            top.rport = rport
        top.received = peer.host
        # The field as written with the two parameters put in, when it is
        # that plain (one Via value); else written out again.
        edited = with_received(fields[0], peer.host, rport) if len(vias) == 1 else None
        fields[0] = edited if edited is not None else ", ".join(format_via(v) for v in vias)
        if len(fields) == 1:
            request.remember_list_view("via", vias)

    def _add_feedback(self, response: Response) -> None:
        """
        Tell the client of C{response}, if it asked (RFC 7339), what share
        of new requests to drop: the share the queue signal refuses, or
        all of them while the lag signal sheds.
        """
        feedback = self.feedback
        assert feedback is not None
        vias = response.headers.get("via")
        if not vias or not asks_feedback(vias[0]):
            return  # the client never asked: nothing to work out
        advice = feedback.advice(self._shed_share(), self.now())
        if advice is not None:
            with_feedback(response, advice)

    def _shed_share(self) -> float:
        """The share of new requests refused now (all while the lag sheds)."""
        overload = self.overload
        if overload is not None and overload.overloaded:
            return 1.0
        queue = self.queue
        return queue.fraction if queue is not None else 0.0
