# -*- test-case-name: tests.unit.app.test_trust -*-
"""
Who a scheduling MESSAGE speaks for (iSIP sections 2.2 and 3): the body's
S/MIME layers are opened here, the signer's certificate identities are
correlated with the calendar's ORGANIZER or ATTENDEE, and the one identity
the iTIP engine then checks is chosen, so the scheduler never sees a
signature, and every refusal carries the documented Warning
(docs/trust.rst).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Union

from twisted.logger import Logger

from conference.app.calendarbody import CALENDAR_TYPES, CalendarBody, warning_value
from conference.calendar import Component, normalize_address
from conference.calendar.itip import ATTENDEE_METHODS
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import MediaType, parse_media_type
from conference.smime import (
    Credentials,
    SignerInfo,
    SMIMEError,
    SMIMERefused,
    SMIMEUndecipherable,
    TrustStore,
    load_credentials,
    load_trust_store,
    open_smime,
    smime_kind,
)

log = Logger()

#: The S/MIME body types a scheduling MESSAGE may have when S/MIME is on.
SMIME_TYPES: Tuple[str, ...] = (
    "multipart/signed",
    "application/pkcs7-mime",
    "application/x-pkcs7-mime",
)

#: Signs a calendar part: (Content-Type, body) -> multipart/signed ones.
Signer = Callable[[str, bytes], Tuple[str, bytes]]

# The Warning texts (docs/trust.rst lists them).
UNSIGNED = "iTIP must be S/MIME-signed on this server"
REFUSED = "S/MIME signature refused: {reason}"
NO_TRUST = "S/MIME signature cannot be checked: no trusted CA configured"
MALFORMED = "bad S/MIME body: {reason}"
UNDECIPHERABLE = "cannot decrypt: {reason}"
NO_IDENTITY = "S/MIME signer certificate names no sip:, sips: or mailto: identity"
MISMATCH = "S/MIME signer {signer} is not the {role} {address}"


@dataclass(frozen=True)
class TrustSettings:
    """
    The server's S/MIME configuration.

    @ivar trust: the CAs signer certificates must chain to (C{--smime-ca});
        L{None}: signatures cannot be checked and are refused.
    @ivar credentials: the server's certificate and key (C{--smime-cert},
        C{--smime-key}): it decrypts bodies encrypted to it and signs the
        calendar parts it sends; L{None}: neither.
    @ivar require_signature: refuse unsigned iTIP (C{--require-signature}).
    """

    trust: Optional[TrustStore] = None
    credentials: Optional[Credentials] = None
    require_signature: bool = False

    @property
    def enabled(self) -> bool:
        """
        Whether S/MIME bodies are read at all (a CA or credentials is
        configured); otherwise they are answered 415 like any other type.
        """
        return self.trust is not None or self.credentials is not None

    @property
    def signer(self) -> Optional[Signer]:
        """
        What signs outgoing calendar parts, or L{None} without credentials.
        """
        return self.credentials.sign if self.credentials is not None else None


def load_trust_settings(
    ca: Optional[str] = None,
    cert: Optional[str] = None,
    key: Optional[str] = None,
    password: Optional[Union[str, bytes]] = None,
    *,
    require_signature: bool = False,
) -> TrustSettings:
    """
    Read the files the options name (once, at start-up).

    @raise conference.smime.SMIMEConfigError: naming the option, the file
        and the fault; also for a certificate without a key (or the other
        way round), a password without a key, and C{require_signature}
        without a CA.
    """
    from conference.smime import SMIMEConfigError

    if bool(cert) != bool(key):
        raise SMIMEConfigError("--smime-cert and --smime-key go together")
    if password is not None and not key:
        raise SMIMEConfigError("--smime-key-password needs --smime-key")
    if require_signature and not ca:
        raise SMIMEConfigError("--require-signature needs --smime-ca (who could sign?)")
    trust = load_trust_store(ca) if ca else None
    credentials = load_credentials(cert, key, password) if cert and key else None
    return TrustSettings(trust, credentials, require_signature)


@dataclass(frozen=True)
class Opened:
    """
    A MESSAGE body with its S/MIME layers removed.

    @ivar content_type: the innermost entity's Content-Type (L{None} when
        the message had none).
    @ivar body: its body.
    @ivar signer: the innermost signer, or L{None} if unsigned.
    @ivar encrypted: whether a layer was encrypted to the server.
    """

    content_type: Optional[MediaType]
    body: bytes
    signer: Optional[SignerInfo] = None
    encrypted: bool = False


class _NoTrust(TrustStore):
    """
    The trust store of a server without C{--smime-ca}: it believes no one.
    """

    def verify(self, leaf: Any, intermediates: Any, now: Any) -> Tuple[Any, ...]:
        raise SMIMERefused("no trusted CA configured")


_NO_TRUST = _NoTrust(())


def _error(status: int, reason: str, agent: str, fault: str) -> RemoteProtocolError:
    return RemoteProtocolError(reason, status, [("Warning", warning_value(agent, fault))])


def open_body(
    settings: TrustSettings,
    body: bytes,
    content_type: Union[str, MediaType, None],
    *,
    agent: str,
    now: float,
    source: str = "",
) -> Opened:
    """
    Verify and decrypt the S/MIME layers of a MESSAGE body (a body that is
    not S/MIME comes back as it is).

    @param agent: the host named in Warning headers.
    @param source: who sent it, for the log.
    @raise RemoteProtocolError: 403 with a Warning for a signature that
        does not hold (or cannot be checked: no CA), 493 with a Warning
        for a body that cannot be decrypted, 400 with a Warning for a
        malformed one, 415 with Accept for an S/MIME protocol we do not
        read; each is logged.
    """
    if content_type is None or not body:
        return Opened(None, body)
    try:
        media = parse_media_type(content_type) if isinstance(content_type, str) else content_type
    except RemoteProtocolError:
        return Opened(None, body, None)  # the calendar parser names the fault
    if smime_kind(media) is None:
        return Opened(media, body)
    creds = settings.credentials
    try:
        unwrapped = open_smime(
            media,
            body,
            trust=settings.trust if settings.trust is not None else _NO_TRUST,
            now=now,
            key=creds.rsa_key if creds is not None else None,
            cert=creds.certificate if creds is not None else None,
        )
    except SMIMEUndecipherable as e:
        log.warn("S/MIME body from {source} undecipherable: {why}", source=source, why=e.reason)
        raise _error(493, "Undecipherable", agent, UNDECIPHERABLE.format(reason=e.reason)) from None
    except SMIMERefused as e:
        fault = NO_TRUST if settings.trust is None else REFUSED.format(reason=e.reason)
        log.warn("S/MIME signature from {source} refused: {why}", source=source, why=fault)
        raise _error(403, "Forbidden (S/MIME signature)", agent, fault) from None
    except SMIMEError as e:
        log.info("Malformed S/MIME body from {source}: {why}", source=source, why=e.reason)
        if e.status == 415:
            accept = ", ".join((*CALENDAR_TYPES, *SMIME_TYPES))
            raise RemoteProtocolError(e.reason, 415, [("Accept", accept)]) from None
        raise _error(400, "Bad S/MIME body", agent, MALFORMED.format(reason=e.reason)) from None
    return Opened(unwrapped.content_type, unwrapped.body, unwrapped.signer, unwrapped.encrypted)


def _scheduling(calendar: Component) -> List[Component]:
    return [c for c in calendar.components if c.name != "VTIMEZONE"]


def acting_addresses(calendar: Component, method: str) -> Tuple[str, List[str]]:
    """
    The role a sender must hold for C{method} (C{ORGANIZER}, or
    C{ATTENDEE} for REPLY, REFRESH and COUNTER) and the addresses that may
    act in it, normalised, in order: each property's value, then its
    SENT-BY (a delegate's own signature counts; the engine then asks
    whether the principal approved it).
    """
    role = "ATTENDEE" if method in ATTENDEE_METHODS else "ORGANIZER"
    out: List[str] = []
    for comp in _scheduling(calendar):
        for prop in comp.get_all(role):
            for value in (prop.value, prop.param("SENT-BY")):
                if isinstance(value, str) and value.strip():
                    address = normalize_address(value)
                    if address not in out:
                        out.append(address)
    return role, out


def signer_identity(signer: SignerInfo, calendar: Component, method: str) -> Optional[str]:
    """
    The signer identity that acts in the calendar (see
    L{acting_addresses}), else the first of them (sorted), normalised;
    L{None} if the certificate names none.
    """
    identities = sorted({normalize_address(i) for i in signer.identities})
    if not identities:
        return None
    _, addresses = acting_addresses(calendar, method)
    for address in addresses:
        if address in identities:
            return address
    return identities[0]


def authority(
    settings: TrustSettings,
    body: CalendarBody,
    signer: Optional[SignerInfo],
    authenticated: str,
    *,
    agent: str,
) -> str:
    """
    The identity the iTIP engine checks the message against (iSIP section
    3, steps 1-5).

    Signed: the signer identity that is the ORGANIZER (or the ATTENDEE
    of a REPLY), whatever the digest or TLS identity says (a difference is
    logged); a signer that is neither is refused.  Unsigned: the digest or
    TLS identity, unless signatures are required.

    @param authenticated: the SIP-layer identity, normalised.
    @raise RemoteProtocolError: 403 with a Warning (and logged) for an
        unsigned message when signatures are required, a certificate with
        no calendar identity, or a signer who is not the one acting.
    """
    method = body.method or ""
    if signer is None:
        if settings.require_signature:
            log.warn(
                "Unsigned iTIP {method} from {who} refused (signatures required)",
                method=method,
                who=authenticated,
            )
            raise _error(403, "Forbidden (signature required)", agent, UNSIGNED)
        return authenticated
    chosen = signer_identity(signer, body.calendar, method)
    if chosen is None:
        log.warn(
            "iTIP {method} from {who}: {why}", method=method, who=authenticated, why=NO_IDENTITY
        )
        raise _error(403, "Forbidden (S/MIME signer)", agent, NO_IDENTITY)
    role, addresses = acting_addresses(body.calendar, method)
    if addresses and chosen not in addresses:
        fault = MISMATCH.format(signer=chosen, role=role, address=addresses[0])
        log.warn(
            "iTIP {method} from {who} ignored: {why}", method=method, who=authenticated, why=fault
        )
        raise _error(403, "Forbidden (S/MIME signer)", agent, fault)
    identities = {normalize_address(i) for i in signer.identities}
    if authenticated not in identities:
        log.info(
            "iTIP {method} authenticated as {who} but signed by {signer}; the signer counts",
            method=method,
            who=authenticated,
            signer=chosen,
        )
    return chosen


__all__ = [
    "MALFORMED",
    "MISMATCH",
    "NO_IDENTITY",
    "NO_TRUST",
    "REFUSED",
    "SMIME_TYPES",
    "UNDECIPHERABLE",
    "UNSIGNED",
    "Opened",
    "Signer",
    "TrustSettings",
    "acting_addresses",
    "authority",
    "load_trust_settings",
    "open_body",
    "signer_identity",
]
