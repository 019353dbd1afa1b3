"""The installed package's version: pyproject.toml is its one source, read through metadata."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("oms-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"

PYTHON = platform.python_version()
