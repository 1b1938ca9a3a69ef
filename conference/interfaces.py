# -*- test-case-name: tests.test_interfaces -*-
"""
The seams of the server: every swappable part (stores, media, identity and
delegation policy) is named here as a zope interface, so a deployment can
plug in its own and every backend is held to one contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Sequence, Union

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from conference.app.core import RequestContext
    from conference.store.records import RegistrationBinding as Binding
    from conference.sip.message import Request, Response


class ISIPIdentity(Interface):
    """
    Who is asking: the avatar a twisted.cred portal returns after a SIP
    request authenticated (digest today; TLS client certificates and
    S/MIME signers later).  Application code uses this, never the From
    header, to decide what a request may do.
    """

    aor = Attribute("The caller's address of record as a string, C{sip:user@domain}.")
    username = Attribute("The user part that authenticated, as a string.")
    domain = Attribute("The realm / served domain it authenticated in.")
    mechanism = Attribute("How the identity was proven: C{'digest'}, C{'tls'} or C{'smime'}.")


class IDelegationPolicy(Interface):
    """
    Answers whether a calendar user approved a SENT-BY delegate (iSIP
    section 2.2.1).  The iTIP engine asks; the server answers from its
    bindings (a C{sent-by} binding, see the trust issue).
    """

    def is_delegate_approved(principal: str, delegate: str, now: float) -> bool:
        """
        Whether C{delegate} may act for C{principal} at time C{now}.

        @param principal: the calendar user address acted for, normalised
            (for example C{sip:alice@example.com} or C{mailto:...}).
        @param delegate: the address of who is acting.
        @param now: POSIX time.
        @return: L{True} only if an unexpired approval exists.
        """


class IRequestHandler(Interface):
    """
    Answers the requests of some methods on behalf of the server (the
    transaction user of RFC 3261).  The core checks syntax, scheme, domain,
    Require and authentication first, then hands the request here.
    """

    methods = Attribute("A collection of the method names (upper case) this handler answers.")
    accepts = Attribute(
        "A mapping of method name to the MIME types (C{type/subtype}) its "
        "bodies may have; a method absent here takes no body type check."
    )

    def handle_request(
        request: Request, context: RequestContext
    ) -> Union[Response, Deferred[Response]]:
        """
        Answer a request.

        @param request: a L{conference.sip.message.Request}.
        @param context: a L{conference.app.core.RequestContext} (peer,
            authenticated identity or L{None}, time, dialogs).
        @return: a L{conference.sip.message.Response}, or a Deferred that
            fires with one.  Exceptions of type
            L{conference.sip.errors.SIPProtocolError} become their status;
            anything else becomes 500 and is logged once.
        """

    def handle_ack(request: Request, context: RequestContext) -> None:
        """
        Take an ACK for a 2xx this handler sent (it has no response).
        """

    def handle_cancel(request: Request, context: RequestContext) -> None:
        """
        Learn that the INVITE C{request} was cancelled (487 already sent).
        """


class IRegistrationStore(Interface):
    """
    Where the registrar keeps the contacts of each address of record
    (RFC 3261 section 10.3).  Every method returns a Deferred so durable
    backends can do I/O; expiry is judged against the C{now} passed in.
    """

    def get_bindings(aor: str, now: float) -> Deferred[List[Binding]]:
        """
        The live bindings of C{aor}.

        @return: a Deferred firing with a list of
            L{conference.app.registrar.Binding}, most preferred (highest q)
            first; empty if none.
        """

    def set_bindings(
        aor: str, bindings: Sequence[Binding], removed: Sequence[str], now: float
    ) -> Deferred[List[Binding]]:
        """
        Atomically remove the contacts in C{removed} and add or replace
        C{bindings}, then drop whatever has expired by C{now}.

        @return: a Deferred firing with the live bindings afterwards, as
            L{get_bindings} would.
        """

    def purge(now: float) -> Deferred[int]:
        """
        Forget every binding expired by C{now}.

        @return: a Deferred firing with how many were removed.
        """


class IMediaSession(Interface):
    """
    The media of one participant in one conference, as the media service
    keeps it (ports, codecs); opaque to the focus.
    """

    participant = Attribute("The participant's identity or address, as a string.")
    conference = Attribute("The conference URI, as a string.")
    local_sdp = Attribute("The SDP this side last sent (bytes).")


class IMediaService(Interface):
    """
    The media seam of the focus: SDP offer in, answer and a media session
    out (RFC 3264).  The null service answers and drops the media; a mixer
    replaces it behind the same interface.
    """

    def answer(conference: str, participant: str, offer: bytes) -> Deferred[IMediaSession]:
        """
        Answer an SDP offer for a participant joining C{conference}.

        @return: a Deferred firing with the session, whose C{local_sdp} is
            the answer; it fails with
            L{conference.sip.errors.RemoteProtocolError} (488 Not Acceptable
            Here with a Warning) when no offered stream can be accepted, or
            400 when the SDP is malformed.
        """

    def offer(conference: str, participant: str) -> Deferred[IMediaSession]:
        """
        Make an offer for an INVITE that carried none (the answer then comes
        in the ACK, see L{complete}).
        """

    def complete(session: IMediaSession, answer: bytes) -> None:
        """
        Take the answer to an offer made by L{offer}.

        @raise conference.sip.errors.RemoteProtocolError: if it does not
            answer the offer (then the focus ends the call with BYE).
        """

    def update(session: IMediaSession, offer: bytes) -> Deferred[bytes]:
        """
        Answer a new offer within the session (re-INVITE, UPDATE).
        """

    def close(session: IMediaSession) -> None:
        """
        Release what the session holds (ports); idempotent.
        """
