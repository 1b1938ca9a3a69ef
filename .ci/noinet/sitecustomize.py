"""
Put on PYTHONPATH by .ci/run for the tests.unit run: creating a network
socket (IPv4 or IPv6) fails, so a unit test that reaches for the network
fails instead of passing slowly; those belong in tests.loopback.
"""

import socket

_init = socket.socket.__init__


def _guarded(self, family=-1, type=-1, proto=-1, fileno=None):  # type: ignore[no-untyped-def]
    if fileno is None and family in (socket.AF_INET, socket.AF_INET6):
        raise OSError("a network socket in tests.unit (put the test in tests.loopback)")
    _init(self, family, type, proto, fileno)


socket.socket.__init__ = _guarded  # type: ignore[method-assign]
