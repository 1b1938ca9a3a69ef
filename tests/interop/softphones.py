# -*- test-case-name: tests.interop.test_media -*-
"""
Real softphones (baresip and linphonec) in a conference, run inside a
private network namespace.

baresip picks the address of its default route as its own and puts it in
SDP; on a machine with only loopback it has none.  So the whole scenario
(the C{twistd conference} server and every phone) runs in a new network
namespace (C{unshare -n}) whose only interface is C{lo}, with a default
route through it: there baresip chooses 127.0.0.1, and nothing leaves the
namespace.

L{run_in_namespace} starts this module as a program in such a namespace;
its L{main} starts the server on a given SQLite store, starts the phones,
waits for them to hang up, stops the server and writes a JSON summary for
the test to read.  A baresip plays a WAV file through its C{aufile} source
and records what it hears with the C{sndfile} module; it dials by itself
(C{-e}) and is hung up with C{SIGTERM} once every phone has been in the
conference for the scenario's seconds (C{-t} is only a safety net).
linphonec (Debian's linphone-cli 5.1) is driven through its standard
input: C{soundcard use files} puts WAV files in place of the sound card,
C{play} and C{record} name them (set before the call, they apply from its
start), C{call}, then C{terminate} and C{quit}.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt
from twisted.trial.unittest import SkipTest

from tests.interop.harness import ServerProcess, free_port
from tests.shared import PROJECT_ROOT
from tests.unit.media.signals import band_share, tone, write_wav

BARESIP_MODULES = Path("/usr/lib/baresip/modules")
# How long the phones get to have their calls up, all of them, before
# the scenario's seconds together are counted anyway.
JOIN_DEADLINE = 20
NAMESPACE_SETUP = "ip link set lo up && ip route add default dev lo"
# Each codec as baresip's audio_codecs names it (name/rate/channels; a
# name alone means /8000/1), and the rate and channels its aufile source
# must then have.
BARESIP_CODECS = {
    "PCMU": ("PCMU", 8000, 1),
    "PCMA": ("PCMA", 8000, 1),
    "G722": ("G722/16000/1", 16000, 1),
    "opus": ("opus/48000/2", 48000, 2),
}
# linphonec's file player takes 16-bit mono WAV and resamples it to the
# codec's rate, whichever codec is negotiated.
LINPHONEC_RATE = 16000
# What linphonec prints once its call is over (hung up by either side).
LINPHONEC_ENDED = "ended ("
# What it prints once its call is up.
LINPHONEC_CONNECTED = " connected."


def write_tone(
    path: Path, frequency: float, seconds: float, codec: str, kind: str = "baresip"
) -> None:
    """
    A WAV of a -12 dBFS tone as the phone plays it: for baresip's aufile
    in the rate and channels of C{codec}, for linphonec 16 kHz mono.
    """
    if kind == "linphonec":
        rate, channels = LINPHONEC_RATE, 1
    else:
        _, rate, channels = BARESIP_CODECS[codec]
    write_wav(path, tone(frequency, seconds, -12, rate=rate), rate, channels)


@dataclass
class PhoneSpec:
    """
    One phone of the scenario: its name, the WAV it plays, the codec it
    offers (baresip's name: C{PCMU}, C{PCMA}, C{G722} or C{opus}), its
    media encryption (baresip's C{mediaenc}: C{srtp-mand} offers
    C{RTP/SAVP} with SDES keys, C{srtp} best-effort SRTP over C{RTP/AVP};
    L{None}: plain RTP), its C{kind} (C{baresip} or C{linphonec}; a
    linphonec offers all its codecs, so its C{codec} must be empty, and
    plain RTP) and, once run, what it recorded (C{heard}: the recording
    of what it heard), the tail of its output and its exit status.
    """

    name: str
    wav: str
    codec: str = "PCMU"
    mediaenc: Optional[str] = None
    kind: str = "baresip"
    recordings: List[str] = field(default_factory=list)
    heard: Optional[str] = None
    output: str = ""
    status: Optional[int] = None


def namespace_prefix() -> List[str]:
    """
    The command prefix that runs a program in a new network namespace with
    loopback up and a default route through it.

    @raise SkipTest: where C{unshare} or C{ip} is missing or namespaces
        cannot be made (no privilege, no user namespaces).
    """
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            raise SkipTest(f"{tool} not installed (util-linux, iproute2)")
    flags = "-n" if os.geteuid() == 0 else "-rn"
    probe = subprocess.run(
        ["unshare", flags, "sh", "-c", NAMESPACE_SETUP],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    if probe.returncode != 0:
        raise SkipTest(f"cannot make a network namespace: {probe.stderr.strip()}")
    return ["unshare", flags, "sh", "-c", f'{NAMESPACE_SETUP} && exec "$@"', "namespace"]


def run_in_namespace(folder: Path, timeout: float) -> Dict[str, Any]:
    """
    Run L{main} on C{folder}/scenario.json in a new network namespace and
    return the summary it wrote.
    """
    command = [*namespace_prefix(), sys.executable, "-m", "tests.interop.softphones", str(folder)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    summary_path = folder / "summary.json"
    if result.returncode != 0 or not summary_path.exists():
        raise AssertionError(
            f"scenario failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    summary: Dict[str, Any] = json.loads(summary_path.read_text())
    return summary


def baresip_config(folder: Path, phone: PhoneSpec, sip_port: int, rtp_low: int) -> None:
    """Write a baresip configuration folder for C{phone}."""
    folder.mkdir(parents=True, exist_ok=True)
    modules = ["g711.so", "g722.so", "opus.so", "aufile.so", "aubridge.so", "sndfile.so"]
    if phone.mediaenc is not None:
        modules.append("srtp.so")
    lines = [
        "poll_method epoll",
        f"sip_listen 127.0.0.1:{sip_port}",
        "audio_player aubridge,nil",
        f"audio_source aufile,{phone.wav}",
        "audio_alert aubridge,nil",
        f"rtp_ports {rtp_low}-{rtp_low + 9}",
        "rtcp_mux no",
        f"module_path {BARESIP_MODULES}",
        *(f"module {name}" for name in modules),
        "module_app account.so",
        "module_app menu.so",
        f"snd_path {folder}",
    ]
    (folder / "config").write_text("\n".join(lines) + "\n")
    codec = BARESIP_CODECS[phone.codec][0]
    account = f"<sip:{phone.name}@127.0.0.1:{sip_port}>;regint=0;audio_codecs={codec}"
    if phone.mediaenc is not None:
        account += f";mediaenc={phone.mediaenc}"
    (folder / "accounts").write_text(account + "\n")
    (folder / "contacts").write_text("")


def start_phone(folder: Path, target: str, seconds: int) -> subprocess.Popen[bytes]:
    """Start baresip on C{folder}, dialling C{target}, quitting after C{seconds}."""
    baresip = shutil.which("baresip") or "baresip"
    with open(folder / "baresip.log", "wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [baresip, "-f", str(folder), "-e", f"/dial {target}", "-t", str(seconds)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


LINPHONERC = """\
[sip]
contact=<sip:{name}@127.0.0.1>
sip_port={sip_port}
sip_tcp_port=0
sip_tls_port=0

[rtp]
audio_rtp_port={rtp_low}-{rtp_high}
video_rtp_port={video_low}-{video_high}

[sound]
echocancellation=0

[video]
enabled=0
display=0
capture=0
"""


def linphonec_config(folder: Path, phone: PhoneSpec, sip_port: int, rtp_low: int) -> None:
    """
    Write a home folder for linphonec and C{phone}: a linphonerc and the
    folders it keeps its database in (without them it stays offline).
    """
    if phone.codec or phone.mediaenc is not None:
        raise ValueError(f"{phone.name}: linphonec takes no codec or mediaenc")
    (folder / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
    (folder / ".config").mkdir(exist_ok=True)
    (folder / "linphonerc").write_text(
        LINPHONERC.format(
            name=phone.name,
            sip_port=sip_port,
            rtp_low=rtp_low,
            rtp_high=rtp_low + 9,
            video_low=rtp_low + 10,
            video_high=rtp_low + 19,
        )
    )


class Linphonec:
    """
    One linphonec, calling with WAV files for sound card, driven through
    its standard input by a thread: it dials at once, hangs up and quits
    on L{stop}, or C{seconds} after it started (as baresip's C{-t}), or
    when its call ends first.

    @ivar process: the linphonec process.
    """

    def __init__(self, folder: Path, phone: PhoneSpec, target: str, seconds: int) -> None:
        self.folder = folder
        self.log_path = folder / "linphonec.log"
        self.heard = folder / "heard.wav"
        env = dict(os.environ)
        env.update(
            HOME=str(folder),
            XDG_DATA_HOME=str(folder / ".local" / "share"),
            XDG_CONFIG_HOME=str(folder / ".config"),
        )
        linphonec = shutil.which("linphonec") or "linphonec"
        rc, debug = folder / "linphonerc", folder / "linphone.log"
        with open(self.log_path, "wb") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [linphonec, "-c", str(rc), "-d", "6", "-l", str(debug)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE,
                env=env,
            )
        assert self.process.stdin is not None
        self._stdin: IO[bytes] = self.process.stdin
        for command in (
            "soundcard use files",
            f"play {phone.wav}",
            f"record {self.heard}",
            f"call {target}",
        ):
            self.send(command)
        self._deadline = time.monotonic() + seconds
        self._thread = threading.Thread(target=self._hang_up, daemon=True)
        self._thread.start()

    def send(self, command: str) -> None:
        """Type C{command} into linphonec (ignored once it has gone)."""
        try:
            self._stdin.write(command.encode() + b"\n")
            self._stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def output(self) -> str:
        """What linphonec printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Hang up and quit now, and return once both commands are typed."""
        self._deadline = time.monotonic()
        self._thread.join(5)

    def _hang_up(self) -> None:
        while time.monotonic() < self._deadline and self.process.poll() is None:
            if LINPHONEC_ENDED in self.output():
                break
            time.sleep(0.1)
        self.send("terminate")
        time.sleep(0.5)
        self.send("quit")


def output_path(folder: Path, phone: PhoneSpec) -> Path:
    """Where C{phone}, run in C{folder}, prints what it does."""
    return folder / ("linphonec.log" if phone.kind == "linphonec" else "baresip.log")


def established(folder: Path, phone: PhoneSpec) -> bool:
    """Whether C{phone}, run in C{folder}, has printed that its call is up."""
    log = output_path(folder, phone)
    marker = LINPHONEC_CONNECTED if phone.kind == "linphonec" else "Call established"
    return log.exists() and marker in log.read_text(errors="replace")


def wait_for_calls(folder: Path, phones: Sequence[PhoneSpec], deadline: float) -> bool:
    """
    Wait until every phone of C{phones} (each run in its own folder under
    C{folder}) says that its call is up, for at most C{deadline} seconds;
    return whether they all did.  A phone's start takes from a fraction of
    a second to a few on a loaded machine, so the call's time together is
    counted from here.
    """
    end = time.monotonic() + deadline
    while not all(established(folder / phone.name, phone) for phone in phones):
        if time.monotonic() >= end:
            return False
        time.sleep(0.1)
    return True


def together_part(samples: npt.NDArray[np.int16], rate: int, seconds: int) -> npt.NDArray[np.int16]:
    """
    The part of a phone's recording when every phone was in: the phones
    are hung up C{seconds} after the last one joined, so it is the end of
    the recording, less the first second of that time (media follows the
    join) and the last half second (the others leave one by one).
    """
    return samples[-(seconds - 1) * rate : -rate // 2]


def share_report(
    heard: Mapping[str, Tuple[npt.NDArray[np.int16], int]], tones: Sequence[float]
) -> List[str]:
    """
    For a failure message: how long each phone recorded, and each tone's
    share of what it heard second by second, so that a miss says when a
    tone was absent (a late phone, a stream lost midway), not only that
    it was.
    """
    report = [f"{name}: {len(s) / r:.1f} s" for name, (s, r) in heard.items()]
    for name, (samples, rate) in heard.items():
        for frequency in tones:
            shares = [
                round(band_share(samples[i : i + rate], frequency, rate), 2)
                for i in range(0, len(samples) - rate + 1, rate)
            ]
            report.append(f"{name} {frequency:.0f} Hz per second: {shares}")
    return report


def collect(folder: Path, phone: PhoneSpec) -> None:
    """Fill in what C{phone}, run in C{folder}, printed and recorded."""
    phone.output = output_path(folder, phone).read_text(errors="replace")[-4000:]
    phone.recordings = sorted(str(p) for p in folder.glob("*.wav"))
    suffix = "heard.wav" if phone.kind == "linphonec" else "-dec.wav"
    heard = [p for p in phone.recordings if p.endswith(suffix)]
    phone.heard = heard[0] if len(heard) == 1 else None


def main(argv: Sequence[str]) -> int:
    """
    Run the scenario of C{argv[0]}/scenario.json: C{store} (a SQLite
    path), C{conference} (the user part of the conference URI),
    C{seconds} (how long the phones stay), C{phones} (L{PhoneSpec}
    fields) and C{server_args}.  Each phone gets 20 RTP ports of its own
    from 31000 up.
    """
    folder = Path(argv[0])
    scenario = json.loads((folder / "scenario.json").read_text())
    phones = [PhoneSpec(**spec) for spec in scenario["phones"]]
    server = ServerProcess(
        ["--store", f"sqlite:{scenario['store']}", *scenario.get("server_args", [])]
    )
    processes: List[subprocess.Popen[bytes]] = []
    try:
        target = f"sip:{scenario['conference']}@127.0.0.1:{server.port}"
        # Each phone quits by itself at the latest after this (a safety
        # net); normally it is hung up below, once all have been there
        # together for the scenario's seconds.
        limit = scenario["seconds"] + JOIN_DEADLINE
        linphonecs: List[Linphonec] = []
        for n, phone in enumerate(phones):
            phone_folder = folder / phone.name
            if phone.kind == "linphonec":
                linphonec_config(phone_folder, phone, free_port(), 31000 + 20 * n)
                linphonecs.append(Linphonec(phone_folder, phone, target, limit))
                processes.append(linphonecs[-1].process)
            else:
                baresip_config(phone_folder, phone, free_port(), 31000 + 20 * n)
                processes.append(start_phone(phone_folder, target, limit))
            time.sleep(0.3)
        started = time.monotonic()
        together = wait_for_calls(folder, phones, JOIN_DEADLINE)
        joined_after = time.monotonic() - started
        time.sleep(scenario["seconds"])
        for phone, process in zip(phones, processes):
            if phone.kind != "linphonec" and process.poll() is None:
                process.send_signal(signal.SIGTERM)  # baresip: hang up and quit, as -t
        for linphonec in linphonecs:
            linphonec.stop()
        for phone, process in zip(phones, processes):
            try:
                phone.status = process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                phone.status = process.wait()
            collect(folder / phone.name, phone)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdin is not None:
                process.stdin.close()
        server.stop()
    log = server.log_path.read_text(errors="replace")
    server.cleanup()
    summary = {
        "together": together,
        "joined_after": joined_after,
        "phones": [asdict(phone) for phone in phones],
        "server_log": log,
        "tracebacks": [line for line in log.splitlines() if "Traceback" in line],
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
