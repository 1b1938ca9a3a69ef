# -*- test-case-name: tests.unit.test_tap -*-
"""
Makes C{twistd conference} available once the package is installed.
"""

from twisted.application.service import ServiceMaker

conference = ServiceMaker(
    "conference",
    "conference.tap",
    "SIP conferencing application server (iCalendar over SIP, BIND)",
    "conference",
)
