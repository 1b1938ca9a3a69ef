"""
A SIP conferencing application server for Twisted.

It implements iCalendar over SIP (draft-pessi-calsch-isip-00) and the SIP
BIND method (draft-schulzrinne-sip-bind-00) on top of
L{twisted.protocols.sip}.
"""

from __future__ import annotations

__version__ = "0.1.0"
