# -*- test-case-name: tests.unit.sip.test_errors -*-
"""
Protocol errors that carry the SIP status code to answer with.

Modelled on h11: a L{RemoteProtocolError} says the peer sent something we
cannot accept and knows which response (usually 400) tells it why; a
L{LocalProtocolError} says our own code tried to send something invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    from conference.sip.message import Request, Response

# The reason phrases of the IANA "Response Codes" registry.  Those Twisted's
# twisted.protocols.sip.statusCodes has are spelled as it spells them (the
# server said them that way when it used that table), the rest as the
# registry does; any other code is "Unknown".
REASON_PHRASES: Mapping[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    303: "See Other",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    424: "Bad Location Information",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    430: "Flow Failed",
    433: "Anonymity Disallowed",
    436: "Bad Identity-Info",
    437: "Unsupported Certificate",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "SIP Version not supported",
    513: "Message Too Large",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does not exist anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}


def reason_phrase(status: int) -> str:
    """
    The usual reason phrase of a status code, C{"Unknown"} for codes
    nobody registered.
    """
    return REASON_PHRASES.get(status, "Unknown")


class SIPProtocolError(Exception):
    """
    A SIP-level fault with the status code and reason phrase that describe it.

    @ivar status: the SIP status code to answer with (400 unless said).
    @ivar reason: a short reason phrase naming the fault; it goes on the
        status line, so it never holds CR or LF.
    @ivar headers: extra header fields the answer should carry (for example
        C{Unsupported} with a 420, C{Accept} with a 415).
    @ivar message: the message at fault, as far as it could be parsed, so a
        request can still be answered; L{None} if nothing usable was read.
    """

    message: Optional[Union[Request, Response]] = None

    def __init__(
        self,
        reason: str,
        status: int = 400,
        headers: Optional[Mapping[str, str] | Sequence[Tuple[str, str]]] = None,
    ) -> None:
        reason = " ".join(reason.split()) or REASON_PHRASES.get(status, "Error")
        super().__init__(reason)
        self.reason = reason
        self.status = status
        if headers is None:
            self.headers: list[tuple[str, str]] = []
        elif isinstance(headers, Mapping):
            self.headers = list(headers.items())
        else:
            self.headers = list(headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.status})"


class RemoteProtocolError(SIPProtocolError):
    """
    The peer sent a message we refuse; answer with C{status} if it was a
    request, drop it if it was a response.
    """


class LocalProtocolError(SIPProtocolError):
    """
    Our own code tried to build or send an invalid message or to drive a
    state machine in a way it does not allow.
    """


class MessageTooLarge(RemoteProtocolError):
    """
    A message went over the configured size limit (answered 513, or the
    stream closed, since its framing is lost).
    """

    def __init__(self, reason: str = "Message Too Large") -> None:
        super().__init__(reason, 513)
