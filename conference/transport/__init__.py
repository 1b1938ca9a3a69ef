"""
Thin Twisted adapters: UDP, TCP/TLS stream transports and the clock that
drives the sans-I/O transaction layer.
"""
