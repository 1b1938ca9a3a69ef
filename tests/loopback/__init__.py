# -*- test-case-name: tests.loopback -*-
"""
Tests over real sockets on 127.0.0.1 (UDP, TCP, TLS handshakes, RTP, HTTP
to local servers such as Radicale and PostgreSQL): slower, and they need a
network stack.  Pure tests are in L{tests.unit}; real programs driven end
to end in L{tests.interop}.
"""
