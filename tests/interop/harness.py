# -*- test-case-name: tests.interop.test_plugin -*-
"""
Runs the real C{twistd conference} plugin as a subprocess on loopback
ephemeral ports, and real peers (SIPp, sipsak, baresip, linphonec) against
it.

The plugin file is placed in a temporary C{twisted/plugins} folder on
C{PYTHONPATH}, so the tests need no install step and always run this
checkout's code.

Softphones refuse to run without a routable address, and a README's
commands name fixed ports; for them the server can run in a network
namespace of its own (C{ServerProcess(netns=True)}), where loopback is the
only interface and also the default route, and the peers join it there
(L{ServerProcess.inside}).  Nothing leaves the namespace.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from twisted.trial.unittest import SkipTest

from tests.shared import PROJECT_ROOT


def require_tool(name: str, package: str = "sip-tester sipsak") -> str:
    """
    The path of an external peer program.

    @param package: the Debian package(s) that install it, for the message.
    @raise SkipTest: where it is not installed (outside CI; C{.ci/run}
        installs it, and fails if it cannot).
    """
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            raise AssertionError(f"{name} is not installed; .ci/run should have installed it")
        raise SkipTest(f"{name} not installed (Debian: apt-get install {package})")
    return path


# Run in a new network namespace: bring loopback up and make it the default
# route too, so programs looking for a routable address find 127.0.0.1.
_NETNS_SETUP = 'ip link set lo up && ip route add default dev lo && exec "$@"'


def require_netns() -> None:
    """
    Check that this process may create network namespaces (C{unshare -n},
    C{nsenter} from util-linux, C{ip} from iproute2; root, or a user
    namespace allowing it).

    @raise SkipTest: where it may not (outside CI).
    """
    require_tool("unshare", "util-linux")
    require_tool("nsenter", "util-linux")
    require_tool("ip", "iproute2")
    probe = subprocess.run(
        ["unshare", "--net", "sh", "-c", _NETNS_SETUP, "sh", "true"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        reason = f"cannot create a network namespace: {probe.stderr.strip()}"
        if os.environ.get("CI"):
            raise AssertionError(f"{reason}; CI must run these tests as root")
        raise SkipTest(reason)


def _listening(pid: int, port: int) -> bool:
    """
    Whether process C{pid}'s network namespace has a TCP socket listening
    on C{port} (read from /proc, so from any namespace).
    """
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            return True
    return False


def free_port() -> int:
    """
    A port number free for both UDP and TCP on 127.0.0.1 right now.
    """
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        port = int(tcp.getsockname()[1])
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            tcp.close()
            udp.close()
        return port
    raise RuntimeError("no free port pair found")


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """
    A self-signed certificate and key for 127.0.0.1, made with pyOpenSSL.
    """
    from OpenSSL import crypto

    key = crypto.PKey()
    key.generate_key(crypto.TYPE_RSA, 2048)
    cert = crypto.X509()
    cert.get_subject().CN = "127.0.0.1"
    cert.set_serial_number(1)
    cert.gmtime_adj_notBefore(0)
    cert.gmtime_adj_notAfter(3600)
    cert.set_issuer(cert.get_subject())
    cert.set_pubkey(key)
    cert.sign(key, "sha256")
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(crypto.dump_privatekey(crypto.FILETYPE_PEM, key))
    cert_path.write_bytes(crypto.dump_certificate(crypto.FILETYPE_PEM, cert))
    return key_path, cert_path


#: How the tests start twistd: with this interpreter, whatever is on PATH.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def plugin_environment(folder: Path) -> Dict[str, str]:
    """
    The environment of a twistd process that finds this checkout's
    package and plugin (copied under C{folder}).
    """
    plugins = folder / "pluginpath" / "twisted" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "twisted_plugins" / "conference_plugin.py", plugins)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT), str(folder / "pluginpath"), env.get("PYTHONPATH", "")]
    )
    return env


class ServerProcess:
    """
    One running C{twistd -n conference}.

    @ivar port: the UDP and TCP port; C{tls_port}: the TLS one.
    @ivar netns: whether it runs in a network namespace of its own.
    """

    def __init__(
        self, extra_args: Sequence[str] = (), *, tls: bool = False, netns: bool = False
    ) -> None:
        """
        @param netns: run in a new network namespace (see L{require_netns})
            on the plugin's defaults: UDP and TCP on 127.0.0.1:5060 and the
            SQLite store C{conference.sqlite} in L{folder}.  Otherwise on an
            ephemeral port with the memory store.
        """
        if netns and tls:
            raise ValueError("netns servers run on the defaults, without TLS")
        self.folder = Path(tempfile.mkdtemp(prefix="conference-interop-"))
        env = plugin_environment(self.folder)
        self.netns = netns
        self.port = 5060 if netns else free_port()
        self.tls_port: Optional[int] = None
        args = [
            *TWISTD,
            "--nodaemon",
            "--pidfile=",
            "conference",
        ]
        if not netns:
            args += [
                "--listen",
                f"udp:{self.port}:interface=127.0.0.1",
                "--listen",
                f"tcp:{self.port}:interface=127.0.0.1",
                "--store",
                "memory",
            ]
        if tls:
            key, cert = make_certificate(self.folder)
            self.tls_port = free_port()
            args += [
                "--listen",
                f"ssl:{self.tls_port}:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            ]
        args += list(extra_args)
        if netns:
            # unshare and sh exec the server: its pid names the namespace.
            args = ["unshare", "--net", "sh", "-c", _NETNS_SETUP, "sh", *args]
        self.log_path = self.folder / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args, cwd=self.folder, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if self.netns:
                if _listening(self.process.pid, self.port):
                    return
            else:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"server did not start listening:\n{self.log()}")

    def inside(self, args: Sequence[str]) -> List[str]:
        """
        The command line that runs C{args} where the server's 127.0.0.1 is:
        in its network namespace (through C{nsenter}), or as it is.
        """
        if not self.netns:
            return list(args)
        return ["nsenter", f"--net=/proc/{self.process.pid}/ns/net", *args]

    def log(self) -> str:
        """
        Everything the server logged so far.
        """
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tracebacks(self) -> List[str]:
        """
        The log lines that start a Python traceback.
        """
        return [line for line in self.log().splitlines() if "Traceback" in line]

    def stop(self) -> int:
        """
        Stop the server with SIGTERM (a graceful stop) and return its status.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def cleanup(self) -> None:
        """
        Stop and remove the temporary folder.
        """
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def run(
    args: Sequence[str], timeout: float = 60, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    """
    Run a peer program, capturing its output as text.
    """
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def udp_exchange(port: int, data: bytes, timeout: float = 2.0) -> Optional[bytes]:
    """
    Send one datagram to the server and return the first answer, if any.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(65536)
        except socket.timeout:
            return None


SCENARIOS = Path(__file__).parent / "scenarios"


def run_sipp(
    server: ServerProcess,
    scenario: str,
    *extra: str,
    transport: str = "u1",
    timeout: int = 15,
    label: Optional[str] = None,
) -> str:
    """
    Run one SIPp call of C{scenarios/<scenario>} against C{server}.

    @param extra: more SIPp arguments (-inf, -auth_uri, -oocsf, ...).
    @param label: names the error file (default: scenario and transport).
    @return: "" when the call succeeded, else what went wrong: SIPp's
        output, its error file and the tail of the server log.
    """
    sipp = require_tool("sipp")
    label = label or f"{scenario}-{transport}"
    errors = server.folder / f"sipp-{label}.err"
    result = run(
        [
            sipp,
            f"127.0.0.1:{server.port}",
            "-sf",
            str(SCENARIOS / scenario),
            "-t",
            transport,
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            f"{timeout}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(errors),
            *extra,
        ],
        cwd=server.folder,
        timeout=timeout + 15,
    )
    if result.returncode == 0:
        return ""
    detail = errors.read_text(errors="replace") if errors.exists() else ""
    return (
        f"sipp {scenario} over {transport} failed:\n{result.stdout[-2000:]}\n"
        f"{result.stderr[-1500:]}\n{detail[-3000:]}\nserver log:\n{server.log()[-3000:]}"
    )
