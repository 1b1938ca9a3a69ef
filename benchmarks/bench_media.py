# -*- test-case-name: tests.unit.test_bench_media -*-
"""
How many participants one core mixes with the built-in mixer, per codec
and interpreter, and the delay the mixer adds.

The measured work is the server's whole media path for each 20 ms tick,
with real UDP sockets on loopback: read every participant's packet from
its own port (as the server has one port per participant), hand it to
its L{Channel} (RTP checks, latching, decode, resampling, jitter buffer),
tick every conference's L{Mixer} (N-1 mixes, encode, packetise, RTCP)
and send each participant its packet.  The phones' side (making and
reading packets) runs in the same process but outside the timed part.
Twisted's dispatch of each datagram is not included (a few microseconds
a packet; see docs/benchmarks.rst).

A tick misses its deadline when its work ends after the next tick was
due, with late ticks delaying the ones behind them, as on a server whose
core does nothing else.  The search doubles the number of participants
(in conferences of C{--size}) until more than 0.1 % of ticks miss, then
bisects.  The baseline, measured in the same run, is the raw codec cost:
one decode and one encode of a 20 ms frame per participant, so the
ratio says what the rest of the pipeline costs on top of the codec.

    python benchmarks/bench_media.py --quick
    python benchmarks/bench_media.py --pypy-python .venv-pypy/bin/python

Each measurement runs in a child process pinned to one core; the table
goes to standard output, progress to standard error.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_sip import SERVER_CORE, pin, say  # noqa: E402

FRAME_S = 0.020
MISS_LIMIT = 0.001
CODECS = {"pcmu": ("PCMU", 8000, 0), "g722": ("G722", 8000, 9), "opus": ("opus", 48000, 111)}


@dataclass
class Measure:
    """One run of the media path: C{participants} for C{ticks}."""

    participants: int
    ticks: int
    misses: int
    work_mean_ms: float
    work_p99_ms: float
    us_per_participant: float

    @property
    def passed(self) -> bool:
        """Whether deadline misses stayed under 0.1 %."""
        return self.misses <= MISS_LIMIT * self.ticks


def deadline_misses(work: Sequence[float], period: float = FRAME_S) -> int:
    """
    How many ticks end after the next one is due, given each tick's work
    in seconds: tick k is due at k * period and starts when it is due or
    when the previous one ended, whichever is later.
    """
    misses = 0
    end = 0.0
    for k, seconds in enumerate(work):
        end = max(k * period, end) + seconds
        if end > (k + 1) * period:
            misses += 1
    return misses


def percentile(values: Sequence[float], p: float) -> float:
    """The C{p}th percentile (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered)) - 1))]


# The child: everything below until the parent runs in the measured process.


def tone_payloads(codec: Any, frequency: float) -> List[bytes]:
    """One second of a tone, encoded as C{codec}'s 20 ms payloads."""
    import numpy as np

    from conference.media.codecs import FRAME_SAMPLES, INTERNAL_RATE

    t = np.arange(INTERNAL_RATE) / INTERNAL_RATE
    pcm = np.rint(8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    encoder = codec.encoder(None)
    return [encoder.encode(frame) or b"" for frame in pcm.reshape(-1, FRAME_SAMPLES)]


class MediaPath:
    """
    C{count} participants in conferences of C{size}, each with a server
    socket, a channel and a tone of its own; one phone socket plays every
    participant's phone.
    """

    def __init__(self, codec_name: str, count: int, size: int) -> None:
        from conference.media.catalog import codec_named
        from conference.media.channel import Channel
        from conference.media.mixer import Mixer

        name, clock, pt = CODECS[codec_name]
        codec = codec_named(name, clock)
        if codec is None:
            raise SystemExit(f"codec {name}/{clock} is not available here")
        self.codec, self.pt = codec, pt
        self.phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.phone.bind(("127.0.0.1", 0))
        self.phone.setblocking(False)
        self.phone.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        address = self.phone.getsockname()
        rng = random.Random(7)
        self.sockets: List[socket.socket] = []
        self.channels: List[Any] = []
        self.mixers: List[Any] = []
        self.payloads: List[List[bytes]] = []
        for n in range(count):
            if n % size == 0:
                self.mixers.append(Mixer())
            server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            server.bind(("127.0.0.1", 0))
            server.setblocking(False)
            channel = Channel(n, now=0.0, cname=f"bench{n}", rng=rng)
            channel.configure(remote=address, codecs={pt: codec}, send_pt=pt)
            self.mixers[-1].add(channel)
            self.sockets.append(server)
            self.channels.append(channel)
            self.payloads.append(tone_payloads(codec, 200.0 + 37.0 * (n % 50)))
        self.addresses = [s.getsockname() for s in self.sockets]
        self.sequence = 0

    def phones_send(self) -> None:
        """Every phone sends its next packet (not timed)."""
        from conference.media.rtp import build_rtp

        k = self.sequence
        self.sequence += 1
        step = self.codec.frame_step()
        for n, address in enumerate(self.addresses):
            payload = self.payloads[n][k % len(self.payloads[n])]
            data = build_rtp(self.pt, k & 0xFFFF, (k * step) & 0xFFFFFFFF, n + 1, payload)
            self.phone.sendto(data, address)

    def phones_drain(self) -> int:
        """Read what the server sent (not timed); how many packets."""
        count = 0
        while True:
            try:
                self.phone.recv(2048)
            except BlockingIOError:
                return count
            count += 1

    def server_tick(self, now: float) -> None:
        """The timed part: read, decode and buffer, mix, encode and send."""
        for server, channel in zip(self.sockets, self.channels):
            try:
                data, source = server.recvfrom(2048)
            except BlockingIOError:
                continue
            channel.receive_rtp(data, source, now)
        for mixer in self.mixers:
            for datagram in mixer.tick(now):
                self.sockets[datagram.key].sendto(datagram.data, datagram.address)

    def close(self) -> None:
        for s in [self.phone, *self.sockets]:
            s.close()


def measure(codec: str, count: int, size: int, ticks: int, warmup: int) -> Measure:
    """Run C{count} participants for C{warmup} + C{ticks} ticks."""
    path = MediaPath(codec, count, size)
    work: List[float] = []
    try:
        for k in range(warmup + ticks):
            path.phones_send()
            started = time.perf_counter()
            path.server_tick(k * FRAME_S)
            elapsed = time.perf_counter() - started
            path.phones_drain()
            if k >= warmup:
                work.append(elapsed)
    finally:
        path.close()
    mean = sum(work) / len(work)
    return Measure(
        participants=count,
        ticks=ticks,
        misses=deadline_misses(work),
        work_mean_ms=mean * 1000,
        work_p99_ms=percentile(work, 99) * 1000,
        us_per_participant=mean / count * 1e6,
    )


def codec_cost(codec_name: str, frames: int) -> float:
    """Microseconds to decode and encode one 20 ms frame (own codec state)."""
    name, clock, _ = CODECS[codec_name]
    from conference.media.catalog import codec_named

    codec = codec_named(name, clock)
    if codec is None:
        raise SystemExit(f"codec {name}/{clock} is not available here")
    payloads = tone_payloads(codec, 440.0)
    decoder, encoder = codec.decoder(None), codec.encoder(None)
    started = time.perf_counter()
    for k in range(frames):
        encoder.encode(decoder.decode(payloads[k % len(payloads)]))
    return (time.perf_counter() - started) / frames * 1e6


def added_delay(codec_name: str, trials: int) -> Tuple[float, float]:
    """
    Mouth-to-ear delay the mixer adds (ms, mean and max): a loud frame
    from one phone arriving at a random phase of the clock, until the
    frame another participant is sent carries it, on a fake clock with no
    network jitter.  Includes the jitter buffer's minimum and the wait
    for the next tick, not the codec's own algorithmic delay.
    """
    import numpy as np

    from conference.media.catalog import codec_named
    from conference.media.channel import Channel
    from conference.media.codecs import FRAME_SAMPLES, INTERNAL_RATE
    from conference.media.mixer import Mixer
    from conference.media.rtp import build_rtp, parse_rtp

    name, clock, pt = CODECS[codec_name]
    codec = codec_named(name, clock)
    if codec is None:
        raise SystemExit(f"codec {name}/{clock} is not available here")
    step = codec.frame_step()
    rng = random.Random(3)
    delays: List[float] = []
    peer = ("192.0.2.1", 4000)
    for _ in range(trials):
        mixer = Mixer()
        talker = Channel("a", now=0.0, cname="a", rng=rng)
        listener = Channel("b", now=0.0, cname="b", rng=rng)
        for channel in (talker, listener):
            channel.configure(remote=peer, codecs={pt: codec}, send_pt=pt)
            mixer.add(channel)
        encoder, decoder = codec.encoder(None), codec.decoder(None)
        quiet = encoder.encode(np.zeros(FRAME_SAMPLES, np.int16)) or b""
        samples = np.arange(FRAME_SAMPLES) / INTERNAL_RATE
        loud_pcm = np.rint(12000 * np.sin(2 * np.pi * 1000 * samples)).astype(np.int16)
        phase = rng.uniform(0.0, FRAME_S)
        click_at: Optional[float] = None
        for k in range(60):
            now = k * FRAME_S
            arrival = now + phase
            payload = quiet
            if k == 30:
                payload, click_at = encoder.encode(loud_pcm) or b"", arrival
            talker.receive_rtp(build_rtp(pt, k, k * step, 77, payload), peer, arrival)
            out = [d for d in mixer.tick(now + FRAME_S) if d.key == "b" and not d.rtcp]
            for datagram in out:
                heard = decoder.decode(parse_rtp(datagram.data).payload)
                level = float(np.sqrt(np.mean(heard.astype(np.float64) ** 2)))
                if click_at is not None and level > 2000:
                    delays.append((now + FRAME_S - click_at) * 1000)
                    click_at = None
                    break
            if click_at is None and k > 30:
                break
    return sum(delays) / max(1, len(delays)), max(delays, default=0.0)


def child(args: argparse.Namespace) -> None:
    """Measure in this (pinned) process and print one JSON object."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.child == "codec":
        result: Dict[str, Any] = {"us": codec_cost(args.codec[0], args.ticks)}
    elif args.child == "delay":
        mean, worst = added_delay(args.codec[0], args.ticks)
        result = {"mean_ms": mean, "max_ms": worst}
    else:
        result = asdict(
            measure(args.codec[0], args.participants, args.size, args.ticks, args.warmup)
        )
    print(json.dumps(result))


# The parent: searches and the table.


def run_child(python: str, *argv: str) -> Dict[str, Any]:
    """Run one measurement in a child pinned to the server's core."""
    answer = subprocess.run(
        [python, str(Path(__file__).resolve()), *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=pin(SERVER_CORE),
    )
    if answer.returncode:
        raise RuntimeError(answer.stderr.strip().splitlines()[-1] if answer.stderr else "failed")
    result: Dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
    return result


def search(python: str, codec: str, size: int, ticks: int, warmup: int) -> Optional[Measure]:
    """The most participants (a multiple of C{size}) with misses under 0.1 %."""

    def run(count: int) -> Measure:
        m = Measure(
            **run_child(
                python, "--child", "run", "--codec", codec, "--participants", str(count),
                "--size", str(size), "--ticks", str(ticks), "--warmup", str(warmup),
            )
        )  # fmt: skip
        verdict = "ok" if m.passed else "missed"
        say(
            f"  {count:5d} participants: {m.misses}/{m.ticks} late, "
            f"mean {m.work_mean_ms:.2f} ms, p99 {m.work_p99_ms:.2f} ms: {verdict}"
        )
        return m

    best: Optional[Measure] = None
    low, high = 0, size
    while high <= 20000:
        m = run(high)
        if not m.passed:
            break
        best, low, high = m, high, high * 2
    while high - low > size:
        middle = (low + high) // 2 // size * size
        if middle in (low, high):
            break
        m = run(middle)
        if m.passed:
            best, low = m, middle
        else:
            high = middle
    return best


def interpreters(args: argparse.Namespace) -> List[Tuple[str, str]]:
    """(label, python) pairs: this one, and PyPy if it has what we need."""
    found = [("cpython", sys.executable)]
    if args.pypy_python:
        check = subprocess.run(
            [args.pypy_python, "-c", "import numpy, conference"],
            check=False,
            capture_output=True,
            text=True,
        )
        if check.returncode == 0:
            found.append(("pypy", args.pypy_python))
        else:
            say(f"PyPy skipped: {args.pypy_python} cannot import numpy and conference")
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--codec", action="append", choices=sorted(CODECS))
    parser.add_argument("--size", type=int, default=10, help="participants per conference")
    parser.add_argument("--pypy-python", default=None, help="a PyPy with the project installed")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", choices=["run", "codec", "delay"], help=argparse.SUPPRESS)
    parser.add_argument("--participants", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--ticks", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    ticks, warmup = (250, 50) if args.quick else (1500, 250)
    rows: List[Dict[str, Any]] = []
    for label, python in interpreters(args):
        for codec in args.codec or ["pcmu", "opus"]:
            say(f"{label} {codec}: codec baseline, delay, then the search")
            try:
                base = run_child(python, "--child", "codec", "--codec", codec, "--ticks", "3000")
            except RuntimeError as e:  # e.g. no PyAV under PyPy: G.711 only there
                say(f"  {label} {codec} skipped: {e}")
                continue
            delay = run_child(python, "--child", "delay", "--codec", codec, "--ticks", "20")
            # PyPy's JIT needs longer to settle before the clock counts.
            best = search(python, codec, args.size, ticks, warmup * (4 if label == "pypy" else 1))
            per = best.us_per_participant if best else float("nan")
            rows.append(
                {
                    "runtime": label,
                    "codec": codec,
                    "participants": best.participants if best else 0,
                    "us_per_participant": per,
                    "codec_us": base["us"],
                    "ratio": per / base["us"],
                    "p99_tick_ms": best.work_p99_ms if best else float("nan"),
                    "delay_mean_ms": delay["mean_ms"],
                    "delay_max_ms": delay["max_ms"],
                }
            )
    print(
        f"{'runtime':8} {'codec':5} {'per core':>8} {'us/part':>8} {'codec us':>8} "
        f"{'ratio':>6} {'p99 tick':>8} {'delay':>12}"
    )
    for r in rows:
        print(
            f"{r['runtime']:8} {r['codec']:5} {r['participants']:8d} "
            f"{r['us_per_participant']:8.1f} {r['codec_us']:8.1f} {r['ratio']:6.2f} "
            f"{r['p99_tick_ms']:6.2f}ms {r['delay_mean_ms']:5.1f}/{r['delay_max_ms']:4.1f}ms"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
