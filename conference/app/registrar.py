# -*- test-case-name: tests.unit.app.test_registrar -*-
"""
The registrar of RFC 3261 section 10.3: binds an address of record to the
contacts its owner registers, for the location lookups the focus and the
busy path need.

Registration state lives behind L{IRegistrationStore}; the in-memory one
(L{conference.store.memory}, re-exported here) is what runs until a
durable store is configured.  L{conference.app.locator} answers Twisted's
C{ILocator} over the same store.
"""

from __future__ import annotations

from dataclasses import replace
from email.utils import formatdate
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from conference.app.core import RequestContext
from conference.interfaces import IRegistrationStore, IRequestHandler
from conference.records import RegistrationBinding
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import Address, parse_address
from conference.sip.message import Request, Response, make_response

# Re-exported: service.py and older callers import it from here.
from conference.store.memory import MemoryRegistrationStore as MemoryRegistrationStore  # noqa: PLC0414

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
MAX_EXPIRES = 86400
MAX_CONTACTS = 16


Binding = RegistrationBinding

#: C{(aor, identity, now)} to the extra header fields of a REGISTER's 200.
BindingsHook = Callable[[str, Optional[str], float], "Deferred[Sequence[Tuple[str, str]]]"]


def aor_of(address: Address, domain_of: Optional[Callable[[str], Optional[str]]] = None) -> str:
    """
    The canonical address of record of a To header: C{sip:user@domain},
    without parameters or port (RFC 3261 section 10.3 step 5).

    @param domain_of: maps the To host to the served domain it names (an
        address of the server itself names the default domain), or to
        L{None} if it is not served, which is a 404.
    """
    uri = address.uri
    scheme = getattr(uri, "scheme", "sip")
    user = getattr(uri, "username", None)
    host = (getattr(uri, "host", "") or "").lower()
    if not user or not host or scheme not in ("sip", "sips"):
        raise RemoteProtocolError("To is not an address of record", 404)
    if domain_of is not None:
        domain = domain_of(host)
        if domain is None:
            raise RemoteProtocolError(f"Domain {host} not served here", 404)
        host = domain
    return f"sip:{user}@{host}"


@implementer(IRequestHandler)
class Registrar:
    """
    Answers REGISTER for the served domains.
    """

    methods = ("REGISTER",)
    accepts: Dict[str, Sequence[str]] = {}

    def __init__(
        self,
        store: IRegistrationStore,
        *,
        min_expires: int = MIN_EXPIRES,
        max_expires: int = MAX_EXPIRES,
        default_expires: int = DEFAULT_EXPIRES,
        max_contacts: int = MAX_CONTACTS,
        tag_factory: Any = None,
        domain_of: Optional[Callable[[str], Optional[str]]] = None,
        bindings: Optional[BindingsHook] = None,
    ) -> None:
        """
        @param bindings: called with C{(aor, identity AOR or None, now)}
            for a successful REGISTER; the header fields it fires with
            (the AOR's Binding headers, draft-schulzrinne-sip-bind-00
            section 5) are added to the 200.
        """
        self.store = store
        self.bindings = bindings
        self.domain_of = domain_of
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts = max_contacts
        self._tag_factory = tag_factory or (lambda: "reg")

    def handle_request(self, request: Request, context: RequestContext) -> Deferred[Response]:
        """
        Apply RFC 3261 section 10.3 steps 4-8 (the core did 1-3).
        """
        try:
            aor = aor_of(request.to, self.domain_of)
            identity = context.identity
            if identity is not None and getattr(identity, "aor", None) != aor:
                raise RemoteProtocolError(f"{identity.aor} may not register {aor}", 403)
            update = self._parse(request, context.now)
        except RemoteProtocolError as e:
            return fail(e)
        call_id, cseq = request.call_id, request.cseq.number
        d = self.store.get_bindings(aor, context.now)

        def apply(existing: List[Binding]) -> Deferred[List[Binding]]:
            by_contact = {b.contact: b for b in existing}
            targets = [b.contact for b in existing] if update is None else list(update)
            for contact in targets:
                old = by_contact.get(contact)
                if old is not None and old.call_id == call_id and old.cseq >= cseq:
                    raise RemoteProtocolError("Out of order REGISTER (CSeq not higher)", 500)
            if update is None:
                return self.store.set_bindings(aor, [], targets, context.now)
            keep = [b for b in update.values() if b.expires_at > context.now]
            drop = [c for c, b in update.items() if b.expires_at <= context.now]
            if len({*by_contact, *(b.contact for b in keep)} - set(drop)) > self.max_contacts:
                raise RemoteProtocolError(f"More than {self.max_contacts} contacts", 403)
            stamped = [replace(b, call_id=call_id, cseq=cseq) for b in keep]
            return self.store.set_bindings(aor, stamped, drop, context.now)

        applied: Deferred[List[Binding]] = d.addCallback(apply)
        answer: Deferred[Response] = applied.addCallback(
            lambda bindings: self._ok(request, bindings, context.now)
        )
        if self.bindings is not None:
            hook = self.bindings
            who = getattr(context.identity, "aor", None)

            def extra(response: Response) -> Deferred[Response]:
                more = hook(aor, who, context.now)

                def add(headers: Sequence[Tuple[str, str]]) -> Response:
                    for name, value in headers:
                        response.add_header(name, value)
                    return response

                return more.addCallback(add)

            answer.addCallback(extra)
        return answer

    def _parse(self, request: Request, now: float) -> Optional[Dict[str, Binding]]:
        """
        The contacts a REGISTER sets, or L{None} for a C{*} removal.
        """
        values = request.header_values("contact")
        expires_header = request.header("expires")
        header_expires: Optional[int] = None
        if expires_header is not None:
            header_expires = _delta_seconds(expires_header)
        if any(v.strip() == "*" for v in values):
            if len(values) != 1 or header_expires != 0:
                raise RemoteProtocolError("Contact * needs Expires: 0 and no other Contact")
            return None
        out: Dict[str, Binding] = {}
        for value in values:
            address = parse_address(value)
            param = address.params.get("expires")
            expires = header_expires if param is None else _delta_seconds(param)
            if expires is None:
                expires = self.default_expires
            if 0 < expires < self.min_expires:
                raise RemoteProtocolError(
                    "Interval Too Brief", 423, [("Min-Expires", str(self.min_expires))]
                )
            expires = min(expires, self.max_expires)
            q = _q_value(address.params.get("q"))
            contact = str(address.uri)
            out[contact] = Binding(contact, now + expires, q, "", 0)
        return out

    def _ok(self, request: Request, bindings: Iterable[Binding], now: float) -> Response:
        headers = []
        for b in bindings:
            params = f";expires={max(0, round(b.expires_at - now))}"
            if b.q is not None:
                params += f";q={b.q:g}"
            headers.append(("Contact", f"<{b.contact}>{params}"))
        headers.append(("Date", formatdate(now, usegmt=True)))
        return make_response(request, 200, to_tag=self._tag_factory(), headers=headers)

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """
        REGISTER has no ACK; nothing to do.
        """

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """
        REGISTER is answered at once; nothing to cancel.
        """

    def handle_timeout(self, request: Request) -> None:
        """
        REGISTER is not INVITE; nothing awaits an ACK.
        """

    # ILocator-style lookup -------------------------------------------

    def locate(self, aor: str, now: float) -> Deferred[List[Binding]]:
        """
        The live contacts of C{aor}, most preferred first.
        """
        return self.store.get_bindings(aor, now)


def _delta_seconds(text: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise RemoteProtocolError(f"Bad expires value {text!r}")
    # RFC 3261 section 20.19: values over 2**32-1 mean that maximum.
    return min(int(text), 2**32 - 1)


def _q_value(text: Optional[str]) -> Optional[float]:
    if text is None:
        return None
    try:
        q = float(text)
    except ValueError:
        raise RemoteProtocolError(f"Bad q value {text!r}") from None
    if not 0.0 <= q <= 1.0 or len(text) > 5:
        raise RemoteProtocolError(f"Bad q value {text!r}")
    return q
