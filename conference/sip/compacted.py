# -*- test-case-name: tests.unit.sip.test_compacted -*-
"""
Messages held as their serialized bytes alone (L{compact}): what a
completed transaction keeps while it waits for its timer.

A loaded server holds tens of thousands of them; as bytes, each is a
couple of objects for the garbage collector instead of some seventy.
Their classes are apart from L{Request} and L{Response} so that only a
compacted message pays for reading itself back.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from conference.sip.message import Message, Request, Response

__all__ = ["CompactRequest", "CompactResponse", "compact", "from_wire"]


class _Compacted:
    """
    What L{compact} turns a message into: a class of its own, so that
    attribute reads on every other message stay as fast as they are; the
    first read of a dropped attribute (only then is L{__getattr__} asked)
    parses the bytes again and gives the message its own class back.
    """

    _wire: bytes

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_wire" not in self.__dict__:
            raise AttributeError(name)
        _expand(self)
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # Setting a dropped part (message.body = ...) changes the message:
        # read back first, so the bytes are not sent for it.
        if name in _DROPPED and "_wire" in self.__dict__:
            _expand(self)
        object.__setattr__(self, name, value)

    def to_bytes(self) -> bytes:
        """
        The bytes the message was compacted with.
        """
        return self._wire


class CompactRequest(_Compacted, Request):
    """
    A compacted L{Request} (see L{compact}).
    """

    def __repr__(self) -> str:
        return f"<Request {self.method} (compacted)>"


class CompactResponse(_Compacted, Response):
    """
    A compacted L{Response} (see L{compact}).
    """


# What compact() drops (a response has no "uri"), and the class it gives.
_DROPPED = ("headers", "body", "_views", "uri")
_COMPACTED: Dict[type, type] = {Request: CompactRequest, Response: CompactResponse}


def compact(message: Message, wire: Optional[bytes] = None) -> None:
    """
    L{Message.compact<conference.sip.message._MessageMixin.compact>}:
    drop what C{wire} holds and give C{message} its compacted class.
    """
    compacted = _COMPACTED.get(type(message))
    if compacted is None:
        return  # compacted already, or a subclass this does not know
    if wire is None:
        wire = message.to_bytes()
    fields = message.__dict__
    for name in _DROPPED:
        fields.pop(name, None)
    fields["_wire"] = wire
    message.__class__ = compacted


def from_wire(wire: bytes) -> Message:
    """
    The compacted message of C{wire}, bytes a message serialized to (the
    form a completed transaction holds its request and response in,
    L{conference.sip.transaction_model.ServerTransaction.hold}): its start
    line is read now (a request's method, a response's code and phrase),
    the rest when first asked for, as for any compacted message.

    @raise ValueError: if C{wire} has no start line of either kind.
    """
    line, _, _ = wire.partition(b"\r\n")
    first, _, rest = line.partition(b" ")
    message: Message
    if first.startswith(b"SIP/"):
        code, _, phrase = rest.partition(b" ")
        message = object.__new__(CompactResponse)
        fields = message.__dict__
        fields["code"] = int(code)
        fields["phrase"] = phrase.decode("utf-8")
    elif first and rest:
        message = object.__new__(CompactRequest)
        fields = message.__dict__
        fields["method"] = first.decode("ascii")
    else:
        raise ValueError("no SIP start line")
    fields["_wire"] = wire
    return message


def _expand(message: _Compacted) -> None:
    """
    Give a compacted message back what L{compact} dropped, parsed from its
    bytes, and its own class.
    """
    # Imported here: the parser imports conference.sip.message, which
    # imports this module once its classes are defined.
    from conference.sip.parser import parse_wire

    wire = message._wire
    parsed = parse_wire(wire)
    fields = message.__dict__
    del fields["_wire"]
    fields["headers"] = parsed.headers
    fields["body"] = parsed.body
    fields["_views"] = {}
    if isinstance(parsed, Request):
        fields["uri"] = parsed.uri
    object.__setattr__(message, "__class__", type(parsed))
