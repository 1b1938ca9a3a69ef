# -*- test-case-name: tests.unit.test_tap -*-
"""
Tests for L{conference.tap} and the twistd plugin.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import List

from twisted.application.service import IService
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import IPlugin
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from conference import startup
from conference.errors import StartupError
from conference.runtime import PYPY_JIT
from conference.service import ConferenceService, ServerConfig
from conference.tap import Options, config_from_options, makeService
from tests.shared import PROJECT_ROOT


class OptionsTests(SynchronousTestCase):
    """
    Command-line parsing.
    """

    def setUp(self) -> None:
        self.statuses: List[int] = []

    def parse(self, *argv: str) -> Options:
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_defaults(self) -> None:
        """No options: UDP and TCP on 127.0.0.1:5060, SQLite in the working directory."""
        config = config_from_options(self.parse())
        self.assertEqual(
            config.listen, ["udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1"]
        )
        self.assertEqual(config.store, "sqlite:conference.sqlite")
        self.assertEqual((config.log_format, config.log_level), ("text", "info"))
        self.assertEqual(config.max_message_size, 65536)

    def test_repeatable(self) -> None:
        """--listen and --domain accumulate."""
        options = self.parse(
            "--listen",
            "udp:0",
            "--listen",
            "tcp:0",
            "--domain",
            "A.example",
            "--domain",
            "b.example",
        )
        config = config_from_options(options)
        self.assertEqual(config.listen, ["udp:0", "tcp:0"])
        self.assertEqual(config.domains, ["a.example", "b.example"])

    def test_bad_udp(self) -> None:
        """A malformed UDP description is a usage error naming it."""
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--listen", "udp:notaport")
        self.assertIn("notaport", str(caught.exception))

    def test_bad_store(self) -> None:
        """An unknown store kind is a usage error."""
        self.assertRaises(usage.UsageError, self.parse, "--store", "mongodb:x")
        self.assertRaises(usage.UsageError, self.parse, "--store", "sqlite:")
        self.assertEqual(self.parse("--store", "memory")["store"], "memory")

    def test_overload(self) -> None:
        """--overload-lag-ms sets the shedding threshold in seconds; 0 turns it off."""
        self.assertEqual(config_from_options(self.parse()).overload_lag, 0.1)
        config = config_from_options(self.parse("--overload-lag-ms", "250"))
        self.assertEqual(config.overload_lag, 0.25)
        self.assertIsNone(config_from_options(self.parse("--overload-lag-ms", "0")).overload_lag)
        self.assertRaises(usage.UsageError, self.parse, "--overload-lag-ms", "-5")

    def test_resolver(self) -> None:
        """--resolver HOST[:PORT] reaches the config; a bad one is a usage error."""
        self.assertIsNone(config_from_options(self.parse()).resolver)
        config = config_from_options(
            self.parse("--resolver", "127.0.0.1:5353", "--outbound-keepalive", "25")
        )
        self.assertEqual((config.resolver, config.outbound_keepalive), (("127.0.0.1", 5353), 25))
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--resolver", "127.0.0.1:x")
        self.assertIn("--resolver", str(caught.exception))

    def test_freebusy(self) -> None:
        """The --freebusy-* options reach the config; bad ones are usage errors."""
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write("svc:pw\n")
        url = "http://127.0.0.1:5232/{user}/calendar/"
        config = config_from_options(
            self.parse(
                "--freebusy-source",
                "caldav:" + url,
                "--freebusy-credentials",
                path,
                "--freebusy-timeout",
                "1.5",
            )
        )
        self.assertEqual(
            (config.freebusy_source, config.freebusy_credentials, config.freebusy_timeout),
            (url, ("svc", "pw"), 1.5),
        )
        self.assertRaises(usage.UsageError, self.parse, "--freebusy-source", "ldap:x")
        self.assertRaises(usage.UsageError, self.parse, "--freebusy-write")
        self.assertFalse(config.freebusy_write)
        self.assertRaises(usage.UsageError, self.parse, "--freebusy-credentials", path)
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--freebusy-source", "caldav:" + url, "--freebusy-credentials", path + "x")
        self.assertIn("--freebusy-credentials", str(caught.exception))

    def test_front_end(self) -> None:
        """--front-end takes a SIP URI to the config; anything else is a usage error naming it."""
        self.assertIsNone(config_from_options(self.parse()).front_end)
        config = config_from_options(self.parse("--front-end", "<sip:127.0.0.1:5060>"))
        self.assertEqual(config.front_end, "sip:127.0.0.1:5060")
        for bad in ("http://kamailio/", "sip:"):
            with self.assertRaises(usage.UsageError) as caught:
                self.parse("--front-end", bad)
            self.assertIn("--front-end", str(caught.exception))

    def test_tls_peer_ca_missing(self) -> None:
        """A --tls-peer-ca file that cannot be read is a usage error naming the option."""
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--tls-peer-ca", "/nonexistent/ca.pem")
        self.assertIn("--tls-peer-ca", str(caught.exception))

    def test_bad_numbers(self) -> None:
        """Sizes and timeouts must be positive numbers."""
        self.assertRaises(usage.UsageError, self.parse, "--max-message-size", "0")
        self.assertRaises(usage.UsageError, self.parse, "--idle-timeout", "soon")

    def test_scheduling_caps(self) -> None:
        """--max-attendees and --max-organizer-bytes reach the config; defaults are set."""
        defaults = config_from_options(self.parse())
        self.assertEqual((defaults.max_attendees, defaults.max_organizer_bytes), (250, 4194304))
        options = self.parse("--max-attendees", "10", "--max-organizer-bytes", "65536")
        config = config_from_options(options)
        self.assertEqual((config.max_attendees, config.max_organizer_bytes), (10, 65536))
        self.assertRaises(usage.UsageError, self.parse, "--max-attendees", "0")
        self.assertRaises(usage.UsageError, self.parse, "--max-organizer-bytes", "lots")

    def test_digest_algorithms(self) -> None:
        """MD5 alone by default (as ServerConfig); the order can be set; unknown names refused."""
        self.assertEqual(config_from_options(self.parse()).digest_algorithms, ["MD5"])
        self.assertEqual(ServerConfig().digest_algorithms, ["MD5"])
        options = self.parse("--digest-algorithms", "sha-256")
        self.assertEqual(config_from_options(options).digest_algorithms, ["SHA-256"])
        options = self.parse("--digest-algorithms", "SHA-256,md5")
        self.assertEqual(config_from_options(options).digest_algorithms, ["SHA-256", "MD5"])
        self.assertRaises(usage.UsageError, self.parse, "--digest-algorithms", "SHA-1")

    def test_help_has_no_runs_of_spaces(self) -> None:
        """--help reads as sentences: no runs of spaces inside an option's text."""
        text = str(Options())
        self.assertIn("administers BIND bindings of every", " ".join(text.split()))
        for line in text.splitlines():
            # The option column is padded to the description column; the
            # description itself must have single spaces only.
            description = re.sub(r"^\s*(-\w, )?--[\w-]+=?\s+", "", line).strip()
            self.assertNotRegex(description, r"\S {2,}\S", line)

    def test_log_level(self) -> None:
        """--log-level takes twisted.logger's level names only."""
        config = config_from_options(self.parse("--log-level", "debug"))
        self.assertEqual(config.log_level, "debug")
        self.assertRaises(usage.UsageError, self.parse, "--log-level", "verbose")

    def test_pypy_jit(self) -> None:
        """--pypy-jit: PyPy's JIT parameters, decay=0 by default; '' keeps them; bad forms fail."""
        self.assertEqual(config_from_options(self.parse()).pypy_jit, PYPY_JIT)
        chosen = self.parse("--pypy-jit", "decay=10,threshold=500")
        self.assertEqual(config_from_options(chosen).pypy_jit, "decay=10,threshold=500")
        self.assertEqual(config_from_options(self.parse("--pypy-jit", "")).pypy_jit, "")
        self.assertRaises(usage.UsageError, self.parse, "--pypy-jit", "decay")

    def test_log_flush(self) -> None:
        """--log-flush-ms is the text log's batch interval in seconds: none by default."""
        self.assertEqual(config_from_options(self.parse()).log_flush, 0.0)
        self.assertEqual(config_from_options(self.parse("--log-flush-ms", "50")).log_flush, 0.05)
        self.assertRaises(usage.UsageError, self.parse, "--log-flush-ms", "-1")

    def test_log_format(self) -> None:
        """--log-format takes text or json only."""
        self.assertEqual(self.parse("--log-format", "json")["log-format"], "json")
        self.assertRaises(usage.UsageError, self.parse, "--log-format", "xml")

    def test_media(self) -> None:
        """--media picks the mixer (default), the null service or Janus at an http URL."""
        self.assertEqual(config_from_options(self.parse()).media, "builtin")
        self.assertEqual(config_from_options(self.parse("--media", "null")).media, "null")
        self.assertRaises(usage.UsageError, self.parse, "--media", "janus")
        janus = "janus:http://127.0.0.1:8088/janus"
        self.assertEqual(config_from_options(self.parse("--media", janus)).media, janus)
        self.assertRaises(usage.UsageError, self.parse, "--media", "janus:ftp://x/janus")

    def test_srtp(self) -> None:
        """--srtp is optional by default, off or required; required refuses Janus."""
        self.assertEqual(config_from_options(self.parse()).srtp, "optional")
        for policy in ("off", "required"):
            self.assertEqual(config_from_options(self.parse("--srtp", policy)).srtp, policy)
        self.assertRaises(usage.UsageError, self.parse, "--srtp", "always")
        janus = "janus:http://127.0.0.1:8088/janus"
        self.assertRaises(usage.UsageError, self.parse, "--srtp", "required", "--media", janus)
        self.assertEqual(self.parse("--srtp", "off", "--media", janus)["srtp"], "off")

    def test_bad_domain(self) -> None:
        """A domain with URI punctuation is refused."""
        self.assertRaises(usage.UsageError, self.parse, "--domain", "sip:x@y")

    def test_auth(self) -> None:
        """--auth takes strcred checkers."""
        config = config_from_options(self.parse("--auth", "memory:alice:secret"))
        self.assertEqual(len(config.checkers), 1)

    def test_auth_file_missing(self) -> None:
        """--auth file: with no readable file is a usage error, not a server refusing all."""
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--auth", "file:/nonexistent")
        self.assertIn("--auth file:/nonexistent", str(caught.exception))
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("alice:secret\n")
        config = config_from_options(self.parse("--auth", f"file:{path}"))
        self.assertEqual(len(config.checkers), 1)

    def test_postgresql_driver(self) -> None:
        """--store postgresql: without the driver is a usage error naming it."""
        installed = sys.modules.get("psycopg")
        sys.modules["psycopg"] = None  # type: ignore[assignment]  # imports now fail
        if installed is None:
            self.addCleanup(sys.modules.pop, "psycopg")
        else:
            self.addCleanup(sys.modules.__setitem__, "psycopg", installed)
        with self.assertRaises(usage.UsageError) as caught:
            self.parse("--store", "postgresql:dbname=conference")
        # It needs psycopg 3 (CPython), or is not available (PyPy).
        self.assertTrue(str(caught.exception).startswith("--store: the PostgreSQL store "))

    def test_subcommand_usage_error(self) -> None:
        """As twistd's subcommand, a usage error ends the process with one line."""
        parent = usage.Options()
        options = Options()
        options.parent = parent
        with self.assertRaises(SystemExit) as caught:
            options.parseOptions(["--listen", "udp:x"])
        self.assertEqual(
            caught.exception.code,
            "twistd conference: --listen: bad UDP port in 'udp:x' "
            "(twistd conference --help lists the options)",
        )

    def test_make_service_bad_listen(self) -> None:
        """A --listen nothing can serve is a StartupError, or one line as a subcommand."""
        options = self.parse("--listen", "bogus:1234")
        self.assertRaises(StartupError, makeService, options, reactor=MemoryReactorClock())
        options.parent = usage.Options()
        with self.assertRaises(SystemExit) as caught:
            makeService(options, reactor=MemoryReactorClock())
        self.assertEqual(
            caught.exception.code,
            "twistd conference: cannot start: --listen bogus:1234: Unknown endpoint type: 'bogus'",
        )

    def test_make_service_subcommand(self) -> None:
        """As a subcommand, makeService arranges for a failed start to stop the reactor."""
        self.patch(sys, "excepthook", sys.excepthook)
        self.patch(startup, "exit_status_after_twistd", self.statuses.append)
        options = self.parse("--listen", "udp:0")
        options["store"] = "mongodb:x"  # past the option check: fails when opened
        options.parent = usage.Options()
        reactor = MemoryReactorClock()
        reactor.running = True
        service = makeService(options, reactor=reactor)
        service.startService()
        self.assertTrue(reactor.hasStopped)
        self.assertEqual(self.statuses, [1])

    def test_make_service(self) -> None:
        """makeService returns an IService any application can add."""
        service = makeService(self.parse("--listen", "udp:0"), reactor=MemoryReactorClock())
        self.assertTrue(verifyObject(IService, service))
        self.assertIsInstance(service, ConferenceService)


class PluginTests(SynchronousTestCase):
    """
    The twistd plugin file.
    """

    def test_plugin(self) -> None:
        """The plugin names the tap module and provides IServiceMaker."""
        from twisted.application.service import IServiceMaker

        path = PROJECT_ROOT / "twisted_plugins" / "conference_plugin.py"
        spec = importlib.util.spec_from_file_location("conference_plugin_under_test", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        maker = module.conference
        self.assertTrue(verifyObject(IPlugin, maker))
        self.assertTrue(verifyObject(IServiceMaker, maker))
        self.assertEqual(maker.tapname, "conference")
        self.assertIsInstance(maker.options(), Options)


class ExhaustionOptionsTests(SynchronousTestCase):
    """
    The exhaustion options: caps and deadlines against exhaustion, and how
    they reach the transports, the transaction layer and the focus.
    """

    def parse(self, *argv: str) -> Options:
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_defaults(self) -> None:
        """Every cap and deadline is on by default."""
        config = config_from_options(self.parse())
        self.assertEqual(
            (config.max_connections_per_source, config.message_timeout, config.handshake_timeout),
            (64, 10.0, 10.0),
        )
        self.assertEqual(config.max_transactions, 100000)
        self.assertEqual(
            (config.max_media_per_source, config.max_media_per_caller, config.media_timeout),
            (32, 4, 60.0),
        )
        self.assertEqual(config.media_reserve_percent, 20.0)

    def test_zero_turns_off(self) -> None:
        """0 turns a cap or the media timeout off."""
        names = (
            "max-connections-per-source",
            "max-transactions",
            "max-media-per-source",
            "max-media-per-caller",
            "media-timeout",
        )
        argv = [word for name in names for word in (f"--{name}", "0")]
        config = config_from_options(self.parse(*argv, "--media-reserve", "0"))
        self.assertEqual(
            (
                config.max_connections_per_source,
                config.max_transactions,
                config.max_media_per_source,
                config.max_media_per_caller,
                config.media_timeout,
                config.media_reserve_percent,
            ),
            (None, None, None, None, None, 0.0),
        )

    def test_bad_values(self) -> None:
        """Negative caps, zero deadlines and a share over 100% are usage errors."""
        for argv in (
            ("--max-transactions", "-1"),
            ("--message-timeout", "0"),
            ("--handshake-timeout", "x"),
            ("--media-reserve", "101"),
            ("--max-media-per-caller", "2.5"),
        ):
            self.assertRaises(usage.UsageError, self.parse, *argv)

    def test_reach_the_service(self) -> None:
        """The options configure the stream factory, the layer and the focus's admission."""
        from tests.unit.test_service import UDPMemoryReactor

        options = self.parse(
            "--listen",
            "tcp:0",
            "--store",
            "memory",
            "--rtp-ports",
            "20000-20199",
            "--max-connections-per-source",
            "5",
            "--message-timeout",
            "3",
            "--handshake-timeout",
            "2",
            "--max-transactions",
            "7",
            "--max-media-per-source",
            "6",
            "--media-reserve",
            "50",
            "--media-timeout",
            "30",
        )
        service = makeService(options, reactor=UDPMemoryReactor())
        assert isinstance(service, ConferenceService)
        factory = service.stream_factory
        self.assertEqual(
            (factory.max_per_source, factory.message_timeout, factory.handshake_timeout),
            (5, 3.0, 2.0),
        )
        self.assertEqual(service.sip.layer.max_server, 7)
        service.startService()
        self.addCleanup(service.stopService)
        admission = service.focus.admission
        assert admission is not None
        self.assertEqual((admission.capacity, admission.reserved), (100, 50))
        self.assertEqual((admission.per_source, admission.per_caller), (6, 4))
        self.assertEqual(admission.timeout, 30.0)
        self.assertEqual(admission.source_key("127.0.0.1"), "")  # exempt, as for rate limits
