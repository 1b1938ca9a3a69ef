# -*- test-case-name: tests.unit.media -*-
"""
The built-in media plane, sans-I/O: RTP and RTCP packets (RFC 3550), the
G.711 codecs, a jitter buffer per participant, RFC 4733 telephone events
and the N-1 mixer.  Nothing here opens a socket or reads a clock: callers
pass bytes, addresses and C{now}, and send what comes back.
L{conference.app.mixer} is the Twisted side.
"""
