# -*- test-case-name: tests.unit.test_packaging -*-
"""
What a regular install (C{pip install .}) puts on C{sys.path}: the tests
import this checkout's tree, so a package that setup.cfg does not list
would pass every test and still be missing from an installed server.
"""

from __future__ import annotations

import configparser
from typing import List

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT


def listed_packages() -> List[str]:
    """
    The C{packages} of setup.cfg's C{[options]}.
    """
    config = configparser.ConfigParser()
    config.read(PROJECT_ROOT / "setup.cfg", encoding="utf-8")
    return config["options"]["packages"].split()


def tree_packages() -> List[str]:
    """
    Every folder of the C{conference} tree with an C{__init__.py}, dotted.
    """
    found = []
    for init in sorted((PROJECT_ROOT / "conference").rglob("__init__.py")):
        found.append(".".join(init.parent.relative_to(PROJECT_ROOT).parts))
    return found


class PackagesTests(SynchronousTestCase):
    """
    setup.cfg installs every package of the tree.
    """

    def test_every_package_listed(self) -> None:
        """Each package under conference/ is in setup.cfg's packages list."""
        listed = set(listed_packages())
        self.assertEqual([p for p in tree_packages() if p not in listed], [])
