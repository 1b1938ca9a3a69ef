# -*- test-case-name: tests.interop.test_media -*-
"""
The built-in mixer against real softphones: four baresip instances join
one conference, each playing its own tone and offering one codec (PCMU,
PCMA, Opus, G.722), and each records what it hears.  Every recording must
hold the three other tones and not its own.  Again with three of them on
plain RTP, SDES-SRTP over C{RTP/SAVP} and best-effort SRTP (baresip's
C{srtp} module).  And linphonec (linphone-cli 5.1, WAV files in place of
a sound card, offering all its codecs: it gets Opus) with two baresips
(PCMU, PCMA): both ways, each hears the others' tones and not its own.
The server and the phones run together in a private network namespace
(see L{tests.interop.softphones}).  SIPp joins and presses a key as RFC
4733 events, which the server reports once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Generator, List, NamedTuple, Optional, Sequence

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from conference.media.wideband import G722, OPUS, unavailable
from tests.interop.harness import ServerProcess, require_tool, run_sipp
from tests.interop.softphones import (
    JOIN_DEADLINE,
    PhoneSpec,
    namespace_prefix,
    run_in_namespace,
    share_report,
    together_part,
    write_tone,
)
from tests.interop.test_focus import seed
from tests.unit.media.signals import band_share, read_wav, rms_db

PHONES = [
    ("alice", 500.0, "PCMU"),
    ("bob", 800.0, "PCMA"),
    ("carol", 1300.0, "opus"),
    ("dave", 1700.0, "G722"),
]
# Bob on SRTP over RTP/SAVP (baresip's srtp-mand), Carol on best-effort
# SRTP (RTP/AVP with a=crypto, baresip's srtp), Alice on plain RTP.
SRTP_PHONES = [
    ("alice", 500.0, "PCMU", None),
    ("bob", 800.0, "PCMU", "srtp-mand"),
    ("carol", 1300.0, "PCMA", "srtp"),
]
SRTP_MODULE = Path("/usr/lib/baresip/modules/srtp.so")
# RFC 4733 events for the key 5, as Debian's sip-tester (SIPp) ships them.
DTMF_PCAP = Path("/usr/share/sip-tester/dtmf_2833_5.pcap")
SECONDS = 6
# Of what a phone hears (once all are in): its own tone must be
# under 2 % of the energy, each other tone over 20 %, and the whole loud
# enough to be the tones (each is sent at -12 dBFS peak, -15 dBFS RMS).
OWN_SHARE_MAX = 0.02
OTHER_SHARE_MIN = 0.2
MIN_LEVEL_DB = -25.0


class Phone(NamedTuple):
    """A phone of a test conference: who, its tone, what it offers, which program."""

    name: str
    frequency: float
    codec: str
    mediaenc: Optional[str] = None
    kind: str = "baresip"


# Two baresips and linphonec, which offers all its codecs (Opus first).
LINPHONEC_PHONES = [
    Phone("alice", 500.0, "PCMU"),
    Phone("bob", 800.0, "PCMA"),
    Phone("linus", 1300.0, "", kind="linphonec"),
]


class SoftphoneConferenceTests(TestCase):
    """
    Softphones (baresip, linphonec) in one conference hear each other, not
    themselves.
    """

    timeout = 60 + JOIN_DEADLINE

    def test_four_phones(self) -> Deferred[List[PhoneSpec]]:
        """Four baresips (PCMU, PCMA, Opus, G.722) each hear the others' tones, not their own."""
        for codec in (OPUS, G722):
            reason = unavailable(codec)
            if reason is not None:  # PyPy: G.711 only (docs/media.rst)
                raise SkipTest(reason)
        return self.conference([Phone(*phone) for phone in PHONES])

    @inlineCallbacks
    def test_srtp_phone(self) -> Generator[Deferred[Any], Any, None]:
        """baresips on SRTP over SAVP, on best-effort SRTP and on plain RTP hear each other."""
        if not SRTP_MODULE.exists():
            message = f"{SRTP_MODULE} not found (Debian's baresip-core ships it)"
            if os.environ.get("CI"):
                self.fail(message)
            raise SkipTest(message)
        results = yield self.conference([Phone(*phone) for phone in SRTP_PHONES])
        alice, bob, carol = results
        for secure in (bob, carol):
            self.assertIn("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)", secure.output)
        self.assertNotIn("SRTP is Enabled", alice.output)

    @inlineCallbacks
    def test_linphonec_with_baresips(self) -> Generator[Deferred[Any], Any, None]:
        """linphonec and two baresips (PCMU, PCMA) hear each other's tones, not their own."""
        require_tool("linphonec", "linphone-cli")
        results = yield self.conference(LINPHONEC_PHONES)
        linus = results[-1]
        self.assertIn("Media streams established", linus.output)
        # Its own log (-d 6) shows the negotiated codec: Opus, its first
        # choice, where the server speaks it (not on PyPy: G.711 there).
        debug = (Path(str(linus.heard)).parent / "linphone.log").read_text(errors="replace")
        decoder = "MSOpusDec" if unavailable(OPUS) is None else "(?i:MS(?:ulaw|alaw)Dec)"
        self.assertRegex(debug, rf"MSRtpRecv:\S+-->{decoder}")

    @inlineCallbacks
    def conference(self, spec: Sequence[Phone]) -> Generator[Deferred[Any], Any, List[PhoneSpec]]:
        """
        Run phones in one conference and check that each hears the others'
        tones and not its own.
        """
        require_tool("baresip")
        namespace_prefix()  # skips where no network namespace can be made
        folder = Path(tempfile.mkdtemp(prefix="conference-media-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        yield seed(folder / "conference.sqlite")
        phones: List[Dict[str, Any]] = []
        for name, frequency, codec, mediaenc, kind in spec:
            wav = folder / f"{name}.wav"
            write_tone(wav, frequency, SECONDS + JOIN_DEADLINE + 6, codec, kind)
            phones.append(
                {"name": name, "wav": str(wav), "codec": codec, "mediaenc": mediaenc, "kind": kind}
            )
        scenario = {
            "store": str(folder / "conference.sqlite"),
            "conference": "conf-now",
            "seconds": SECONDS,
            "phones": phones,
            "server_args": [
                *("--domain", "example.com", "--rtp-ports", "30000-30099"),
                *("--stop-timeout", "1"),
            ],
        }
        (folder / "scenario.json").write_text(json.dumps(scenario))
        summary = yield deferToThread(run_in_namespace, folder, 50 + JOIN_DEADLINE)
        log = summary["server_log"]
        self.assertEqual(summary["tracebacks"], [], log[-3000:])
        joined_after = summary["joined_after"]
        self.assertTrue(summary["together"], f"not all calls were up in {joined_after:.1f} s")
        results = [PhoneSpec(**spec) for spec in summary["phones"]]
        heard: Dict[str, Any] = {}
        for phone, (name, _, codec, _, kind) in zip(results, spec):
            if kind == "linphonec":
                self.assertRegex(phone.output, r"Call 1 with sip:conf-now@\S+ connected\.")
            else:
                self.assertIn("Call established", phone.output, phone.output)
                self.assertIn(f"Set audio encoder: {codec}", phone.output)
            self.assertIn(f"sip:{name}@127.0.0.1 joined sip:conf-now@example.com", log)
            self.assertIsNotNone(phone.heard, f"{name} recorded {phone.recordings}")
            heard[name] = read_wav(Path(str(phone.heard)))
        # Every share, second by second, goes into a failure message.
        context = "\n".join(share_report(heard, [phone.frequency for phone in spec]))
        for phone_spec in spec:
            name, own = phone_spec.name, phone_spec.frequency
            samples, rate = heard[name]
            self.assertGreater(len(samples), 3 * rate, f"{name} recorded {len(samples)} samples")
            samples = together_part(samples, rate, SECONDS)
            self.assertGreater(rms_db(samples), MIN_LEVEL_DB, f"{name} hears too little\n{context}")
            own_share = band_share(samples, own, rate)
            self.assertLess(own_share, OWN_SHARE_MAX, f"{name} hears itself\n{context}")
            for other in spec:
                if other.name != name:
                    share = band_share(samples, other.frequency, rate)
                    message = f"{name} misses {other.name}\n{context}"
                    self.assertGreater(share, OTHER_SHARE_MIN, message)
        return results


class DTMFInteropTests(TestCase):
    """
    RFC 4733 events from SIPp reach the server as one digit.
    """

    timeout = 60

    @inlineCallbacks
    def test_sipp_dtmf(self) -> Generator[Deferred[Any], Any, None]:
        """SIPp joins and plays the RFC 4733 packets of key 5: the server logs the digit once."""
        require_tool("sipp")
        if not DTMF_PCAP.exists():
            raise SkipTest(f"{DTMF_PCAP} not found (Debian: apt-get install sip-tester)")
        folder = Path(tempfile.mkdtemp(prefix="conference-dtmf-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        yield seed(folder / "conference.sqlite")
        server = ServerProcess(
            ["--domain", "example.com", "--store", f"sqlite:{folder / 'conference.sqlite'}"]
        )
        self.addCleanup(server.cleanup)
        inf = folder / "dtmf.csv"
        inf.write_text("SEQUENTIAL\nconf-now;\n")
        failure = yield deferToThread(run_sipp, server, "join_dtmf.xml", "-inf", str(inf))
        self.assertFalse(failure, failure)
        log = server.log()
        self.assertEqual(log.count("DTMF 5 from sip:sipp@example.com"), 1, log[-3000:])
        self.assertEqual(server.tracebacks(), [])
