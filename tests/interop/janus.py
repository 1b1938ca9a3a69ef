# -*- test-case-name: tests.interop.test_janus -*-
"""
A real Janus for the interop tests: a minimal configuration written into a
temporary folder (only the HTTP transport, on 127.0.0.1, and the
AudioBridge plugin; no WebSockets, no STUN, ICE on loopback only), started
and stopped by the tests.

Run as a program (C{python -m tests.interop.janus FOLDER}) it starts Janus
and then the softphone scenario of L{tests.interop.softphones} in the same
process tree, so that, inside one network namespace, the phones, the
server and Janus all reach each other on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from twisted.trial.unittest import SkipTest

from tests.interop.harness import require_tool

# Where Debian's janus package puts its plugins.
JANUS_LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
PLUGINS = (
    "duktape",
    "echotest",
    "lua",
    "nosip",
    "recordplay",
    "sip",
    "streaming",
    "textroom",
    "videocall",
    "videoroom",
    "voicemail",
)
TRANSPORTS = ("mqtt", "nanomsg", "pfunix", "rabbitmq", "websockets")


def janus_libraries() -> Path:
    """
    Janus's plugin folder (Debian's, whatever the architecture).

    @raise SkipTest: no janus installed (outside CI, where that fails).
    """
    require_tool("janus", "janus")
    for folder in [JANUS_LIBRARIES, *Path("/usr/lib").glob("*/janus")]:
        if (folder / "plugins" / "libjanus_audiobridge.so").exists():
            return folder
    if os.environ.get("CI"):
        raise AssertionError("the janus AudioBridge plugin is not installed")
    raise SkipTest("the janus AudioBridge plugin is not installed")


def _disabled(kind: str, names: Sequence[str]) -> str:
    return ",".join(f"libjanus_{name}.so" for name in names)


def write_config(folder: Path, http_port: int, rtp_ports: str) -> Path:
    """
    Write janus.jcfg and its two plugin files into C{folder}: HTTP on
    127.0.0.1:C{http_port} only, the AudioBridge with plain-RTP ports
    C{rtp_ports} (LOW-HIGH) on 127.0.0.1.  Returns the main file.
    """
    libraries = janus_libraries()
    folder.mkdir(parents=True, exist_ok=True)
    main = folder / "janus.jcfg"
    main.write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{libraries / "plugins"}"
    transports_folder = "{libraries / "transports"}"
    events_folder = "{libraries / "events"}"
    loggers_folder = "{libraries / "loggers"}"
    debug_level = 4
    session_timeout = 60
}}
plugins: {{
    disable = "{_disabled("plugin", PLUGINS)}"
}}
transports: {{
    disable = "{_disabled("transport", TRANSPORTS)}"
}}
loggers: {{
    disable = "libjanus_jsonlog.so"
}}
events: {{
    broadcast = false
}}
media: {{
    rtp_port_range = "{rtp_ports}"
}}
nat: {{
    ice_enforce_list = "lo"
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    ip = "127.0.0.1"
    port = {http_port}
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
"""
    )
    (folder / "janus.plugin.audiobridge.jcfg").write_text(
        f"""general: {{
    local_ip = "127.0.0.1"
    rtp_port_range = "{rtp_ports}"
}}
"""
    )
    return main


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class JanusProcess:
    """
    Janus on 127.0.0.1, configured in C{folder}; L{stop} ends it.

    @ivar url: its API's base URL.
    """

    def __init__(self, folder: Path, http_port: int, rtp_ports: str = "32000-32099") -> None:
        config = write_config(folder, http_port, rtp_ports)
        self.log_path = folder / "janus.log"
        self.url = f"http://127.0.0.1:{http_port}/janus"
        with open(self.log_path, "wb") as log:
            self.process: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
                ["janus", "-C", str(config), "-F", str(folder), "-o"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 15
        while not _listening(http_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"janus did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        """What Janus logged."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """End Janus (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def main(argv: List[str]) -> int:
    """
    Start Janus (HTTP port C{argv[1]}) with its files in C{argv[0]}/janus,
    run the softphone scenario of C{argv[0]}, stop Janus; its log goes
    to C{argv[0]}/janus/janus.log.
    """
    from tests.interop import softphones

    folder = Path(argv[0])
    janus = JanusProcess(folder / "janus", int(argv[1]))
    try:
        return softphones.main([str(folder)])
    finally:
        janus.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
