# -*- test-case-name: tests.unit.control -*-
"""
The RFC 4575 schema (our transcription, C{conference-info.xsd} beside this
module) and a validator every conference-info test uses, so documents are
checked against the same schema everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

from lxml import etree

SCHEMA_PATH = Path(__file__).with_name("conference-info.xsd")
_SCHEMA: List[Any] = []


def schema() -> Any:
    """
    The conference-info XML schema, loaded once.
    """
    if not _SCHEMA:
        _SCHEMA.append(etree.XMLSchema(etree.parse(str(SCHEMA_PATH))))
    return _SCHEMA[0]


def conference_info_errors(document: bytes) -> Optional[str]:
    """
    L{None} if C{document} validates against the RFC 4575 schema, else the
    validator's last error.
    """
    xsd = schema()
    if xsd.validate(etree.fromstring(document)):
        return None
    return str(xsd.error_log.last_error)
