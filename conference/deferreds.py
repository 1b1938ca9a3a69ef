# -*- test-case-name: tests.unit.test_deferreds -*-
"""
Following Deferreds that already fired without building callback chains.

Stores and handlers answer through Deferreds, but the memory store and
most answers of the core fire them at once; the request path reads those
values directly.  These helpers serve every layer that meets Deferreds
(the transport glue, the core, the applications), so they live in no
layer's package.  They never touch the reactor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar, Union

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from typing_extensions import TypeGuard

_T = TypeVar("_T")
_U = TypeVar("_U")

PENDING: Any = object()
"""
What L{fired_result} returns for a Deferred whose value is not there yet.
"""


def is_deferred(value: object) -> TypeGuard[Deferred[Any]]:
    """
    C{isinstance(value, Deferred)}, read from the class's MRO.  L{Deferred}
    is an C{Awaitable}, an abstract base class, so C{isinstance} of
    anything else goes through C{ABCMeta.__instancecheck__}, about four
    times slower, and the request path asks it of plain answers and store
    values several times per request.  A virtual subclass
    (C{Deferred.register}) is not seen: nothing registers one.
    """
    return Deferred in type(value).__mro__


def fired_result(d: Deferred[_T]) -> _T:
    """
    The value C{d} already fired with; else the L{PENDING} marker (not
    fired yet, waiting on another Deferred, or failed: the caller then goes
    on through callbacks as usual).

    Stores and handlers answer through Deferreds, but the memory store and
    most core answers fire them at once; reading the value directly lets
    the request path skip building callback chains for them.  It reads the
    documented C{called} and C{paused} and the C{result} attributes of
    L{Deferred}, so C{d} must not be running its own callbacks (never read
    a Deferred from inside one of its callbacks), and once read it must not
    be used again.
    """
    if d.called and not d.paused:
        result: Any = d.result
        # is_deferred, written out: this runs several times per request.
        if not isinstance(result, Failure) and Deferred not in type(result).__mro__:
            return result  # type: ignore[no-any-return]
    pending: _T = PENDING
    return pending


def then(
    value: Union[_T, Deferred[_T]], fn: Callable[[_T], Union[_U, Deferred[_U]]]
) -> Union[_U, Deferred[_U]]:
    """
    C{fn(value)}, at once when C{value} is a plain value or a Deferred that
    already fired (L{fired_result}), else as a callback.  So that code
    written this way behaves the same either way, C{fn}'s exceptions
    propagate when it runs at once: callers that return a Deferred must
    catch them (see L{as_deferred}).
    """
    if isinstance(value, Deferred):
        result = fired_result(value)
        if result is PENDING:
            return value.addCallback(fn)  # type: ignore[arg-type]
        return fn(result)
    return fn(value)


def as_deferred(call: Callable[[], Union[_T, Deferred[_T]]]) -> Deferred[_T]:
    """
    The result of C{call()} as a Deferred (its exception as a failed one),
    like L{twisted.internet.defer.maybeDeferred}.
    """
    try:
        result = call()
    except BaseException:
        d: Deferred[_T] = Deferred()
        d.errback(Failure())
        return d
    if isinstance(result, Deferred):
        return result
    d = Deferred()
    d.callback(result)
    return d
