# -*- test-case-name: tests.loopback.test_janushttp -*-
"""
Janus's REST API over HTTP (L{IJanusTransport}) with
L{twisted.web.client.Agent} on the injected reactor: JSON in, JSON out,
an error for anything else.  Timeouts are the caller's
(L{conference.app.janusclient}), which cancels what takes too long; the
connection attempt has its own.
"""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any, Dict, Optional

from twisted.internet.defer import Deferred
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse
from zope.interface import implementer

from conference.interfaces import IJanusTransport
from conference.janus.protocol import JanusError
from conference.reactors import default_reactor

#: The most a reply may hold (a long poll returns at most 10 events).
MAX_REPLY = 1 << 20
CONNECT_TIMEOUT = 5.0


def parse_janus_url(url: str) -> str:
    """
    The base URL of C{--media janus:URL}, without a trailing slash.

    @raise ValueError: not an http(s) URL with a host.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL of Janus's API: {url!r}")
    return url.rstrip("/")


@implementer(IJanusTransport)
class HTTPJanusTransport:
    """
    Posts JSON to (and long-polls) a Janus HTTP API.

    @ivar url: the API's base URL (for example C{http://127.0.0.1:8088/janus}).
    """

    def __init__(
        self,
        url: str,
        reactor: Optional[Any] = None,
        *,
        agent: Optional[IAgent] = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.url = parse_janus_url(url)
        reactor = default_reactor(reactor)
        # No persistent connections: nothing stays open between requests.
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = agent or Agent(reactor, connectTimeout=connect_timeout, pool=pool)

    def _request(self, method: bytes, path: str, body: Optional[Dict[str, Any]]) -> Deferred[Any]:
        producer = None
        headers = Headers({b"Accept": [b"application/json"]})
        if body is not None:
            producer = FileBodyProducer(BytesIO(json.dumps(body).encode("utf-8")))
            headers.addRawHeader(b"Content-Type", b"application/json")
        d = self.agent.request(method, (self.url + path).encode("ascii"), headers, producer)
        return d.addCallback(self._read)

    def _read(self, response: IResponse) -> Deferred[Any]:
        if response.code != 200:
            code = response.code

            def refused(_: Any) -> Any:
                raise JanusError(f"HTTP {code} from Janus")

            return readBody(response).addBoth(refused)
        if isinstance(response.length, int) and response.length > MAX_REPLY:
            raise JanusError("a reply from Janus too large")
        return readBody(response).addCallback(_decode)

    def post(self, path: str, body: Dict[str, Any]) -> Deferred[Any]:
        """POST C{body} as JSON to C{path}; see L{IJanusTransport.post}."""
        return self._request(b"POST", path, body)

    def get(self, path: str) -> Deferred[Any]:
        """GET C{path} (a long poll); see L{IJanusTransport.get}."""
        return self._request(b"GET", path, None)


def _decode(data: bytes) -> Any:
    if len(data) > MAX_REPLY:
        raise JanusError("a reply from Janus too large")
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as e:  # also UnicodeDecodeError
        raise JanusError(f"a reply from Janus that is not JSON: {e}") from None
