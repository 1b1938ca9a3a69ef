# -*- test-case-name: tests.unit.sip.test_randomness -*-
"""
Cryptographic randomness from the operating system, read in batches.

Tags, branches, digest nonces, RTP's SSRC and initial sequence numbers and
timestamps, SDP session ids: a request or a join needs a few random bytes
several times, and a system call for each costs more than what they are
for (0.5 us each on CPython, 4.9 us for C{os.urandom(8)} on PyPy).  One
read of 4 KiB serves hundreds of them; every byte is handed out once, so
the values are as unpredictable as the operating system's.

A process forked after drawing would hand out the rest of its parent's
batch a second time, so a child starts with empty batches
(C{os.register_at_fork}).

Sans-I/O in the sense that matters here: no reactor, no store; reading
the kernel's random source is the whole point.
"""

from __future__ import annotations

import os
import random
import threading
import weakref
from typing import Optional

__all__ = ["RandomPool", "PooledSystemRandom", "random_bytes", "random_hex"]

# What random.SystemRandom.random computes its float from: 53 random bits.
_FLOAT_BITS = 53
_FLOAT_SCALE = 2.0**-_FLOAT_BITS


class RandomPool:
    """
    Random bytes from C{os.urandom}, fetched C{batch} bytes at a time and
    each handed out once; safe to share between threads.
    """

    def __init__(self, batch: int = 4096) -> None:
        self._batch = batch
        self._empty()
        _POOLS.add(self)

    def _empty(self) -> None:
        """
        Start over with no bytes in hand (and a lock nobody holds).
        """
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()

    def bytes(self, nbytes: int) -> bytes:
        """
        C{nbytes} random bytes (a request larger than the batch is read at
        once, alone).

        @raise ValueError: for a negative C{nbytes}.
        """
        if nbytes < 0:
            raise ValueError("a number of bytes cannot be negative")
        with self._lock:
            start = self._offset
            if start + nbytes > len(self._buffer):
                self._buffer = os.urandom(max(self._batch, nbytes))
                start = 0
            self._offset = start + nbytes
            return self._buffer[start : start + nbytes]

    def hex(self, nbytes: int) -> str:
        """
        C{nbytes} random bytes as lower-case hex.
        """
        return self.bytes(nbytes).hex()


def _forked() -> None:
    """
    In a child process: forget what the parent had read, so no value is
    handed out by both.
    """
    for pool in list(_POOLS):
        pool._empty()


_POOLS: weakref.WeakSet[RandomPool] = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

_POOL = RandomPool()


def random_bytes(nbytes: int) -> bytes:
    """
    C{nbytes} bytes of cryptographic randomness (like C{os.urandom}, drawn
    from the shared batch).
    """
    return _POOL.bytes(nbytes)


def random_hex(nbytes: int) -> str:
    """
    C{nbytes} bytes of cryptographic randomness as hex (like
    L{secrets.token_hex}, drawn from the shared batch).
    """
    return _POOL.hex(nbytes)


class PooledSystemRandom(random.SystemRandom):
    """
    L{random.SystemRandom} drawing its bytes from a L{RandomPool} (the
    shared one by default) rather than one system call per number: the
    same distributions, from the same source.  Like C{SystemRandom} it
    cannot be seeded or have its state saved.
    """

    def __init__(self, pool: Optional[RandomPool] = None) -> None:
        self._pool = pool or _POOL
        super().__init__()

    def random(self) -> float:
        """
        A float in [0.0, 1.0) with 53 random bits, as C{SystemRandom}'s.
        """
        value = int.from_bytes(self._pool.bytes(7), "big") >> (56 - _FLOAT_BITS)
        return value * _FLOAT_SCALE

    def getrandbits(self, k: int) -> int:
        """
        A non-negative int of C{k} random bits.

        @raise ValueError: for a negative C{k}.
        """
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        nbytes = (k + 7) // 8
        value = int.from_bytes(self._pool.bytes(nbytes), "big")
        return value >> (nbytes * 8 - k)

    def randbytes(self, n: int) -> bytes:
        """
        C{n} random bytes.
        """
        return self._pool.bytes(n)
