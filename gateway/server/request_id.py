"""The request id: the client's `X-Request-ID` when it is a safe token, else a fresh one."""

from __future__ import annotations

import os
import re
from typing import Any

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(headers: Any) -> str:
    """The id every answer and log line of one request carries (the endpoint and the shedder)."""
    supplied = headers.get("x-request-id")
    # Most requests send none: no match to try (an empty one never matches).
    return supplied if supplied and _REQUEST_ID.fullmatch(supplied) else fresh_id()


def fresh_id() -> str:
    """`uuid.uuid4().hex`, the same 122 random bits from os.urandom, without building the UUID
    object: its version (4, the high nibble of byte 6) and RFC 4122 variant (0b10, the top bits
    of byte 8) set in the bytes themselves."""
    value = bytearray(os.urandom(16))
    value[6] = value[6] & 0x0F | 0x40
    value[8] = value[8] & 0x3F | 0x80
    return value.hex()
