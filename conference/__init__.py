"""
A SIP conferencing application server for Twisted.

It implements iCalendar over SIP (draft-pessi-calsch-isip-00) and the SIP
BIND method (draft-schulzrinne-sip-bind-00) on Twisted.  Importing it (or
any of its modules but L{conference.app.locator}) does not install a
reactor, so an application embedding it may still choose its own.
"""

from __future__ import annotations

__version__ = "0.1.0"
