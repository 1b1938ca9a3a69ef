# -*- test-case-name: tests.unit.sip.test_completed -*-
"""
Server transactions that only wait, kept as table rows rather than objects.

A non-INVITE transaction that sent its final response over UDP, or an
INVITE whose 2xx was acknowledged, has one duty left until Timer J or L
(64*T1, 32 s): absorb retransmissions of its request, the former by
sending its final response again.  At a thousand requests a second that
is tens of thousands of transactions, each an object with its keys,
timers and messages for the garbage collectors to visit.  Like TCP's
TIME_WAIT mini-sockets, the layer retires such a transaction here once
its caller is done with it: its key, what a retransmission gets (the
final response's bytes, or the To tag of the acknowledged 2xx), and its
deadline in a first-in first-out queue, since every one waits 64*T1.
"""

from __future__ import annotations

from array import array
from typing import Dict, Hashable, List, Optional, Tuple, Union

from conference.sip.compacted import from_wire
from conference.sip.transaction_model import Action, Peer, SendMessage

__all__ = ["CompletedTable"]

#: What a row keeps: a non-INVITE's final response as the bytes it was
#: sent as, or the To tag of an INVITE's acknowledged 2xx (whose
#: retransmissions are absorbed without an answer, RFC 6026 section 7.1).
Row = Union[bytes, str]

# Consumed queue entries are dropped in one slice once they are this many
# and half the queue: amortised constant time per entry.
_TRIM = 1024


class CompletedTable:
    """
    Retired server transactions by RFC 3261 key, until their deadline.

    The queue keeps deadlines in a C{double} array and keys in a list, in
    the order rows were added, which is their deadlines' order: each row
    takes at least the deadline of the row before it (L{add}), so a row
    added late (an ACK long after its 2xx) waits a little longer than its
    own deadline, never less.
    """

    def __init__(self) -> None:
        self._rows: Dict[Hashable, Row] = {}
        self._deadlines = array("d")
        self._keys: List[Hashable] = []
        self._merge_keys: List[Optional[Hashable]] = []
        self._head = 0
        #: Rows dropped before their deadline by L{trim}.
        self.dropped_early = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def add(self, key: Hashable, row: Row, merge_key: Optional[Hashable], deadline: float) -> None:
        """
        Keep C{row} under C{key} until C{deadline} (or the deadline of the
        row added before, if later).  C{merge_key} is the section 8.2.2.2
        key the transaction was filed under, handed back by L{expire}.

        @raise ValueError: if a row has C{key} already (the layer absorbs
            every request with it, so no second transaction can have it).
        """
        if key in self._rows:
            raise ValueError(f"a completed transaction is kept under {key!r} already")
        deadlines = self._deadlines
        if len(deadlines) > self._head and deadlines[-1] > deadline:
            deadline = deadlines[-1]
        self._rows[key] = row
        deadlines.append(deadline)
        self._keys.append(key)
        self._merge_keys.append(merge_key)

    def absorb(self, key: Hashable, peer: Peer) -> Optional[List[Action]]:
        """
        What a retransmission of C{key}'s request, arrived from C{peer},
        gets: its final response sent again, or nothing for an INVITE
        whose 2xx was acknowledged; L{None} if no row has C{key}.
        """
        row = self._rows.get(key)
        if row is None:
            return None
        if isinstance(row, str):
            return []
        return [SendMessage(from_wire(row), peer)]

    def invite_tag(self, key: Hashable) -> Optional[str]:
        """
        The To tag of the acknowledged 2xx of the INVITE under C{key}, for
        the 200 to a CANCEL that comes after it (RFC 3261 section 9.2);
        L{None} if no such INVITE is kept.
        """
        row = self._rows.get(key)
        return row if isinstance(row, str) else None

    def next_deadline(self) -> Optional[float]:
        """
        When the oldest row expires, or L{None} if there is none.
        """
        head = self._head
        return self._deadlines[head] if head < len(self._deadlines) else None

    def expire(self, now: float) -> List[Tuple[Hashable, Optional[Hashable]]]:
        """
        Drop the rows whose deadline is C{now} or earlier; their keys and
        merge keys, oldest first, for the caller's own tables.
        """
        return self._drop(now, 0)

    def trim(self, limit: int) -> List[Tuple[Hashable, Optional[Hashable]]]:
        """
        Drop the oldest rows beyond C{limit}, before their deadline (the
        ones nearest it); their keys and merge keys, as L{expire}.  Counted
        in L{dropped_early}.
        """
        excess = len(self._rows) - limit
        if excess <= 0:
            return []
        self.dropped_early += excess
        return self._drop(float("-inf"), excess)

    def _drop(self, now: float, extra: int) -> List[Tuple[Hashable, Optional[Hashable]]]:
        """Drop the rows due at C{now}, then C{extra} more, oldest first."""
        deadlines, head = self._deadlines, self._head
        end = len(deadlines)
        if head >= end or (deadlines[head] > now and extra <= 0):
            return []
        rows, keys, merge_keys = self._rows, self._keys, self._merge_keys
        gone: List[Tuple[Hashable, Optional[Hashable]]] = []
        while head < end:
            if deadlines[head] > now:
                if extra <= 0:
                    break
                extra -= 1
            key = keys[head]
            del rows[key]
            gone.append((key, merge_keys[head]))
            keys[head] = merge_keys[head] = None
            head += 1
        if head == end:
            del deadlines[:], keys[:], merge_keys[:]
            head = 0
        elif head >= _TRIM and 2 * head >= end:
            del deadlines[:head], keys[:head], merge_keys[:head]
            head = 0
        self._head = head
        return gone
