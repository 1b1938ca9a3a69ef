# -*- test-case-name: tests.test_tap -*-
"""
Tests for L{conference.tap} and the twistd plugin.
"""

from __future__ import annotations

import importlib.util

from twisted.application.service import IService
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import IPlugin
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from conference.service import ConferenceService
from conference.tap import Options, config_from_options, makeService
from tests.shared import PROJECT_ROOT


class OptionsTests(SynchronousTestCase):
    """
    Command-line parsing.
    """

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
        self.assertEqual(config.log_format, "text")
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

    def test_bad_numbers(self) -> None:
        """Sizes and timeouts must be positive numbers."""
        self.assertRaises(usage.UsageError, self.parse, "--max-message-size", "0")
        self.assertRaises(usage.UsageError, self.parse, "--idle-timeout", "soon")

    def test_digest_algorithms(self) -> None:
        """MD5 then SHA-256 by default; the order can be set; unknown names are refused."""
        self.assertEqual(config_from_options(self.parse()).digest_algorithms, ["MD5", "SHA-256"])
        options = self.parse("--digest-algorithms", "sha-256")
        self.assertEqual(config_from_options(options).digest_algorithms, ["SHA-256"])
        self.assertRaises(usage.UsageError, self.parse, "--digest-algorithms", "SHA-1")

    def test_log_format(self) -> None:
        """--log-format takes text or json only."""
        self.assertEqual(self.parse("--log-format", "json")["log-format"], "json")
        self.assertRaises(usage.UsageError, self.parse, "--log-format", "xml")

    def test_media(self) -> None:
        """--media picks the mixer (default) or the null service; --rtp-timeout is >= 0."""
        config = config_from_options(self.parse())
        self.assertEqual((config.media, config.rtp_timeout), ("builtin", 60.0))
        config = config_from_options(self.parse("--media", "null", "--rtp-timeout", "0"))
        self.assertEqual((config.media, config.rtp_timeout), ("null", 0.0))
        self.assertRaises(usage.UsageError, self.parse, "--media", "janus")
        self.assertRaises(usage.UsageError, self.parse, "--rtp-timeout", "-1")

    def test_bad_domain(self) -> None:
        """A domain with URI punctuation is refused."""
        self.assertRaises(usage.UsageError, self.parse, "--domain", "sip:x@y")

    def test_auth(self) -> None:
        """--auth takes strcred checkers."""
        config = config_from_options(self.parse("--auth", "memory:alice:secret"))
        self.assertEqual(len(config.checkers), 1)

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
