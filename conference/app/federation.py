# -*- test-case-name: tests.unit.app.test_federation -*-
"""
Federated, signed scheduling (docs/federation.rst): an organizer of
another domain, with no account here, schedules or updates a conference
with an iTIP message S/MIME-signed by a certificate that chains to
C{--smime-ca} and names that ORGANIZER.  The signature is the
authentication (iSIP section 3: the signer, not the SIP sender, counts),
so such a MESSAGE needs no digest; everything else a stranger sends stays
refused.  Rate limits and logs key on the signer, and an exact replay of a
signed message is recognised and ignored while it is remembered.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, List, Optional

from twisted.logger import Logger

from conference.app.calendarbody import CalendarBody, warning_value
from conference.app.trust import Opened, TrustSettings, signer_identity
from conference.calendar import normalize_address
from conference.calendar.itip import ATTENDEE_METHODS
from conference.limits import RateLimiter
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.headers import parse_media_type
from conference.sip.message import Request

log = Logger()

#: The methods a foreign organizer may send (what an ORGANIZER does).
ORGANIZER_METHODS = frozenset({"REQUEST", "ADD", "CANCEL", "DECLINECOUNTER"})

# The Warning texts (docs/federation.rst lists them).
STRANGER = "scheduling from another domain must be S/MIME-signed by the ORGANIZER"
NOT_ORGANIZER = "S/MIME signer {signer} is not the ORGANIZER {organizer}"
ORGANIZER_ONLY = "a signer from another domain may only act as ORGANIZER"
SERVED = "the ORGANIZER {organizer} has an account here: authenticate"
STALE = "signed {age:.0f} s ago, more than {window:.0f} s"


class Federation:
    """
    Decides whether a MESSAGE that brought no SIP identity is a signed
    organizer's of another domain, and remembers the signed messages
    accepted.

    @ivar window: seconds a signed message is remembered (and, when it
        gives a signing time, how old it may be).
    """

    def __init__(
        self,
        trust: TrustSettings,
        *,
        domain_of: Callable[[str], Optional[str]],
        limiter: Optional[RateLimiter] = None,
        window: float = 86400.0,
        max_remembered: int = 100_000,
    ) -> None:
        self.trust = trust
        self.domain_of = domain_of
        self.limiter = limiter
        self.window = window
        self.max_remembered = max_remembered
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    # The SIP layer's question --------------------------------------------------

    def candidate(self, request: Request) -> bool:
        """
        Whether C{request} may skip the digest challenge: a MESSAGE from
        a domain not served here with an S/MIME signed body, on a server
        that trusts some CA.  The scheduler then requires the signature.
        """
        if self.trust.trust is None or request.method != "MESSAGE":
            return False
        try:
            host = str(getattr(request.from_.uri, "host", "") or "")
            ctype = request.header("content-type")
            media = parse_media_type(ctype) if ctype else None
        except SIPProtocolError:
            return False
        if not host or self.domain_of(host) is not None or media is None:
            return False
        if media.mime == "multipart/signed":
            return True
        kind = (media.params.get("smime-type") or "").lower()
        return media.mime in ("application/pkcs7-mime", "application/x-pkcs7-mime") and (
            kind in ("signed-data", "enveloped-data")
        )

    # The scheduler's ----------------------------------------------------------

    def admit(
        self, body: CalendarBody, opened: Opened, raw: bytes, *, agent: str, now: float
    ) -> Optional[str]:
        """
        The ORGANIZER a signed message of another domain speaks for, or
        L{None} when it is a replay of one accepted before (answer it 200
        and do nothing again).

        @param raw: the MESSAGE body as received (what the replay cache
            keys on).
        @raise RemoteProtocolError: 403 with a Warning for an unsigned
            message, a signer who is not the ORGANIZER, an attendee's
            method, an ORGANIZER of a served domain or a stale signature;
            503 with Retry-After when the signer is over its rate limit.
        """
        method = body.method or ""
        signer = opened.signer
        if signer is None:
            log.info("Unsigned iTIP {method} from a stranger refused", method=method)
            raise _forbidden(agent, STRANGER)
        chosen = signer_identity(signer, body.calendar, method)
        if method in ATTENDEE_METHODS or method not in ORGANIZER_METHODS:
            self._refuse(method, chosen, ORGANIZER_ONLY)
            raise _forbidden(agent, ORGANIZER_ONLY)
        organizers = _organizers(body)
        if chosen is None or not organizers or chosen not in organizers:
            fault = NOT_ORGANIZER.format(
                signer=chosen or "(no identity)", organizer=organizers[0] if organizers else "?"
            )
            self._refuse(method, chosen, fault)
            raise _forbidden(agent, fault)
        host = chosen.partition(":")[2].rpartition("@")[2].split(";", 1)[0]
        if self.domain_of(host) is not None:
            fault = SERVED.format(organizer=chosen)
            self._refuse(method, chosen, fault)
            raise _forbidden(agent, fault)
        if signer.signing_time is not None:
            age = now - signer.signing_time.timestamp()
            if age > self.window:
                fault = STALE.format(age=age, window=self.window)
                self._refuse(method, chosen, fault)
                raise _forbidden(agent, fault)
        if self.limiter is not None:
            retry = self.limiter.check_identity(chosen, "MESSAGE", now)
            if retry is not None:
                if self.limiter.should_log_identity(chosen, now):
                    log.warn(
                        "Rate limiting signer {signer}: answering 503 (Retry-After {retry})",
                        signer=chosen,
                        retry=retry,
                    )
                raise SIPProtocolError(
                    "Service Unavailable (rate limited)", 503, [("Retry-After", str(retry))]
                )
        if self._remembered(raw, now):
            log.info(
                "Replay of a signed iTIP {method} by {signer} ignored", method=method, signer=chosen
            )
            return None
        log.info("Signed iTIP {method} from {signer} (other domain)", method=method, signer=chosen)
        return chosen

    def remember(self, raw: bytes, now: float) -> None:
        """
        Note that the signed message C{raw} was applied: the same bytes
        again within L{window} are a replay.
        """
        key = hashlib.sha256(raw).digest()
        self._seen.pop(key, None)
        self._seen[key] = now + self.window
        while len(self._seen) > self.max_remembered:
            self._seen.popitem(last=False)

    def _remembered(self, raw: bytes, now: float) -> bool:
        while self._seen:
            oldest_key, until = next(iter(self._seen.items()))
            if until > now:
                break
            del self._seen[oldest_key]
        return hashlib.sha256(raw).digest() in self._seen

    def _refuse(self, method: str, signer: Optional[str], why: str) -> None:
        log.warn(
            "Signed iTIP {method} from {signer} (other domain) refused: {why}",
            method=method,
            signer=signer or "(no identity)",
            why=why,
        )


def _organizers(body: CalendarBody) -> List[str]:
    out: List[str] = []
    for comp in body.calendar.components:
        for prop in comp.get_all("ORGANIZER"):
            if isinstance(prop.value, str) and prop.value.strip():
                address = normalize_address(prop.value)
                if address not in out:
                    out.append(address)
    return out


def _forbidden(agent: str, fault: str) -> RemoteProtocolError:
    return RemoteProtocolError("Forbidden", 403, [("Warning", warning_value(agent, fault))])


__all__ = [
    "NOT_ORGANIZER",
    "ORGANIZER_METHODS",
    "ORGANIZER_ONLY",
    "SERVED",
    "STALE",
    "STRANGER",
    "Federation",
]
