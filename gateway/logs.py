"""Structured JSON logs on stdout, built from fixed metadata fields only."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=False)
    )
    # Every request writes an access line, so the stdlib's per-record extras are paid on
    # the hot path: the caller lookup walks the stack (~5 µs), thread/process names are
    # read each time. None of them is in the line. (Logging HOWTO, "Optimization".)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log would carry paths and user agents; ours replaces it.
    logging.getLogger("aiohttp.access").disabled = True
