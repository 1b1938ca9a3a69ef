# -*- test-case-name: tests.test_benchmarks -*-
"""
A microsecond response-time probe for the SIP benchmark.

SIPp times responses in whole milliseconds, which says little about a server
answering in a fraction of one; this sends one request at a time alongside
SIPp's load and times it with C{time.perf_counter}.
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import List, Optional, Sequence, Tuple

LOOPBACK = "127.0.0.1"

_TO = re.compile(rb"^(?:to|t)[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)


def _request(
    method: str, port: int, local: Tuple[str, int], n: str, *, to: str = "", branch: str = ""
) -> bytes:
    host, lport = local
    branch = branch or n
    to_header = to or f"<sip:bench@{LOOPBACK}:{port}>"
    body = ""
    extra = ""
    if method == "INVITE":
        body = f"v=0\r\no=probe 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        body += "m=audio 9 RTP/AVP 0\r\n"
        extra = "Content-Type: application/sdp\r\n"
    cseq_method = method
    text = (
        f"{method} sip:bench@{LOOPBACK}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bKprobe{branch}\r\n"
        f"From: <sip:probe@{host}:{lport}>;tag=probe{n}\r\n"
        f"To: {to_header}\r\n"
        f"Call-ID: probe-{n}@{host}\r\n"
        f"CSeq: 1 {cseq_method}\r\n"
        "Max-Forwards: 70\r\n"
        f"Contact: <sip:probe@{host}:{lport}>\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n{body}"
    )
    return text.encode()


def probe_once(
    port: int, scenario: str, timeout: float = 2.0, sock: Optional[socket.socket] = None
) -> Optional[float]:
    """
    Send one OPTIONS (or INVITE, then ACK its final answer) and return the
    seconds until the final answer, or None when none came in C{timeout}.
    """
    answer = exchange(port, scenario, timeout, sock)
    return None if answer is None else answer[0]


def invite_final(port: int, timeout: float = 5.0) -> Optional[int]:
    """
    The final status code the server at C{port} gives an INVITE to
    C{sip:bench@127.0.0.1} (the benchmark's request), or None.
    """
    answer = exchange(port, "invite", timeout)
    return None if answer is None else answer[1]


def exchange(
    port: int, scenario: str, timeout: float = 2.0, sock: Optional[socket.socket] = None
) -> Optional[Tuple[float, int]]:
    """
    Send one OPTIONS (or INVITE, then ACK its final answer): (seconds until
    the final answer, its status code), or None when none came in
    C{timeout}.
    """
    own = sock is None
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOPBACK, 0))
    try:
        local = sock.getsockname()
        n = f"{os.getpid()}x{time.perf_counter_ns()}"
        method = "INVITE" if scenario == "invite" else "OPTIONS"
        wanted = f"probe-{n}@".encode()
        started = time.perf_counter()
        sock.sendto(_request(method, port, local, n), (LOOPBACK, port))
        deadline = started + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                return None
            if wanted not in data:
                continue  # a late answer to an earlier probe
            status = data.split(b" ", 2)[1] if data.startswith(b"SIP/2.0 ") else b""
            if not status.isdigit() or status.startswith(b"1"):
                continue
            took = time.perf_counter() - started
            if method == "INVITE":
                match = _TO.search(data.replace(b"\r\n", b"\n"))
                to = match.group(1).decode().strip() if match else ""
                # The ACK of a 2xx is a transaction of its own (RFC 3261 17.1.1.3).
                branch = n + "ack" if status.startswith(b"2") else n
                ack = _request("ACK", port, local, n, to=to, branch=branch)
                sock.sendto(ack, (LOOPBACK, port))
            return took, int(status)
    finally:
        if own:
            sock.close()


def probe_during(
    port: int, scenario: str, seconds: float, interval: float
) -> Tuple[List[float], int]:
    """
    Probe one request at a time for C{seconds}: (response times, lost).
    """
    times: List[float] = []
    lost = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        end = time.monotonic() + seconds
        for _ in range(int(seconds / interval) + 1):
            if time.monotonic() >= end:
                break
            took = probe_once(port, scenario, timeout=1.0, sock=sock)
            if took is None:
                lost += 1
            else:
                times.append(took)
            time.sleep(interval)
    return times, lost


def percentile(values: Sequence[float], p: float) -> float:
    """
    The C{p}th percentile (nearest rank); 0 for no values.
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[rank]
