# -*- test-case-name: tests.interop.test_startup -*-
"""
The real C{twistd -n conference} when it cannot start: it stops within
seconds with a non-zero status and one clear line, never a traceback, a
help text dump, or a process left running without its sockets.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from twisted.trial.unittest import SynchronousTestCase

from tests.interop.harness import TWISTD, free_port, make_certificate, plugin_environment

#: How long a failing start may take (start-up is about a second).
DEADLINE = 15.0


class StartupFailureTests(SynchronousTestCase):
    """
    One run of the command per failure, each bounded by a timeout.
    """

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="conference-startup-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.env = plugin_environment(self.folder)

    def twistd(self, *args: str, env: Optional[Dict[str, str]] = None) -> str:
        """
        Run C{twistd -n conference ARGS}, check that it stops quickly with
        status 1 and no traceback, and return what it printed.
        """
        started = time.monotonic()
        try:
            done = subprocess.run(
                [*TWISTD, "--nodaemon", "--pidfile=", "conference", *args],
                cwd=self.folder,
                env=env or self.env,
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            self.fail(f"still running after {DEADLINE} s: {e.stdout!r} {e.stderr!r}")
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 1, output)
        self.assertLess(time.monotonic() - started, DEADLINE)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("Unhandled error", output)
        return output

    def assertOneLine(self, output: str, line: str) -> None:
        """
        C{output} is exactly C{line} (a usage error: no help text dump).
        """
        self.assertEqual(output.splitlines(), [line])

    def test_udp_port_in_use(self) -> None:
        """A UDP port in use stops the server before it runs, naming the port."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(("127.0.0.1", 0))
            port = busy.getsockname()[1]
            description = f"udp:{port}:interface=127.0.0.1"
            output = self.twistd("--listen", description, "--store", "memory")
        self.assertIn(
            f"twistd conference: cannot start: --listen {description}: "
            f"Couldn't listen on 127.0.0.1:{port}: [Errno 98] Address already in use.",
            output,
        )

    def test_impossible_interface(self) -> None:
        """An interface the host does not have is refused the same way."""
        output = self.twistd("--listen", "udp:5060:interface=192.0.2.1", "--store", "memory")
        self.assertIn(
            "cannot start: --listen udp:5060:interface=192.0.2.1: "
            "Couldn't listen on 192.0.2.1:5060",
            output,
        )

    def test_tcp_port_in_use(self) -> None:
        """A TCP port in use stops the server; the UDP port already bound goes with it."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            output = self.twistd(
                "--listen",
                f"udp:{free_port()}:interface=127.0.0.1",
                "--listen",
                f"tcp:{port}:interface=127.0.0.1",
                "--store",
                "memory",
            )
        self.assertIn(f"cannot start: --listen tcp:{port}:interface=127.0.0.1: Couldn't", output)

    def test_unknown_endpoint(self) -> None:
        """A description no endpoint parser knows is one line, before anything starts."""
        output = self.twistd("--listen", "bogus:1234", "--store", "memory")
        self.assertOneLine(
            output,
            "twistd conference: cannot start: --listen bogus:1234: Unknown endpoint type: 'bogus'",
        )

    def test_port_out_of_range(self) -> None:
        """tcp:99999 cannot be bound."""
        output = self.twistd("--listen", "tcp:99999", "--store", "memory")
        self.assertIn("cannot start: --listen tcp:99999: ", output)
        self.assertIn("port must be 0-65535", output)

    def test_store_cannot_open(self) -> None:
        """A store that cannot be opened, found once the reactor runs, still ends with status 1."""
        output = self.twistd(
            "--listen", "udp:0:interface=127.0.0.1", "--store", "sqlite:/nonexistent-dir/x.sqlite"
        )
        self.assertIn("Cannot start: --store: SQLite store /nonexistent-dir/x.sqlite: ", output)
        self.assertIn("Server Shut Down.", output)

    def test_auth_file_missing(self) -> None:
        """--auth file: naming no file is a usage error, not a server that refuses everyone."""
        output = self.twistd("--auth", "file:/nonexistent", "--store", "memory")
        self.assertOneLine(
            output,
            "twistd conference: --auth file:/nonexistent: no readable file '/nonexistent' "
            "(twistd conference --help lists the options)",
        )

    def test_tls_certificate_without_key(self) -> None:
        """A tls: listener whose certificate file has no key says so."""
        _, cert = make_certificate(self.folder)
        output = self.twistd("--listen", f"tls:0:certKey={cert}", "--store", "memory")
        self.assertOneLine(
            output,
            f"twistd conference: cannot start: --listen tls:0:certKey={cert}: no private key "
            f"in the certificate file '{cert}': add it there, or name its file with "
            "privateKey=FILE",
        )

    def test_postgresql_without_driver(self) -> None:
        """--store postgresql: without its driver is one usage line saying what to do."""
        shadow = self.folder / "nodriver"
        shadow.mkdir()
        (shadow / "psycopg.py").write_text("raise ImportError('psycopg is not installed')\n")
        env = dict(self.env)
        env["PYTHONPATH"] = f"{shadow}:{env['PYTHONPATH']}"
        output = self.twistd("--store", "postgresql:dbname=conference", env=env)
        [line] = output.splitlines()
        # "needs psycopg 3: pip install ..." (CPython), "not available on PyPy" (PyPy).
        self.assertTrue(line.startswith("twistd conference: --store: the PostgreSQL store "))
        self.assertTrue(line.endswith("(twistd conference --help lists the options)"))

    def test_usage_error_one_line(self) -> None:
        """A usage error is one line; --help still prints the whole text."""
        output = self.twistd("--listen", "udp:x")
        self.assertOneLine(
            output,
            "twistd conference: --listen: bad UDP port in 'udp:x' "
            "(twistd conference --help lists the options)",
        )
        done = subprocess.run(
            [*TWISTD, "conference", "--help"],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        self.assertEqual(done.returncode, 0)
        lines: List[str] = done.stdout.splitlines()
        self.assertGreater(len(lines), 40)
        self.assertTrue(any(line.lstrip().startswith("--listen=") for line in lines))
