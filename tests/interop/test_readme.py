# -*- test-case-name: tests.interop.test_readme -*-
"""
README's "Try it" commands, run as written against the server it starts.

The README names fixed ports (5060, 5070), so the server runs on its
defaults in a network namespace of its own and the commands run there too
(see L{tests.interop.harness}), with a private C{/tmp} for the files they
write, from a folder holding a copy of this checkout's SIPp scenarios (a
copy, not a link: the checkout itself may live under the C{/tmp} that the
private one hides).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess

from twisted.trial.unittest import TestCase

from tests.interop.harness import ServerProcess, require_netns, require_tool
from tests.shared import PROJECT_ROOT

# The whole block takes a few seconds; SIPp waits forever for a lost answer.
TIMEOUT = 120

# Mount a private /tmp, then run the block with each command traced.
_PRIVATE_TMP = 'mount --bind "$1" /tmp && exec bash -e -x -c "$0"'


def readme_block(marker: str) -> str:
    """
    The shell block that follows C{<!-- marker -->} in README.md.
    """
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)\n```", text, re.S)
    if match is None:
        raise AssertionError(f"README.md has no shell block after <!-- {marker} -->")
    return match.group(1)


class ReadmeTests(TestCase):
    """
    The README's walkthrough works as written.
    """

    def test_try_it(self) -> None:
        """Every command of "Try it" succeeds against the server it starts there."""
        require_netns()
        require_tool("sipp")
        require_tool("sipsak")
        words = shlex.split(readme_block("try-server"))
        self.assertEqual(words[:3], [".venv/bin/twistd", "-n", "conference"])
        server = ServerProcess(words[3:], netns=True)
        self.addCleanup(server.cleanup)
        checkout = server.folder / "checkout"
        checkout.mkdir()
        shutil.copytree(
            PROJECT_ROOT / "tests" / "interop" / "scenarios",
            checkout / "tests" / "interop" / "scenarios",
        )
        tmp = server.folder / "tmp"
        tmp.mkdir()
        commands = readme_block("try-client")
        process = subprocess.Popen(
            server.inside(["unshare", "--mount", "sh", "-c", _PRIVATE_TMP, commands, str(tmp)]),
            cwd=checkout,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        detail = f"{output[-6000:]}\nserver log:\n{server.log()[-3000:]}"
        self.assertEqual(process.returncode, 0, detail)
        self.assertEqual(server.tracebacks(), [], detail)
        self.assertIn("joined sip:weekly@example.com", server.log())
        self.assertEqual(output.count("\n+ sipp "), commands.count("\nsipp "), detail)
