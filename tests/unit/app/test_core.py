# -*- test-case-name: tests.unit.app.test_core -*-
"""
Tests for L{conference.app.core}: the UAS checks and the core answers.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conference.app.core import CoreRouter, RequestContext, is_ip_literal
from conference.interfaces import IRequestHandler, IRouter
from conference.records import LimitExceededError, StoreError
from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from tests.builders import make_request


@implementer(IRequestHandler)
class EchoHandler:
    """
    Answers MESSAGE with 200 and records what it saw.
    """

    methods = ("MESSAGE",)
    accepts: Dict[str, Sequence[str]] = {"MESSAGE": ("text/plain", "application/calendar+xml")}

    def __init__(self) -> None:
        self.seen: List[Request] = []

    def handle_request(self, request: Request, context: RequestContext) -> Response:
        self.seen.append(request)
        if request.body == b"boom":
            raise RemoteProtocolError("Bad calendar", 400)
        return make_response(request, 200, to_tag="h")

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        pass

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        pass

    def handle_timeout(self, request: Request) -> None:
        pass


PEER = Peer("UDP", "192.0.2.1", 5060)


class CoreRouterTests(SynchronousTestCase):
    """
    The RFC 3261 section 8.2 checks and dispatch.
    """

    def setUp(self) -> None:
        self.router = CoreRouter(
            ["example.com"], ["127.0.0.1"], tag_factory=lambda: "t1", accept_ip_literals=True
        )
        self.handler = EchoHandler()
        self.router.add_handler(self.handler)

    def answer(self, request: Request) -> Response:
        result = self.router.dispatch(request, RequestContext(peer=PEER, now=0.0))
        if isinstance(result, Deferred):
            return self.successResultOf(result)  # type: ignore[no-any-return]
        return result

    def test_handler_provides_interface(self) -> None:
        """The test handler honours IRequestHandler, as real ones must."""
        self.assertTrue(verifyObject(IRequestHandler, self.handler))

    def test_router_provides_interface(self) -> None:
        """CoreRouter provides IRouter, all the transport knows of it."""
        self.assertTrue(verifyObject(IRouter, self.router))

    def test_options(self) -> None:
        """OPTIONS gets 200 with Allow, Accept and Supported and a To tag."""
        response = self.answer(make_request("OPTIONS", "sip:example.com"))
        self.assertEqual(response.code, 200)
        allow = response.header_values("allow")
        for method in ("ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE"):
            self.assertIn(method, allow)
        self.assertIn("application/calendar+xml", response.header_values("accept"))
        self.assertFalse(response.has_header("supported"))
        self.assertEqual(response.to.tag, "t1")
        self.router.supported = frozenset(["timer"])
        response = self.answer(make_request("OPTIONS", "sip:example.com"))
        self.assertEqual(response.header_values("supported"), ["timer"])

    def test_known_method_not_allowed(self) -> None:
        """A known method nobody handles gets 405 with Allow."""
        response = self.answer(make_request("PUBLISH", "sip:example.com"))
        self.assertEqual(response.code, 405)
        self.assertIn("MESSAGE", response.header_values("allow"))

    def test_unknown_method(self) -> None:
        """An unknown method gets 501 Not Implemented."""
        response = self.answer(make_request("FOOBAR", "sip:example.com"))
        self.assertEqual(response.code, 501)

    def test_unknown_scheme(self) -> None:
        """A Request-URI scheme other than sip/sips gets 416 (RFC 4475 3.3.2)."""
        response = self.answer(make_request("OPTIONS", "unknownscheme:whatever"))
        self.assertEqual(response.code, 416)

    def test_tel_scheme(self) -> None:
        """A tel: Request-URI gets 416 too: this server routes no numbers (RFC 4475 3.3.3)."""
        response = self.answer(make_request("OPTIONS", "tel:+12125551212"))
        self.assertEqual(response.code, 416)

    def test_foreign_domain(self) -> None:
        """A domain not served gets 404."""
        response = self.answer(make_request("OPTIONS", "sip:bob@elsewhere.org"))
        self.assertEqual(response.code, 404)

    def test_ip_literal_is_local(self) -> None:
        """Requests to an IP address are for this server."""
        self.assertEqual(self.answer(make_request("OPTIONS", "sip:192.0.2.77")).code, 200)
        self.assertEqual(self.answer(make_request("OPTIONS", "sip:[2001:db8::1]")).code, 200)

    def test_require_unknown(self) -> None:
        """An unknown Require option tag gets 420 with Unsupported naming it."""
        request = make_request(
            "OPTIONS", "sip:example.com", headers=[("Require", "nothingsupported, foo")]
        )
        response = self.answer(request)
        self.assertEqual(response.code, 420)
        self.assertEqual(response.header_values("unsupported"), ["nothingsupported", "foo"])

    def test_require_supported(self) -> None:
        """A Require the server supports passes."""
        self.router.supported = frozenset(["timer"])
        request = make_request("OPTIONS", "sip:example.com", headers=[("Require", "timer")])
        self.assertEqual(self.answer(request).code, 200)

    def test_unsupported_media_type(self) -> None:
        """A body of a type the handler does not read gets 415 with Accept."""
        request = make_request(
            "MESSAGE",
            "sip:conf@example.com",
            headers=[("Content-Type", "application/unknown")],
            body=b"x",
        )
        response = self.answer(request)
        self.assertEqual(response.code, 415)
        self.assertIn("application/calendar+xml", response.header_values("accept"))
        self.assertEqual(self.handler.seen, [])

    def test_transfer_encoding_refused(self) -> None:
        """A Content-Transfer-Encoding is refused with 415 (iSIP section 2.5)."""
        request = make_request(
            "MESSAGE",
            "sip:conf@example.com",
            headers=[("Content-Type", "text/plain"), ("Content-Transfer-Encoding", "base64")],
            body=b"aGk=",
        )
        self.assertEqual(self.answer(request).code, 415)

    def test_content_encoding_refused(self) -> None:
        """A gzip Content-Encoding gets 415 with Accept-Encoding: identity."""
        request = make_request(
            "MESSAGE",
            "sip:conf@example.com",
            headers=[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
            body=b"x",
        )
        response = self.answer(request)
        self.assertEqual(response.code, 415)
        self.assertEqual(response.header("accept-encoding"), "identity")

    def test_dispatch_to_handler(self) -> None:
        """An acceptable request reaches its handler, whose answer is returned."""
        request = make_request(
            "MESSAGE", "sip:conf@example.com", headers=[("Content-Type", "text/plain")], body=b"hi"
        )
        self.assertEqual(self.answer(request).code, 200)
        self.assertEqual(len(self.handler.seen), 1)

    def test_handler_error_becomes_response(self) -> None:
        """A protocol error raised by a handler becomes its status and reason."""
        request = make_request(
            "MESSAGE",
            "sip:conf@example.com",
            headers=[("Content-Type", "text/plain")],
            body=b"boom",
        )
        response = self.answer(request)
        self.assertEqual((response.code, response.phrase), (400, "Bad calendar"))

    def test_deferred_error_becomes_response(self) -> None:
        """A handler's failed Deferred with a protocol error becomes a response."""
        handler = EchoHandler()
        handler.handle_request = lambda r, c: fail(RemoteProtocolError("Gone", 410))  # type: ignore[method-assign,assignment,return-value]
        self.router.add_handler(handler)
        request = make_request(
            "MESSAGE", "sip:conf@example.com", headers=[("Content-Type", "text/plain")], body=b"x"
        )
        self.assertEqual(self.answer(request).code, 410)

    def test_bye_without_dialog(self) -> None:
        """BYE that no handler owns gets 481."""
        request = make_request("BYE", "sip:conf@example.com", to="<sip:conf@example.com>;tag=x")
        self.assertEqual(self.answer(request).code, 481)

    def test_realm(self) -> None:
        """The realm is the served domain of the Request-URI, else of To, else the first."""
        self.assertEqual(
            self.router.realm_for(make_request("REGISTER", "sip:example.com")), "example.com"
        )
        request = make_request("OPTIONS", "sip:127.0.0.1", to="<sip:bob@example.com>")
        self.assertEqual(self.router.realm_for(request), "example.com")
        self.assertEqual(
            self.router.realm_for(make_request("OPTIONS", "sip:127.0.0.1")), "example.com"
        )

    def test_is_ip_literal(self) -> None:
        """IP literals are recognised with or without brackets; names are not."""
        self.assertTrue(is_ip_literal("[::1]"))
        self.assertTrue(is_ip_literal("10.0.0.1"))
        self.assertFalse(is_ip_literal("example.com"))

    def test_accept_lists_handler_types(self) -> None:
        """Accept is the union of what handlers read."""
        self.assertEqual(self.router.accept, ["text/plain", "application/calendar+xml"])


class FiredResultTests(SynchronousTestCase):
    """
    OPTIONS hooks whose Deferreds already fired are followed at once.
    """

    def test_hooks_at_once_and_later(self) -> None:
        """OPTIONS hooks that answer at once give a Response; a waiting one a Deferred."""
        router = CoreRouter(["example.com"], tag_factory=lambda: "t")
        router.options_hooks.append(lambda request, context: [("X-A", "1")])
        request = make_request("OPTIONS", "sip:example.com")
        answer = router.dispatch(request, RequestContext(peer=PEER, now=0.0))
        assert isinstance(answer, Response)
        self.assertEqual(answer.header("x-a"), "1")
        waiting: Deferred[Sequence[Tuple[str, str]]] = Deferred()
        router.options_hooks.append(lambda request, context: waiting)
        router.options_hooks.append(lambda request, context: [("X-C", "3")])
        later = router.dispatch(
            make_request("OPTIONS", "sip:example.com"), RequestContext(peer=PEER, now=0.0)
        )
        assert isinstance(later, Deferred)
        self.assertNoResult(later)
        waiting.callback([("X-B", "2")])
        response = self.successResultOf(later)
        self.assertEqual(
            [v for n, v in response.iter_headers() if n.startswith("x-")], ["1", "2", "3"]
        )

    def test_hook_error_at_once(self) -> None:
        """A hook raising a protocol error at once makes that error the answer."""
        router = CoreRouter(["example.com"], tag_factory=lambda: "t")

        def hook(request: Request, context: RequestContext) -> List[tuple[str, str]]:
            raise RemoteProtocolError("Domain x not served here", 404)

        router.options_hooks.append(hook)
        answer = router.dispatch(
            make_request("OPTIONS", "sip:example.com"), RequestContext(peer=PEER, now=0.0)
        )
        assert isinstance(answer, Response)
        self.assertEqual((answer.code, answer.phrase), (404, "Domain x not served here"))


@implementer(IRequestHandler)
class FailingStoreHandler:
    """
    Answers MESSAGE by failing the way a store does: at once, or later
    through the Deferred, with the error named by the body.
    """

    methods = ("MESSAGE",)
    accepts: Dict[str, Sequence[str]] = {"MESSAGE": ("text/plain",)}

    def handle_request(self, request: Request, context: RequestContext) -> Any:
        error: Exception = (
            LimitExceededError("too many")
            if b"limit" in request.body
            else StoreError("sqlite error: database or disk is full")
        )
        if b"later" in request.body:
            return fail(error)
        raise error

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        pass

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        pass

    def handle_timeout(self, request: Request) -> None:
        pass


class StoreFaultTests(TestCase):
    """
    Every store fault a handler lets through is one 503 with Retry-After
    and one log line.
    """

    def setUp(self) -> None:
        self.router = CoreRouter(["example.com"], tag_factory=lambda: "t")
        self.router.add_handler(FailingStoreHandler())
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def answer(self, body: bytes) -> Response:
        request = make_request(
            "MESSAGE", "sip:conf@example.com", body=body, headers=[("Content-Type", "text/plain")]
        )
        answer = self.router.dispatch(request, RequestContext(peer=PEER, now=0.0))
        if isinstance(answer, Deferred):
            return self.successResultOf(answer)  # type: ignore[no-any-return]
        return answer

    def test_store_error(self) -> None:
        """A store error, raised at once or through the Deferred, is 503 with Retry-After."""
        for body in (b"now", b"later"):
            seen = len(self.events)
            response = self.answer(body)
            self.assertEqual((response.code, response.header("retry-after")), (503, "5"))
            errors = [e for e in list(self.events)[seen:] if e["log_level"] >= LogLevel.warn]
            self.assertEqual(len(errors), 1, errors)
            self.assertNotIn("log_failure", errors[0])
            self.assertIn("disk is full", formatEvent(errors[0]))

    def test_limit(self) -> None:
        """A limit no handler answered is 403: retrying would not help."""
        self.assertEqual(self.answer(b"limit").code, 403)
        self.assertEqual(self.answer(b"limit later").code, 403)
