# -*- test-case-name: tests.test_benchmarks -*-
"""
Bad input under load: the full server offered twice its capacity of valid
traffic (SIPp, INVITE -> 404, overload shedding on) while a flood of bad
messages arrives beside it (the RFC 4475 torture corpus as it is, and
mutations of it and of valid requests: bytes flipped, deleted and
inserted, the edits the parser's robustness tests make) and REGISTERs
store bindings.  Checked afterwards:

  - the server is alive and answers OPTIONS;
  - its log holds no traceback;
  - no acknowledged write was lost: every REGISTER answered 200 during
    the flood has its binding when queried after it (some are refused
    503 while the server sheds, as they should be: those were never
    acknowledged).

    python benchmarks/bench_badload.py [--quick] [--duration S] [--factor 2]
        [--flood-ratio 0.5] [--capacity N]

The whole run happens in a network namespace of its own (C{unshare -n},
root needed): a mutated message may carry a Via C{maddr} or a Contact
naming any address, and the server answers there.  The corpus is read
from C{$CONFERENCE_SHARED} or C{../shared}, as the tests find it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

# Beside this file (run as a script, its folder is first on sys.path); the
# digest helpers come from this tree.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from bench_overload import offer
from bench_sip import (
    RunResult,
    conference_env,
    find_max_rate,
    free_udp_port,
    say,
    scenario_file,
    stop_server,
    warm_up,
)
from common import FULL, QUICK, ROOT, CommandServer, conference_command, pin_self
from probe import LOOPBACK, invite_final, percentile, probe_once

DOMAIN = "example.com"
# Run in a new network namespace: loopback up and the default route, so
# nothing the server is made to send can leave the machine.
_NETNS_SETUP = 'ip link set lo up && ip route add default dev lo && exec "$@"'
_IN_NETNS = "CONFERENCE_BADLOAD_NETNS"
#: REGISTERs per second during the flood (each a write to acknowledge).
REGISTER_RATE = 50


def torture_corpus() -> Path:
    """
    The RFC 4475 corpus folder, found as C{tests/shared.py} finds it.

    @raise FileNotFoundError: when it is absent.
    """
    env = os.environ.get("CONFERENCE_SHARED")
    roots = ([Path(env)] if env else []) + [ROOT.parent / "shared"]
    for root in roots:
        for folder in (root / "corpora" / "rfc4475", root / "rfc4475"):
            if folder.is_dir():
                return folder
    raise FileNotFoundError(f"RFC 4475 corpus not found under {', '.join(map(str, roots))}")


def mutate(message: bytes, rng: random.Random) -> bytes:
    """
    One to four edits of C{message}, as the parser's robustness tests make
    them (tests/unit/sip/test_rfc4475.py): a byte replaced, one to three
    deleted, or one to three inserted, at any position.
    """
    from tests.builders import mutated

    edits = [
        (
            rng.randint(0, len(message)),
            rng.choice(("flip", "del", "ins")),
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 3))),
        )
        for _ in range(rng.randint(1, 4))
    ]
    return mutated(message, edits)


def register(
    n: int,
    port: int,
    *,
    query: bool = False,
    challenge: Optional[Tuple[str, str, str]] = None,
    attempt: int = 0,
) -> bytes:
    """
    A REGISTER by user C{bad<n>} binding a contact at C{port} for an hour,
    or (C{query}) one without Contact, asking for the bindings; with
    C{challenge} (realm, nonce, opaque of a 401), authorized (digest, MD5,
    qop auth, nonce count 1).  Its CSeq is M{2 attempt + 1}, one more when
    authorized, so a new attempt after a 503 is a new request.
    """
    kind = "q" if query else "r"
    step = "a" if challenge else "c"
    cseq = 2 * attempt + (2 if challenge else 1)
    lines = [
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK-bad{kind}{step}{n}x{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:bad{n}@{DOMAIN}>;tag=f{kind}{n}",
        f"To: <sip:bad{n}@{DOMAIN}>",
        f"Call-ID: bad{kind}-{n}@{LOOPBACK}",
        f"CSeq: {cseq} REGISTER",
    ]
    if not query:
        lines += [f"Contact: <{contact(n, port)}>", "Expires: 3600"]
    if challenge is not None:
        from conference.sip.digest import compute_ha1, compute_response

        realm, nonce, opaque = challenge
        cnonce = secrets.token_hex(4)
        uri = f"sip:{DOMAIN}"
        ha1 = compute_ha1("MD5", f"bad{n}", realm, f"pw{n}")
        digest = compute_response(
            "MD5", ha1, nonce=nonce, method="REGISTER", uri=uri, qop="auth", nc=1, cnonce=cnonce
        )
        lines.append(
            f'Authorization: Digest username="bad{n}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{digest}", algorithm=MD5, qop=auth, '
            f'nc=00000001, cnonce="{cnonce}", opaque="{opaque}"'
        )
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()


def challenge_of(data: bytes) -> Optional[Tuple[str, str, str]]:
    """The realm, nonce and opaque of a 401, or L{None}."""
    if status_of(data) != 401:
        return None
    found = re.search(rb'realm="([^"]*)".*?nonce="([^"]*)"(?:.*?opaque="([^"]*)")?', data)
    if found is None:
        return None
    return found.group(1).decode(), found.group(2).decode(), (found.group(3) or b"").decode()


def contact(n: int, port: int) -> str:
    """The contact REGISTER C{n} binds."""
    return f"sip:bad{n}@{LOOPBACK}:{port}"


def flood_messages(corpus: Path, templates: List[bytes], seed: int) -> Iterator[bytes]:
    """
    Bad input, endlessly: every corpus message as it is, in turn, one in
    ten; the rest mutations of a corpus message or of a valid request.
    """
    originals = [path.read_bytes() for path in sorted(corpus.glob("*.dat"))]
    rng = random.Random(seed)
    n = 0
    while True:
        if n % 10 == 0:
            yield originals[(n // 10) % len(originals)]
        else:
            yield mutate(rng.choice(originals + templates), rng)
        n += 1


def status_of(data: bytes) -> Optional[int]:
    """The status code of a response datagram, or L{None}."""
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0] == b"SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None


def call_id_of(data: bytes) -> Optional[str]:
    """The Call-ID of a message, from its raw lines."""
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode("ascii", "replace")
    return None


@dataclass
class Flood:
    """
    What the flood sent and what its REGISTERs got.
    """

    bad_sent: int = 0
    registers_sent: int = 0
    answers: Dict[int, int] = field(default_factory=dict)
    attempts: Dict[int, int] = field(default_factory=dict)
    retry: Dict[int, float] = field(default_factory=dict)
    refused: int = 0
    acknowledged: Set[int] = field(default_factory=set)


def run_flood(port: int, seconds: float, rate: float, corpus: Path, *, seed: int = 4475) -> Flood:
    """
    Send bad messages at C{rate} per second and L{REGISTER_RATE} REGISTERs
    for C{seconds} to C{port}, then wait 4 s for late answers.
    """
    bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bad.bind((LOOPBACK, 0))
    good.bind((LOOPBACK, 0))
    good.setblocking(False)
    bad.setblocking(False)
    good_port = good.getsockname()[1]
    templates = [register(0, good_port), register(0, good_port, challenge=("r", "n", "o"))]
    templates.append(
        (
            f"INVITE sip:bench@{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:9;branch=z9hG4bK-flood\r\n"
            f"From: <sip:flood@{LOOPBACK}>;tag=fl\r\nTo: <sip:bench@{LOOPBACK}>\r\n"
            f"Call-ID: flood@{LOOPBACK}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    messages = flood_messages(corpus, templates, seed)
    flood = Flood()
    started = time.monotonic()
    try:
        while True:
            elapsed = time.monotonic() - started
            if elapsed < seconds:
                while flood.bad_sent < elapsed * rate:
                    # A message may grow past what UDP carries.
                    with contextlib.suppress(OSError):
                        bad.sendto(next(messages), (LOOPBACK, port))
                    flood.bad_sent += 1
                while flood.registers_sent < elapsed * REGISTER_RATE:
                    n = flood.registers_sent
                    good.sendto(register(n, good_port), (LOOPBACK, port))
                    flood.registers_sent += 1
                for n, when in sorted(flood.retry.items()):
                    if when <= elapsed:
                        del flood.retry[n]
                        flood.attempts[n] = attempt = flood.attempts.get(n, 0) + 1
                        again = register(n, good_port, attempt=attempt)
                        good.sendto(again, (LOOPBACK, port))
            elif elapsed > seconds + 4.0:
                break
            _drain(bad)
            _collect(good, flood, port, elapsed)
            time.sleep(0.001)
    finally:
        bad.close()
        good.close()
    return flood


def _drain(sock: socket.socket) -> None:
    """Read and forget what the server answered the flood."""
    try:
        while True:
            sock.recv(65536)
    except OSError:
        return


def _collect(sock: socket.socket, flood: Flood, server: int, now: float) -> None:
    """
    Answer the REGISTERs' challenges, plan a new attempt after each 503
    once its Retry-After has passed, as a phone does, and record the final
    answers.
    """
    port = sock.getsockname()[1]
    try:
        while True:
            data = sock.recv(65536)
            status, call_id = status_of(data), call_id_of(data)
            if status is None or status < 200 or not call_id or not call_id.startswith("badr-"):
                continue
            n = int(call_id[5:].split("@")[0])
            attempt = flood.attempts.get(n, 0)
            found = re.search(rb"\r\nCSeq:\s*(\d+)", data, re.IGNORECASE)
            if found is None or (int(found.group(1)) - 1) // 2 != attempt:
                continue  # an earlier attempt's late answer
            challenge = challenge_of(data)
            if challenge is not None and int(found.group(1)) % 2:
                again = register(n, port, challenge=challenge, attempt=attempt)
                sock.sendto(again, (LOOPBACK, server))
                continue
            flood.answers[n] = status
            if status == 200:
                flood.acknowledged.add(n)
            elif status == 503:
                flood.refused += 1
                after = re.search(rb"\r\nRetry-After:\s*(\d+)", data, re.IGNORECASE)
                flood.retry[n] = now + (int(after.group(1)) if after else 5)
    except (OSError, ValueError):
        return


def write_users(folder: Path, seconds: float) -> Path:
    """
    The password file: user C{bad<n>}, password C{pw<n>}, for every
    REGISTER the flood may send.
    """
    users = folder / "users.txt"
    count = int(seconds * REGISTER_RATE) + 10
    users.write_text("".join(f"bad{n}:pw{n}\n" for n in range(count)))
    return users


def lost_writes(port: int, acknowledged: Set[int]) -> List[int]:
    """
    The REGISTERs answered 200 whose binding a query (REGISTER without
    Contact) no longer shows, one query at a time, retried on silence.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(1.0)
    lost: List[int] = []
    try:
        for n in sorted(acknowledged):
            # The contact is the one REGISTER n bound, at the flood's port.
            answer = _query(sock, port, n)
            if answer is None or f"sip:bad{n}@{LOOPBACK}:".encode() not in answer:
                lost.append(n)
    finally:
        sock.close()
    return lost


def _query(sock: socket.socket, port: int, n: int) -> Optional[bytes]:
    """The 200 answering a query for REGISTER C{n}'s address, or L{None}."""
    local = sock.getsockname()[1]
    data = register(n, local, query=True)
    for _ in range(5):
        sock.sendto(data, (LOOPBACK, port))
        try:
            while True:
                answer = sock.recv(65536)
                if call_id_of(answer) != f"badq-{n}@{LOOPBACK}":
                    continue
                challenge = challenge_of(answer)
                if challenge is not None:
                    data = register(n, local, query=True, challenge=challenge)
                    sock.sendto(data, (LOOPBACK, port))
                elif status_of(answer) == 200:
                    return answer
        except OSError:
            continue
    return None


def in_namespace(argv: List[str]) -> int:
    """
    Run this benchmark again in a network namespace of its own.
    """
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        say("unshare (util-linux) and ip (iproute2) are needed: the flood stays in a namespace")
        return 2
    env = dict(os.environ)
    env[_IN_NETNS] = "1"
    args = ["unshare", "--net", "sh", "-c", _NETNS_SETUP, "sh", sys.executable]
    args += [str(Path(__file__).resolve()), *argv]
    done = subprocess.run(args, env=env, check=False)
    if done.returncode == 1 and not os.environ.get(_IN_NETNS):
        say("(if unshare failed above: this benchmark needs root to create a network namespace)")
    return done.returncode


def main(argv: Optional[List[str]] = None) -> int:
    """
    Run the benchmark and print what it found; 1 when a check failed.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="bad input at twice the capacity")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--duration", type=float, help="seconds of flood (default 30, quick 5)")
    parser.add_argument("--factor", type=float, default=2.0, help="valid load, times capacity")
    parser.add_argument(
        "--flood-ratio", type=float, default=0.5, help="bad messages per second, times capacity"
    )
    parser.add_argument("--capacity", type=int, help="INVITE -> 404 calls/s (default: measured)")
    parser.add_argument("--sipp", default="sipp", help="the SIPp program")
    args = parser.parse_args(argv)
    if not os.environ.get(_IN_NETNS):
        return in_namespace(argv)
    sipp = shutil.which(args.sipp)
    if sipp is None:
        say(f"{args.sipp} not found (Debian: apt-get install sip-tester)")
        return 2
    try:
        corpus = torture_corpus()
    except FileNotFoundError as e:
        say(str(e))
        return 2
    pin_self()
    plan = QUICK if args.quick else FULL
    duration = args.duration or (5.0 if args.quick else 30.0)
    folder = Path(tempfile.mkdtemp(prefix="conference-badload-"))
    started = time.monotonic()
    try:
        port = free_udp_port()
        options = ["--domain", DOMAIN, "--store", f"sqlite:{folder / 'bad.sqlite'}"]
        options += ["--rate-limit", "off", "--identity-rate-limit", "off"]
        options += ["--auth", f"file:{write_users(folder, duration)}"]
        server = CommandServer(
            "full",
            conference_command(folder, port, options),
            folder,
            port=port,
            env=conference_env(folder),
        )
        try:
            final = invite_final(server.port) or 404
            scenario = scenario_file("invite", final, folder)
            capacity = args.capacity
            if not capacity:
                warm_up(sipp, scenario, server, plan, folder, label="invite")
                capacity, _, _ = find_max_rate(sipp, scenario, server, plan, folder)
            if not capacity:
                say("  no rate passed; nothing to overload")
                return 1
            rate = int(capacity * args.factor)
            flood_rate = capacity * args.flood_ratio
            server.settle(plan.settle_cap)
            floods: List[Flood] = []
            say(f"  {rate}/s valid + {flood_rate:.0f}/s bad for {duration:.0f} s")
            valid: RunResult = offer(
                sipp,
                scenario,
                server,
                rate,
                duration,
                folder=folder,
                during=lambda: floods.append(run_flood(server.port, duration, flood_rate, corpus)),
            )
            flood = floods[0]
            alive = server.process.poll() is None and probe_once(server.port, "options") is not None
            lost = lost_writes(server.port, flood.acknowledged)
            tracebacks = server.tracebacks()
        finally:
            stop_server(server)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
    answers = sorted(flood.answers.values())
    by_status = {code: answers.count(code) for code in sorted(set(answers))}
    ok = alive and tracebacks == 0 and not lost
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}  {'quick' if args.quick else 'full'} plan, "
        f"{time.monotonic() - started:.0f} s, {duration:.0f} s of flood, cores: "
        f"{os.cpu_count()}, {Path(sys.executable).name} {sys.version.split()[0]}"
    )
    print(
        f"capacity (INVITE -> 404): {capacity}/s; offered {rate}/s valid "
        f"({args.factor:g}x) + {flood_rate:.0f}/s bad ({flood.bad_sent} sent: "
        f"RFC 4475 corpus and mutations)\n"
        f"valid calls: {valid.successful}/{valid.calls} answered 404 "
        f"({valid.successful / valid.elapsed / capacity if valid.elapsed else 0:.2f}x capacity), "
        f"{valid.failed} failed or refused, {valid.retransmissions} retransmissions, "
        f"p99 {percentile(valid.rtt_ms, 99):.1f} ms\n"
        f"REGISTERs: {flood.registers_sent} addresses, {flood.refused} attempts refused 503 "
        f"(tried again after Retry-After), last answers {by_status}, "
        f"{len(flood.acknowledged)} acknowledged 200, {len(lost)} of them lost afterwards\n"
        f"server alive: {'yes' if alive else 'NO'}; tracebacks in its log: {tracebacks}\n"
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
