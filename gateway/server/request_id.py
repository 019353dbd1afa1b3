"""The request id: the client's `X-Request-ID` when it is a safe token, else a fresh one."""

from __future__ import annotations

import os
import re
from typing import Any

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The bits uuid.UUID(version=4) sets: the RFC 4122 variant and version 4.
_UUID4_CLEAR = ~(0xC000 << 48 | 0xF000 << 64)
_UUID4_SET = 0x8000 << 48 | 4 << 76


def request_id_of(headers: Any) -> str:
    """The id every answer and log line of one request carries (the endpoint and the shedder)."""
    supplied = headers.get("x-request-id", "")
    return supplied if _REQUEST_ID.fullmatch(supplied) else fresh_id()


def fresh_id() -> str:
    """`uuid.uuid4().hex`, the same 122 random bits from os.urandom, without building the UUID
    object (half the cost, once per request without an id)."""
    value = (int.from_bytes(os.urandom(16)) & _UUID4_CLEAR) | _UUID4_SET
    return f"{value:032x}"
