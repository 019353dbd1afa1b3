"""The request id: the client's `X-Request-ID` when it is a safe token, else a fresh one."""

from __future__ import annotations

import re
import uuid
from typing import Any

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(headers: Any) -> str:
    """The id every answer and log line of one request carries (the endpoint and the shedder)."""
    supplied = headers.get("x-request-id", "")
    return supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
