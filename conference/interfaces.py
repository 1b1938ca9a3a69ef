# -*- test-case-name: tests.test_interfaces -*-
"""
The seams of the server: every swappable part (stores, media, identity and
delegation policy, request handlers and the router the transport feeds) is
named here as a zope interface, so a deployment can plug in its own and
every backend is held to one contract.  L{RequestContext}, what the
transport tells a handler besides the request, is here for the same
reason: the layers on both sides of the seam use it and import neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from conference.records import RegistrationBinding as Binding
    from conference.sip.message import Request, Response
    from conference.sip.transaction_model import Peer


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


class IAccounts(Interface):
    """
    Which users this server has accounts for (the users the C{--auth}
    credential checkers know), so that a user's address is never taken
    for something else, such as a conference (docs/scheduling.rst).
    """

    def is_account(address: str) -> Optional[bool]:
        """
        Whether the address of record C{address} (C{sip:user@domain} of a
        served domain, normalised) is an account's.

        @return: L{True} if it is, L{False} if it is known not to be,
            L{None} when that cannot be told (a checker that cannot be
            asked, or identities that come from elsewhere, such as TLS
            client certificates).
        """


@dataclass
class RequestContext:
    """
    What a handler may know about a request besides the request itself.

    @ivar peer: where it came from (transport, address, connection).
    @ivar identity: the authenticated caller, or L{None} when the request
        did not need authentication; never derived from From.
    @ivar now: POSIX time at which it was received.
    @ivar transaction: the server transaction (opaque to handlers, used to
        send provisional responses through L{send_provisional}).
    @ivar to_tag: the To tag the layer below chose for the final answer
        (the stateless path's, for an OPTIONS: its 2xx never needs a
        transaction), or L{None}: the handler chooses.  A handler that
        answers with it spares the layer tagging the answer again.
    @ivar refusal_tag: given a refusal's status, the To tag the layer below
        gives that refusal when it would send it without a transaction
        (L{conference.sip.stateless.Pending.refusal_tag}), else L{None};
        a handler or the core drawing a tag for a refusal asks it first.
        L{None} when the request is not on the stateless path.
    """

    peer: Peer
    now: float
    identity: Optional[ISIPIdentity] = None
    transaction: Any = None
    send_provisional: Optional[Callable[[Response], None]] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    to_tag: Optional[str] = None
    refusal_tag: Optional[Callable[[int], Optional[str]]] = None


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
        @param context: a L{RequestContext} (peer,
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

    def handle_timeout(request: Request) -> None:
        """
        Learn that the final response to the INVITE C{request} was never
        acknowledged (RFC 3261 Timer H, RFC 6026 Timer L): end what it set
        up.  Only the handler of INVITE is told; others do nothing.
        """


class IRouter(Interface):
    """
    What the transport glue (L{conference.transport.server.SIPServer})
    needs of the UAS core (L{conference.app.core.CoreRouter}): answers to
    requests, and the handlers to tell about ACKs, CANCELs and timeouts.
    """

    def dispatch(request: Request, context: RequestContext) -> Union[Response, Deferred[Response]]:
        """
        Check C{request} and produce its answer, never raising for a bad
        request (protocol errors become their responses).
        """

    def handler_for(method: str) -> Optional[IRequestHandler]:
        """
        The handler registered for C{method} (upper case), if any.
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
    last_activity = Attribute(
        "When media last arrived (reactor seconds; until then, when media was"
        " first expected): the focus's inactivity timeout counts from it."
    )
    expects_media = Attribute(
        "Whether media is expected from the participant now (a bool): not while"
        " an offer awaits its answer, nor while the participant holds (we do not"
        " receive, or its address is 0.0.0.0); no inactivity timeout runs then."
    )


class IMediaService(Interface):
    """
    The media seam of the focus: SDP offer in, answer and a media session
    out (RFC 3264).  The null service answers and drops the media; a mixer
    replaces it behind the same interface.
    """

    capacity = Attribute("How many sessions it can hold at once (an int).")

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

    def touch(session: IMediaSession) -> None:
        """
        Note that media arrived for the session now (sets its
        C{last_activity}); the media plane calls this for each packet it
        accepts, so it must be cheap.
        """

    def warn(session: IMediaSession, ends_at: float) -> None:
        """
        Warn the participant that the conference ends at C{ends_at} (POSIX
        seconds): the mixer plays a short tone into what they hear; a
        service without audio (the null one) does nothing.  Never raises
        for a closed session.
        """


# Stores of the focus (conferences, calendars) and of BIND ------------------

if TYPE_CHECKING:
    from typing import Collection, FrozenSet, Mapping, Tuple

    from conference.records import BindingRecord, CalendarEntry, ConferenceRecord, Holders


class IConferenceStore(Interface):
    """
    Where scheduled conferences live, keyed by their URI and, uniquely, by
    the UID of their VEVENT.  Writes use optimistic concurrency: every
    stored record carries a C{version} the store bumps on each write.
    Every method returns a Deferred; failures are
    L{conference.records.StoreError} subclasses.
    """

    def get(uri: str) -> Deferred[Optional[ConferenceRecord]]:
        """
        The conference stored under C{uri}.

        @return: a Deferred firing with the L{ConferenceRecord}, or L{None}
            if there is none.
        """

    def get_by_uid(uid: str) -> Deferred[Optional[ConferenceRecord]]:
        """
        The conference whose VEVENT has the UID C{uid}.

        @return: a Deferred firing with the record or L{None}.
        """

    def put(
        record: ConferenceRecord,
        expected_version: Optional[int],
        *,
        max_per_organizer: Optional[int] = None,
        max_organizer_bytes: Optional[int] = None,
        holders: Optional[Holders] = None,
    ) -> Deferred[ConferenceRecord]:
        """
        Create or replace the conference C{record.uri}; C{record.version} is
        ignored.  Everything happens in one transaction: all or nothing.

        @param expected_version: C{0} to create only (the URI must be new);
            a positive number to replace only the record at exactly that
            version; L{None} to create or replace whatever is there.
        @param max_per_organizer: when given, refuse to make
            C{record.organizer} own more than this many stored conferences
            (only a new record, or one changing organizer, is counted).
        @param max_organizer_bytes: when given, refuse a write that leaves
            C{record.organizer} storing more than this many bytes (the
            calendars of the conferences they organize plus those of their
            own calendar entries, see L{ICalendarStore.put_entries}) and
            more than before.
        @param holders: when given, the conference's calendar entries
            become exactly these (see L{set_holders}), in the same
            transaction.
        @return: a Deferred firing with the stored copy, whose C{version}
            is the previous version plus one (1 for a new record).
        @raise conference.records.ConflictError: (as a failure) if
            C{expected_version} does not match what is stored, or another
            conference already has C{record.uid}.  Nothing is changed.
        @raise conference.records.LimitExceededError: (as a failure)
            if C{max_per_organizer} or C{max_organizer_bytes} would be
            exceeded.  Nothing is changed.
        """

    def set_holders(uri: str, expected_version: int, holders: Holders, now: float) -> Deferred[int]:
        """
        Make the calendar entries that refer to the conference C{uri}
        exactly C{holders}: for each UID, one entry (source C{conference},
        C{conference} C{uri}, no calendar of its own) per address; other
        entries referring to C{uri} are removed.  An address's entry of
        that UID that does not refer to a conference (its own published
        object) is left alone.  Idempotent: holders already right cost no
        write.  Deleting the conference removes its entries.

        @param expected_version: the version C{uri} must be at.
        @param now: the C{updated} time of entries added.
        @return: a Deferred firing with how many entries were added or
            removed.
        @raise conference.records.ConflictError: (as a failure) if
            C{uri} is not stored at C{expected_version}; nothing changed.
        """

    def list(
        organizer: Optional[str] = None, state: Optional[str] = None
    ) -> Deferred[List[ConferenceRecord]]:
        """
        The stored conferences, optionally only those of one organizer
        and/or in one state.

        @return: a Deferred firing with a list ordered by URI.
        """

    def count_by_organizer(organizer: str) -> Deferred[int]:
        """
        How many conferences (of any state) C{organizer} has stored.

        @return: a Deferred firing with the count.
        """

    def delete(uri: str) -> Deferred[bool]:
        """
        Forget the conference C{uri}.

        @return: a Deferred firing with whether there was one.
        """


class ICalendarStore(Interface):
    """
    The calendar objects of users (accepted conferences, published busy
    time) from which their free/busy is computed, keyed by owner and UID.
    Every method returns a Deferred.
    """

    def entries(owner: str) -> Deferred[List[CalendarEntry]]:
        """
        All entries of C{owner}; those referring to a conference carry
        the conference's current calendar (see L{CalendarEntry}).

        @return: a Deferred firing with a list ordered by UID (empty if
            none).
        """

    def put_entry(entry: CalendarEntry) -> Deferred[None]:
        """
        Store C{entry} (its own copy: C{entry.conference} is ignored),
        replacing any entry with the same owner and UID.

        @return: a Deferred firing with L{None} once it is stored.
        """

    def put_entries(
        owner: str,
        entries: Sequence[CalendarEntry],
        *,
        max_organizer_bytes: Optional[int] = None,
    ) -> Deferred[None]:
        """
        L{put_entry} for several entries of C{owner}, in one transaction.

        @param max_organizer_bytes: when given, refuse to leave C{owner}
            storing more than this many bytes and more than before (as
            L{IConferenceStore.put} counts them).
        @raise conference.records.LimitExceededError: (as a failure)
            if so; nothing changed.
        @raise conference.records.StoreError: (as a failure) if an
            entry names another owner; nothing changed.
        """

    def remove_entry(owner: str, uid: str) -> Deferred[bool]:
        """
        Forget the entry C{uid} of C{owner}.

        @return: a Deferred firing with whether there was one.
        """


class IBindingStore(Interface):
    """
    The BIND bindings of owners (draft-schulzrinne-sip-bind-00), keyed by
    owner, disposition and URI, and the dispositions each owner accepts.
    Expiry is judged against the C{now} passed in: a binding is live while
    C{expires_at > now}.  Every method returns a Deferred; failures are
    L{conference.records.StoreError} subclasses.
    """

    def bindings(
        owner: str, now: float, dispositions: Optional[Collection[str]] = None
    ) -> Deferred[List[BindingRecord]]:
        """
        The live bindings of C{owner}, optionally only those whose
        disposition is in C{dispositions}.

        @return: a Deferred firing with a list ordered by disposition then
            URI (empty if none).  One-time bindings are included; hand them
            out only after L{take_one_time} succeeds.
        """

    def apply(
        owner: str,
        removals: Sequence[Tuple[str, Optional[str]]],
        upserts: Sequence[BindingRecord],
        now: float,
        *,
        max_bindings: int,
        expected_etags: Optional[Mapping[Tuple[str, str], str]] = None,
    ) -> Deferred[List[BindingRecord]]:
        """
        Atomically (one transaction, all or nothing) update the bindings of
        C{owner}: drop its expired bindings, apply C{removals}, then add or
        replace C{upserts} (keyed by disposition and URI).

        @param removals: C{(disposition, uri)} pairs; C{uri} L{None} removes
            every binding of that disposition.  Removing what is absent is
            not an error.
        @param upserts: records whose C{owner} must be C{owner}.
        @param max_bindings: the most live bindings the owner may have
            afterwards; an update that leaves the owner over the limit and
            with more bindings than before is refused.
        @param expected_etags: C{(disposition, uri) -> etag}: each of these
            bindings must be live with that etag, else the update is
            refused.
        @return: a Deferred firing with the live bindings afterwards, as
            L{bindings} would return them.
        @raise conference.records.LimitExceededError: (as a failure)
            if C{max_bindings} would be exceeded; nothing changed.
        @raise conference.records.ConflictError: (as a failure) if an
            expected etag does not match; nothing changed.
        @raise conference.records.StoreError: (as a failure) if an
            upsert names another owner; nothing changed.
        """

    def take_one_time(
        owner: str, disposition: str, uri: str, now: Optional[float] = None
    ) -> Deferred[bool]:
        """
        Consume the one-time binding C{(disposition, uri)} of C{owner}:
        exactly one caller ever gets L{True} for it, even when several
        servers race.

        @param now: when given, an expired binding is not taken.
        @return: a Deferred firing with whether this caller took it (L{False}
            if it is absent, already taken, expired or not one-time).
        """

    def purge(now: float) -> Deferred[int]:
        """
        Forget every binding expired by C{now}, of every owner.

        @return: a Deferred firing with how many were removed.
        """

    def owner_dispositions(owner: str) -> Deferred[Optional[FrozenSet[str]]]:
        """
        The dispositions C{owner} accepts.

        @return: a Deferred firing with the set, or L{None} when the owner
            has no setting of its own (the server default applies).
        """

    def set_owner_dispositions(
        owner: str, dispositions: Optional[Collection[str]]
    ) -> Deferred[None]:
        """
        Set (or, with L{None}, clear) the dispositions C{owner} accepts.

        @return: a Deferred firing with L{None} once stored.
        """


class IChangeFeed(Interface):
    """
    Changes committed by the other server processes sharing one store, so
    that a node can notify the subscriptions it holds when another node
    changed what they watch (a BIND on node A, a SUBSCRIBE held by node
    B).  A process never hears its own changes here: it tells its own
    subscribers directly.
    """

    def watch(callback: Callable[[str, str], None]) -> None:
        """
        Call C{callback(kind, key)} in the reactor thread for each change
        another process commits: C{("binding", owner URI)}, C{("dispositions",
        owner URI)} (its accepted dispositions, not its bindings); or C{("*", "")}
        when changes may have been missed (the feed reconnected), which
        means: consider everything changed.  A callback that raises is
        logged and the others still run.
        """

    def start() -> Deferred[None]:
        """
        Begin listening.

        @return: a Deferred firing once changes committed from now on will
            be reported, or failing with L{conference.records.StoreError}
            when the feed cannot be reached.
        """

    def stop() -> Deferred[None]:
        """
        Stop listening and release what the feed holds (idempotent).

        @return: a Deferred firing with L{None} when done.
        """


class IJanusTransport(Interface):
    """
    How the Janus media backend reaches Janus's API: JSON over HTTP in
    production, an in-memory fake in tests.  Paths are relative to the
    API's base URL (C{""}, C{"/<session>"}, C{"/<session>/<handle>"}).
    """

    def post(path: str, body: Dict[str, Any]) -> Deferred[Any]:
        """
        Send C{body} as JSON.

        @return: a Deferred firing with the decoded JSON reply; failing
            (connection refused, HTTP status other than 200, a reply that
            is not JSON) with the transport's error.  Cancelling it gives
            the request up.
        """

    def get(path: str) -> Deferred[Any]:
        """
        Long-poll C{path} for events.

        @return: a Deferred as for L{post}.
        """
