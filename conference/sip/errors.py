# -*- test-case-name: tests.sip.test_errors -*-
"""
Protocol errors that carry the SIP status code to answer with.

Modelled on h11: a L{RemoteProtocolError} says the peer sent something we
cannot accept and knows which response (usually 400) tells it why; a
L{LocalProtocolError} says our own code tried to send something invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional, Sequence, Tuple, Union

from twisted.protocols.sip import statusCodes

if TYPE_CHECKING:
    from conference.sip.message import Request, Response


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
        reason = " ".join(reason.split()) or statusCodes.get(status, "Error")
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
