# -*- test-case-name: tests.unit.test_tap -*-
"""
The C{twistd conference} command line: options in Twisted's conventions and
L{makeService}, which any Twisted application may call for the same service.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Tuple

from twisted.application.service import IService
from twisted.cred import credentials, strcred
from twisted.logger import LogLevel
from twisted.python import usage

from conference.app.bookings import DEFAULT_MAX_ATTENDEES, DEFAULT_MAX_ORGANIZER_BYTES
from conference.errors import StartupError
from conference.limits import (
    DEFAULT_BODY_LIMITS,
    DEFAULT_EXEMPT,
    LimitError,
    Rate,
    parse_body_limit,
)
from conference.records import StoreError
from conference.runtime import PYPY_JIT, check_jit_parameters
from conference.service import DEFAULT_LISTEN, ConferenceService, ServerConfig
from conference.sip.digest import DEFAULT_ALGORITHMS, HASHES
from conference.startup import cannot_start, exit_on_failure, usage_exit
from conference.store import parse_store
from conference.transport.udp import parse_udp_description

#: The names --log-level takes: twisted.logger's levels, least severe first.
LOG_LEVELS = tuple(level.name for level in LogLevel.iterconstants())


def check_store(description: str) -> str:
    """
    Validate a C{--store} description (see L{parse_store}); a PostgreSQL
    store also needs its driver, checked now rather than at start.

    @raise usage.UsageError: naming what is wrong.
    """
    try:
        kind, _ = parse_store(description)
        if kind == "postgresql":
            from conference.store.postgresql import postgresql_driver

            postgresql_driver()
    except StoreError as e:
        raise usage.UsageError(f"--store: {e}") from None
    return description


def _algorithms(text: str) -> List[str]:
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in HASHES]
    if unknown or not names:
        raise usage.UsageError(
            f"--digest-algorithms: {', '.join(unknown) or 'none given'}; use MD5 and/or SHA-256"
        )
    return names


def _port_range(text: Any) -> Tuple[int, int]:
    if isinstance(text, tuple):
        return text  # already converted
    low, sep, high = str(text).partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise usage.UsageError(f"--rtp-ports must be LOW-HIGH, got {text!r}") from None
    if not 1024 <= first < last <= 65535 or (last - first) < 1:
        raise usage.UsageError(f"--rtp-ports {text!r}: need 1024 <= LOW < HIGH <= 65535")
    return first, last


def _number(kind: type, name: str, *, allow_zero: bool = False) -> Any:
    """
    A converter for a numeric option: positive, or with C{allow_zero}
    not negative; anything else is a usage error naming the option.
    """

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise usage.UsageError(f"--{name} must be a number, got {text!r}") from None
        if value < 0 or (value == 0 and not allow_zero):
            rule = "must not be negative" if allow_zero else "must be positive"
            raise usage.UsageError(f"--{name} {rule}, got {text!r}")
        return value

    return convert


def _positive(kind: type, name: str) -> Any:
    return _number(kind, name)


def _non_negative(kind: type, name: str) -> Any:
    return _number(kind, name, allow_zero=True)


def _jit_parameters(text: Any) -> str:
    """
    Check C{--pypy-jit}: PyPy's JIT parameters, C{NAME=VALUE,...}.
    """
    try:
        return check_jit_parameters(str(text))
    except ValueError as e:
        raise usage.UsageError(f"--pypy-jit: {e}") from None


def _front_end(text: Any) -> Optional[str]:
    """
    Check C{--front-end}: a SIP URI with a host (C{sip:HOST:PORT}).
    """
    from conference.sip.errors import RemoteProtocolError
    from conference.sip.uri import SIPURI, parse_uri

    if text is None:
        return None
    value = str(text).strip().strip("<>")
    try:
        uri = parse_uri(value)
    except RemoteProtocolError as e:
        raise usage.UsageError(f"--front-end: {e.reason}") from None
    if not isinstance(uri, SIPURI):
        raise usage.UsageError(f"--front-end: not a sip: or sips: URI: {text!r}")
    return value


def _rate(name: str) -> Any:
    """
    Parse a rate option: C{N/SECONDS}, C{N} (per second), or C{off}.
    """

    def convert(text: Any) -> Optional[Rate]:
        if text is None or isinstance(text, Rate):
            return text  # already converted
        if str(text).strip().lower() in ("off", "none", "0"):
            return None
        try:
            return Rate.parse(str(text))
        except LimitError as e:
            raise usage.UsageError(f"--{name}: {e}") from None

    return convert


def _resolver(text: str) -> Tuple[str, int]:
    """
    Parse C{--resolver}: C{HOST}, C{HOST:PORT} or C{[IPv6]:PORT}.
    """
    from conference.transport.dns import parse_resolver

    try:
        return parse_resolver(text)
    except ValueError as e:
        raise usage.UsageError(f"--resolver: {e}") from None


def _freebusy_source(text: str) -> str:
    """
    Parse C{--freebusy-source}: C{caldav:URL}.
    """
    from conference.app.caldav import parse_source

    try:
        return parse_source(text)
    except ValueError as e:
        raise usage.UsageError(f"--freebusy-source: {e}") from None


def _networks(text: Any) -> List[str]:
    """
    Parse C{--rate-limit-exempt}: comma-separated addresses or networks,
    or C{none}.
    """
    if isinstance(text, list):
        return text
    import ipaddress

    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if [n.lower() for n in names] == ["none"]:
        return []
    for name in names:
        try:
            ipaddress.ip_network(name, strict=False)
        except ValueError:
            raise usage.UsageError(f"--rate-limit-exempt: not a network: {name!r}") from None
    return names


def _dispositions(text: str) -> List[str]:
    """
    Parse C{--binding-dispositions}: comma-separated tokens, or C{*}.
    """
    from conference.sip.headers import TOKEN_RE

    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if "*" in names:
        if len(names) > 1:
            raise usage.UsageError("--binding-dispositions: '*' cannot be mixed with names")
        return names
    bad = [name for name in names if not TOKEN_RE.fullmatch(name)]
    if bad:
        raise usage.UsageError(f"--binding-dispositions: not a token: {', '.join(bad)}")
    return names


def _default_dispositions() -> str:
    from conference.bindings.logic import DEFAULT_DISPOSITIONS

    return ",".join(sorted(DEFAULT_DISPOSITIONS))


class Options(usage.Options, strcred.AuthOptionMixin):
    """
    Options of C{twistd conference}; docs/options.rst describes each.
    """

    synopsis = "[options]"
    longdesc = (
        "Run a SIP conferencing application server (iCalendar over SIP and BIND). "
        "With no options it listens on UDP and TCP 127.0.0.1:5060 and keeps its "
        "data in conference.sqlite in the working directory."
    )
    supportedInterfaces = (credentials.IUsernamePassword, credentials.IUsernameHashedPassword)

    optFlags = [
        ["auth-invite", None, "Require digest authentication for INVITE too."],
        [
            "require-signature",
            None,
            "Refuse iTIP MESSAGEs that are not S/MIME-signed (needs --smime-ca).",
        ],
        ["metrics-public", None, "Serve /metrics on --http without login."],
        [
            "freebusy-write",
            None,
            "Also write scheduled conferences into organizers' CalDAV calendars.",
        ],
    ]
    optParameters: List[List[Any]] = [
        [
            "store",
            None,
            "sqlite:conference.sqlite",
            "Where data lives: sqlite:PATH, memory, postgresql:CONNINFO.",
            check_store,
        ],
        [
            "log-format",
            None,
            "text",
            "Log as text (twistd's log) or json (one JSON event per line on stdout).",
        ],
        [
            "log-level",
            None,
            "info",
            "The least severe events written: debug, info, warn, error or critical.",
        ],
        [
            "log-flush-ms",
            None,
            0.0,
            "Write twistd's text log in batches at most this many ms apart "
            "(warnings and worse at once). 0: every line as it comes.",
            _non_negative(float, "log-flush-ms"),
        ],
        [
            "max-message-size",
            None,
            65536,
            "Largest SIP message accepted, in bytes.",
            _positive(int, "max-message-size"),
        ],
        [
            "max-connections",
            None,
            1024,
            "Most TCP/TLS connections open at once.",
            _positive(int, "max-connections"),
        ],
        [
            "idle-timeout",
            None,
            300.0,
            "Seconds before an idle TCP/TLS connection is closed.",
            _positive(float, "idle-timeout"),
        ],
        [
            "max-connections-per-source",
            None,
            64,
            "Most TCP/TLS connections from one address (IPv6: /64); 0: no cap.",
            _non_negative(int, "max-connections-per-source"),
        ],
        [
            "message-timeout",
            None,
            10.0,
            "Seconds a TCP/TLS peer has to finish a message it started (or its first).",
            _positive(float, "message-timeout"),
        ],
        [
            "handshake-timeout",
            None,
            10.0,
            "Seconds a TLS peer has to finish its handshake.",
            _positive(float, "handshake-timeout"),
        ],
        [
            "max-transactions",
            None,
            100000,
            "Most live server transactions (and retired rows, the oldest dropped early "
            "past it); new requests past it get 503. 0: no cap.",
            _non_negative(int, "max-transactions"),
        ],
        [
            "overload-lag-ms",
            None,
            100.0,
            "Event-loop lag (ms) past which new requests get 503 + Retry-After "
            "(OPTIONS, ACK, CANCEL, BYE and in-dialog requests pass). 0: never shed.",
            _non_negative(float, "overload-lag-ms"),
        ],
        [
            "overload-queue-ms",
            None,
            20.0,
            "Mean wait (ms) in the UDP receive queue held by refusing a share of new "
            "requests 503 before parsing, adjusted every 50 ms. 0: off.",
            _non_negative(float, "overload-queue-ms"),
        ],
        [
            "pypy-jit",
            None,
            PYPY_JIT,
            "PyPy's JIT parameters (pypyjit.set_param), set once serving; '' keeps "
            "the interpreter's (pypy --jit ...). Ignored on CPython.",
            _jit_parameters,
        ],
        [
            "stop-timeout",
            None,
            5.0,
            "Seconds a stop waits for transactions in progress.",
            _positive(float, "stop-timeout"),
        ],
        [
            "nonce-lifetime",
            None,
            300.0,
            "Seconds a digest nonce stays fresh.",
            _positive(float, "nonce-lifetime"),
        ],
        [
            "digest-algorithms",
            None,
            ",".join(DEFAULT_ALGORITHMS),
            "Digest algorithms offered, most preferred first: MD5 and/or SHA-256.",
            _algorithms,
        ],
        [
            "binding-dispositions",
            None,
            _default_dispositions(),
            "BIND dispositions accepted, comma-separated ('*': any; empty: none).",
            _dispositions,
        ],
        [
            "max-bindings",
            None,
            32,
            "Most live BIND bindings per conference or user.",
            _positive(int, "max-bindings"),
        ],
        [
            "max-binding-data",
            None,
            8192,
            "Most bytes of inline data (data: or cid: URI) per binding.",
            _positive(int, "max-binding-data"),
        ],
        [
            "max-conferences",
            None,
            100,
            "Most conferences one organizer may have scheduled.",
            _positive(int, "max-conferences"),
        ],
        [
            "max-attendees",
            None,
            DEFAULT_MAX_ATTENDEES,
            "Most attendees of one scheduled event; more is 413.",
            _positive(int, "max-attendees"),
        ],
        [
            "max-organizer-bytes",
            None,
            DEFAULT_MAX_ORGANIZER_BYTES,
            "Most bytes of calendars one organizer may store; more is 403.",
            _positive(int, "max-organizer-bytes"),
        ],
        [
            "media-address",
            None,
            "127.0.0.1",
            "The address RTP ports are opened on and announced in SDP.",
        ],
        ["rtp-ports", None, "20000-29999", "The RTP port range, LOW-HIGH.", _port_range],
        [
            "media",
            None,
            "builtin",
            "Media service: builtin (the mixer), null (drop media) or janus:URL"
            " (Janus AudioBridge rooms, e.g. janus:http://127.0.0.1:8088/janus).",
        ],
        [
            "srtp",
            None,
            "optional",
            "SDES-SRTP (RTP/SAVP): optional (when offered), required (plain RTP refused)"
            " or off (SAVP refused).",
        ],
        [
            "max-participants",
            None,
            100,
            "Default most participants per conference (a conference's own setting wins).",
            _positive(int, "max-participants"),
        ],
        [
            "max-media-per-source",
            None,
            32,
            "Most media sessions of callers (not attendees) from one address; 0: no cap.",
            _non_negative(int, "max-media-per-source"),
        ],
        [
            "max-media-per-caller",
            None,
            4,
            "Most media sessions of one caller; 0: no cap.",
            _non_negative(int, "max-media-per-caller"),
        ],
        [
            "media-reserve",
            None,
            20.0,
            "Percent of the media sessions kept for authenticated attendees.",
            _non_negative(float, "media-reserve"),
        ],
        [
            "media-timeout",
            None,
            60.0,
            "Seconds without RTP/RTCP after which a call is ended; 0: never.",
            _non_negative(float, "media-timeout"),
        ],
        [
            "early-join",
            None,
            10.0,
            "Minutes before an instance starts that its conference opens.",
            _non_negative(float, "early-join"),
        ],
        [
            "rate-limit",
            None,
            "200/10",
            "Requests per source address: N/SECONDS (a token bucket of N), or off.",
            _rate("rate-limit"),
        ],
        [
            "identity-rate-limit",
            None,
            "120/60",
            "Requests per authenticated identity: N/SECONDS, or off.",
            _rate("identity-rate-limit"),
        ],
        [
            "burst",
            None,
            None,
            "Bucket size (requests at once) of both rate limits; default: their N.",
            _positive(float, "burst"),
        ],
        [
            "rate-limit-exempt",
            None,
            ",".join(DEFAULT_EXEMPT),
            "Sources never rate limited: comma-separated networks, or none.",
            _networks,
        ],
        [
            "http",
            None,
            None,
            "Serve status pages, /api and /metrics on this stream endpoint "
            "(tcp:8080:interface=127.0.0.1, ssl:...); default: off.",
        ],
        ["tls-ca", None, None, "PEM bundle of the CAs TLS client certificates must chain to."],
        [
            "tls-client-cert",
            None,
            "optional",
            "With --tls-ca: none, optional (verified if sent) or required.",
        ],
        [
            "resolver",
            None,
            None,
            "DNS server HOST[:PORT] for outbound requests (RFC 3263); default: the system's.",
            _resolver,
        ],
        [
            "freebusy-source",
            None,
            None,
            "caldav:URL ({user} for the user part): users' busy time also from CalDAV.",
            _freebusy_source,
        ],
        [
            "freebusy-credentials",
            None,
            None,
            "File whose first line is USER:PASSWORD for --freebusy-source (HTTP Basic).",
        ],
        [
            "freebusy-timeout",
            None,
            2.0,
            "Seconds to wait for CalDAV before answering from local data.",
            _positive(float, "freebusy-timeout"),
        ],
        [
            "outbound-keepalive",
            None,
            None,
            "Seconds between CRLF keep-alives on outgoing TCP/TLS connections (RFC 5626).",
            _positive(float, "outbound-keepalive"),
        ],
        [
            "tls-peer-ca",
            None,
            None,
            "PEM bundle of the CAs outbound TLS servers must chain to; default: the system's.",
        ],
        [
            "front-end",
            None,
            None,
            "The cluster's front end (sip:HOST:PORT, Kamailio): automatic dial-out is handed "
            "to the node it routes the conference to.",
            _front_end,
        ],
        ["smime-ca", None, None, "PEM bundle of the CAs S/MIME signer certificates chain to."],
        ["smime-cert", None, None, "PEM certificate (and intermediates) the server signs with."],
        ["smime-key", None, None, "PEM private key of --smime-cert (RSA to decrypt)."],
        ["smime-key-password", None, None, "Password of --smime-key (prefer the -file form)."],
        ["smime-key-password-file", None, None, "File whose first line is --smime-key's password."],
    ]

    def __init__(self) -> None:
        super().__init__()
        # usage.Options keeps an opt_ method's docstring as written, so its
        # line breaks and indentation would show as runs of spaces in --help.
        self.docs = {name: " ".join(doc.split()) if doc else doc for name, doc in self.docs.items()}
        self["listen"] = []
        self["domain"] = []
        self["admin"] = []
        self["max-body-size"] = dict(DEFAULT_BODY_LIMITS)

    def parseOptions(self, options: Optional[List[str]] = None) -> None:
        """
        Parse C{options}; a mistake raises L{usage.UsageError}, or, when
        parsed as a subcommand (of twistd), ends the process with one line
        rather than twistd's dump of the whole help text.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if self.parent is None:
                raise
            raise usage_exit(e) from None

    def opt_listen(self, description: str) -> None:
        """
        Where to listen, repeatable: udp:PORT[:interface=ADDR] or any Twisted
        stream server endpoint (tcp:5060:interface=\\:\\:,
        ssl:5061:privateKey=key.pem:certKey=cert.pem). Default: UDP and TCP on
        127.0.0.1:5060.
        """
        if description.lower().startswith("udp:"):
            try:
                parse_udp_description(description)
            except ValueError as e:
                raise usage.UsageError(f"--listen: {e}") from None
        elif description.lower().startswith("tls:"):
            from conference.tls import TLSConfigError, parse_tls_description

            try:
                parse_tls_description(description)
            except TLSConfigError as e:
                raise usage.UsageError(f"--listen: {e}") from None
        self["listen"].append(description)

    def opt_auth(self, description: str) -> None:
        """
        Specify an authentication method for the server.
        """
        # The same help as strcred's; a file: checker's file must exist and
        # be readable: strcred only warns, and the server would then refuse
        # every REGISTER.
        kind, _, argument = description.partition(":")
        if kind == "file" and argument.strip():
            path = argument.strip()
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise usage.UsageError(f"--auth {description}: no readable file {path!r}")
        super().opt_auth(description)

    def opt_max_body_size(self, text: str) -> None:
        """
        Cap on the body of a content type, TYPE=BYTES (repeatable; TYPE may
        be major/* or *). Larger bodies are answered 413. Default:
        application/sdp=16384.
        """
        try:
            mime, size = parse_body_limit(text)
        except LimitError as e:
            raise usage.UsageError(f"--max-body-size: {e}") from None
        self["max-body-size"][mime] = size

    def opt_domain(self, name: str) -> None:
        """
        A SIP domain this server serves (repeatable). Default: localhost.
        """
        name = name.strip().lower()
        if not name or any(c in name for c in " ;:@/<>"):
            raise usage.UsageError(f"--domain: not a domain name: {name!r}")
        self["domain"].append(name)

    def opt_admin(self, aor: str) -> None:
        """
        An address of record (sip:user@domain) that administers BIND
        bindings of every conference and user, moderates every conference
        (SIP and status page actions) and sees every status page
        (repeatable).
        """
        from conference.sip.errors import RemoteProtocolError
        from conference.sip.uri import SIPURI, parse_uri

        text = aor.strip().strip("<>")
        try:
            uri = parse_uri(text)
        except RemoteProtocolError as e:
            raise usage.UsageError(f"--admin: {e.reason}") from None
        if not isinstance(uri, SIPURI) or not uri.username:
            raise usage.UsageError(f"--admin: not an address of record: {aor!r}")
        self["admin"].append(f"sip:{uri.username}@{uri.host.lower()}")

    def postOptions(self) -> None:
        if isinstance(self["digest-algorithms"], str):  # the default is not coerced
            self["digest-algorithms"] = _algorithms(self["digest-algorithms"])
        if isinstance(self["binding-dispositions"], str):
            self["binding-dispositions"] = _dispositions(self["binding-dispositions"])
        if self["log-format"] not in ("text", "json"):
            raise usage.UsageError("--log-format must be text or json")
        if self["log-level"] not in LOG_LEVELS:
            raise usage.UsageError("--log-level must be one of " + ", ".join(LOG_LEVELS))
        if self["media"].startswith("janus:"):
            from conference.app.janushttp import parse_janus_url

            try:
                parse_janus_url(self["media"][len("janus:") :])
            except ValueError as e:
                raise usage.UsageError(f"--media {e}") from None
        elif self["media"] not in ("builtin", "null"):
            raise usage.UsageError("--media must be builtin, null or janus:URL")
        self._post_srtp()
        self._post_limits()
        self._post_smime()
        if self["metrics-public"] and not self["http"]:
            raise usage.UsageError("--metrics-public needs --http")

    def _post_smime(self) -> None:
        """
        Read the S/MIME files now, so a bad one is a usage error naming it
        rather than a server that refuses every signed request.
        """
        from conference.app.trust import load_trust_settings
        from conference.smime import SMIMEConfigError

        path = self["smime-key-password-file"]
        if path is not None:
            if self["smime-key-password"] is not None:
                raise usage.UsageError(
                    "give --smime-key-password or --smime-key-password-file, not both"
                )
            try:
                with open(path, encoding="utf-8") as f:
                    self["smime-key-password"] = f.readline().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as e:
                raise usage.UsageError(f"--smime-key-password-file {path}: {e}") from None
        try:
            load_trust_settings(
                self["smime-ca"],
                self["smime-cert"],
                self["smime-key"],
                self["smime-key-password"],
                require_signature=bool(self["require-signature"]),
            )
        except SMIMEConfigError as e:
            raise usage.UsageError(str(e)) from None

    def _post_srtp(self) -> None:
        """
        Check C{--srtp}: a known policy, SRTP available for one other than
        C{off}, and not C{required} with Janus (its rooms take plain RTP).
        """
        from conference.app.media import srtp_policy

        try:
            srtp_policy(self["srtp"])
        except ValueError as e:
            raise usage.UsageError(f"--srtp: {e}") from None
        if self["srtp"] == "required" and self["media"].startswith("janus:"):
            raise usage.UsageError("--srtp required: the Janus backend carries plain RTP only")

    def _post_limits(self) -> None:
        """
        Coerce the defaults of the abuse limit and TLS options and check
        that they fit together.
        """
        for name in ("rate-limit", "identity-rate-limit"):
            self[name] = _rate(name)(self[name])
        self["rate-limit-exempt"] = _networks(self["rate-limit-exempt"])
        if self["burst"] is not None and self["burst"] < 1:
            raise usage.UsageError(f"--burst must be at least 1, got {self['burst']:g}")
        if self["media-reserve"] > 100:
            raise usage.UsageError(
                f"--media-reserve is a percentage, got {self['media-reserve']:g}"
            )
        mode = self["tls-client-cert"]
        if mode not in ("none", "optional", "required"):
            raise usage.UsageError("--tls-client-cert must be none, optional or required")
        if mode == "required" and not self["tls-ca"]:
            raise usage.UsageError("--tls-client-cert required needs --tls-ca")
        if self["tls-ca"]:
            from conference.tls import TLSConfigError, load_certificates

            try:
                load_certificates(self["tls-ca"], "CA file")
            except TLSConfigError as e:
                raise usage.UsageError(f"--tls-ca: {e}") from None
        if self["freebusy-write"] and self["freebusy-source"] is None:
            raise usage.UsageError("--freebusy-write needs --freebusy-source")
        if self["freebusy-credentials"] is not None:
            from conference.app.caldav import read_credentials

            if self["freebusy-source"] is None:
                raise usage.UsageError("--freebusy-credentials needs --freebusy-source")
            try:
                self["freebusy-credentials"] = read_credentials(self["freebusy-credentials"])
            except ValueError as e:
                raise usage.UsageError(f"--freebusy-credentials: {e}") from None
        if self["tls-peer-ca"]:
            from conference.tls import TLSConfigError, load_certificates

            try:
                load_certificates(self["tls-peer-ca"], "CA file")
            except TLSConfigError as e:
                raise usage.UsageError(f"--tls-peer-ca: {e}") from None


def config_from_options(options: Options) -> ServerConfig:
    """
    Turn parsed options into a L{ServerConfig}.
    """
    return ServerConfig(
        tune_gc=True,
        listen=list(options["listen"]) or list(DEFAULT_LISTEN),
        domains=list(options["domain"]),
        store=options["store"],
        checkers=list(options.get("credCheckers", [])),
        log_format=options["log-format"],
        log_level=options["log-level"],
        max_message_size=options["max-message-size"],
        max_connections=options["max-connections"],
        idle_timeout=options["idle-timeout"],
        stop_timeout=options["stop-timeout"],
        auth_invite=bool(options["auth-invite"]),
        nonce_lifetime=options["nonce-lifetime"],
        digest_algorithms=options["digest-algorithms"],
        binding_dispositions=list(options["binding-dispositions"]),
        admins=list(options["admin"]),
        max_bindings=options["max-bindings"],
        max_binding_data=options["max-binding-data"],
        max_conferences_per_organizer=options["max-conferences"],
        max_attendees=options["max-attendees"],
        max_organizer_bytes=options["max-organizer-bytes"],
        media_address=options["media-address"],
        rtp_ports=_port_range(options["rtp-ports"]),
        media=options["media"],
        srtp=options["srtp"],
        max_participants=options["max-participants"],
        early_join=float(options["early-join"]) * 60.0,
        rate_limit=options["rate-limit"],
        identity_rate_limit=options["identity-rate-limit"],
        burst=options["burst"],
        rate_limit_exempt=list(options["rate-limit-exempt"]),
        body_limits=dict(options["max-body-size"]),
        tls_ca=options["tls-ca"],
        tls_client_cert=options["tls-client-cert"],
        max_connections_per_source=options["max-connections-per-source"] or None,
        message_timeout=options["message-timeout"],
        handshake_timeout=options["handshake-timeout"],
        max_transactions=options["max-transactions"] or None,
        overload_lag=float(options["overload-lag-ms"]) / 1000.0 or None,
        overload_queue=float(options["overload-queue-ms"]) / 1000.0 or None,
        log_flush=float(options["log-flush-ms"]) / 1000.0,
        pypy_jit=options["pypy-jit"],
        max_media_per_source=options["max-media-per-source"] or None,
        max_media_per_caller=options["max-media-per-caller"] or None,
        media_reserve_percent=float(options["media-reserve"]),
        media_timeout=options["media-timeout"] or None,
        smime_ca=options["smime-ca"],
        smime_cert=options["smime-cert"],
        smime_key=options["smime-key"],
        smime_key_password=options["smime-key-password"],
        require_signature=bool(options["require-signature"]),
        http=options["http"],
        metrics_public=bool(options["metrics-public"]),
        resolver=options["resolver"],
        tls_peer_ca=options["tls-peer-ca"],
        outbound_keepalive=options["outbound-keepalive"],
        front_end=options["front-end"],
        freebusy_source=options["freebusy-source"],
        freebusy_credentials=options["freebusy-credentials"],
        freebusy_timeout=float(options["freebusy-timeout"]),
        freebusy_write=bool(options["freebusy-write"]),
    )


def makeService(options: Options, reactor: Optional[Any] = None) -> IService:
    """
    Build the conference server service from parsed options.

    With options parsed as twistd's subcommand, what keeps the server from
    starting ends the process with one line and status 1 (see
    L{conference.startup}); otherwise it is the caller's: L{StartupError}
    raised here or by C{privilegedStartService}, or the service's C{ready}
    Deferred failing.

    @raise StartupError: for a C{--listen} description or certificate
        that cannot work.
    """
    config = config_from_options(options)
    if options.parent is None:
        return ConferenceService(config, reactor=reactor)
    try:
        service = ConferenceService(config, reactor=reactor)
    except StartupError as e:
        raise cannot_start(e) from None
    exit_on_failure(service, reactor)
    return service
