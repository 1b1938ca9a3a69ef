# -*- test-case-name: tests.unit.app.test_core -*-
"""
The UAS core of RFC 3261 section 8.2: the checks every request passes
before an application handler sees it, and the answers the server gives by
itself (OPTIONS, 405, 501, 416, 404, 420, 415, 481 for BYE).

Keeping these in one place means every handler can assume a well-formed,
in-domain, authenticated request of a method it registered for.
"""

from __future__ import annotations

import ipaddress
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from conference.calendar.itip import normalize_address
from conference.deferreds import PENDING, as_deferred, fired_result, is_deferred
from conference.interfaces import IRequestHandler, IRouter

# Re-exported: handlers and their tests import it from here.
from conference.interfaces import RequestContext as RequestContext  # noqa: PLC0414
from conference.records import LimitExceededError, StoreError
from conference.sip.errors import LocalProtocolError, RemoteProtocolError, SIPProtocolError
from conference.sip.headers import KNOWN_METHODS
from conference.sip.message import Request, Response, error_response, make_response

log = Logger()

#: Seconds a client is asked to wait (Retry-After) after a store fault.
STORE_RETRY_AFTER = 5

# Methods the core always answers itself, whatever handlers exist.
CORE_METHODS = frozenset(["OPTIONS", "ACK", "CANCEL", "BYE"])

SIP_SCHEMES = frozenset(["sip", "sips"])

Answer = Union[Response, "Deferred[Response]"]

OptionsHook = Callable[
    [Request, RequestContext],
    Union[Sequence[Tuple[str, str]], "Deferred[Sequence[Tuple[str, str]]]"],
]
"""
Adds header fields to the core's answer to OPTIONS (for example the
Binding headers of the user it is addressed to); may fail with a
L{SIPProtocolError}, which becomes the answer.
"""


def store_refusal(error: StoreError, what: str = "Store") -> SIPProtocolError:
    """
    The answer to a request a store failed (disk full, database damaged or
    unreachable, a conflict retried too often): 503 with Retry-After, as
    nothing was committed (every store write is one transaction), logged
    once as one line without a traceback.  A limit
    (L{LimitExceededError}) that no handler answered is a 403: retrying
    would not help.

    Every handler's store failures end here: L{CoreRouter.dispatch} maps
    what a handler lets through, and handlers that answer some store
    errors themselves (BIND's limits) call it for the rest.

    @param what: names the store in the log line.
    """
    if isinstance(error, LimitExceededError):
        log.info("{what} limit: {error}", what=what, error=error)
        return RemoteProtocolError("Forbidden (limit exceeded)", 403)
    log.error("{what} failed, answering 503: {error}", what=what, error=error)
    return SIPProtocolError(
        "Service Unavailable (store failure)", 503, [("Retry-After", str(STORE_RETRY_AFTER))]
    )


@implementer(IRouter)
class CoreRouter:
    """
    Checks requests against the UAS rules and dispatches them to handlers.

    @ivar domains: the SIP domains served (lower case).
    @ivar local_hosts: hosts that also name this server (its listening
        addresses, C{localhost}); requests to them count as in-domain.
    @ivar accept_ip_literals: whether any IP address in a Request-URI counts
        as this server: a UAS reached at an address owns it, and behind NAT
        or on a wildcard socket it cannot list them all.
    """

    def __init__(
        self,
        domains: Iterable[str],
        local_hosts: Iterable[str] = (),
        *,
        supported: Iterable[str] = (),
        tag_factory: Callable[[], str],
        accept_ip_literals: bool = False,
    ) -> None:
        # The capability fields of OPTIONS answers and the supported set
        # they were worked out for (see _capability_fields, add_handler).
        self._capabilities: Optional[Tuple[FrozenSet[str], Tuple[Tuple[str, str], ...]]] = None
        ordered = [d.lower() for d in domains]
        self.domains = set(ordered)
        self._default_domain = ordered[0] if ordered else "localhost"
        self.local_hosts = {h.lower().strip("[]") for h in local_hosts}
        self.supported: FrozenSet[str] = frozenset(supported)
        self._handlers: Dict[str, IRequestHandler] = {}
        self._tag_factory = tag_factory
        self.accept_ip_literals = accept_ip_literals
        #: Callables whose headers the core's OPTIONS answer carries, in order.
        self.options_hooks: List[OptionsHook] = []

    # Configuration -------------------------------------------------------

    def add_handler(self, handler: IRequestHandler) -> None:
        """
        Route the methods C{handler} declares to it (a later one wins).
        Its C{methods} and C{accepts} are read now and when the next
        handler is added.
        """
        self._capabilities = None
        for method in handler.methods:
            self._handlers[method.upper()] = handler

    def handler_for(self, method: str) -> Optional[IRequestHandler]:
        """
        The handler registered for C{method}, if any.
        """
        return self._handlers.get(method)

    @property
    def allow(self) -> List[str]:
        """
        The methods this server answers, for Allow headers.
        """
        methods = set(CORE_METHODS) | set(self._handlers)
        return sorted(methods, key=_method_order)

    @property
    def accept(self) -> List[str]:
        """
        Every body type some handler reads, for Accept headers.
        """
        types: List[str] = []
        for handler in self._handlers.values():
            for mimes in dict(handler.accepts).values():
                types.extend(m for m in mimes if m not in types)
        return types

    def is_local(self, host: str) -> bool:
        """
        Whether C{host} names a served domain or this server itself.
        """
        host = host.lower().strip("[]")
        if host in self.domains or host in self.local_hosts:
            return True
        return self.accept_ip_literals and is_ip_literal(host)

    @property
    def default_domain(self) -> str:
        """
        The domain that addresses naming the server itself belong to.
        """
        return self._default_domain

    def domain_of(self, host: str) -> Optional[str]:
        """
        The served domain C{host} names: itself if served, the default
        domain if it is one of the server's own addresses, else L{None}.
        """
        host = host.lower().strip("[]")
        if host in self.domains:
            return host
        if self.is_local(host):
            return self.default_domain
        return None

    def realm_for(self, request: Request) -> str:
        """
        The served domain a request is for, which is its digest realm: the
        Request-URI's host, else the To host, else the first domain served.
        """
        for host in (getattr(request.uri, "host", None), _to_host(request)):
            if host and host.lower() in self.domains:
                return str(host).lower()
        return self.default_domain

    # Checks ----------------------------------------------------------------

    def check(self, request: Request, transport: Optional[str] = None) -> None:
        """
        Apply RFC 3261 section 8.2.1-8.2.3 to C{request}.

        @param transport: the transport it arrived on (C{"UDP"}, C{"TCP"},
            C{"TLS"}), when known: a C{sips:} Request-URI over anything but
            TLS is refused with 416 (RFC 3261 section 26.2.2).
        @raise RemoteProtocolError: carrying the status (405, 501, 416, 404,
            420, 415) and the headers (Allow, Unsupported, Accept,
            Accept-Encoding) the answer needs.
        """
        method = request.method
        if method not in CORE_METHODS and method not in self._handlers:
            allow = [("Allow", ", ".join(self.allow))]
            if method in KNOWN_METHODS:
                raise RemoteProtocolError("Method Not Allowed", 405, allow)
            raise RemoteProtocolError("Not Implemented", 501, allow)
        scheme = getattr(request.uri, "scheme", "")
        if scheme not in SIP_SCHEMES:
            raise RemoteProtocolError(f"Unsupported URI Scheme {scheme or '(none)'}", 416)
        # --- sips: needs TLS on the hop it arrived over ---
        if scheme == "sips" and transport is not None and transport.upper() != "TLS":
            raise RemoteProtocolError(f"Unsupported URI Scheme (sips: over {transport})", 416)
        if not self.is_local(getattr(request.uri, "host", "") or ""):
            raise RemoteProtocolError("Not Found (domain not served here)", 404)
        if method not in ("ACK", "CANCEL") and request.headers.get("require"):
            unsupported = [
                tag
                for tag in (t.strip() for t in request.header_values("require"))
                if tag and tag.lower() not in self.supported
            ]
            if unsupported:
                raise RemoteProtocolError(
                    "Bad Extension", 420, [("Unsupported", ", ".join(unsupported))]
                )
        self._check_body(request)

    def _check_body(self, request: Request) -> None:
        if not request.body:
            return
        headers = request.headers
        if headers.get("content-encoding"):
            encodings = [e.strip().lower() for e in request.header_values("content-encoding")]
            if any(e not in ("", "identity") for e in encodings):
                raise RemoteProtocolError(
                    "Unsupported Content-Encoding", 415, [("Accept-Encoding", "identity")]
                )
        if headers.get("content-transfer-encoding"):
            # iSIP section 2.5: SIP is 8-bit clean, so no transfer encodings.
            raise RemoteProtocolError(
                "Content-Transfer-Encoding not accepted", 415, self._accept_headers(request)
            )
        handler = self._handlers.get(request.method)
        if handler is None and request.method not in CORE_METHODS:
            return
        accepted = self._accepted(request)
        ctype = request.content_type
        if ctype is None:
            raise RemoteProtocolError("Body without Content-Type", 400)
        if ctype.mime not in accepted:
            raise RemoteProtocolError(
                f"Unsupported Media Type {ctype.mime}", 415, self._accept_headers(request)
            )

    def _accepted(self, request: Request) -> Sequence[str]:
        """
        The body types the handler of C{request}'s method accepts for it
        (none when no handler answers it): its C{accepts} mapping, read as
        it is (no copy per request).
        """
        handler = self._handlers.get(request.method)
        if handler is None:
            return ()
        accepted: Sequence[str] = handler.accepts.get(request.method, ())
        return accepted

    def _accept_headers(self, request: Request) -> List[tuple[str, str]]:
        return [("Accept", ", ".join(self._accepted(request)))]

    # Answers the core gives itself ----------------------------------------

    def options(self, request: Request, to_tag: Optional[str] = None) -> Response:
        """
        Answer OPTIONS with what this server can do (RFC 3261 section 11.2),
        with the To tag C{to_tag} (L{RequestContext.to_tag}), else a new one.
        """
        response = make_response(request, 200, to_tag=to_tag or self._tag_factory())
        fields = response.headers
        for name, value in self._capability_fields():
            fields[name] = [value]
        return response

    def _capability_fields(self) -> Tuple[Tuple[str, str], ...]:
        """
        The header fields (canonical names) an OPTIONS answer lists the
        server's capabilities in, worked out again when a handler is added
        or L{supported} is replaced: every keep-alive carries them.
        """
        known = self._capabilities
        if known is not None and known[0] is self.supported:
            return known[1]
        accept = ["application/sdp", *(m for m in self.accept if m != "application/sdp")]
        fields = [
            ("allow", ", ".join(self.allow)),
            ("accept", ", ".join(accept)),
            ("accept-encoding", "identity"),
            ("accept-language", "en"),
        ]
        if self.supported:
            fields.append(("supported", ", ".join(sorted(self.supported))))
        for name, value in fields:
            if "\r" in value or "\n" in value:
                raise LocalProtocolError(f"header {name} holds a line break")
        self._capabilities = (self.supported, tuple(fields))
        return self._capabilities[1]

    def dispatch(self, request: Request, context: RequestContext) -> Answer:
        """
        Check C{request} and produce its answer: from the core, or from the
        handler of its method.  Never raises for a bad request: protocol
        errors become their responses.
        """
        try:
            self.check(request, context.peer.transport)
            if request.method == "OPTIONS" and "OPTIONS" not in self._handlers:
                if not self.options_hooks:
                    return self.options(request, context.to_tag)
                answer: Answer = self._hooked_options(request, context)
            else:
                handler = self._handlers.get(request.method)
                if handler is None:
                    # BYE or CANCEL outside any dialog or transaction we know.
                    raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
                answer = handler.handle_request(request, context)
        except SIPProtocolError as e:
            return error_response(request, e, self._refusal_tag(context, e.status))
        except StoreError as e:
            return error_response(request, store_refusal(e), self._tag_factory())
        if is_deferred(answer):

            def failed(failure: Any) -> Response:
                error = failure.trap(SIPProtocolError, StoreError) and failure.value
                if isinstance(error, StoreError):
                    error = store_refusal(error)
                return error_response(request, error, self._refusal_tag(context, error.status))

            answer.addErrback(failed)
        return answer  # type: ignore[no-any-return]

    def _refusal_tag(self, context: RequestContext, status: int) -> str:
        """
        The To tag of a refusal with C{status}: the one the layer below
        offers (L{RequestContext.refusal_tag}: it would stamp its own
        anyway), else a new one.
        """
        offered = context.refusal_tag(status) if context.refusal_tag is not None else None
        return offered or self._tag_factory()

    def _hooked_options(self, request: Request, context: RequestContext) -> Answer:
        """
        L{options}, with the headers of every L{options_hooks} entry added,
        at once when every hook answers at once (a plain value or a fired
        Deferred), else through a Deferred.
        """
        response = self.options(request, context.to_tag)
        hooks = self.options_hooks
        for index, hook in enumerate(hooks):
            headers = hook(request, context)
            if isinstance(headers, Deferred):
                result = fired_result(headers)
                if result is PENDING:
                    rest = hooks[index + 1 :]
                    return _options_later(headers, rest, response, request, context)
                headers = result
            _add_headers(response, headers)
        return response


def _add_headers(response: Response, headers: Sequence[Tuple[str, str]]) -> Response:
    for name, value in headers:
        response.add_header(name, value)
    return response


def _options_later(
    pending: Deferred[Sequence[Tuple[str, str]]],
    rest: Sequence[OptionsHook],
    response: Response,
    request: Request,
    context: RequestContext,
) -> Deferred[Response]:
    """
    The rest of L{CoreRouter._hooked_options} once a hook answered with a
    Deferred that has not fired: the remaining hooks run in turn, each
    after the previous one's headers are added.
    """
    d: Deferred[Any] = pending.addCallback(lambda headers: _add_headers(response, headers))
    for hook in rest:

        def run(_: object, hook: OptionsHook = hook) -> Deferred[Any]:
            later = as_deferred(lambda: hook(request, context))
            return later.addCallback(lambda headers: _add_headers(response, headers))

        d.addCallback(run)
    return d.addCallback(lambda _: response)


_ORDER = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE", "BIND"]


def _method_order(method: str) -> tuple[int, str]:
    try:
        return (_ORDER.index(method), method)
    except ValueError:
        return (len(_ORDER), method)


def is_ip_literal(host: str) -> bool:
    """
    Whether C{host} is an IPv4 or IPv6 address (brackets allowed).
    """
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _to_host(request: Request) -> Optional[str]:
    try:
        return getattr(request.to.uri, "host", None)
    except SIPProtocolError:
        return None


def request_target(request: Request, domain_of: Callable[[str], Optional[str]]) -> str:
    """
    The address a request to the focus names: the Request-URI's user at
    the served domain its host names.  User-part parameters
    (C{sip:conf;pin=1234@example.com}, docs/focus.rst) are not part of it.

    @raise RemoteProtocolError: 404 when no user is named.
    """
    uri = request.uri
    user = (getattr(uri, "username", None) or "").partition(";")[0]
    host = getattr(uri, "host", "") or ""
    domain = domain_of(host) or host.lower()
    if not user:
        raise RemoteProtocolError("Not Found (no conference or user named)", 404)
    return f"sip:{user}@{domain}"


def caller_identity(request: Request, context: RequestContext) -> str:
    """
    Who is joining: the authenticated address of record, else the From
    URI (for display only, never for authorization).
    """
    if context.identity is not None:
        return str(context.identity.aor)
    uri = request.from_.uri
    user = getattr(uri, "username", None)
    host = getattr(uri, "host", None)
    if user and host:
        return normalize_address(f"sip:{user}@{host}")
    return normalize_address(str(uri))
