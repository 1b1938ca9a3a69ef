# -*- test-case-name: tests.unit.smime -*-
"""
S/MIME for iSIP (draft-pessi-calsch-isip section 3): the signer of a
calendar object, not the SIP sender, is who its ORGANIZER or ATTENDEE
must be.  This package verifies signed bodies (RFC 1847 multipart/signed
and opaque pkcs7-mime), decrypts enveloped ones, and signs what the
server sends; the SIP layer compares L{SignerInfo.identities} with the
calendar addresses.  Sans-I/O apart from L{conference.smime.config}.
"""

from __future__ import annotations

from conference.smime.config import (
    Credentials,
    SMIMEConfigError,
    load_credentials,
    load_trust_store,
)
from conference.smime.envelope import decrypt, encrypt, envelope
from conference.smime.model import (
    SignedContent,
    SignerInfo,
    SMIMEError,
    SMIMERefused,
    SMIMEUndecipherable,
    Unwrapped,
    certificate_identities,
)
from conference.smime.sign import entity_bytes, sign_entity, sign_part, sign_then_encrypt
from conference.smime.trust import TrustStore
from conference.smime.verify import is_smime, open_smime, parse_entity, smime_kind, verify_signed

__all__ = [
    "Credentials",
    "SMIMEConfigError",
    "SMIMEError",
    "SMIMERefused",
    "SMIMEUndecipherable",
    "SignedContent",
    "SignerInfo",
    "TrustStore",
    "Unwrapped",
    "certificate_identities",
    "decrypt",
    "encrypt",
    "entity_bytes",
    "envelope",
    "is_smime",
    "load_credentials",
    "load_trust_store",
    "open_smime",
    "parse_entity",
    "sign_entity",
    "sign_part",
    "sign_then_encrypt",
    "smime_kind",
    "verify_signed",
]
