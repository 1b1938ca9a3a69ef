# -*- test-case-name: tests.unit.sip.test_randomness -*-
"""
Tests for L{conference.sip.randomness}.
"""

from __future__ import annotations

import os
import random
from typing import List

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.randomness import PooledSystemRandom, RandomPool, random_bytes, random_hex


class PoolTests(SynchronousTestCase):
    """
    RandomPool: bytes from os.urandom, read in batches, each handed out once.
    """

    def setUp(self) -> None:
        self.reads: List[int] = []
        counter = iter(range(1, 1 << 30))

        def urandom(n: int) -> bytes:
            self.reads.append(n)
            return bytes(next(counter) % 256 for _ in range(n))

        self.patch(os, "urandom", urandom)

    def test_batched(self) -> None:
        """Many small draws make one read of the system per batch."""
        pool = RandomPool(batch=64)
        drawn = b"".join(pool.bytes(8) for _ in range(16))
        self.assertEqual(self.reads, [64, 64])
        self.assertEqual(drawn, bytes(i % 256 for i in range(1, 129)))

    def test_each_byte_once(self) -> None:
        """A draw that does not fit what is left starts a fresh batch; nothing is reused."""
        pool = RandomPool(batch=10)
        first, second = pool.bytes(6), pool.bytes(6)
        self.assertEqual(self.reads, [10, 10])
        self.assertEqual(first, bytes(range(1, 7)))
        self.assertEqual(second, bytes(range(11, 17)))

    def test_large_draw(self) -> None:
        """A draw larger than the batch is read whole, at once."""
        pool = RandomPool(batch=16)
        self.assertEqual(len(pool.bytes(100)), 100)
        self.assertEqual(self.reads, [100])

    def test_negative(self) -> None:
        """A negative count is refused."""
        self.assertRaises(ValueError, RandomPool().bytes, -1)

    def test_hex(self) -> None:
        """hex gives the drawn bytes as lower-case hex."""
        self.assertEqual(RandomPool(batch=8).hex(3), "010203")


class SharedPoolTests(SynchronousTestCase):
    """
    random_bytes and random_hex draw fresh values from the shared pool.
    """

    def test_length_and_uniqueness(self) -> None:
        """Each call gives fresh values of the asked length, across batch refills."""
        tokens = [random_hex(8) for _ in range(2000)]
        self.assertTrue(all(len(t) == 16 and int(t, 16) >= 0 for t in tokens))
        self.assertEqual(len(set(tokens)), len(tokens))
        self.assertEqual(len(random_hex(5000)), 10000)
        salts = [random_bytes(8) for _ in range(2000)]
        self.assertEqual(len(set(salts)), len(salts))


class ForkTests(SynchronousTestCase):
    """
    A forked child does not hand out its parent's remaining bytes again.
    """

    if not hasattr(os, "fork") or not hasattr(os, "register_at_fork"):
        skip = "needs os.fork and os.register_at_fork"

    def test_child_draws_afresh(self) -> None:
        """After a fork, the child's next bytes differ from the parent's next ones."""
        pool = RandomPool()
        pool.bytes(8)  # the batches are read: most is still to hand out
        random_bytes(8)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.write(write, pool.bytes(16) + random_bytes(16))
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            child = pipe.read()
        os.waitpid(pid, 0)
        self.assertEqual(len(child), 32)
        self.assertNotEqual(child[:16], pool.bytes(16))
        self.assertNotEqual(child[16:], random_bytes(16))


class PooledSystemRandomTests(SynchronousTestCase):
    """
    PooledSystemRandom: SystemRandom's numbers, from the pool.
    """

    def test_is_system_random(self) -> None:
        """It is a SystemRandom, and like it cannot be seeded into repeating itself."""
        rng = PooledSystemRandom()
        self.assertIsInstance(rng, random.SystemRandom)
        rng.seed(1)
        first = [rng.getrandbits(64) for _ in range(4)]
        rng.seed(1)
        self.assertNotEqual(first, [rng.getrandbits(64) for _ in range(4)])
        self.assertRaises(NotImplementedError, rng.getstate)

    @given(st.integers(min_value=0, max_value=300))
    def test_getrandbits_range(self, k: int) -> None:
        """getrandbits(k) is a non-negative int below 2**k."""
        value = PooledSystemRandom().getrandbits(k)
        self.assertTrue(0 <= value < (1 << k))

    def test_getrandbits_from_pool(self) -> None:
        """The bits are the pool's bytes, the surplus low bits dropped."""
        pool = RandomPool()
        self.patch(pool, "bytes", lambda n: b"\xff" * (n - 1) + b"\x81")
        rng = PooledSystemRandom(pool)
        self.assertEqual(rng.getrandbits(12), 0xFF8)
        self.assertEqual(rng.getrandbits(16), 0xFF81)
        self.assertEqual(rng.randbytes(3), b"\xff\xff\x81")
        self.assertRaises(ValueError, rng.getrandbits, -1)

    def test_random_range(self) -> None:
        """random() spans [0, 1) with 53 bits: all zero bytes give 0.0, all ones just below 1."""
        pool = RandomPool()
        rng = PooledSystemRandom(pool)
        self.patch(pool, "bytes", lambda n: b"\x00" * n)
        self.assertEqual(rng.random(), 0.0)
        self.patch(pool, "bytes", lambda n: b"\xff" * n)
        self.assertEqual(rng.random(), 1.0 - 2.0**-53)

    def test_distributions(self) -> None:
        """The derived draws (uniform, randrange) stay in their ranges."""
        rng = PooledSystemRandom()
        values = [rng.uniform(0.5, 1.5) for _ in range(2000)]
        self.assertTrue(all(0.5 <= v <= 1.5 for v in values))
        self.assertGreater(len(set(values)), 1990)
        self.assertTrue(all(0 <= rng.randrange(10) < 10 for _ in range(500)))
        self.assertEqual({rng.randrange(4) for _ in range(500)}, {0, 1, 2, 3})
