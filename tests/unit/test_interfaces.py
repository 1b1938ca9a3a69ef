# -*- test-case-name: tests.unit.test_interfaces -*-
"""
Every class of the server that declares an interface of
L{conference.interfaces} provides it: its methods exist with the
documented signatures (C{verifyClass}), found by walking the package, so a
new provider is checked without being listed here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, Dict, List, Set, Tuple

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementedBy
from zope.interface.interface import InterfaceClass
from zope.interface.verify import verifyClass

import conference
from conference import interfaces

#: Modules that import twisted.protocols.sip (it installs a reactor).
SKIPPED = {"conference.app.locator"}

#: Providers named in the layering review, which must be among those found.
NAMED = {
    "conference.app.bind.BindHandler": "IRequestHandler",
    "conference.app.subscriptions.BindingSubscriptions": "IRequestHandler",
    "conference.app.scheduler.SchedulingHandler": "IRequestHandler",
    "conference.app.scheduler.SentByApprovals": "IDelegationPolicy",
    "conference.app.focus.Focus": "IRequestHandler",
    "conference.app.registrar.Registrar": "IRequestHandler",
    "conference.app.janushttp.HTTPJanusTransport": "IJanusTransport",
}


def our_interfaces() -> Set[InterfaceClass]:
    """The interfaces conference.interfaces defines."""
    return {
        value
        for value in vars(interfaces).values()
        if isinstance(value, InterfaceClass) and value.__module__ == interfaces.__name__
    }


def providers() -> Dict[str, Tuple[type, List[InterfaceClass]]]:
    """Every class in the conference package declaring one of our interfaces."""
    ours = our_interfaces()
    found: Dict[str, Tuple[type, List[InterfaceClass]]] = {}
    names = [m.name for m in pkgutil.walk_packages(conference.__path__, "conference.")]
    for name in sorted(set(names) - SKIPPED):
        module = importlib.import_module(name)
        for value in vars(module).values():
            if not inspect.isclass(value) or value.__module__ != name:
                continue
            declared: Any = implementedBy(value)
            mine = [i for i in declared.interfaces() if i in ours]
            if mine:
                found[f"{name}.{value.__qualname__}"] = (value, mine)
    return found


class ProviderTests(SynchronousTestCase):
    """
    verifyClass for every declared provider.
    """

    def test_every_provider(self) -> None:
        """Each class declaring one of our interfaces has its methods as documented."""
        found = providers()
        self.assertGreater(len(found), 15)
        for name, (cls, declared) in sorted(found.items()):
            for interface in declared:
                self.assertTrue(verifyClass(interface, cls), f"{name} {interface.__name__}")

    def test_named_providers_found(self) -> None:
        """The providers the review named are found and declare what they provide."""
        found = providers()
        for name, interface in sorted(NAMED.items()):
            self.assertIn(name, found)
            self.assertIn(interface, [i.__name__ for i in found[name][1]], name)
