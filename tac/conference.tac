# -*- mode: python -*-
"""
Run the conference server with C{twistd -ny tac/conference.tac}.

It is also the example of embedding: any Twisted application builds a
L{ServerConfig}, makes a L{ConferenceService} and adds it to its own
service tree, next to its web site or anything else.
"""

from twisted.application.service import Application

from conference.service import ConferenceService, ServerConfig
from conference.startup import exit_on_failure

config = ServerConfig(
    listen=["udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1"],
    domains=["localhost"],
    store="sqlite:conference.sqlite",
)

application = Application("conference")
service = ConferenceService(config)
# A port in use or a store that cannot be opened ends twistd with one line
# and status 1 (an application serving more than this may rather go on).
exit_on_failure(service)
service.setServiceParent(application)
