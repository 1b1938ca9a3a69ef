# -*- test-case-name: tests.interop.test_janus -*-
"""
The Janus backend against a real Janus (Debian's C{janus}, started by the
tests on 127.0.0.1 with the minimal configuration of
L{tests.interop.janus}): rooms made, joined and left through the backend;
Janus stopped means 503; and three baresip phones in one conference,
mixed by Janus's AudioBridge, each hear the two other tones and not
their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Generator, List

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from conference.app.janus import JanusMediaService
from conference.app.janushttp import HTTPJanusTransport
from conference.janus import protocol
from conference.sdp import parse_sdp
from conference.sip.errors import RemoteProtocolError
from tests.interop.harness import free_port, require_tool
from tests.interop.janus import JanusProcess, janus_libraries
from tests.interop.softphones import (
    JOIN_DEADLINE,
    PhoneSpec,
    namespace_prefix,
    share_report,
    together_part,
    write_tone,
)
from tests.interop.test_focus import seed
from tests.shared import PROJECT_ROOT
from tests.unit.media.signals import band_share, read_wav, rms_db

CONFERENCE = "sip:janus-test@example.com"
PHONES = [("alice", 500.0, "PCMU"), ("bob", 800.0, "PCMA"), ("carol", 1300.0, "PCMU")]
SECONDS = 6
# As for the built-in mixer (tests.interop.test_media); Janus mixes at
# 16 kHz and resamples, so the levels are as loose.
OWN_SHARE_MAX = 0.05
OTHER_SHARE_MIN = 0.15
MIN_LEVEL_DB = -30.0


def offer(port: int) -> bytes:
    """A PCMU offer of a phone on 127.0.0.1:C{port}."""
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()


def _sleep(seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    global_reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d


class RealJanusBackendTests(TestCase):
    """The backend's requests against a real Janus on host loopback."""

    timeout = 30

    def setUp(self) -> None:
        janus_libraries()  # skips without janus
        folder = Path(tempfile.mkdtemp(prefix="conference-janus-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        self.janus = JanusProcess(folder, free_port(), "33000-33099")
        self.addCleanup(self.janus.stop)
        transport = HTTPJanusTransport(self.janus.url, global_reactor)
        self.service = JanusMediaService(transport, global_reactor, retry_after=7)
        self.addCleanup(self.service.stop)

    @inlineCallbacks
    def test_room_join_mute_leave(self) -> Generator[Deferred[Any], Any, None]:
        """Two joins share one room on Janus's RTP ports; mute works; the last leave destroys it."""
        a = yield self.service.answer(CONFERENCE, "sip:a@example.com", offer(40000))
        b = yield self.service.answer(CONFERENCE, "sip:b@example.com", offer(40002))
        for session in (a, b):
            answer = parse_sdp(session.local_sdp)
            assert answer.connection is not None
            self.assertEqual(answer.connection.address, "127.0.0.1")
            self.assertTrue(33000 <= answer.media[0].port <= 33099)
            self.assertEqual(answer.media[0].formats, ["0"])
        self.assertEqual(a.room, b.room)
        control = self.service._control
        assert control is not None
        listing = protocol.list_participants(a.room)
        data = yield self.service.client.request(control, listing, "participants")
        self.assertEqual(sorted(protocol.participant_ids(data)), sorted([a.janus_id, b.janus_id]))
        self.service.mute(a, incoming=True)
        yield _sleep(0.3)
        data = yield self.service.client.request(control, listing, "participants")
        muted = {p["id"]: p["muted"] for p in data["participants"]}
        self.assertEqual(muted, {a.janus_id: True, b.janus_id: False})
        self.service.close(a)
        self.service.close(b)
        yield _sleep(0.5)
        try:
            yield self.service.client.request(control, listing, "participants")
        except protocol.JanusError as e:
            self.assertEqual(e.code, protocol.NO_SUCH_ROOM)
        else:
            self.fail("the room outlived its last participant")
        self.assertNotIn("Traceback", self.janus.log())

    @inlineCallbacks
    def test_janus_stopped(self) -> Generator[Deferred[Any], Any, None]:
        """Once Janus is gone, a join is 503 with Retry-After, not a hang."""
        first = yield self.service.answer(CONFERENCE, "sip:a@example.com", offer(40000))
        self.assertFalse(first.closed)
        yield deferToThread(self.janus.stop)
        try:
            yield self.service.answer(CONFERENCE, "sip:b@example.com", offer(40002))
        except RemoteProtocolError as e:
            self.assertEqual((e.status, e.headers), (503, [("Retry-After", "7")]))
        else:
            self.fail("joined without Janus")


def run_scenario(folder: Path, http_port: int, timeout: float) -> Dict[str, Any]:
    """Run Janus, the server and the phones in one new network namespace."""
    command = [*namespace_prefix(), sys.executable, "-m", "tests.interop.janus"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [*command, str(folder), str(http_port)],
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
        janus_log = folder / "janus" / "janus.log"
        raise AssertionError(
            f"scenario failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}\n"
            f"{janus_log.read_text(errors='replace')[-3000:] if janus_log.exists() else ''}"
        )
    summary: Dict[str, Any] = json.loads(summary_path.read_text())
    return summary


class JanusSoftphoneTests(TestCase):
    """baresip phones mixed by Janus hear each other, not themselves."""

    timeout = 60 + JOIN_DEADLINE

    @inlineCallbacks
    def test_three_phones(self) -> Generator[Deferred[Any], Any, None]:
        """Three baresips (PCMU, PCMA, PCMU) in a Janus room each hear the two other tones."""
        require_tool("baresip")
        janus_libraries()
        namespace_prefix()
        folder = Path(tempfile.mkdtemp(prefix="conference-janus-media-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        yield seed(folder / "conference.sqlite")
        phones: List[Dict[str, Any]] = []
        for name, frequency, codec in PHONES:
            wav = folder / f"{name}.wav"
            write_tone(wav, frequency, SECONDS + JOIN_DEADLINE + 6, codec)
            phones.append({"name": name, "wav": str(wav), "codec": codec})
        http_port = 18088
        scenario = {
            "store": str(folder / "conference.sqlite"),
            "conference": "conf-now",
            "seconds": SECONDS,
            "phones": phones,
            "server_args": [
                *("--domain", "example.com"),
                *("--media", f"janus:http://127.0.0.1:{http_port}/janus"),
                *("--stop-timeout", "1"),
            ],
        }
        (folder / "scenario.json").write_text(json.dumps(scenario))
        summary = yield deferToThread(run_scenario, folder, http_port, 55 + JOIN_DEADLINE)
        log = summary["server_log"]
        self.assertEqual(summary["tracebacks"], [], log[-3000:])
        self.assertIn("Janus session", log)  # the media went through Janus
        joined_after = summary["joined_after"]
        self.assertTrue(summary["together"], f"not all calls were up in {joined_after:.1f} s")
        results = [PhoneSpec(**spec) for spec in summary["phones"]]
        heard: Dict[str, Any] = {}
        for phone, (name, _, codec) in zip(results, PHONES):
            self.assertIn("Call established", phone.output, phone.output)
            self.assertIn(f"Set audio encoder: {codec}", phone.output)
            [path] = [p for p in phone.recordings if p.endswith("-dec.wav")]
            heard[name] = read_wav(Path(path))
        # Every share, second by second, goes into any failure message, so
        # that a miss says when the tone was absent, not only that it was.
        report = share_report(heard, [tone_hz for _, tone_hz, _ in PHONES])

        def quiet(output: str) -> str:
            lines = [line for line in output.splitlines() if "bit/s" not in line]
            return "\n".join(lines)[-1500:]

        janus_lines = [line for line in log.splitlines() if "anus" in line]
        context = "\n".join(report + janus_lines[-20:])
        for phone, (name, own, _) in zip(results, PHONES):
            samples, rate = heard[name]
            self.assertGreater(len(samples), 3 * rate, f"{name} recorded too little\n{context}")
            samples = together_part(samples, rate, SECONDS)
            self.assertGreater(rms_db(samples), MIN_LEVEL_DB, f"{name} hears too little\n{context}")
            own_share = band_share(samples, own, rate)
            self.assertLess(own_share, OWN_SHARE_MAX, f"{name} hears itself\n{context}")
            for other_name, other, _ in PHONES:
                if other_name != name:
                    share = band_share(samples, other, rate)
                    self.assertGreater(
                        share,
                        OTHER_SHARE_MIN,
                        f"{name} misses {other_name}\n{context}\n{quiet(phone.output)}",
                    )
