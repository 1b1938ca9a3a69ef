# -*- mode: python -*-
"""
Run the conference server with C{twistd -ny tac/conference.tac}.

It is also the example of embedding: any Twisted application builds a
L{ServerConfig}, makes a L{ConferenceService} and adds it to its own
service tree, next to its web site or anything else.
"""

from twisted.application.service import Application

from conference.service import ConferenceService, ServerConfig

config = ServerConfig(
    listen=["udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1"],
    domains=["localhost"],
    store="sqlite:conference.sqlite",
)

application = Application("conference")
ConferenceService(config).setServiceParent(application)
