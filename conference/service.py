# -*- test-case-name: tests.unit.test_service -*-
"""
The conference server as one Twisted service.

L{ConferenceService} is what C{twistd conference} runs and what any Twisted
application adds to its own service tree: it owns the SIP core, its
transports and the stores, starts them in order and stops them gracefully.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from twisted.application.service import MultiService, Service
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet.defer import Deferred, FirstError, fail, gatherResults, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import LoopingCall
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
    jsonFileLogObserver,
)
from twisted.python.failure import Failure

from conference.app.bookings import DEFAULT_MAX_ATTENDEES, DEFAULT_MAX_ORGANIZER_BYTES
from conference.app.core import CoreRouter
from conference.app.registrar import Registrar
from conference.app.trust import TrustSettings, load_trust_settings
from conference.auth import Authenticator, AuthPolicy, CheckerAccounts, make_portal, reloading
from conference.errors import StartupError
from conference.interfaces import ISIPIdentity
from conference.limits import DEFAULT_BODY_LIMITS, DEFAULT_EXEMPT, BodyLimits, Rate, RateLimiter
from conference.logbuffer import Batches, batch_text_observers
from conference.logtext import speed_up_text_observers
from conference.overload import OverloadControl, ProportionalShedding
from conference.overload_feedback import OverloadFeedback
from conference.reactors import default_reactor
from conference.records import StoreError
from conference.runtime import compile_clock, tune_gc, tune_jit, watch_collector
from conference.sip.digest import DEFAULT_ALGORITHMS, DigestServer
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request
from conference.sip.transaction_model import new_branch, new_tag
from conference.store import Stores, open_stores
from conference.store.cache import cache_bindings
from conference.store.conferencecache import CachedConferenceStore
from conference.store.timing import StoreLatency, time_stores
from conference.transport.lag import LagProbe
from conference.transport.listening import (
    ListenerService,
    StreamListenerService,
    build_endpoint,
    endpoint_interfaces,
)
from conference.transport.server import SIPServer
from conference.transport.stream import SIPStreamFactory
from conference.transport.udp import UDPListenerService, parse_udp_description

if TYPE_CHECKING:
    from conference.app.janus import JanusMediaService
    from conference.app.media import NullMediaService

log = Logger()

DEFAULT_LISTEN = ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1")


@dataclass
class ServerConfig:
    """
    Everything C{twistd conference} options can set; see docs/options.
    """

    listen: List[str] = field(default_factory=lambda: list(DEFAULT_LISTEN))
    domains: List[str] = field(default_factory=list)
    store: str = "sqlite:conference.sqlite"
    checkers: List[ICredentialsChecker] = field(default_factory=list)
    log_format: str = "text"
    # Events below this level are not written (twistd's text log and the
    # JSON lines); None leaves an embedding application's logging as is.
    log_level: Optional[str] = None
    # twistd's text log is written in batches at most this many seconds
    # apart (warnings and worse at once); 0 (the default) writes every
    # line as it comes, so that whoever reads the log sees it at once.
    log_flush: float = 0.0
    max_message_size: int = 65536
    max_connections: int = 1024
    idle_timeout: float = 300.0
    stop_timeout: float = 5.0
    auth_invite: bool = False
    nonce_lifetime: float = 300.0
    # MD5 alone: some clients abort on any SHA-256 challenge (docs/auth.rst).
    digest_algorithms: List[str] = field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    # BIND (docs/bind.rst): accepted dispositions (None: the documented
    # default set; ["*"]: any), server admins, limits.
    binding_dispositions: Optional[List[str]] = None
    admins: List[str] = field(default_factory=list)
    max_bindings: int = 32
    max_binding_data: int = 8192
    # Most conferences one organizer may have scheduled (None: no cap).
    max_conferences_per_organizer: Optional[int] = 100
    # Most attendees per event, most bytes one organizer stores (None: no
    # cap; docs/scheduling.rst).
    max_attendees: Optional[int] = DEFAULT_MAX_ATTENDEES
    max_organizer_bytes: Optional[int] = DEFAULT_MAX_ORGANIZER_BYTES
    # The focus (docs/focus.rst).
    media_address: str = "127.0.0.1"
    rtp_ports: Tuple[int, int] = (20000, 29999)
    # The media service (docs/media.rst): "builtin" mixes, "null" drops,
    # "janus:URL" uses Janus AudioBridge rooms.
    media: str = "builtin"
    # SDES-SRTP (docs/media.rst): "optional" (SRTP when offered), "required"
    # (plain RTP refused) or "off" (SAVP refused); the builtin and null
    # services only (Janus rooms carry plain RTP).
    srtp: str = "optional"
    max_participants: int = 100
    early_join: float = 600.0
    # Abuse limits and TLS (docs/limits.rst): None turns a rate
    # limit off; burst replaces both buckets' sizes when set.
    rate_limit: Optional[Rate] = field(default_factory=lambda: Rate(200, 10))
    identity_rate_limit: Optional[Rate] = field(default_factory=lambda: Rate(120, 60))
    burst: Optional[float] = None
    rate_limit_exempt: List[str] = field(default_factory=lambda: list(DEFAULT_EXEMPT))
    body_limits: Dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BODY_LIMITS))
    tls_ca: Optional[str] = None
    tls_client_cert: str = "optional"
    # Exhaustion (docs/limits.rst): None turns a cap or timeout off.
    max_connections_per_source: Optional[int] = 64
    message_timeout: float = 10.0
    handshake_timeout: float = 10.0
    max_transactions: Optional[int] = 100_000
    # Overload (docs/limits.rst): the smoothed event-loop lag, in seconds,
    # past which new requests are answered 503; None: never shed.
    overload_lag: Optional[float] = 0.1
    # ... and the mean wait in the UDP socket's queue the proportional
    # shedding (conference.overload.ProportionalShedding) holds it at, by
    # refusing a share of new requests before parsing; None: not used.
    overload_queue: Optional[float] = 0.02
    max_media_per_source: Optional[int] = 32
    max_media_per_caller: Optional[int] = 4
    media_reserve_percent: float = 20.0
    media_timeout: Optional[float] = 60.0
    # S/MIME (docs/trust.rst): PEM files, the key's password, and
    # whether unsigned iTIP is refused.
    smime_ca: Optional[str] = None
    smime_cert: Optional[str] = None
    smime_key: Optional[str] = None
    smime_key_password: Optional[str] = None
    require_signature: bool = False
    # The HTTP endpoint (docs/operations.rst): a stream server endpoint
    # description, or None for none; whether /metrics needs no login.
    http: Optional[str] = None
    metrics_public: bool = False
    # Outbound requests (docs/federation.rst): the DNS server (host, port),
    # None for the system's; the CAs outbound TLS servers must chain to,
    # None for the platform's.
    resolver: Optional[Tuple[str, int]] = None
    tls_peer_ca: Optional[str] = None
    outbound_keepalive: Optional[float] = None
    # CalDAV free/busy (docs/caldav.rst): the URL template ({user}), the
    # HTTP Basic (user, password), and how long to wait for it.
    freebusy_source: Optional[str] = None
    freebusy_credentials: Optional[Tuple[str, str]] = None
    freebusy_timeout: float = 2.0
    freebusy_write: bool = False
    # Whether the server may tune this process's garbage collector once it
    # is serving (see tune_gc); on for twistd, off for embedding.
    tune_gc: bool = False
    # PyPy's JIT parameters, set once the server is serving
    # (conference.runtime.tune_jit); empty (embedding's default) leaves the
    # JIT as the interpreter was started.  twistd's --pypy-jit.
    pypy_jit: str = ""
    # The cluster's front end (docs/deployment.rst), a SIP URI: automatic
    # dial-out is handed to the node it routes the conference to.
    front_end: Optional[str] = None


def listen_hosts(descriptions: Sequence[str]) -> List[str]:
    """
    The interface addresses named in listen descriptions, plus loopback
    names: requests addressed to them are addressed to us.
    """
    hosts = ["localhost", "127.0.0.1", "::1"]
    for description in descriptions:
        hosts.extend(endpoint_interfaces(description))
    return hosts


def limiter_from_config(config: ServerConfig) -> RateLimiter:
    """
    The rate limiter C{config} describes (see docs/limits.rst).
    """
    source = config.rate_limit.with_burst(config.burst) if config.rate_limit else None
    identity = (
        config.identity_rate_limit.with_burst(config.burst) if config.identity_rate_limit else None
    )
    return RateLimiter(source, identity, exempt=config.rate_limit_exempt)


def trust_from_config(config: ServerConfig) -> TrustSettings:
    """
    The S/MIME settings C{config} names, files read now (docs/trust.rst).

    @raise conference.smime.SMIMEConfigError: naming the option, the file
        and the fault.
    """
    settings = load_trust_settings(
        config.smime_ca,
        config.smime_cert,
        config.smime_key,
        config.smime_key_password,
        require_signature=config.require_signature,
    )
    creds = settings.credentials
    if creds is not None and not creds.valid_at(time.time()):
        log.warn("The --smime-cert certificate is not valid now; peers will refuse its signatures")
    return settings


def _first_error(failure: Failure) -> Failure:
    """
    The failure inside a L{gatherResults} failure.
    """
    failure.trap(FirstError)
    first: Failure = failure.value.subFailure  # type: ignore[union-attr]
    return first


class ConferenceService(MultiService):
    """
    The whole server: SIP core, transports, stores.

    @ivar sip: the L{SIPServer} (transaction layer and dispatch).
    @ivar router: the UAS core, where applications register handlers.
    """

    def __init__(
        self, config: ServerConfig, reactor: Any = None, stores: Optional[Stores] = None
    ) -> None:
        """
        @param stores: stores to use instead of opening C{config.store}
            (an embedding application may share its own); they are then
            the caller's to close.
        """
        super().__init__()
        reactor = self._reactor = default_reactor(reactor)
        self.config = config
        hosts = listen_hosts(config.listen)
        domains = config.domains or ["localhost"]
        self.router = CoreRouter(domains, hosts, tag_factory=new_tag, accept_ip_literals=True)
        # A password file is read when it changes, not at every login.
        checkers = reloading(config.checkers, clock=reactor)
        self.authenticator = Authenticator(
            make_portal(checkers),
            DigestServer(lifetime=config.nonce_lifetime, algorithms=config.digest_algorithms),
            AuthPolicy(invite=config.auth_invite),
        )
        client_identities = bool(config.tls_ca) and config.tls_client_cert != "none"
        # Who has an account: their addresses never become conferences.
        self.accounts = CheckerAccounts(checkers, complete=not client_identities)
        self.limiter = limiter_from_config(config)
        self.trust = trust_from_config(config)
        from conference.app.federation import Federation

        # docs/federation.rst: signed organizers of other domains, with a CA.
        self.federation = (
            Federation(
                self.trust,
                domain_of=self.router.domain_of,
                limiter=self.limiter if self.limiter.active else None,
            )
            if self.trust.trust is not None
            else None
        )
        self.sip = SIPServer(
            self.router,
            reactor=reactor,
            authenticate=self.authenticate,
            max_message_size=config.max_message_size,
            limiter=self.limiter if self.limiter.active else None,
            body_limits=BodyLimits(config.body_limits) if config.body_limits else None,
            max_transactions=config.max_transactions,
        )
        self.overload: Optional[OverloadControl] = None
        self.lag_probe: Optional[LagProbe] = None
        self._unwatch_collector: Optional[Callable[[], None]] = None
        self._log_batches: Optional[Batches] = None
        if config.overload_lag:
            self.overload = OverloadControl(config.overload_lag)
            self.sip.layer.admission = self.overload.check
            self.lag_probe = LagProbe(self.overload, reactor=reactor)
            self.sip.overload = self.overload
            self.sip.feedback = OverloadFeedback()
            if config.overload_queue:
                self.sip.queue = ProportionalShedding(
                    config.overload_queue, compiling=compile_clock()
                )
                self.lag_probe.queue = self.sip.queue
        self.stream_factory = SIPStreamFactory(
            self.sip,
            reactor,
            max_connections=config.max_connections,
            idle_timeout=config.idle_timeout,
            client_identities=client_identities,
            max_per_source=config.max_connections_per_source,
            message_timeout=config.message_timeout,
            handshake_timeout=config.handshake_timeout,
        )
        from conference.app.outbound import udp_endpoint_of
        from conference.transport.outbound import build_outbound

        self.outbound = build_outbound(
            self.sip,
            self.stream_factory,
            reactor,
            resolver=config.resolver,
            tls_peer_ca=config.tls_peer_ca,
            udp=udp_endpoint_of(self),
            ports=lambda: self.udp_ports + self.stream_ports,
            keepalive=config.outbound_keepalive,
        )
        self.stores: Optional[Stores] = stores
        self.conference_cache: Optional[CachedConferenceStore] = None
        self._own_stores = stores is None
        #: Store call durations for /metrics (L{conference.store.timing}).
        self.store_latency = StoreLatency()
        self.ready: Deferred[None] = Deferred()
        for description in config.listen:
            self._add_listener(description)
        if config.http:
            from conference.web import http_listener

            http_listener(
                self,
                config.http,
                portal=self.authenticator.portal,
                domains=domains,
                admins=config.admins,
                reactor=reactor,
                metrics_public=config.metrics_public,
            ).setServiceParent(self)
        self._purge = LoopingCall(self._purge_expired)
        self._purge.clock = reactor

    def _applications(self, stores: Stores) -> None:
        """
        Build the request handlers over C{stores}.
        """
        from conference.app.bind import BindHandler, OwnerResolver
        from conference.app.notifier import EventRouter
        from conference.app.subscriptions import BindingSubscriptions
        from conference.bindings.logic import DEFAULT_DISPOSITIONS, BindingPolicy

        config = self.config
        dispositions = config.binding_dispositions
        policy = BindingPolicy(
            dispositions=(
                DEFAULT_DISPOSITIONS
                if dispositions is None
                else None
                if "*" in dispositions
                else frozenset(d.lower() for d in dispositions)
            ),
            max_bindings=config.max_bindings,
            max_data_size=config.max_binding_data,
        )
        self.owners = owners = OwnerResolver(
            stores.conferences, self.router.domain_of, self.accounts, seconds=self._reactor.seconds
        )
        self.binder = BindHandler(
            stores.bindings,
            owners,
            policy=policy,
            admins=config.admins,
            challenge=self.challenge,
            tag_factory=new_tag,
        )
        self.subscriptions = BindingSubscriptions(
            stores.bindings,
            owners,
            self.sip,
            self._reactor,
            admins=config.admins,
            challenge=self.challenge,
            tag_factory=new_tag,
        )
        self.binder.listeners.append(self.subscriptions.changed)
        # Changes other nodes commit to a shared store (docs/deployment.rst).
        stores.changes.watch(self._changed_elsewhere)
        # NOTIFYs go to the dialog's next hop by RFC 3263 (docs/federation.rst).
        self.subscriptions.route = self.outbound
        self.registrar = Registrar(
            stores.registrations,
            tag_factory=new_tag,
            domain_of=self.router.domain_of,
            bindings=self.binder.register_hook,
        )
        self.router.add_handler(self.registrar)
        self.router.add_handler(self.binder)
        self.events = EventRouter()
        self.events.add("binding", self.subscriptions)
        self.router.add_handler(self.events)
        self.router.options_hooks.append(self.binder.options_hook)
        self._install_focus(stores)
        self._install_control()
        from conference.app.outbound import udp_endpoint_of
        from conference.app.scheduler import install_scheduler

        if config.freebusy_write and getattr(self, "caldav", None) is not None:
            from conference.app.caldav import CalDAVMirror

            # docs/caldav.rst: organizers' conferences go to CalDAV too.
            router = self.router
            mirror = CalDAVMirror(
                stores.conferences,
                self.caldav,
                local=lambda aor: router.domain_of(aor.partition("@")[2]) is not None,
            )
            stores = Stores(
                mirror,
                stores.calendars,
                stores.registrations,
                stores.bindings,
                description=stores.description,
            )
        self.scheduler = install_scheduler(
            self.router,
            self.sip,
            stores,
            reactor=self._reactor,
            endpoint=udp_endpoint_of(self),
            route=self.outbound,
            federation=self.federation,
            max_per_organizer=config.max_conferences_per_organizer,
            trust=self.trust,
            accounts=self.accounts,
            listeners=[self.subscriptions.changed],
            max_attendees=config.max_attendees,
            max_organizer_bytes=config.max_organizer_bytes,
        )
        caldav = getattr(self, "caldav", None)
        if caldav is not None:
            # A room with a CalDAV calendar is not booked over it.
            self.scheduler.external_busy = caldav.busy
            self.scheduler.external_window = caldav.window
        owners = self.owners
        self.scheduler.applied.extend(
            [
                # Owner lookups reused for queries follow the record at once.
                lambda uri: owners.forget(),
                self.control.changed,
                self.lifecycle.changed,
                self.conference_events.changed,
                self.autodial.changed,
            ]
        )

    def _install_focus(self, stores: Stores) -> None:
        """
        The conference focus (INVITE, UPDATE, BYE) with the media service
        C{--media} names, and the admission policy that shares its capacity
        out and ends the calls whose media went quiet (C{--media-timeout}).
        """
        from conference.app.admission import MediaAdmission
        from conference.app.focus import Focus
        from conference.app.mixer import media_service

        config = self.config
        self.media: Union[NullMediaService, JanusMediaService]
        if config.media.startswith("janus:"):
            from conference.app.janus import JanusMediaService
            from conference.app.janushttp import HTTPJanusTransport

            transport = HTTPJanusTransport(config.media[len("janus:") :], self._reactor)
            self.media = JanusMediaService(
                transport, self._reactor, warn_agent=config.media_address
            )
        else:
            self.media = media_service(
                config.media,
                self._reactor,
                address=config.media_address,
                port_range=config.rtp_ports,
                srtp=config.srtp,
            )
        admission = MediaAdmission(
            self.media.capacity,
            reserve=config.media_reserve_percent / 100.0,
            per_source=config.max_media_per_source,
            per_caller=config.max_media_per_caller,
            timeout=config.media_timeout,
            source_key=self.limiter.source_key,
        )
        self.focus = Focus(
            stores=stores,
            media=self.media,
            router=self.router,
            reactor=self._reactor,
            send_request=self.sip.send_request,
            local_address=self.sip.local_address,
            tag_factory=new_tag,
            branch_factory=new_branch,
            early_join=timedelta(seconds=config.early_join),
            max_participants=config.max_participants,
            sign=self.trust.signer,
            admission=admission,
            challenge=self.challenge if config.checkers else None,
        )
        self.router.add_handler(self.focus)
        if config.freebusy_source is not None:
            from conference.app.caldav import CalDAVFreeBusy

            self.caldav = CalDAVFreeBusy(
                config.freebusy_source,
                reactor=self._reactor,
                credentials=config.freebusy_credentials,
                timeout=config.freebusy_timeout,
            )
            self.focus.users.external = self.caldav.busy

    def _install_control(self) -> None:
        """
        Conference control over the focus (docs/focus.rst): roles from the
        calendar, the conference event package, moderator requests.
        Guests are refused by default only when INVITEs are authenticated
        (otherwise nobody could be told from an attendee).
        """
        from conference.app.autodial import AutoDialOut
        from conference.app.confevents import ConferenceSubscriptions
        from conference.app.control import ConferenceControl
        from conference.app.dialout import DialOut
        from conference.app.lifecycle import ConferenceLifecycle
        from conference.app.outbound import udp_endpoint_of
        from conference.app.refer import ModeratorRequests
        from conference.control.policy import ALLOW, DENY

        config = self.config
        # The built-in mixer reports DTMF (RFC 4733): PINs may be typed.
        dtmf = hasattr(self.media, "on_dtmf")
        self.control = ConferenceControl(
            self.focus,
            default_guests=DENY if config.auth_invite else ALLOW,
            dtmf_pins=dtmf,
            admins=config.admins,
        )
        if dtmf:
            self.media.on_dtmf = self.control.on_dtmf  # type: ignore[union-attr]
        self.conference_events = ConferenceSubscriptions(
            self.control,
            self.router.domain_of,
            self.sip,
            self._reactor,
            admins=config.admins,
            challenge=self.challenge,
            tag_factory=new_tag,
        )
        self.events.add("conference", self.conference_events)
        self.conference_events.route = self.outbound
        self.moderation = ModeratorRequests(
            self.control,
            self.router.domain_of,
            self.sip,
            self._reactor,
            challenge=self.challenge,
            tag_factory=new_tag,
        )
        self.moderation.route = self.outbound
        udp = udp_endpoint_of(self)

        def contact_address() -> Optional[Tuple[str, int]]:
            found = udp()
            return (found[1], found[2]) if found is not None else None

        router = self.router
        self.moderation.dialout = DialOut(
            self.control,
            send_request=self.sip.send_request,
            send_ack=self.sip.send,
            local_address=self.sip.local_address,
            # RFC 3263 for contacts and attendees of other domains.
            route=self.outbound,
            is_local=lambda aor: router.domain_of(aor.rpartition("@")[2]) is not None,
            contact_address=contact_address,
        )
        self.autodial = AutoDialOut(
            self.moderation.dialout,
            self._reactor,
            front_end=self.config.front_end,
            sender=self.outbound,
        )
        self.router.options_hooks.append(self.autodial.options_hook)
        self.router.add_handler(self.moderation)
        self.lifecycle = ConferenceLifecycle(self.focus, self._reactor)
        self.control.ending = self.lifecycle.ends_at

    def _purge_expired(self) -> Deferred[Any]:
        if self.stores is None:
            return succeed(0)
        d = self.stores.registrations.purge(self.sip.now())
        # A store fault skips one purge (one log line) and keeps the loop.
        return d.addErrback(lambda f: log.error("Purge failed: {error}", error=f.value))

    def authenticate(
        self, request: Request, now: float, tls_identity: Optional[ISIPIdentity] = None
    ) -> Optional[Deferred[Optional[ISIPIdentity]]]:
        """
        Authenticate C{request} in the realm of the domain it is for; with
        no credential checkers configured, refuse what needs authentication
        and answer L{None} at once (no identity, nothing to wait for) for
        the rest (L{conference.transport.server.Authenticate}).

        @param tls_identity: the identity of the connection's verified TLS
            client certificate: it authenticates the request when that
            names a served domain and the request brings no digest
            credentials (which are checked as usual when present).
        """
        if (
            tls_identity is not None
            and str(tls_identity.domain).lower() in self.router.domains
            and not request.has_header(self.authenticator.credentials_header.lower())
        ):
            return succeed(tls_identity)
        if (
            self.federation is not None
            and self.federation.candidate(request)
            and not request.has_header(self.authenticator.credentials_header.lower())
        ):
            return succeed(None)  # the scheduler requires the signature
        if not self.config.checkers:
            if self.authenticator.policy.requires(request.method):
                return fail(
                    SIPProtocolError("No credentials configured on this server (--auth)", 403)
                )
            return None
        realm = self.router.realm_for(request)
        return self.authenticator.authenticate_request(request, realm, now)

    def challenge(self, request: Request, now: float) -> SIPProtocolError:
        """
        The answer to a request that needs an identity it did not prove:
        a 401 digest challenge in the realm it is for (403 when no
        credentials are configured, as L{authenticate} answers).
        """
        if not self.config.checkers:
            return SIPProtocolError("No credentials configured on this server (--auth)", 403)
        return self.authenticator.challenge(self.router.realm_for(request), now)

    def _changed_elsewhere(self, kind: str, key: str) -> None:
        """
        Another process sharing the store committed a change: apply a
        conference's as this node's scheduler would, notify the binding
        subscriptions held here; everything when changes may have been
        missed.
        """
        from conference.store.changes import BINDING, CONFERENCE, EVERYTHING

        # The conference cache watches the feed itself, and was told first.
        if kind == CONFERENCE:
            # What this node's scheduler does after applying a change
            # itself: roles, the end timer, conference event NOTIFYs and
            # the dial-out timer follow the record again.
            for hook in self.scheduler.applied:
                hook(key)
        if kind == BINDING:
            self.subscriptions.changed(key)
        elif kind == EVERYTHING:
            for uri in self.focus.roster.conferences():
                for hook in self.scheduler.applied:
                    hook(uri)
            self.autodial.start()
            for resource in sorted({watch.resource for watch in self.subscriptions.watches()}):
                self.subscriptions.changed(resource)

    def _add_listener(self, description: str) -> None:
        """
        Add the listener of one C{--listen} description, its endpoint
        (and any certificate) built now.

        @raise StartupError: for a description that cannot work.
        """
        service: ListenerService
        if description.lower().startswith("udp:"):
            number, interface = build_endpoint(
                description, lambda: parse_udp_description(description)
            )
            service = UDPListenerService(
                self._reactor,
                self.sip,
                number,
                interface,
                max_size=self.config.max_message_size,
                description=description,
            )
        else:
            if description.lower().startswith("tls:"):
                from conference.tls import tls_endpoint

                config = self.config

                def make() -> Any:
                    return tls_endpoint(
                        self._reactor,
                        description,
                        ca_file=config.tls_ca,
                        client_cert=config.tls_client_cert if config.tls_ca else "none",
                    )

            else:

                def make() -> Any:
                    return serverFromString(self._reactor, description)

            endpoint = build_endpoint(description, make)
            service = StreamListenerService(description, endpoint, self.stream_factory)
        service.setServiceParent(self)

    @property
    def listeners(self) -> List[ListenerService]:
        """
        The listener services, one per C{--listen} description.
        """
        return [s for s in self if isinstance(s, ListenerService)]

    @property
    def udp_ports(self) -> List[IListeningPort]:
        """
        The UDP ports listening now (tests read the ephemeral numbers).
        """
        return [
            s.port
            for s in self.listeners
            if isinstance(s, UDPListenerService) and s.port is not None
        ]

    @property
    def stream_ports(self) -> List[IListeningPort]:
        """
        The stream ports listening now.
        """
        return [
            s.port
            for s in self.listeners
            if isinstance(s, StreamListenerService) and s.port is not None
        ]

    def privilegedStartService(self) -> None:
        """
        Bind every listener (twistd calls this before its reactor runs and
        before it sheds privileges); they stay paused until the stores are
        open and the handlers in place.

        @raise StartupError: for the first port that cannot be bound (a
            port in use, an interface the host does not have); the ports
            already bound are closed again.
        """
        MultiService.privilegedStartService(self)
        errors = [listener.error for listener in self.listeners if listener.error is not None]
        if errors:
            self._close_listeners()
            raise errors[0]

    def startService(self) -> None:
        """
        Open the stores, build the handlers, then serve on the listeners.
        L{ready} fires once all of it is done, or fails with a
        L{StartupError} (or, for a bug, any other exception), which is
        logged once; the listeners are then closed again.
        """
        level = LogLevel.levelWithName(self.config.log_level) if self.config.log_level else None
        # Keep-alive OPTIONS are debug events: not built when none is written.
        self.sip.log_keepalives = level is None or level is LogLevel.debug
        if self.config.log_format == "json":
            observer: ILogObserver = jsonFileLogObserver(sys.stdout)
            if level is not None:
                observer = FilteringLogObserver(
                    observer, [LogLevelFilterPredicate(defaultLogLevel=level)]
                )
            globalLogPublisher.addObserver(observer)
        else:
            speed_up_text_observers(globalLogPublisher, level)
            self._log_batches = batch_text_observers(
                globalLogPublisher, self._reactor, self.config.log_flush
            )
        log.info(
            "Conference server starting: listen={listen} domains={domains} store={store}",
            listen=self.config.listen,
            domains=self.config.domains or ["localhost"],
            store=self.config.store,
        )
        Service.startService(self)
        if self.stores is not None:
            opened: Deferred[Stores] = succeed(self.stores)
        else:
            opened = open_stores(self.config.store, self._reactor)
            opened.addErrback(self._store_failed)
        serving = opened.addCallback(self._start_serving)
        serving.addCallbacks(self._serving, self._start_failed)

    def _store_failed(self, failure: Failure) -> Failure:
        """
        Name the store option in a store's fault (a bad description, a
        database that cannot be opened or is newer than this code).
        """
        if isinstance(failure.value, StoreError) and not isinstance(failure.value, StartupError):
            return Failure(StartupError(f"--store: {failure.value}"))
        return failure

    def _start_serving(self, stores: Stores) -> Deferred[Any]:
        """
        The stores are open: build the applications, then serve on the
        listeners; fires once every one is bound.
        """
        self.stores = time_stores(stores, self.store_latency, self._reactor)
        # Records remembered until they change (timed reads are the misses).
        # Both caches watch the feed before anything else does, so a change
        # elsewhere is forgotten before others read (docs/stores.rst).
        self.conference_cache = CachedConferenceStore(stores.conferences, stores.changes)
        stores.conferences = self.conference_cache
        cache_bindings(stores, self._reactor.seconds)
        self._applications(stores)
        for service in self:
            service.startService()
        bound = gatherResults(
            [listener.when_bound() for listener in self.listeners], consumeErrors=True
        )
        return bound.addErrback(_first_error)

    def _serving(self, _: object) -> None:
        self._purge.start(60.0, now=False)
        if self.lag_probe is not None:
            self.lag_probe.start()
        if self.sip.queue is not None and self._unwatch_collector is None:
            # The collector's pauses are not load (ProportionalShedding.paused).
            self._unwatch_collector = watch_collector(self.sip.queue.paused)
        self.autodial.start()
        if self.config.tune_gc:
            tune_gc()
        tune_jit(self.config.pypy_jit)
        self.ready.callback(None)

    def _start_failed(self, failure: Failure) -> None:
        if isinstance(failure.value, StartupError):
            log.critical("Cannot start: {error}", error=str(failure.value))
        else:
            log.failure("Cannot start", failure)
        self._close_listeners()
        self.ready.errback(failure)

    def _close_listeners(self) -> None:
        for listener in self.listeners:
            listener.stopService()

    def stopService(self) -> Deferred[Any]:
        """
        Stop listening, let transactions in progress end (within
        C{stop_timeout}), then close the rest.
        """
        if self._purge.running:
            self._purge.stop()
        if self.lag_probe is not None:
            self.lag_probe.stop()
        if self._unwatch_collector is not None:
            self._unwatch_collector()
            self._unwatch_collector = None
        names = ("subscriptions", "conference_events", "moderation", "lifecycle", "autodial")
        for name in (*names, "focus"):
            part = getattr(self, name, None)
            if part is not None:
                part.stop()
        stop_media = getattr(getattr(self, "media", None), "stop", None)
        if stop_media is not None:  # Janus's keepalive; the built-in service's parked ports
            stop_media()
        d = self.sip.stop(self.config.stop_timeout)
        d.addCallback(lambda _: self.outbound.close())
        d.addCallback(lambda _: super(ConferenceService, self).stopService())
        d.addCallback(lambda _: self._close_stores())
        d.addBoth(self._unbatch_log)
        return d

    def _unbatch_log(self, result: Any) -> Any:
        """
        Write the log's last batch and let twistd's observers write each
        line again, once the service has stopped (or failed to).
        """
        if self._log_batches is not None:
            self._log_batches.stop()
            self._log_batches = None
        return result

    def _close_stores(self) -> Any:
        if self.stores is not None and self._own_stores:
            stores, self.stores = self.stores, None
            return stores.close()
        return None
