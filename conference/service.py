# -*- test-case-name: tests.test_service -*-
"""
The conference server as one Twisted service.

L{ConferenceService} is what C{twistd conference} runs and what any Twisted
application adds to its own service tree: it owns the SIP core, its
transports and the stores, starts them in order and stops them gracefully.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from twisted.application.service import MultiService, Service
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, globalLogPublisher, jsonFileLogObserver
from twisted.python.failure import Failure

from conference.app.core import CoreRouter
from conference.app.registrar import Registrar
from conference.app.trust import TrustSettings, load_trust_settings
from conference.auth import Authenticator, AuthPolicy, make_portal
from conference.interfaces import ISIPIdentity
from conference.limits import DEFAULT_BODY_LIMITS, DEFAULT_EXEMPT, BodyLimits, Rate, RateLimiter
from conference.sip.digest import DigestServer
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request
from conference.store import Stores, open_stores
from conference.transport.server import SIPServer, new_branch, new_tag
from conference.transport.stream import SIPStreamFactory
from conference.transport.udp import UDPListenerService, parse_udp_description

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
    max_message_size: int = 65536
    max_connections: int = 1024
    idle_timeout: float = 300.0
    stop_timeout: float = 5.0
    auth_invite: bool = False
    nonce_lifetime: float = 300.0
    # MD5 first: SIPp 3.6 and sipsak 0.9 answer only the first challenge and
    # know only MD5; clients that read every challenge still pick SHA-256.
    digest_algorithms: List[str] = field(default_factory=lambda: ["MD5", "SHA-256"])
    # BIND (docs/bind.rst): accepted dispositions (None: the documented
    # default set; ["*"]: any), server admins, limits.
    binding_dispositions: Optional[List[str]] = None
    admins: List[str] = field(default_factory=list)
    max_bindings: int = 32
    max_binding_data: int = 8192
    # Most conferences one organizer may have scheduled (None: no cap).
    max_conferences_per_organizer: Optional[int] = 100
    # The focus (docs/focus.rst).
    media_address: str = "127.0.0.1"
    rtp_ports: Tuple[int, int] = (20000, 29999)
    # The media service (docs/media.rst): "builtin" mixes, "null" drops.
    media: str = "builtin"
    rtp_timeout: float = 60.0
    max_participants: int = 100
    early_join: float = 600.0
    # Abuse limits and TLS (issue 6; docs/limits.rst): None turns a rate
    # limit off; burst replaces both buckets' sizes when set.
    rate_limit: Optional[Rate] = field(default_factory=lambda: Rate(200, 10))
    identity_rate_limit: Optional[Rate] = field(default_factory=lambda: Rate(120, 60))
    burst: Optional[float] = None
    rate_limit_exempt: List[str] = field(default_factory=lambda: list(DEFAULT_EXEMPT))
    body_limits: Dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BODY_LIMITS))
    tls_ca: Optional[str] = None
    tls_client_cert: str = "optional"
    # S/MIME (issue 6; docs/trust.rst): PEM files, the key's password, and
    # whether unsigned iTIP is refused.
    smime_ca: Optional[str] = None
    smime_cert: Optional[str] = None
    smime_key: Optional[str] = None
    smime_key_password: Optional[str] = None
    require_signature: bool = False
    # Whether the server may tune this process's garbage collector once it
    # is serving (see tune_gc); on for twistd, off for embedding.
    tune_gc: bool = False


def listen_hosts(descriptions: Sequence[str]) -> List[str]:
    """
    The interface addresses named in listen descriptions, plus loopback
    names: requests addressed to them are addressed to us.
    """
    hosts = ["localhost", "127.0.0.1", "::1"]
    for description in descriptions:
        for part in description.replace("\\:", "\0").split(":"):
            if part.startswith("interface="):
                hosts.append(part[len("interface=") :].replace("\0", ":"))
    return hosts


# Young-generation threshold when tune_gc is on (CPython's default: 700).
GC_THRESHOLD = 50_000


def tune_gc() -> None:
    """
    Tune CPython's garbage collector for a long-running server: freeze what
    start-up created (modules, handlers, caches) so collections no longer
    visit it, and raise the young-generation threshold.  A loaded server
    keeps tens of thousands of transactions alive for their timers (Timer
    J: 32 s); with the default threshold, small swings in the number of
    live objects keep triggering collections that promote those objects
    and then visit them again in full collections, which costs more CPU
    than answering the requests.  The request path makes no reference
    cycles, so the rare cyclic garbage waits for GC_THRESHOLD objects.
    Does nothing where the interpreter has no such knobs (PyPy).
    """
    freeze = getattr(gc, "freeze", None)
    set_threshold = getattr(gc, "set_threshold", None)
    get_threshold = getattr(gc, "get_threshold", None)
    if freeze is None or set_threshold is None or get_threshold is None:
        return
    gc.collect()
    freeze()
    _, older, oldest = get_threshold()
    set_threshold(GC_THRESHOLD, older, oldest)


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


class _StreamListenerService(Service):
    """
    Listens on one Twisted stream server endpoint while running.
    """

    def __init__(
        self,
        reactor: Any,
        description: str,
        factory: SIPStreamFactory,
        make_endpoint: Optional[Callable[[], Any]] = None,
    ) -> None:
        """
        @param make_endpoint: builds the endpoint (the C{tls:} form)
            instead of L{serverFromString}; may raise C{ValueError}.
        """
        self._reactor = reactor
        self.description = description
        self.factory = factory
        self.port: Optional[IListeningPort] = None
        self._make_endpoint = make_endpoint

    def startService(self) -> None:
        super().startService()
        try:
            if self._make_endpoint is not None:
                endpoint = self._make_endpoint()
            else:
                endpoint = serverFromString(self._reactor, self.description)
        except ValueError:
            self._failed(Failure())
            return

        def listening(port: IListeningPort) -> None:
            self.port = port

        endpoint.listen(self.factory).addCallbacks(listening, self._failed)

    def _failed(self, failure: Any) -> None:
        log.failure("Could not listen on {desc}", failure, desc=self.description)
        if IReactorCore.providedBy(self._reactor):
            self._reactor.stop()

    def stopService(self) -> Any:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None


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
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self._reactor = reactor
        self.config = config
        hosts = listen_hosts(config.listen)
        domains = config.domains or ["localhost"]
        self.router = CoreRouter(domains, hosts, tag_factory=new_tag, accept_ip_literals=True)
        self.authenticator = Authenticator(
            make_portal(config.checkers),
            DigestServer(lifetime=config.nonce_lifetime, algorithms=config.digest_algorithms),
            AuthPolicy(invite=config.auth_invite),
        )
        self.limiter = limiter_from_config(config)
        self.trust = trust_from_config(config)
        self.sip = SIPServer(
            self.router,
            reactor=reactor,
            authenticate=self.authenticate,
            max_message_size=config.max_message_size,
            limiter=self.limiter if self.limiter.active else None,
            body_limits=BodyLimits(config.body_limits) if config.body_limits else None,
        )
        self.stream_factory = SIPStreamFactory(
            self.sip,
            reactor,
            max_connections=config.max_connections,
            idle_timeout=config.idle_timeout,
            client_identities=bool(config.tls_ca) and config.tls_client_cert != "none",
        )
        self.stores: Optional[Stores] = stores
        self._own_stores = stores is None
        self.ready: Deferred[None] = Deferred()
        for description in config.listen:
            self._add_listener(description)
        self._purge = LoopingCall(self._purge_expired)
        self._purge.clock = reactor

    def _applications(self, stores: Stores) -> None:
        """
        Build the request handlers over C{stores}.
        """
        from conference.app.bind import BindHandler, OwnerResolver
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
        owners = OwnerResolver(stores.conferences, self.router.domain_of)
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
        self.registrar = Registrar(
            stores.registrations,
            tag_factory=new_tag,
            domain_of=self.router.domain_of,
            bindings=self.binder.register_hook,
        )
        self.router.add_handler(self.registrar)
        self.router.add_handler(self.binder)
        self.router.add_handler(self.subscriptions)
        self.router.options_hooks.append(self.binder.options_hook)
        self._install_focus(stores)
        from conference.app.scheduler import install_scheduler

        install_scheduler(self, stores)

    def _install_focus(self, stores: Stores) -> None:
        """
        The conference focus (INVITE, UPDATE, BYE) with the media service
        C{--media} names; calls whose media went silent end with BYE.
        """
        from conference.app.focus import Focus
        from conference.app.mixer import media_service

        config = self.config
        self.media = media_service(
            config.media,
            self._reactor,
            address=config.media_address,
            port_range=config.rtp_ports,
            rtp_timeout=config.rtp_timeout,
            # self.focus is made just below: looked up when media goes silent.
            on_inactive=lambda session, why: self.focus.media_ended(session, why),  # noqa: PLW0108
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
        )
        self.router.add_handler(self.focus)

    def _purge_expired(self) -> Deferred[Any]:
        if self.stores is None:
            return succeed(0)
        return self.stores.registrations.purge(self.sip.now())

    def authenticate(
        self, request: Request, now: float, tls_identity: Optional[ISIPIdentity] = None
    ) -> Deferred[Optional[ISIPIdentity]]:
        """
        Authenticate C{request} in the realm of the domain it is for; with
        no credential checkers configured, refuse what needs authentication.

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
        if not self.config.checkers:
            if self.authenticator.policy.requires(request.method):
                return fail(
                    SIPProtocolError("No credentials configured on this server (--auth)", 403)
                )
            return succeed(None)
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

    def _add_listener(self, description: str) -> None:
        if description.lower().startswith("udp:"):
            port, interface = parse_udp_description(description)
            service: Service = UDPListenerService(
                self._reactor, self.sip, port, interface, self.config.max_message_size
            )
        elif description.lower().startswith("tls:"):
            from conference.tls import tls_endpoint

            config = self.config

            def make() -> Any:
                return tls_endpoint(
                    self._reactor,
                    description,
                    ca_file=config.tls_ca,
                    client_cert=config.tls_client_cert if config.tls_ca else "none",
                )

            service = _StreamListenerService(self._reactor, description, self.stream_factory, make)
        else:
            service = _StreamListenerService(self._reactor, description, self.stream_factory)
        service.setServiceParent(self)

    @property
    def udp_ports(self) -> List[IListeningPort]:
        """
        The UDP ports listening now (tests read the ephemeral numbers).
        """
        return [
            s.listening
            for s in self
            if isinstance(s, UDPListenerService) and s.listening is not None
        ]

    @property
    def stream_ports(self) -> List[IListeningPort]:
        """
        The stream ports listening now.
        """
        return [
            s.port for s in self if isinstance(s, _StreamListenerService) and s.port is not None
        ]

    def startService(self) -> None:
        if self.config.log_format == "json":
            globalLogPublisher.addObserver(jsonFileLogObserver(sys.stdout))
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
        opened.addCallbacks(self._start_serving, self._store_failed)

    def _start_serving(self, stores: Stores) -> None:
        """
        The stores are open: build the applications, then listen.
        """
        self.stores = stores
        self._applications(stores)
        for service in self:
            service.startService()
        self._purge.start(60.0, now=False)
        if self.config.tune_gc:
            tune_gc()
        self.ready.callback(None)

    def _store_failed(self, failure: Failure) -> None:
        log.failure("Could not open the store {store}", failure, store=self.config.store)
        self.ready.errback(failure)
        if IReactorCore.providedBy(self._reactor) and self._reactor.running:
            self._reactor.stop()

    def stopService(self) -> Deferred[Any]:
        """
        Stop listening, let transactions in progress end (within
        C{stop_timeout}), then close the rest.
        """
        if self._purge.running:
            self._purge.stop()
        for name in ("subscriptions", "focus"):
            part = getattr(self, name, None)
            if part is not None:
                part.stop()
        d = self.sip.stop(self.config.stop_timeout)
        d.addCallback(lambda _: super(ConferenceService, self).stopService())
        d.addCallback(lambda _: self._close_stores())
        return d

    def _close_stores(self) -> Any:
        if self.stores is not None and self._own_stores:
            stores, self.stores = self.stores, None
            return stores.close()
        return None
