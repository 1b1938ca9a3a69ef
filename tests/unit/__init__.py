# -*- test-case-name: tests.unit -*-
"""
Tests that need no network: sans-I/O cores on values and fake clocks,
adapters on memory transports.  Real sockets are in L{tests.loopback}
(and real programs in L{tests.interop}).
"""
